"""The HTTP client process of `lianzheng bench verify` (api/cli/bench_verify.py): the standard library only, so
that a spawned client starts in a fraction of a second even when 32 start at once on a loaded machine.

    >>> http_client(8000, "/api/v1/verify", [{"identifier": "1.2.156..."}], 100, 0, barrier)  # doctest: +SKIP
    (start, end, [latency, ...], failures)
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

_VALID = b'{"verdict":"valid",'  # the verify answer's first key (tests/integration/test_verify_encoding.py)


def http_client(port: int, path: str, bodies: list[Any] | None, count: int, offset: int,
                barrier: Any) -> tuple[float, float, list[float], int]:
    """One client process: ``count`` requests over one keep-alive connection (the standard library's
    http.client, far cheaper per request than httpx: the clients share the machine's cores with the server, and
    should measure the server), started with the other clients (a barrier). A POST body is encoded once; the
    answer must be 200 and, for /verify, valid. Returns (start, end, per-request latencies, failures)."""
    encoded = [json.dumps(b).encode() for b in bodies] if bodies else [b""]
    headers = {"Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def one(i: int) -> bool:
        if bodies:
            conn.request("POST", path, body=encoded[(offset + i) % len(encoded)], headers=headers)
        else:
            conn.request("GET", path)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            return False
        return not bodies or data.startswith(_VALID) or json.loads(data).get("verdict") == "valid"

    one(0)  # open the connection before timing
    barrier.wait()  # every client starts together
    latencies, failures = [], 0
    start = time.monotonic()
    for i in range(count):
        t0 = time.perf_counter()
        failures += not one(i)
        latencies.append(time.perf_counter() - t0)
    end = time.monotonic()
    conn.close()
    return start, end, latencies, failures
