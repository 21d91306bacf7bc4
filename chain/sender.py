"""Signs transactions locally and sends them: own nonce counter, explicit gas, receipts with a timeout,
safe retries, and contract custom errors decoded into ContractRevertError on every backend.

    >>> sender = TransactionSender(backend, account, decoder=ErrorDecoder.for_all_contracts())  # doctest: +SKIP
    >>> receipt = sender.transact(ledger.functions.anchorBatch(root, 1000), gas=80_000)       # doctest: +SKIP
"""

from __future__ import annotations

import ast
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol, cast

import structlog
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound, Web3RPCError
from web3.types import BlockIdentifier, TxParams

from chain.artifacts import ErrorDecoder
from chain.backends import ChainBackend
from chain.errors import ChainUnavailableError, ContractRevertError, TransactionError, TransactionTimeoutError

log = structlog.get_logger(__name__)

GAS_MARGIN = 1.25  # estimates are exact for the simulated state; state can move before inclusion


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    block_number: int
    block_hash: str
    gas_used: int
    status: int
    logs: tuple[Any, ...]


@dataclass(frozen=True)
class PendingTx:
    tx_hash: str
    nonce: int
    raw: bytes
    params: dict[str, Any]


class SignedTransaction(Protocol):
    @property
    def raw_transaction(self) -> bytes: ...

    @property
    def hash(self) -> bytes: ...


class TransactionSigner(Protocol):
    """Whatever signs this account's transactions: eth-account's LocalAccount (the key in hand, the fast
    path) or an account whose key stays in an HSM (registry/consortium/key_backends)."""

    @property
    def address(self) -> str: ...

    def sign_transaction(self, transaction_dict: dict[str, Any]) -> SignedTransaction: ...


def _revert_from(exc: BaseException, decoder: ErrorDecoder) -> ContractRevertError | None:
    if isinstance(exc, ContractLogicError):
        return decoder.decode(exc.data if isinstance(exc.data, (str, bytes)) else None)
    try:  # eth-tester raises its own TransactionFailed carrying the revert data (lazy: see EthTesterBackend)
        from eth_tester.exceptions import TransactionFailed
    except ImportError:  # pragma: no cover - eth-tester is a dependency
        return None
    if isinstance(exc, TransactionFailed):
        payload = exc.args[0] if exc.args else b""
        if isinstance(payload, str):
            # eth-tester renders the revert data into its message: "execution reverted: b'\\xef...'"
            _, _, literal = payload.partition("execution reverted: ")
            try:
                payload = ast.literal_eval(literal) if literal.startswith(("b'", 'b"')) else literal
            except (ValueError, SyntaxError):
                payload = b""
        return decoder.decode(payload if isinstance(payload, (bytes, str)) else b"")
    return None


