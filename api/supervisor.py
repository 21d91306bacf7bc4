"""`lianzheng up` keeps the API and the witnesses alive and never leaves the devnet behind.

- `Supervisor` runs child processes — the API (`python -m api.cli serve`) and the witness processes
  (api/witnesses.py) — and restarts each when it dies (a crash, an OOM kill, `kill -9`) with exponential
  backoff of its own, logging each exit and restart (``api_exited``, ``witness_started`` ...). SIGTERM/SIGINT
  stop them all: each child gets SIGTERM, then SIGKILL after a grace period. Children are started with
  PR_SET_PDEATHSIG, so the kernel sends them SIGTERM if the supervisor itself is SIGKILLed.
- `DevnetWatchdog` covers the devnet, which `Devnet.start()` deliberately detaches (a devnet started by
  `lianzheng devnet start` must outlive that command): a small process in its own session holds the read end
  of a pipe whose write end only `up` holds. When `up` ends in any way, even SIGKILL, the kernel closes the
  write end, the watchdog reads EOF and stops the devnet (SIGTERM: anvil writes its state first).

    >>> sup = Supervisor(command=[sys.executable, "-m", "api.cli", "serve"], env=os.environ.copy(),
    ...                  children=[Child("witness", w.command(), w.env(), {"agency": w.agency})])  # doctest: +SKIP
    >>> sup.run()          # returns after SIGTERM or SIGINT, with every child stopped   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from chain.devnet import Devnet

log = structlog.get_logger("api.supervisor")

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_SIGINT_GRACE = 5.0  # seconds the API gets to finish a Ctrl-C on its own before it is sent SIGTERM


@dataclass(frozen=True)
class Backoff:
    """Restart delays: `first`, doubled after each quick failure up to `longest`; back to `first` once a child
    has stayed up `healthy_after` seconds."""

    first: float = 0.5
    longest: float = 30.0
    healthy_after: float = 30.0

    def next(self, previous: float, ran_for: float) -> float:
        if ran_for >= self.healthy_after or previous <= 0:
            return self.first
        return min(previous * 2, self.longest)


@dataclass
class Child:
    """One supervised process. `name` prefixes its log events (``api_started``, ``witness_exited`` ...);
    `fields` are added to each of them (e.g. the witness's agency)."""

    name: str
    command: Sequence[str]
    env: dict[str, str]
    fields: dict[str, Any] = field(default_factory=dict)
    pass_fds: tuple[int, ...] = ()  # inherited descriptors (the listening socket of `up --workers N`)
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    delay: float = 0.0
    restart_at: float = 0.0


def api_commands(host: str, port: int, processes: int) -> tuple[list[list[str]], socket.socket | None]:
    """The command of each API process: one `serve` binding the port itself, or ``processes`` of `serve --fd`
    accepting on one listening socket bound here (the kernel spreads connections; of several, the one holding
    the database's advisory lock runs the background writers: registry/store/leader.py). The socket is
    inheritable: its descriptor goes to each process (``pass_fds``), and the caller keeps it open as long as
    processes may be started on it (`up` restarts them) or closes its copy once they hold it."""
    command = [sys.executable, "-m", "api.cli", "serve"]
    if processes == 1:
        return [command], None
    listener = socket.create_server((host, port), backlog=2048)
    listener.set_inheritable(True)
    return [[*command, "--fd", str(listener.fileno())] for _ in range(processes)], listener


class Supervisor:
    """Runs `children` (or one ``api`` child from `command` and `env`), restarting each on its own backoff."""

    def __init__(self, *, command: Sequence[str] = (), env: dict[str, str] | None = None,
                 children: Sequence[Child] = (), backoff: Backoff = Backoff(), grace: float = 15.0) -> None:
        self.children = list(children)
        if command:
            self.children.insert(0, Child("api", list(command), dict(os.environ if env is None else env)))
        if not self.children:
            raise ValueError("nothing to supervise")
        self.backoff = backoff
        self.grace = grace
        self._stop = threading.Event()
        self._signal: int | None = None

    def stop(self) -> None:
        self._stop.set()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signal = signum
        self._stop.set()

    def run(self) -> None:
        """Run the children until SIGTERM/SIGINT (or `stop()`), restarting each whenever it exits on its own."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                for c in self.children:
                    if c.proc is None:
                        if now >= c.restart_at:
                            c.proc, c.started = self._spawn(c), now
                            log.info(f"{c.name}_started", pid=c.proc.pid, **c.fields)
                    elif c.proc.poll() is not None:
                        ran_for = now - c.started
                        c.delay = self.backoff.next(c.delay, ran_for)
                        log.error(f"{c.name}_exited", pid=c.proc.pid, returncode=c.proc.returncode,
                                  ran_s=round(ran_for, 1), restart_in_s=c.delay, **c.fields)
                        c.proc, c.restart_at = None, now + c.delay
                self._stop.wait(0.2)
        finally:
            self._terminate()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _spawn(self, child: Child) -> subprocess.Popen[bytes]:
        return subprocess.Popen(child.command, env=child.env, stdin=subprocess.DEVNULL, pass_fds=child.pass_fds,
                                preexec_fn=_die_with_parent(os.getpid()))

    def _terminate(self) -> None:
        running = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        if self._signal == signal.SIGINT:
            # A terminal's Ctrl-C reaches the whole foreground group: the children are already shutting down
            # gracefully, and a second signal would make uvicorn cut that short.
            end = time.monotonic() + _SIGINT_GRACE
            for c in running:
                assert c.proc is not None
                with contextlib.suppress(subprocess.TimeoutExpired):
                    c.proc.wait(max(end - time.monotonic(), 0.01))
        for c in running:
            assert c.proc is not None
            if c.proc.poll() is None:
                c.proc.terminate()
        end = time.monotonic() + self.grace
        for c in running:
            assert c.proc is not None
            try:
                c.proc.wait(max(end - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                log.warning(f"{c.name}_killed", pid=c.proc.pid, after_s=self.grace, **c.fields)
                c.proc.kill()
                c.proc.wait()
            log.info(f"{c.name}_stopped", pid=c.proc.pid, returncode=c.proc.returncode, **c.fields)


def _die_with_parent(parent: int) -> Callable[[], None]:
    """preexec_fn: the kernel sends the child SIGTERM when `parent` dies. Resolved before fork, so the child
    runs only a libc call and a getppid check (closing the race where the parent died before the prctl)."""
    try:
        prctl: Any = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the supervisor's SIGTERM handler is all there is
        return lambda: None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


class DevnetWatchdog:
    """Stops `devnet` when the process that created this watchdog ends, however it ends."""

    def __init__(self, devnet: Devnet) -> None:
        read_end, self._write_end = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "api.supervisor", str(devnet.data_dir), str(devnet.port)],
                stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,  # a terminal's Ctrl-C must not kill it before `up` has cleaned up
            )
        finally:
            os.close(read_end)
        os.set_inheritable(self._write_end, False)  # only this process may hold it (not the API child)

    def close(self) -> None:
        """`up` stopped the devnet itself: release the watchdog (it finds nothing to stop and exits)."""
        with contextlib.suppress(OSError):
            os.close(self._write_end)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(20)


def _watch(data_dir: str, port: str) -> None:
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):  # nothing is ever written: this returns b"" once `up` is gone
        pass
    Devnet(data_dir=Path(data_dir), port=int(port)).stop()


if __name__ == "__main__":  # the watchdog process (DevnetWatchdog)
    _watch(*sys.argv[1:3])
