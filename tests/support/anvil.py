"""A real anvil for a test: its own free port (never 8545, which `make run`'s devnet uses) and its own data dir,
so tests never collide with a running devnet, with CI or with each other (pytest-xdist).

    with running_anvil(tmp_path) as devnet:
        w3 = Web3(Web3.HTTPProvider(devnet.url))
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chain.devnet import DEFAULT_PORT, Devnet, free_port
from chain.errors import DevnetError

_PORT_ATTEMPTS = 3


def make_devnet(tmp_path: Path, **overrides: Any) -> Devnet:
    """A stopped Devnet on a free port with its data dir under `tmp_path` (start it yourself)."""
    port = overrides.pop("port", None) or free_port()
    if port == DEFAULT_PORT:
        raise ValueError(f"tests must not use port {DEFAULT_PORT}: it belongs to `make run`'s devnet")
    data_dir = overrides.pop("data_dir", None) or tmp_path / f"anvil-{port}"
    return Devnet(data_dir=data_dir, port=port, **overrides)


@contextmanager
def running_anvil(tmp_path: Path, **overrides: Any) -> Iterator[Devnet]:
    """Start a Devnet (see make_devnet), yield it, stop it afterwards -- SIGKILL if a clean stop fails."""
    devnet = _start(tmp_path, overrides)
    try:
        yield devnet
    finally:
        try:
            devnet.stop(timeout=10)
        except BaseException:
            devnet.kill()
            raise


def _start(tmp_path: Path, overrides: dict[str, Any]) -> Devnet:
    # free_port() can race with another process grabbing the same port before anvil binds it: retry on a
    # new port, unless the caller chose the port.
    attempts = 1 if "port" in overrides else _PORT_ATTEMPTS
    for attempt in range(attempts):
        devnet = make_devnet(tmp_path, **dict(overrides))
        try:
            devnet.start()
            return devnet
        except DevnetError as exc:
            devnet.kill()
            if "already in use" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
