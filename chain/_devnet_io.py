"""Process, JSON-RPC and file helpers of the managed devnet (chain/devnet.py): probing a pid, one stdlib
JSON-RPC call (the devnet is checked before any web3 backend exists), atomic writes, anvil state dumps.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# anvil's SerializableState is written in field order and `historical_states` comes last (null unless
# --preserve-historical-states, which this module does not use), so a complete dump ends with this.
_COMPLETE_STATE_TAIL = b'"historical_states":null}'


class HeldSignals:
    """The Python handlers of some signals, held back while a child is spawned (`held_signals`)."""

    def __init__(self, signums: Sequence[signal.Signals]) -> None:
        self._previous: dict[int, Callable[[int, Any], Any]] = {}
        self._caught: list[int] = []
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread runs Python handlers and may replace them
        for signum in signums:
            handler = signal.getsignal(signum)
            if callable(handler):
                self._previous[signum] = handler
                signal.signal(signum, self._hold)

    def _hold(self, signum: int, _frame: Any) -> None:
        self._caught.append(signum)

    def release(self) -> None:
        """Put the handlers back, then run each for the signals that came while held (this may raise, as
        the handler would have: a SystemExit, a KeyboardInterrupt)."""
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        caught, self._caught = self._caught, []
        for signum in dict.fromkeys(caught):
            previous[signum](signum, None)


@contextlib.contextmanager
def held_signals(*signums: signal.Signals) -> Iterator[HeldSignals]:
    """Hold back the Python handlers of `signums` (SIGTERM, SIGINT) until `release()` or the block's end.

    A handler that raises (a CLI's SIGTERM handler raising SystemExit, Python's KeyboardInterrupt) would
    otherwise raise out of `subprocess.Popen` after the child exists but before its pid is known, and nothing
    could stop the child. Outside the main thread, and for signals without a Python handler, nothing is held."""
    held = HeldSignals(signums)
    try:
        yield held
    finally:
        held.release()


def rpc(url: str, method: str, params: Sequence[Any] = (), *, timeout: float = 2.0) -> Any:
    """One JSON-RPC call; OSError when nothing answers, ValueError when the answer is not a result."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        reply = json.loads(response.read())
    if not isinstance(reply, dict) or "result" not in reply:
        raise ValueError(f"{method} at {url}: no result in {reply!r}")
    return reply["result"]


def url(host: str, port: int) -> str:
    connect = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{connect}]:{port}" if ":" in connect else f"http://{connect}:{port}"


def alive(pid: int) -> bool:
    """Is `pid` a live process? Reaps it first when it is our own exited child (else it lingers as a zombie)."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    try:  # a zombie whose parent has not reaped it yet is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def state_complete(path: Path) -> bool:
    """Is `path` a complete anvil state dump? Reads the tail; parses the whole file only when the tail is odd."""
    try:
        size = path.stat().st_size
        if size == 0:
            return False
        with open(path, "rb") as handle:
            handle.seek(max(0, size - 256))
            if handle.read().rstrip().endswith(_COMPLETE_STATE_TAIL):
                return True
            handle.seek(0)
            json.load(handle)
            return True
    except (OSError, ValueError):
        return False


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_bytes()[-16384:].decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
