"""`lianzheng up` keeps the API alive and never leaves the devnet behind.

- `Supervisor` runs the API as a child process (`python -m api.cli serve`) and restarts it when it dies
  (a crash, an OOM kill, `kill -9`) with exponential backoff, logging each exit and restart. SIGTERM/SIGINT
  stop it: the child gets SIGTERM, then SIGKILL after a grace period. The child is started with
  PR_SET_PDEATHSIG, so the kernel sends it SIGTERM if the supervisor itself is SIGKILLed.
- `DevnetWatchdog` covers the devnet, which `Devnet.start()` deliberately detaches (a devnet started by
  `lianzheng devnet start` must outlive that command): a small process in its own session holds the read end
  of a pipe whose write end only `up` holds. When `up` ends in any way, even SIGKILL, the kernel closes the
  write end, the watchdog reads EOF and stops the devnet (SIGTERM: anvil writes its state first).

    >>> sup = Supervisor(command=[sys.executable, "-m", "api.cli", "serve"], env=os.environ.copy())  # doctest: +SKIP
    >>> sup.run()          # returns after SIGTERM or SIGINT, with the API stopped   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


class Supervisor:
    def __init__(self, *, command: Sequence[str], env: dict[str, str], backoff: Backoff = Backoff(),
                 grace: float = 15.0) -> None:
        self.command = list(command)
        self.env = env
        self.backoff = backoff
        self.grace = grace
        self._stop = threading.Event()
        self._signal: int | None = None
        self._child: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        self._stop.set()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signal = signum
        self._stop.set()

    def run(self) -> None:
        """Run the child until SIGTERM/SIGINT (or `stop()`), restarting it whenever it exits on its own."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        delay = 0.0
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                child = self._child = self._spawn()
                log.info("api_started", pid=child.pid)
                while child.poll() is None and not self._stop.is_set():
                    self._stop.wait(0.2)
                if self._stop.is_set():
                    break
                ran_for = time.monotonic() - started
                delay = self.backoff.next(delay, ran_for)
                log.error("api_exited", pid=child.pid, returncode=child.returncode, ran_s=round(ran_for, 1),
                          restart_in_s=delay)
                self._stop.wait(delay)
        finally:
            self._terminate()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command, env=self.env, stdin=subprocess.DEVNULL,
                                preexec_fn=_die_with_parent(os.getpid()))

    def _terminate(self) -> None:
        child = self._child
        if child is None or child.poll() is not None:
            return
        if self._signal == signal.SIGINT:
            # A terminal's Ctrl-C reaches the whole foreground group: the API is already shutting down
            # gracefully, and a second signal would make uvicorn cut that short.
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(_SIGINT_GRACE)
            if child.poll() is not None:
                log.info("api_stopped", pid=child.pid, returncode=child.returncode)
                return
        child.terminate()
        try:
            child.wait(self.grace)
        except subprocess.TimeoutExpired:
            log.warning("api_killed", pid=child.pid, after_s=self.grace)
            child.kill()
            child.wait()
        log.info("api_stopped", pid=child.pid, returncode=child.returncode)


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