class TransactionSender:
    """One account's transactions. Thread-safe: the nonce counter is guarded by a lock."""

    def __init__(
        self,
        backend: ChainBackend,
        account: TransactionSigner,
        *,
        decoder: ErrorDecoder,
        gas_price: int | None = None,
        receipt_timeout: float = 60.0,
    ) -> None:
        self.backend = backend
        self.w3 = backend.w3
        self.account = account
        self.address = cast(ChecksumAddress, account.address)
        self.decoder = decoder
        self.receipt_timeout = receipt_timeout
        self._lock = threading.Lock()
        self._nonce: int | None = None
        self._gas_price = gas_price
        self._chain_id: int | None = None

    # -- reads -------------------------------------------------------------------------------------
    def call(self, fn: ContractFunction, *, block: int | str = "latest") -> Any:
        """eth_call a view or simulate a write; reverts become ContractRevertError."""
        try:
            return fn.call({"from": self.address}, block_identifier=cast(BlockIdentifier, block))
        except ChainUnavailableError:
            raise
        except Exception as exc:
            revert = _revert_from(exc, self.decoder)
            if revert is None:
                raise
            raise revert from exc

    # -- writes ------------------------------------------------------------------------------------
    def transact(self, fn: ContractFunction, *, gas: int | None = None, timeout: float | None = None) -> Receipt:
        """Send and wait for the receipt; raises ContractRevertError if the contract refuses."""
        return self.wait(self.send(fn, gas=gas), timeout=timeout)

    def send(self, fn: ContractFunction, *, gas: int | None = None, value: int = 0) -> PendingTx:
        """Sign and send without waiting. Without `gas`, the call is simulated first (estimate), so a
        refusal surfaces as a decoded ContractRevertError before anything is broadcast."""
        data = fn._encode_transaction_data()
        to = fn.address
        if gas is None:
            gas = self._estimate({"from": self.address, "to": to, "data": data, "value": value})
        return self.send_raw_params({"to": to, "data": data, "value": value, "gas": gas})

    def send_raw_params(self, params: dict[str, Any]) -> PendingTx:
        with self._lock:
            if self._chain_id is None:
                self._chain_id = int(self.w3.eth.chain_id)
            if self._gas_price is None:
                self._gas_price = int(self.w3.eth.gas_price)
            if self._nonce is None:
                self._nonce = int(self.w3.eth.get_transaction_count(self.address, "pending"))
            for attempt in range(3):
                tx = {
                    "to": params["to"],
                    "data": params.get("data", b""),
                    "value": params.get("value", 0),
                    "gas": int(params["gas"]),
                    "gasPrice": self._gas_price,
                    "nonce": self._nonce,
                    "chainId": self._chain_id,
                }
                if tx["to"] is None:  # contract creation
                    del tx["to"]
                signed = self.account.sign_transaction(tx)
                try:
                    tx_hash = self._broadcast(bytes(signed.raw_transaction), HexBytes(signed.hash))
                except _NonceTooLow:
                    # someone else (another process with this key, or a replay after restart) used the nonce
                    self._nonce = int(self.w3.eth.get_transaction_count(self.address, "pending"))
                    log.info("nonce resynchronised", account=self.address, nonce=self._nonce, attempt=attempt)
                    continue
                except _Underpriced:
                    self._gas_price = int(self.w3.eth.gas_price)
                    continue
                self._nonce += 1
                return PendingTx(tx_hash, int(tx["nonce"]), bytes(signed.raw_transaction), tx)
        raise TransactionError(f"could not send a transaction from {self.address} after 3 attempts")

    def _broadcast(self, raw: bytes, tx_hash: HexBytes) -> str:
        for attempt in range(3):
            try:
                return HexBytes(self.w3.eth.send_raw_transaction(raw)).to_0x_hex()
            except ChainUnavailableError:
                if attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))
            except (Web3RPCError, ValueError) as exc:  # a JSON-RPC error answer
                message = str(exc).lower()
                if "already known" in message or "already imported" in message:
                    return tx_hash.to_0x_hex()  # our retry after a lost answer: the same signed tx
                if "nonce too low" in message or "nonce is too low" in message:
                    if self._is_known(tx_hash):
                        return tx_hash.to_0x_hex()
                    raise _NonceTooLow(str(exc)) from exc
                if "underpriced" in message or "fee cap" in message:
                    raise _Underpriced(str(exc)) from exc
                raise TransactionError(f"node refused the transaction: {exc}") from exc
            except Exception as exc:
                revert = _revert_from(exc, self.decoder)
                if revert is not None:
                    raise revert from exc
                raise
        raise TransactionError("unreachable")  # pragma: no cover

    def _is_known(self, tx_hash: HexBytes) -> bool:
        try:
            self.w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return False
        return True

    def _estimate(self, params: dict[str, Any]) -> int:
        try:
            return int(int(self.w3.eth.estimate_gas(cast(TxParams, params))) * GAS_MARGIN) + 10_000
        except ChainUnavailableError:
            raise
        except Exception as exc:
            revert = _revert_from(exc, self.decoder)
            if revert is None:
                raise
            raise revert from exc

    def wait(self, pending: PendingTx, *, timeout: float | None = None) -> Receipt:
        """Wait for the receipt; a reverted transaction is replayed with eth_call to name the error."""
        try:
            r = self.w3.eth.wait_for_transaction_receipt(
                HexBytes(pending.tx_hash), timeout=timeout or self.receipt_timeout, poll_latency=0.01
            )
        except TimeExhausted as exc:
            raise TransactionTimeoutError(
                f"no receipt for {pending.tx_hash} within {timeout or self.receipt_timeout:.0f} s"
            ) from exc
        receipt = Receipt(
            tx_hash=HexBytes(r["transactionHash"]).to_0x_hex(),
            block_number=int(r["blockNumber"]),
            block_hash=HexBytes(r["blockHash"]).to_0x_hex(),
            gas_used=int(r["gasUsed"]),
            status=int(r["status"]),
            logs=tuple(r["logs"]),
        )
        if receipt.status != 1:
            raise self._explain_failure(pending, receipt)
        return receipt

    def _explain_failure(self, pending: PendingTx, receipt: Receipt) -> ChainError_:
        params = {"from": self.address, "data": pending.params["data"],
                  "value": pending.params.get("value", 0), "gas": pending.params["gas"]}
        if pending.params.get("to"):
            params["to"] = pending.params["to"]
        try:
            self.w3.eth.call(cast(TxParams, params), receipt.block_number - 1)
        except Exception as exc:
            revert = _revert_from(exc, self.decoder)
            if revert is not None:
                return revert
        if receipt.gas_used >= int(pending.params["gas"]):
            return TransactionError(f"transaction {receipt.tx_hash} ran out of gas ({receipt.gas_used})")
        return TransactionError(f"transaction {receipt.tx_hash} reverted in block {receipt.block_number}")

    def reset_nonce(self) -> None:
        """Forget the nonce counter (after a chain reset)."""
        with self._lock:
            self._nonce = None


ChainError_ = TransactionError | ContractRevertError


class _NonceTooLow(Exception):
    pass


class _Underpriced(Exception):
    pass
