"""`make run` is `lianzheng up`: devnet, deploy once, seeds, API — and Ctrl-C stops API and devnet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from chain.devnet import Devnet, free_port
from tests.support import plain_http

LZ = str(Path(sys.executable).parent / "lianzheng")


ROOT = Path(__file__).resolve().parents[2]


def _up(data_dir: Path, api_port: int, devnet_port: int, *, via_make: bool = False) -> subprocess.Popen[str]:
    env = {**os.environ, "LIANZHENG_PORT": str(api_port), "LIANZHENG_DEVNET_PORT": str(devnet_port),
           "LIANZHENG_ENV": "dev"}
    if via_make:  # exactly what the README says, in its own process group like a terminal's foreground job
        cmd = ["make", "-s", "--no-print-directory", "run", f"DATA_DIR={data_dir}"]
    else:
        cmd, env["LIANZHENG_DATA_DIR"] = [LZ, "up"], str(data_dir)
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float = 90) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"lianzheng up exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        try:
            body = plain_http.get(url + "/healthz", timeout=2).json()
            if body.get("status") == "ok":
                return body  # type: ignore[no-any-return]
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise AssertionError("the API never became healthy")


def _stop(proc: subprocess.Popen[str]) -> str:
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: SIGINT to the whole foreground process group
    out, _ = proc.communicate(timeout=30)
    return out


def test_up_serves_the_api_and_ctrl_c_stops_api_and_devnet(tmp_path: Path) -> None:
    data_dir, api_port, devnet_port = tmp_path / "var", free_port(), free_port()
    url = f"http://127.0.0.1:{api_port}"
    proc = _up(data_dir, api_port, devnet_port, via_make=True)
    try:
        health = _wait_healthy(url, proc)
        members = plain_http.get(url + "/api/v1/members").json()
        assert members["count"] >= 8
        assert (data_dir / "deployment.json").exists() and (data_dir / "api-keys.json").exists()
        first = json.loads((data_dir / "deployment.json").read_text())
        assert health["deployment"]["contracts"]["ConsortiumRegistry"]["address"] == \
            first["contracts"]["ConsortiumRegistry"]["address"]
    finally:
        out = _stop(proc)
    assert proc.returncode in (0, 2, 130, -signal.SIGINT), out  # make itself dies of the SIGINT (-2)
    assert "devnet stopped" in out
    assert not Devnet(data_dir=data_dir, port=devnet_port).is_running()
    with __import__("pytest").raises(httpx.HTTPError):
        plain_http.get(url + "/healthz", timeout=1)

    # a second `make run` reuses the persisted chain: same contracts, members not admitted again
    proc = _up(data_dir, api_port, devnet_port)
    try:
        health = _wait_healthy(url, proc)
        assert health["deployment"]["contracts"] == first["contracts"]
        assert plain_http.get(url + "/api/v1/members").json()["count"] == members["count"]
    finally:
        _stop(proc)
