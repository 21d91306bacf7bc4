"""`lianzheng up` supervises the API: a `kill -9` of the API process is followed by a restart (logged, with
backoff), and the devnet `up` started never outlives it, whether `up` is stopped (SIGTERM) or SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from chain.devnet import Devnet, free_port
from tests.support import plain_http

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


class Up:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir, self.api_port, self.devnet_port = data_dir, free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.log = data_dir.parent / "up.log"
        env = {**os.environ, "LIANZHENG_PORT": str(self.api_port), "LIANZHENG_DEVNET_PORT": str(self.devnet_port),
               "LIANZHENG_ENV": "dev", "LIANZHENG_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "api.cli", "up"], env=env, cwd=ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def events(self, name: str) -> list[dict[str, Any]]:
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return [e for e in (_json(line) for line in lines) if e.get("event") == name]

    def devnet(self) -> Devnet:
        return Devnet(data_dir=self.data_dir, port=self.devnet_port)

    def devnet_pid(self) -> int:
        return int((self.data_dir / "devnet" / "anvil.pid").read_text())


def _json(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def healthy(up: Up) -> bool:
    assert up.proc.poll() is None, up.log.read_text(errors="replace")[-3000:]
    try:
        return plain_http.get(up.url + "/healthz", timeout=2).json().get("status") == "ok"
    except (httpx.HTTPError, ValueError):
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_api_is_restarted_and_sigterm_stops_api_and_devnet(tmp_path: Path) -> None:
    up = Up(tmp_path / "var")
    try:
        wait_until(lambda: healthy(up), "the API to answer")
        [first] = up.events("api_started")
        anvil = up.devnet_pid()

        os.kill(first["pid"], signal.SIGKILL)
        exited = wait_until(lambda: up.events("api_exited"), "the supervisor to see the API die")
        assert exited[0]["pid"] == first["pid"] and exited[0]["returncode"] == -signal.SIGKILL
        assert exited[0]["restart_in_s"] > 0
        wait_until(lambda: len(up.events("api_started")) == 2 and healthy(up), "the restarted API to answer")
        second = up.events("api_started")[1]
        assert second["pid"] != first["pid"] and alive(second["pid"]) and not alive(first["pid"])
        assert up.devnet_pid() == anvil  # the devnet was left alone

        up.proc.send_signal(signal.SIGTERM)
        assert up.proc.wait(60) == 0
    finally:
        if up.proc.poll() is None:
            up.proc.kill()
    assert not alive(second["pid"]) and not alive(anvil)
    assert not up.devnet().is_running()
    assert "devnet stopped" in up.log.read_text(errors="replace")


def test_a_sigkilled_up_leaves_neither_api_nor_devnet(tmp_path: Path) -> None:
    up = Up(tmp_path / "var")
    try:
        wait_until(lambda: healthy(up), "the API to answer")
        [api] = up.events("api_started")
        anvil = up.devnet_pid()
    finally:
        up.proc.kill()  # SIGKILL: no handler runs in `up`
    up.proc.wait(10)
    wait_until(lambda: not alive(api["pid"]), "the API to die with its supervisor", timeout=30)
    wait_until(lambda: not alive(anvil), "the devnet to be stopped by the watchdog", timeout=30)
    assert not up.devnet().is_running()
