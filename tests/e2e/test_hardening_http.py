"""A hostile client against a real uvicorn process (`lianzheng serve`, its own PID, its log captured in a file):
nested-JSON bombs, huge numbers, bad encodings and oversized chunked bodies get 4xx and the server stays up;
every response carries X-Request-ID; the access log is JSON lines with no secret in it (issue 10)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.stack import LocalStack
from tests.support import plain_http
from tests.support.bodies import pathological_body

pytestmark = pytest.mark.anvil

AGENCY = "11230000MB1A00028M"  # 省市场监管局 in seeds/consortium.yaml


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("hardening"), server_process=True, batch_max_age=0.2) as s:
        yield s


def alive(stack: LocalStack) -> bool:
    """The same server process still runs and answers /healthz."""
    if not stack.server_running:
        return False
    return plain_http.get(stack.url + "/healthz", timeout=10).json()["status"] == "ok"


def log_lines(stack: LocalStack, *, request_ids: tuple[str, ...] = (), timeout: float = 10.0) -> list[dict[str, Any]]:
    """The server's JSON log lines; with `request_ids`, once the access line of each is there (a request's line
    is written after its response is sent, so a client may read the log before it lands)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(line) for line in stack.log_file.read_text(encoding="utf-8").splitlines()
                 if line.startswith("{")]
        logged = {e.get("request_id") for e in lines if e.get("event") == "request"}
        if all(r in logged for r in request_ids) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_the_recursion_limit_is_the_default_after_importing_the_app_and_the_cli() -> None:
    code = "import sys, api.app, api.cli; print(sys.getrecursionlimit())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert out.stdout.strip() == "1000"


