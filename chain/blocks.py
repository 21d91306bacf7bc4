"""The one block reader: chain head, chain id, block headers, receipts, raw transactions, code and balances,
with batched JSON-RPC where the backend speaks HTTP. Nothing outside chain/ touches web3 or sends JSON-RPC
by hand: the registry asks a `BlockReader` (``node.blocks``).

Reads may be batched (a JSON array of calls in one HTTP POST: about 25,000 headers/s from anvil); only
``eth_sendRawTransaction`` may not, which is why sending lives in chain/sender.py. On eth-tester there is no
HTTP, so the same methods fall back to one call at a time through the backend.

    >>> from chain.backends import EthTesterBackend
    >>> reader = BlockReader(EthTesterBackend())
    >>> reader.head() >= 0 and reader.header(0).number == 0
    True
    >>> reader.receipt("0x" + "00" * 32) is None
    True
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import requests
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3.exceptions import BlockNotFound, MethodUnavailable, TransactionNotFound
from web3.types import RPCEndpoint

from chain.backends import ChainBackend
from chain.errors import ChainUnavailableError

__all__ = ["BlockReader", "Header", "TxOutcome", "TxReceipt"]


@dataclass(frozen=True, slots=True)
class Header:
    """What the audit needs of a block: its number, hash, parent's hash and time (0x-hex, lower case)."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class TxReceipt:
    """A mined transaction: status 1 = success, 0 = reverted."""

    tx_hash: str
    status: int
    block_number: int
    block_hash: str
    gas_used: int
    sender: str


@dataclass(frozen=True, slots=True)
class TxOutcome:
    """A receipt together with its block's hash and time, checked to belong to the same block."""

    tx_hash: str
    status: int
    block_number: int
    block_hash: str
    timestamp: int
    gas_used: int


