"""The managed devnet: one detached anvil process per data directory, with its chain kept on disk.

    >>> from pathlib import Path
    >>> from chain.devnet import Devnet
    >>> devnet = Devnet(data_dir=Path("var"))      # doctest: +SKIP
    >>> devnet.start()                              # False when it was already running   # doctest: +SKIP
    True
    >>> devnet.status().block_number                # doctest: +SKIP
    0
    >>> devnet.stop()                               # SIGTERM: anvil writes its state, then exits   # doctest: +SKIP
    True

Files in ``<data_dir>/devnet/``: ``state.json`` (anvil's dump, rewritten every `state_interval` seconds and on
SIGTERM), ``state.prev.json`` (the complete snapshot this run was loaded from), ``anvil.pid``, ``anvil.log``
and ``devnet.json`` (how the running devnet was started: port, chain id, pid).

What survives (measured on anvil 1.7.1, see hardhat-free-devnet/README.md): after SIGTERM everything mined;
after SIGKILL everything mined up to the last periodic dump (at most `state_interval` seconds old) -- blocks
with their hashes, transactions, receipts, logs, balances, nonces, code and storage. Not kept across any restart:
the mempool, and state *at old blocks* (``eth_call``/``eth_getBalance`` at a past block number).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import platform
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from chain._devnet_io import alive as _alive
from chain._devnet_io import held_signals as _held_signals
from chain._devnet_io import now as _now
from chain._devnet_io import read_json as _read_json
from chain._devnet_io import rpc as _rpc
from chain._devnet_io import state_complete as _state_complete
from chain._devnet_io import tail as _tail
from chain._devnet_io import url as _url
from chain._devnet_io import write_atomic as _write_atomic
from chain.errors import DevnetError

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = PROJECT_ROOT / "hardhat-free-devnet" / "node_modules"

# 1337 is the conventional "local development chain" id (geth --dev, Ganache; wallets treat it as local).
# It differs from anvil's own default 31337 on purpose: a stray `anvil` started by hand on 8545 answers 31337,
# so a deployment.json recorded for this devnet never silently matches it; the production Besu network uses 2300.
DEVNET_CHAIN_ID = 1337
DEFAULT_PORT = 8545
# The standard Hardhat/Foundry test mnemonic: dev account 0 is 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266.
DEV_MNEMONIC = "test test test test test test test test test test test junk"

# Zero gas price, so agency accounts need no funding (verified: a fresh, never-funded account's gasPrice-0
# legacy tx and maxFeePerGas-0 EIP-1559 tx are both mined):
#   --base-fee 0                  without it every block has a 1 gwei base fee and 0-priced txs are refused;
#                                 anvil keeps a zero base fee constant, even after full blocks.
#   --disable-min-priority-fee    makes eth_gasPrice answer 0 (else 1 gwei), so a sender that asks the node
#                                 for its gas price gets 0. eth_maxPriorityFeePerGas still answers 1 gwei,
#                                 so EIP-1559 senders must set maxFeePerGas/maxPriorityFeePerGas to 0 themselves.
# (`--gas-price 0` changes nothing observable on 1.7.1 and is not passed.)
ZERO_FEE_FLAGS = ("--base-fee", "0", "--disable-min-priority-fee")
# No on-disk cache of historical states: by default anvil writes every state older than its in-memory window
# (~500 blocks) to ~/.foundry/anvil/tmp/anvil-state-*, ~115 KB per block, and never deletes it after SIGKILL
# (measured: 172 MB for 1,500 blocks). Old-block state is not needed: audits replay logs.
NO_STATE_CACHE_FLAGS = ("--max-persisted-states", "0")

_STATE_FILE = "state.json"
_PREVIOUS_STATE_FILE = "state.prev.json"
_LOG_ROTATE_BYTES = 20 * 1024 * 1024

_PLATFORM_PACKAGES = {
    ("linux", "x86_64"): "anvil-linux-amd64",
    ("linux", "amd64"): "anvil-linux-amd64",
    ("linux", "aarch64"): "anvil-linux-arm64",
    ("linux", "arm64"): "anvil-linux-arm64",
    ("darwin", "x86_64"): "anvil-darwin-amd64",
    ("darwin", "arm64"): "anvil-darwin-arm64",
}


def anvil_binary(path: Path | None = None) -> Path:
    """The anvil executable: `path` if given, else the npm package for this platform under hardhat-free-devnet/."""
    if path is None:
        key = (platform.system().lower(), platform.machine().lower())
        package = _PLATFORM_PACKAGES.get(key)
        if package is None:
            raise DevnetError(f"no anvil package for platform {key[0]}/{key[1]}; pass the anvil binary explicitly")
        path = NODE_MODULES / "@foundry-rs" / package / "bin" / "anvil"
    if not path.is_file():
        raise DevnetError(f"anvil not found at {path}; run `make install`")
    if not os.access(path, os.X_OK):
        raise DevnetError(f"anvil at {path} is not executable")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it; never 8545 unless the OS does)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class DevnetStatus:
    """A snapshot of the devnet. `running` means the process is alive *and* answers JSON-RPC."""

    running: bool
    pid: int | None
    url: str
    chain_id: int | None
    block_number: int | None
    state_file: Path


class Devnet:
    """One anvil process for one data directory; see the module docstring for files and durability."""

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int = DEFAULT_PORT,
        host: str = "127.0.0.1",
        chain_id: int = DEVNET_CHAIN_ID,
        accounts: int = 20,
        state_interval: int = 1,
        binary: Path | None = None,
    ) -> None:
        if state_interval < 1:
            raise DevnetError(f"state_interval must be at least 1 second, got {state_interval}")
        self.data_dir = Path(data_dir).absolute()  # argv identifies our anvil: same path from any cwd
        self.port = port
        self.host = host
        self.chain_id = chain_id
        self.accounts = accounts
        self.state_interval = state_interval
        self.binary = binary
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_data_dir(cls, data_dir: Path, *, binary: Path | None = None) -> Devnet:
        """The devnet as it was last started in `data_dir` (port, chain id... from devnet.json), else defaults."""
        recorded = _read_json(Path(data_dir) / "devnet" / "devnet.json") or {}
        keys = ("port", "host", "chain_id", "accounts", "state_interval")
        return cls(data_dir=data_dir, binary=binary, **{k: recorded[k] for k in keys if k in recorded})

    # -- paths -------------------------------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self.data_dir / "devnet"

    @property
    def state_file(self) -> Path:
        return self.directory / _STATE_FILE

    @property
    def previous_state_file(self) -> Path:
        return self.directory / _PREVIOUS_STATE_FILE

    @property
    def pid_file(self) -> Path:
        return self.directory / "anvil.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "anvil.log"

    @property
    def config_file(self) -> Path:
        return self.directory / "devnet.json"

    @property
    def url(self) -> str:
        return _url(self.host, self.port)

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def command(self, *, load_from: Path | None = None) -> list[str]:
        """The anvil command line (without the binary)."""
        # `--load-state A --dump-state B` is what `--state FILE` means with A == B; keeping them apart lets
        # start() load from a complete snapshot while anvil rewrites state.json in place (see _prepare_state).
        args = [
            "--host", self.host, "--port", str(self.port), "--chain-id", str(self.chain_id),
            "--accounts", str(self.accounts), "--mnemonic", DEV_MNEMONIC,
            *ZERO_FEE_FLAGS, *NO_STATE_CACHE_FLAGS,
            "--dump-state", str(self.state_file), "--state-interval", str(self.state_interval),
        ]
        if load_from is not None:
            args += ["--load-state", str(load_from)]
        return args

    def start(self, *, timeout: float = 30) -> bool:
        """Start anvil detached from this process and wait until it answers; False if it was already running."""
        self.directory.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        with self._lock():
            pid = self._live_pid()
            if pid is not None:
                running_url = self._recorded_url()
                if running_url != self.url:
                    raise DevnetError(f"the devnet in {self.directory} already runs as pid {pid} at {running_url}, "
                                      f"not at {self.url}; stop it first")
                self._wait_ready(pid, deadline)
                return False
            self.pid_file.unlink(missing_ok=True)  # stale: the process is gone
            self._check_port_free()
            load_from, recovered = self._prepare_state()
            binary = anvil_binary(self.binary)
            argv = [str(binary), *self.command(load_from=load_from)]
            self._rotate_log()
            with open(self.log_file, "ab") as out:
                out.write(f"\n=== {_now()} lianzheng devnet start: {' '.join(argv)}\n".encode())
                out.flush()
                # A new session: no controlling terminal and no signals from the caller's process group,
                # so the devnet outlives the CLI that started it (and its Ctrl-C). A SIGTERM or Ctrl-C of the
                # caller during the spawn is held until the child is known and the cleanup below can stop it.
                with _held_signals(signal.SIGTERM, signal.SIGINT) as held:
                    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            cwd=self.directory, start_new_session=True)
                    self._proc = proc
                    try:
                        _write_atomic(self.pid_file, f"{proc.pid}\n")
                        held.release()
                        self._wait_ready(proc.pid, deadline)
                    except BaseException:
                        self._signal_and_wait(proc.pid, signal.SIGKILL, 5)
                        self.pid_file.unlink(missing_ok=True)
                        raise
            self._write_config(proc.pid, load_from, recovered)
            log.info("devnet started", extra={"pid": proc.pid, "url": self.url, "loaded_from": str(load_from)})
            return True

    def stop(self, *, timeout: float = 15) -> bool:
        """SIGTERM (anvil writes its state, then exits); SIGKILL only after `timeout`. False if not running."""
        with self._lock():
            pid = self._live_pid()
            if pid is None:
                self.pid_file.unlink(missing_ok=True)
                return False
            if not self._signal_and_wait(pid, signal.SIGTERM, timeout):
                log.warning("anvil ignored SIGTERM; killing it", extra={"pid": pid, "timeout": timeout})
                self._signal_and_wait(pid, signal.SIGKILL, 5)
            self.pid_file.unlink(missing_ok=True)
            return True

    def kill(self) -> bool:
        """SIGKILL, no state written (durability tests: what the last periodic dump kept is what survives)."""
        with self._lock():
            pid = self._live_pid()
            if pid is None:
                return False
            self._signal_and_wait(pid, signal.SIGKILL, 5)
            self.pid_file.unlink(missing_ok=True)
            return True

    def reset(self) -> None:
        """Forget the chain: remove state files and devnet.json (refused while running)."""
        if self._live_pid() is not None:
            raise DevnetError(f"the devnet in {self.directory} is running; stop it before resetting")
        for path in (self.state_file, self.previous_state_file, self.config_file, self.pid_file):
            path.unlink(missing_ok=True)

    def is_running(self) -> bool:
        return self.status().running

    def status(self) -> DevnetStatus:
        pid = self._live_pid()
        url = self._recorded_url() if pid is not None else self.url
        chain_id = block_number = None
        if pid is not None:
            with contextlib.suppress(OSError, ValueError):
                chain_id = int(_rpc(url, "eth_chainId"), 16)
                block_number = int(_rpc(url, "eth_blockNumber"), 16)
        return DevnetStatus(running=chain_id is not None, pid=pid, url=url, chain_id=chain_id,
                            block_number=block_number, state_file=self.state_file)

    # -- internals ---------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialises start/stop/kill of one data dir across processes (two CLIs, a CLI and a test)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "devnet.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _live_pid(self) -> int | None:
        """The pid in anvil.pid if that process is alive and is this devnet's anvil (not a recycled pid)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not self._alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return pid  # no /proc (macOS): trust the pid file
        return pid if os.fsencode(self.state_file) in cmdline else None

    def _recorded_url(self) -> str:
        recorded = _read_json(self.config_file) or {}
        return _url(str(recorded.get("host", self.host)), int(recorded.get("port", self.port)))

    def _check_port_free(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # anvil (tokio) sets SO_REUSEADDR too: a port left in TIME_WAIT by a previous anvil is free to use.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.port))
                return
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise DevnetError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        try:
            what = f"it answers JSON-RPC as chain id {int(_rpc(self.url, 'eth_chainId', timeout=0.5), 16)}"
        except (OSError, ValueError):
            what = "it is not a JSON-RPC node"
        raise DevnetError(f"port {self.port} on {self.host} is already in use by another process ({what}); "
                          f"stop it or choose another port")

    def _prepare_state(self) -> tuple[Path | None, str | None]:
        """Pick the snapshot to load; returns (file to load or None for a fresh chain, recovery note).

        anvil rewrites its dump in place (open with O_TRUNC, 8 KiB writes, no rename, no fsync), so a SIGKILL
        during a dump leaves a truncated state.json and anvil then refuses to start ("EOF while parsing").
        Hence: a complete state.json is renamed to state.prev.json and loaded from there, and anvil dumps to
        a new state.json; if that one is ever found truncated, the previous complete snapshot is used.
        """
        current, previous = self.state_file, self.previous_state_file
        if current.exists():
            if _state_complete(current):
                os.replace(current, previous)
                return previous, None
            if not (previous.exists() and _state_complete(previous)):
                raise DevnetError(f"{current} is truncated (anvil was killed while writing it) and there is no "
                                  f"earlier complete snapshot; move it away to start a fresh chain")
            corrupt = current.with_name(f"state.truncated-{datetime.now(UTC):%Y%m%dT%H%M%S}.json")
            os.replace(current, corrupt)
            note = (f"{current.name} was truncated (kept as {corrupt.name}); "
                    f"loaded the previous snapshot {previous.name}: blocks mined since it was taken are lost")
            log.warning("devnet state recovered from previous snapshot", extra={"note": note})
            return previous, note
        if previous.exists():
            # Killed before its first dump after a restart: the snapshot it was loaded from is the latest.
            if not _state_complete(previous):
                raise DevnetError(f"{previous} is not a complete anvil state dump; move it away to start fresh")
            return previous, None
        return None, None

    def _wait_ready(self, pid: int, deadline: float) -> None:
        while True:
            if not self._alive(pid):
                code = self._proc.returncode if self._proc is not None and self._proc.pid == pid else None
                raise DevnetError(f"anvil exited during start (exit code {code}); last lines of {self.log_file}:\n"
                                  + _tail(self.log_file))
            try:
                chain_id = int(_rpc(self.url, "eth_chainId", timeout=1), 16)
            except (OSError, ValueError):
                chain_id = None
            if chain_id is not None:
                if chain_id != self.chain_id:
                    raise DevnetError(f"the node at {self.url} answers chain id {chain_id}, expected {self.chain_id}")
                return
            if time.monotonic() > deadline:
                raise DevnetError(f"anvil (pid {pid}) did not answer at {self.url} in time; last lines of "
                                  f"{self.log_file}:\n" + _tail(self.log_file))
            time.sleep(0.05)

    def _signal_and_wait(self, pid: int, sig: signal.Signals, timeout: float) -> bool:
        """Send `sig` and wait until the process is gone; True if it exited within `timeout`."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while self._alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None  # our child: Popen reaps it and keeps the exit code
        return _alive(pid)

    def _rotate_log(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.log_file.stat().st_size > _LOG_ROTATE_BYTES:
                os.replace(self.log_file, self.log_file.with_suffix(".log.1"))

    def _write_config(self, pid: int, loaded_from: Path | None, recovered: str | None) -> None:
        config = {
            "url": self.url, "host": self.host, "port": self.port, "chain_id": self.chain_id,
            "accounts": self.accounts, "mnemonic": DEV_MNEMONIC, "state_interval": self.state_interval,
            "pid": pid, "started_at": _now(), "loaded_from": str(loaded_from) if loaded_from else None,
            "recovered": recovered,
        }
        _write_atomic(self.config_file, json.dumps(config, indent=2) + "\n")
