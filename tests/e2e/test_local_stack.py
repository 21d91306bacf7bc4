"""A LocalStack (api/stack.py) whose start fails part-way stops the devnet it started: `with` calls __exit__
only for an __enter__ that returned, and a bench ended by SIGTERM during the bootstrap left its anvil running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import api.stack
from api.stack import LocalStack

pytestmark = pytest.mark.anvil


def test_a_start_interrupted_after_the_devnet_stops_the_devnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: Any, **_kwargs: Any) -> Any:
        raise SystemExit(143)  # what the bench's SIGTERM handler raises, here in the middle of the bootstrap

    monkeypatch.setattr(api.stack, "prepare_node", interrupted)
    stack = LocalStack(tmp_path / "stack")
    try:
        with pytest.raises(SystemExit), stack:
            pytest.fail("the stack must not start")
        status = stack.devnet.status()
    finally:
        stack.devnet.kill()  # whatever the outcome, no anvil outlives the test
    assert not status.running and status.pid is None
