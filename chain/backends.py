"""Chain backends behind one protocol: in-process eth-tester, and JSON-RPC endpoints (the managed
anvil devnet, or any external chain such as a Besu QBFT consortium) with failover.

    >>> from chain.backends import EthTesterBackend
    >>> backend = EthTesterBackend()
    >>> backend.w3.eth.chain_id
    131277322940537
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import requests
from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware
from web3.providers.base import JSONBaseProvider
from web3.providers.rpc import HTTPProvider
from web3.types import RPCEndpoint, RPCResponse, Wei

from chain.errors import ChainUnavailableError

_CONNECTION_ERRORS = (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)


@runtime_checkable
class ChainBackend(Protocol):
    """What the rest of the system needs from a chain."""

    name: str
    w3: Web3

    def fund(self, address: str, wei: int) -> None:
        """Give a development account funds (devnets only)."""

    def is_connected(self) -> bool:
        """True when a node answers."""


class FailoverHTTPProvider(JSONBaseProvider):
    """JSON-RPC over HTTP to several endpoints of one chain; a connection failure moves to the next.

    Besu deployments run several RPC nodes; a dead node must not make the service unavailable.
    Requests are not retried on JSON-RPC errors (those are answers), only on transport failures.
    """

    def __init__(self, urls: Sequence[str], *, timeout: float = 10.0) -> None:
        super().__init__()
        if not urls:
            raise ChainUnavailableError("no JSON-RPC URL configured")
        self._providers = [
            HTTPProvider(u, request_kwargs={"timeout": timeout}, exception_retry_configuration=None) for u in urls
        ]
        self._active = 0
        self._lock = threading.Lock()
        self.urls = list(urls)
        # eth_chainId answers by endpoint: web3's validation asks before every call and transaction it sends
        # (557 of the 984 requests of a node's start-up), and a chain's id does not change
        self._chain_ids: dict[int, RPCResponse] = {}

    @property
    def active_url(self) -> str:
        return self.urls[self._active]

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method == "eth_chainId":
            known = self._chain_ids.get(self._active)
            if known is not None:
                return known
        return self._send(method, params)

    def _send(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        last: Exception | None = None
        start = self._active
        for step in range(len(self._providers)):
            i = (start + step) % len(self._providers)
            try:
                response = self._providers[i].make_request(method, params)
            except _CONNECTION_ERRORS as exc:
                last = exc
                continue
            if i != self._active:
                with self._lock:
                    self._active = i
            if method == "eth_chainId" and "result" in response and "error" not in response:
                self._chain_ids[i] = response
            return response
        raise ChainUnavailableError(f"no JSON-RPC endpoint answered ({', '.join(self.urls)}): {last}") from last

    def is_connected(self, show_traceback: bool = False) -> bool:
        try:
            self._send(RPCEndpoint("eth_chainId"), [])  # a round trip: never the remembered answer
        except ChainUnavailableError:
            return False
        return True


class RpcBackend:
    """Any EVM JSON-RPC chain: the anvil devnet, or a Besu/QBFT consortium (`poa=True`)."""

    def __init__(self, urls: Sequence[str] | str, *, poa: bool = False, timeout: float = 10.0) -> None:
        url_list = [urls] if isinstance(urls, str) else list(urls)
        self.provider = FailoverHTTPProvider(url_list, timeout=timeout)
        self.w3 = Web3(self.provider)
        if poa:
            # QBFT/Clique put validator data in extraData (> 32 bytes), which web3 rejects otherwise.
            self.w3.middleware_onion.inject(ExtraDataToPOAMiddleware, name="extradata_to_poa", layer=0)
        self.name = "rpc:" + ",".join(url_list)
        self.urls = url_list

    def fund(self, address: str, wei: int) -> None:
        # anvil and hardhat know this method; a production chain runs with gas price 0 and never needs it.
        self.raw("anvil_setBalance", [Web3.to_checksum_address(address), hex(wei)])

    def raw(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call without web3's result formatters (fast paths: logs, blocks)."""
        response = self.provider.make_request(RPCEndpoint(method), params)
        if "error" in response and response["error"]:
            raise ChainUnavailableError(f"{method} failed: {response['error']}")
        return response.get("result")

    def is_connected(self) -> bool:
        return self.provider.is_connected()


class EthTesterBackend:
    """In-process py-evm chain: fast to start, no persistence; for contract and unit tests."""

    def __init__(self) -> None:
        # Imported here: py-evm is slow to import and its py_ecc raises the recursion limit; only tests and
        # `--backend eth-tester` need it, never the API serving an RPC chain.
        from eth_tester import EthereumTester, PyEVMBackend
        from web3 import EthereumTesterProvider

        self.tester = EthereumTester(PyEVMBackend())
        self.provider = EthereumTesterProvider(self.tester)
        self.w3 = Web3(self.provider)
        self.name = "eth-tester"
        self._faucet = self.w3.eth.accounts[0]

    def fund(self, address: str, wei: int) -> None:
        tx = self.w3.eth.send_transaction(
            {"from": self._faucet, "to": Web3.to_checksum_address(address), "value": Wei(wei)}
        )
        self.w3.eth.wait_for_transaction_receipt(tx)

    def raw(self, method: str, params: list[Any]) -> Any:
        # eth-tester's provider needs web3's request formatters (it takes python values, not hex)
        return self.w3.manager.request_blocking(RPCEndpoint(method), params)

    def is_connected(self) -> bool:
        return True

    def snapshot(self) -> int:
        return int(self.tester.take_snapshot())

    def revert(self, snapshot_id: int) -> None:
        self.tester.revert_to_snapshot(snapshot_id)

    def mine(self, blocks: int = 1) -> None:
        self.tester.mine_blocks(blocks)

    def time_travel(self, timestamp: int) -> None:
        self.tester.time_travel(timestamp)


def connect(urls: Sequence[str] | str, *, poa: bool = False, timeout: float = 10.0) -> RpcBackend:
    """A JSON-RPC backend; raises ChainUnavailableError if no endpoint answers."""
    backend = RpcBackend(urls, poa=poa, timeout=timeout)
    if not backend.is_connected():
        raise ChainUnavailableError(f"no JSON-RPC endpoint answered: {', '.join(backend.urls)}")
    return backend
