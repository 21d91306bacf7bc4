"""A bug's 500, forced through dependency overrides in a real uvicorn process: the client gets the error shape
with a request id, the log gets a plain redacted traceback (no token, key or holder value), and rendering it
does not stall the server (issue 10: one 500 held /healthz for 6 s)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.stack import LocalStack
from chain.devnet import free_port

pytestmark = pytest.mark.anvil

AGENCY = "11230000MB1A00028M"  # 省市场监管局 in seeds/consortium.yaml
HOLDER_ID = "230102199001011234"  # a 居民身份证号码-shaped holder value
HOLDER_NAME = "张三丰测试"
DOCUMENT_KEY = "q5ZkW3mYhVb8sT0uQ1x2AwR7pLcN9eJd"


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, str, Path]]:
    """A bootstrapped data dir (LocalStack) and, on it, the failing API as its own process; its log file."""
    with LocalStack(tmp_path_factory.mktemp("failing"), server_process=True) as stack:
        port, log_file = free_port(), stack.data_dir / "failing.log"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        with open(log_file, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "tests.support.failing_api", str(stack.data_dir), str(port),
                                     str(stack.devnet_port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_listening(port, proc)
            yield stack, f"http://127.0.0.1:{port}", log_file
        finally:
            proc.terminate()
            proc.wait(15)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the failing API exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the failing API did not listen in time")


def _wait_for_lines(log_file: Path, matches: Any, *, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        text = log_file.read_text(encoding="utf-8")
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        if sum(1 for e in lines if matches(e)) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def _requests(stack: LocalStack) -> list[dict[str, Any]]:
    token = stack.api_keys[AGENCY]
    secret_headers = {"Authorization": f"Bearer {token}", "X-Document-Key": DOCUMENT_KEY}
    identifier = f"1.2.156.3005.2.{HOLDER_ID}#{DOCUMENT_KEY}"
    return [
        {"method": "POST", "url": "/api/v1/verify", "json": {"identifier": f"{identifier} {HOLDER_NAME}"},
         "headers": secret_headers},
        # well-formed identifiers (the schema refuses others with 422) whose serial is the holder's ID number
        {"method": "POST", "url": f"/api/v1/certificates/status?key={DOCUMENT_KEY}",
         "json": {"identifiers": [f"1.2.156.3005.2.{AGENCY}001.{AGENCY}.{HOLDER_ID}.001.X"]},
         "headers": secret_headers},
    ]


def test_a_500_has_the_error_shape_and_leaves_no_secret_in_the_log(failing: tuple[LocalStack, str, Path]) -> None:
    stack, url, log_file = failing
    for request in _requests(stack):
        r = httpx.request(request["method"], url + request["url"], json=request["json"], headers=request["headers"])
        assert r.status_code == 500, r.text
        error = r.json()["error"]
        assert error["code"] == "internal_error" and error["request_id"] == r.headers["x-request-id"]
        assert set(error) >= {"code", "message", "request_id"}
        assert "RuntimeError" not in r.text and HOLDER_ID not in r.text

    # the access-log line is written once the response is sent: wait for it
    lines = _wait_for_lines(log_file, lambda e: e.get("event") == "request" and e.get("status") == 500, count=2)
    errors = [e for e in lines if e.get("event") == "unhandled_error"]
    assert len(errors) == 2
    for entry in errors:  # the traceback is there, as plain text with frames, and it names the request
        assert "builtins.RuntimeError: (message withheld" in entry["exception"]
        assert "in _fail" in entry["exception"] and "tests/support/failing_api.py" in entry["exception"]
        assert entry["request_id"] and entry["error_type"] == "RuntimeError"
    assert {e["path"] for e in errors} == {"/api/v1/verify", "/api/v1/certificates/status"}
    assert any(e.get("event") == "request" and e.get("status") == 500 and e.get("agency") == AGENCY for e in lines)
    text = log_file.read_text(encoding="utf-8")
    token = stack.api_keys[AGENCY]
    for secret in (token, token[4:], DOCUMENT_KEY, HOLDER_ID, HOLDER_NAME):
        assert secret not in text, f"{secret!r} reached the log"
    assert "ballast" not in text  # no locals


def test_healthz_answers_within_100_ms_while_500s_are_produced(failing: tuple[LocalStack, str, Path]) -> None:
    stack, url, _ = failing
    requests = _requests(stack)
    produced: list[int] = []
    stop = threading.Event()

    def produce_500s() -> None:  # back to back, so one is always being produced while /healthz is probed
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                for r in requests:
                    produced.append(client.request(r["method"], r["url"], json=r["json"], headers=r["headers"]).status_code)

    with httpx.Client(base_url=url, timeout=5) as probe:
        assert probe.get("/healthz").json()["status"] == "ok"  # connection and chain client warm
        producers = [threading.Thread(target=produce_500s)]
        for t in producers:
            t.start()
        try:
            while len(produced) < 4:  # the producer is in full swing
                time.sleep(0.01)
            latencies = []
            for _ in range(40):
                started = time.perf_counter()
                assert probe.get("/healthz").json()["status"] == "ok"
                latencies.append((time.perf_counter() - started) * 1000)
        finally:
            stop.set()
            for t in producers:
                t.join(30)
    assert set(produced) == {500} and len(produced) >= 10
    latencies.sort()
    p90 = latencies[int(len(latencies) * 0.9)]
    print(f"/healthz while {len(produced)} 500s were produced: median {latencies[len(latencies) // 2]:.1f} ms, "
          f"p90 {p90:.1f} ms, max {latencies[-1]:.1f} ms")
    # p90, not max: on a shared 2-core machine a single sample can wait on the OS scheduler; a 500 that blocked
    # the event loop (issue 10: 6 s each) would delay most samples, since a 500 is always in flight here.
    assert p90 < 100, latencies