@pytest.mark.parametrize("bomb", [
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 100_000 + "1" + "}" * 100_000,
    '{"identifier": ' + "[" * 40 + "]" * 40 + "}",
])
def test_a_nested_json_bomb_gets_400_and_the_server_stays_up(stack: LocalStack, bomb: str) -> None:
    pid = stack.server_pid
    r = plain_http.post(stack.url + "/api/v1/verify", content=bomb, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "json_too_deep"
    assert stack.server_pid == pid and alive(stack)


def test_json_nested_32_deep_is_still_parsed(stack: LocalStack) -> None:
    body = '{"identifier": "x", "pad": ' + "[" * 30 + "]" * 30 + "}"
    r = plain_http.post(stack.url + "/api/v1/verify", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code != 400 or r.json()["error"]["code"] != "json_too_deep", r.text


@pytest.mark.parametrize(("body", "code"), [
    (b'{"identifier": ' + b"9" * 5000 + b"}", "number_too_large"),
    (b'{"identifier": 1e400}', "number_too_large"),
    (b'{"identifier": "\xff\xfe"}', "invalid_encoding"),
    (b'{"identifier": "\xed\xa0\x80"}', "invalid_encoding"),  # a UTF-8-encoded surrogate is not UTF-8
])
def test_huge_numbers_and_invalid_utf8_get_400(stack: LocalStack, body: bytes, code: str) -> None:
    r = plain_http.post(stack.url + "/api/v1/verify", content=body, headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, code)
    assert alive(stack)


def test_a_chunked_body_over_the_limit_gets_413(stack: LocalStack) -> None:
    limit = stack.settings.max_request_bytes
    chunk = b"[" + b"0," * (1024 * 512)

    def chunks() -> Iterator[bytes]:  # a generator: httpx sends it with Transfer-Encoding: chunked
        sent = 0
        while sent <= limit:
            yield chunk
            sent += len(chunk)

    with httpx.Client(timeout=60) as client:
        r = client.post(stack.url + "/api/v1/verify", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"
    assert r.headers["x-request-id"]
    assert alive(stack)


def test_405_names_the_allowed_methods(stack: LocalStack) -> None:
    r = plain_http.get(stack.url + "/api/v1/verify")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_every_response_carries_a_request_id(stack: LocalStack) -> None:
    mine = plain_http.get(stack.url + "/healthz", headers={"X-Request-ID": "trace-42.a_b"})
    assert mine.headers["x-request-id"] == "trace-42.a_b"
    for bad in ("x" * 65, "a b", "<script>", "ключ"):
        r = plain_http.get(stack.url + "/healthz", headers={"X-Request-ID": bad.encode()})
        assert r.headers["x-request-id"] != bad and len(r.headers["x-request-id"]) == 32
    ids = {plain_http.get(stack.url + path).headers["x-request-id"] for path in ("/healthz", "/nope", "/api/v1/members")}
    assert len(ids) == 3
    refused = plain_http.post(stack.url + "/api/v1/verify", content=b"[" * 100, headers={"Content-Type": "application/json"})
    assert refused.headers["x-request-id"]


def test_the_access_log_is_json_lines_without_secrets(stack: LocalStack) -> None:
    token = stack.api_keys[AGENCY]
    secret_query = "Zm9vYmFyLXNlY3JldC1xdWVyeS12YWx1ZQ"
    holder_id = "230102199001011234"
    r = plain_http.post(stack.url + f"/api/v1/certificates/status?wait=1&key={secret_query}",
                        json={"identifiers": [f"1.2.156.3005.2.{AGENCY}001.{AGENCY}.{holder_id}.001.X"]},
                        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "access-log-1",
                                 "X-Document-Key": secret_query})
    assert r.status_code == 200, r.text
    bad = plain_http.get(stack.url + "/api/v1/certificates/x", headers={"Authorization": "Bearer lzk_not-a-real-key"})
    assert bad.status_code == 401

    entries = log_lines(stack, request_ids=("access-log-1", bad.headers["x-request-id"]))
    [line] = [e for e in entries if e.get("request_id") == "access-log-1" and e.get("event") == "request"]
    assert line["method"] == "POST" and line["path"] == "/api/v1/certificates/status"
    assert line["status"] == 200 and line["agency"] == AGENCY
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["query_params"] == ["key", "wait"]
    [refused] = [e for e in entries if e.get("request_id") == bad.headers["x-request-id"]]
    assert refused["status"] == 401 and refused["agency"] is None
    # uvicorn's own records go through the same JSON, redacted logging
    assert any(e.get("logger") == "uvicorn.error" and "startup complete" in e["event"] for e in entries)
    text = stack.log_file.read_text(encoding="utf-8")
    assert all(line.startswith("{") for line in text.splitlines() if line.strip())  # nothing but JSON lines
    for secret in (token, token[4:], secret_query, holder_id, "lzk_not-a-real-key"):
        assert secret not in text


def json_post_endpoints(stack: LocalStack) -> list[tuple[str, dict[str, Any]]]:
    """Every POST operation with a JSON request body, its path parameters filled, and a body with its required
    properties given placeholder values of the right JSON type (from the app's own OpenAPI)."""
    spec = plain_http.get(stack.url + "/openapi.json").json()
    schemas = spec.get("components", {}).get("schemas", {})
    placeholder = {"string": "1.2.156.3005.2.x", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}
    found = []
    for path, ops in sorted(spec["paths"].items()):
        op = ops.get("post")
        content = (op or {}).get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            continue
        schema = content["application/json"].get("schema", {})
        schema = schemas.get(schema.get("$ref", "").rsplit("/", 1)[-1], schema)
        props = schema.get("properties", {})
        base = {name: placeholder.get(props[name].get("type", "string"), "x") for name in schema.get("required", [])}
        concrete = path
        for param in op.get("parameters", []):
            if param["in"] == "path":
                concrete = concrete.replace("{" + param["name"] + "}", "1.2.156.3005.2.x")
        found.append((concrete, base))
    return found


def test_1000_pathological_bodies_get_4xx_and_the_server_stays_up(stack: LocalStack) -> None:
    endpoints = json_post_endpoints(stack)
    assert len(endpoints) >= 20  # certificates, evidence, exchanges, verification
    pid, token = stack.server_pid, stack.api_keys[AGENCY]
    failures: list[str] = []
    statuses: dict[int, int] = {}
    started = time.monotonic()
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        rng = random.Random(10)
        for i in range(1000):
            path, base = endpoints[i % len(endpoints)]
            body = pathological_body(rng, i, base=base)
            headers = {"Authorization": f"Bearer {token}"}
            if body.content_type is not None:
                headers["Content-Type"] = body.content_type
            r = client.post(path, content=body.content, headers=headers)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code >= 500 or (r.status_code >= 400 and not _error_shaped(r)):
                failures.append(f"{body.kind} -> {path}: {r.status_code} {r.text[:200]} (body {body.content[:60]!r})")
            if i % 100 == 99:
                assert alive(stack), f"the server died after body {i} ({body.kind})"
    elapsed = time.monotonic() - started
    print(f"1000 pathological bodies in {elapsed:.1f} s: {dict(sorted(statuses.items()))}")
    assert not failures, "\n".join(failures[:20])
    assert stack.server_pid == pid and alive(stack)
    assert sum(n for s, n in statuses.items() if 400 <= s < 500) >= 900


def _error_shaped(r: httpx.Response) -> bool:
    try:
        error = r.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str)
