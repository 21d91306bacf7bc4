"""FailoverHTTPProvider (chain/backends.py) over real HTTP: a chain's id is asked once per endpoint (web3's
validation asks before every call it sends), a connectivity probe always makes a round trip, a dead endpoint
hands over to the next, and an error answer is never remembered."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from web3.types import RPCEndpoint

from chain.backends import FailoverHTTPProvider


class _Endpoint(ThreadingHTTPServer):
    """A JSON-RPC endpoint that answers eth_chainId with ``chain_id`` (or an error) and counts what it is asked."""

    def __init__(self, chain_id: int | None) -> None:
        self.chain_id = chain_id
        self.asked: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Endpoint

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.asked.append(request["method"])
        answer: dict[str, Any] = {"jsonrpc": "2.0", "id": request["id"]}
        if self.server.chain_id is None:
            answer["error"] = {"code": -32603, "message": "not ready"}
        else:
            answer["result"] = hex(self.server.chain_id)
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoints() -> Iterator[list[_Endpoint]]:
    started = [_Endpoint(1337), _Endpoint(None)]
    threads = [threading.Thread(target=e.serve_forever, daemon=True) for e in started]
    for t in threads:
        t.start()
    yield started
    for e in started:
        e.shutdown()
        e.server_close()


def _url(endpoint: _Endpoint) -> str:
    return f"http://127.0.0.1:{endpoint.server_address[1]}"


def _closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_the_chain_id_is_asked_once_and_a_probe_always_asks(endpoints: list[_Endpoint]) -> None:
    good = endpoints[0]
    provider = FailoverHTTPProvider([_url(good)])
    answers = [provider.make_request(RPCEndpoint("eth_chainId"), []) for _ in range(5)]
    assert [a["result"] for a in answers] == ["0x539"] * 5
    assert good.asked == ["eth_chainId"]
    assert provider.is_connected() and provider.is_connected()
    assert good.asked == ["eth_chainId"] * 3  # a probe is a round trip, not the remembered answer


def test_a_dead_endpoint_hands_over_and_the_next_one_answers_for_itself(endpoints: list[_Endpoint]) -> None:
    good = endpoints[0]
    provider = FailoverHTTPProvider([_closed_url(), _url(good)])
    assert provider.make_request(RPCEndpoint("eth_chainId"), [])["result"] == "0x539"
    assert provider.active_url == _url(good)
    assert provider.make_request(RPCEndpoint("eth_chainId"), [])["result"] == "0x539"
    assert good.asked == ["eth_chainId"]


def test_an_error_answer_is_not_remembered(endpoints: list[_Endpoint]) -> None:
    failing = endpoints[1]
    provider = FailoverHTTPProvider([_url(failing)])
    assert "error" in provider.make_request(RPCEndpoint("eth_chainId"), [])
    failing.chain_id = 1337  # the node became ready
    assert provider.make_request(RPCEndpoint("eth_chainId"), [])["result"] == "0x539"
    assert failing.asked == ["eth_chainId", "eth_chainId"]