def _num(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(str(value), 16)


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return str(value).lower()


def _header(block: Mapping[str, Any]) -> Header:
    return Header(_num(block["number"]), _hex(block["hash"]), _hex(block["parentHash"]), _num(block["timestamp"]))


def _receipt(tx_hash: str, r: Mapping[str, Any]) -> TxReceipt:
    return TxReceipt(tx_hash=tx_hash.lower(), status=_num(r["status"]), block_number=_num(r["blockNumber"]),
                     block_hash=_hex(r["blockHash"]), gas_used=_num(r["gasUsed"]),
                     sender=to_checksum_address(str(r["from"])))


class BlockReader:
    """Read-only access to blocks and transactions of one chain backend."""

    def __init__(self, backend: ChainBackend, *, batch_size: int = 500, timeout: float = 60.0) -> None:
        self.backend = backend
        self.batch_size = batch_size
        self.timeout = timeout
        self._local = threading.local()

    # -- single values -------------------------------------------------------------------------------------
    def head(self) -> int:
        """The number of the latest block."""
        return _num(self._call("eth_blockNumber", []))

    def chain_id(self) -> int:
        return _num(self._call("eth_chainId", []))

    def code_at(self, address: str) -> bytes:
        """The deployed bytecode at `address` (empty when nothing is deployed there)."""
        code = self._call("eth_getCode", [to_checksum_address(address), "latest"])
        return bytes(HexBytes(code)) if code else b""

    def balance(self, address: str) -> int:
        return _num(self._call("eth_getBalance", [to_checksum_address(address), "latest"]))

    def header(self, number: int) -> Header | None:
        """The header of block `number`, or None if the chain has no such block."""
        block = self._call("eth_getBlockByNumber", [hex(number), False])
        return _header(block) if block else None

    def receipt(self, tx_hash: str) -> TxReceipt | None:
        """The receipt of a mined transaction, or None if it is unknown or not mined yet."""
        r = self._call("eth_getTransactionReceipt", [tx_hash])
        return _receipt(tx_hash, r) if r else None

    def raw_transaction(self, tx_hash: str) -> bytes | None:
        """The signed bytes of a transaction, or None if the node does not know it."""
        try:
            raw = self.backend.w3.eth.get_raw_transaction(cast(Any, tx_hash))
        except (TransactionNotFound, MethodUnavailable, ValueError):
            # unknown hash, or a node without eth_getRawTransactionByHash (eth-tester)
            return None
        return bytes(raw)

    def logs(self, address: str, *, topics: Sequence[str | None], from_block: int = 0) -> list[dict[str, Any]]:
        """Raw logs of one contract matching `topics` (0x-hex words, None = any), from `from_block` to the
        head: eth_getLogs with a topic filter, so the node does the search (e.g. "is this step on chain?")."""
        params: dict[str, Any] = {"address": to_checksum_address(address), "fromBlock": hex(from_block),
                                  "toBlock": "latest", "topics": list(topics)}
        if self._url() is not None:
            return list(self._call("eth_getLogs", [params]) or [])
        # eth-tester: through web3, whose formatters want integers and bytes
        found = self.backend.w3.eth.get_logs(cast(Any, {
            **params, "fromBlock": from_block, "topics": [None if t is None else HexBytes(t) for t in topics]}))
        return [dict(item) for item in found]

    # -- many values, batched ------------------------------------------------------------------------------
    def headers(self, numbers: Iterable[int]) -> dict[int, Header]:
        """Headers of the given blocks; blocks the chain does not have are absent."""
        wanted = list(numbers)
        out: dict[int, Header] = {}
        for block in self.batch([("eth_getBlockByNumber", [hex(n), False]) for n in wanted]):
            if block:
                h = _header(block)
                out[h.number] = h
        return out

    def header_range(self, start: int, end: int) -> dict[int, Header]:
        """Headers of blocks [start, end]."""
        return self.headers(range(start, end + 1))

    def block_hashes(self, numbers: Sequence[int]) -> dict[int, str | None]:
        """The hash of each block number (None where the chain has no such block)."""
        found = self.headers(numbers)
        return {n: (found[n].hash if n in found else None) for n in numbers}

    def receipts(self, tx_hashes: Sequence[str]) -> dict[str, TxReceipt]:
        """Receipts of the mined transactions among `tx_hashes` (others are absent)."""
        out: dict[str, TxReceipt] = {}
        for h, r in zip(tx_hashes, self.batch([("eth_getTransactionReceipt", [h]) for h in tx_hashes]), strict=True):
            if r:
                out[h] = _receipt(h, r)
        return out

    def outcomes(self, tx_hashes: Sequence[str]) -> dict[str, TxOutcome]:
        """Receipts with their blocks' hashes and times. A receipt whose block hash no longer matches the
        chain's block at that height (reorganised meanwhile) is left out: ask again later."""
        receipts = self.receipts(tx_hashes)
        headers = self.headers(sorted({r.block_number for r in receipts.values()}))
        out: dict[str, TxOutcome] = {}
        for h, r in receipts.items():
            head = headers.get(r.block_number)
            if head is None or head.hash != r.block_hash:
                continue
            out[h] = TxOutcome(h, r.status, r.block_number, r.block_hash, head.timestamp, r.gas_used)
        return out

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """Results of read-only JSON-RPC calls, in order (None for a call that returned an error or nothing).

        Over HTTP the calls go in JSON-RPC batch requests of `batch_size`; on eth-tester one at a time."""
        url = self._url()
        if url is None:
            return [self._call_or_none(m, p) for m, p in calls]
        results: list[Any] = []
        for lo in range(0, len(calls), self.batch_size):
            part = calls[lo:lo + self.batch_size]
            body: list[dict[str, Any]] = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                                          for i, (m, p) in enumerate(part)]
            try:
                answer = self._session().post(url, json=body, timeout=self.timeout).json()
            except (requests.RequestException, ValueError) as exc:
                raise ChainUnavailableError(f"batch request to {url} failed: {type(exc).__name__}") from exc
            by_id = {item.get("id"): item for item in answer} if isinstance(answer, list) else {}
            results.extend(by_id.get(i, {}).get("result") for i in range(len(part)))
        return results

    @property
    def batches(self) -> bool:
        """True when `batch` sends one request for many calls (HTTP), False when it makes them one at a time."""
        return self._url() is not None

    # -- plumbing ------------------------------------------------------------------------------------------
    def _url(self) -> str | None:
        return cast("str | None", getattr(getattr(self.backend, "provider", None), "active_url", None))

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def _call(self, method: str, params: list[Any]) -> Any:
        raw = getattr(self.backend, "raw", None)
        if raw is not None and self._url() is not None:
            return raw(method, params)
        try:  # eth-tester: web3's formatters turn python values into what its provider expects
            return self.backend.w3.manager.request_blocking(RPCEndpoint(method), params)
        except (BlockNotFound, TransactionNotFound):
            return None

    def _call_or_none(self, method: str, params: list[Any]) -> Any:
        try:
            return self._call(method, params)
        except (BlockNotFound, TransactionNotFound, ValueError):
            return None
