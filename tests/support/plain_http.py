"""The tests' HTTP calls to the servers they start, through one client per process.

`httpx.get(...)` makes a client for each call, and making a client loads the system's CA certificates for TLS
(~20 ms of CPU). The tests' polling loops paid that several times a second: 50 s of the suite's CPU in a profile
of a whole run. Every server the tests start listens on plain HTTP on 127.0.0.1, so one client serves them all. It
keeps no connection open between calls, as with `httpx.get`, so a call after a server restarts or dies meets
the server as it is then. The same keyword arguments as httpx's functions (timeout, json, content, headers).

    from tests.support import plain_http
    plain_http.get(url + "/healthz", timeout=2).json()
"""

from __future__ import annotations

import functools
from typing import Any

import httpx


@functools.cache
def client() -> httpx.Client:
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))


def get(url: str, **kwargs: Any) -> httpx.Response:
    return client().get(url, **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    return client().post(url, **kwargs)
