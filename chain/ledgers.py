"""Typed clients for the EvidenceLedger and ExchangeLedger contracts (docs/CONTRACTS.md), plus the offline
helpers an evidence package needs: decoding a signed raw transaction and its calldata without a node.

The clients speak 32-byte keys, USCCs and digests; what a key *means* (an evidence identifier, a case
number, an exchange) is the registry's business.

    >>> ledger = node.client(EvidenceLedgerClient)                                      # doctest: +SKIP
    >>> fn = ledger.register_fn(key, case, sha, sm3, size, meta, ZERO32)                 # doctest: +SKIP
    >>> pending = sender.send(fn, gas=ledger.GAS["register"])                            # doctest: +SKIP
    >>> ledger.get_record(key).custodian_uscc                                            # doctest: +SKIP
    '11230000MB1A00044B'
    >>> decode_call("EvidenceLedger", bytes.fromhex("00")) is None
    True
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import rlp
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3

from chain.artifacts import load_artifact
from chain.contracts import ContractClient, b32, unpad
from chain.logs import Event, EventDecoder
from chain.sender import Receipt, TransactionSender

ZERO32 = b"\0" * 32

__all__ = [
    "ZERO32",
    "CaseState",
    "EvidenceLedgerClient",
    "EvidenceRecordState",
    "ExchangeLedgerClient",
    "ExchangeState",
    "ExchangeStep",
    "RawTransaction",
    "decode_call",
    "decode_raw_transaction",
]


class ExchangeStep(IntEnum):
    """ExchangeLedger's step enum (docs/CONTRACTS.md)."""

    NONE = 0
    REQUESTED = 1
    AUTHORISED = 2
    REFUSED = 3
    DELIVERED = 4
    ACKNOWLEDGED = 5
    DISPUTED = 6


@dataclass(frozen=True)
class EvidenceRecordState:
    """`EvidenceLedger.getRecord` for one key (USCCs decoded; `None` where the slot is zero)."""

    key: bytes
    case_id: bytes
    sha256: bytes
    sm3: bytes
    size: int
    meta_digest: bytes
    collector_uscc: str
    custodian_uscc: str
    pending_to: str | None
    supersedes: bytes | None
    superseded_by: bytes | None
    registered_block: int
    timestamp: int


@dataclass(frozen=True)
class CaseState:
    case_id: bytes
    owner_uscc: str | None
    sealed: bool
    sealed_block: int
    records: int


@dataclass(frozen=True)
class ExchangeState:
    key: bytes
    consumer_uscc: str
    provider_uscc: str
    catalogue_item: bytes
    purpose_digest: bytes
    payload_digest: bytes
    size: int
    records: int
    step: ExchangeStep
    updated_block: int


def _opt(value: bytes) -> bytes | None:
    return None if bytes(value) == ZERO32 else bytes(value)


class _KeyedLedger(ContractClient):
    """A ledger whose events carry the record key as their first indexed argument (topic 1)."""

    def events_for(self, key: bytes, *, from_block: int = 0) -> list[Event]:
        """Every event of this contract whose first indexed argument is `key`, in chain order.

        eth_getLogs with a topic-1 filter: the node does the search, so a resend can check "is this step
        already on chain?" without replaying the ledger."""
        decoder = _decoder(self.NAME, self.address)
        params: dict[str, Any] = {"address": self.address, "fromBlock": hex(from_block), "toBlock": "latest",
                                  "topics": [None, "0x" + bytes(key).hex()]}
        raw = getattr(self.backend, "raw", None)
        if raw is not None:
            logs = raw("eth_getLogs", [params]) or []
        else:  # eth-tester: through web3 (slower, fine for unit tests)
            logs = [dict(item) for item in self.backend.w3.eth.get_logs(
                {"address": self.address, "fromBlock": from_block, "toBlock": "latest",
                 "topics": [None, HexBytes(key)]})]
        events = [e for e in (decoder.decode(item) for item in logs) if e is not None]
        return sorted(events, key=lambda e: e.position)


@functools.cache
def _decoder(name: str, address: str) -> EventDecoder:
    return EventDecoder({address: load_artifact(name).abi})


class EvidenceLedgerClient(_KeyedLedger):
    NAME = "EvidenceLedger"
    # Explicit limits for pipelined sends (no estimate round trip); unused gas is not charged. Measured on
    # anvil (`lianzheng bench evidence`): register ~204k; transfer + accept ~161k together.
    GAS: Mapping[str, int] = {"register": 450_000, "transfer": 120_000, "accept": 120_000, "reject": 100_000,
                              "seal": 120_000}

    # -- transaction builders (send them with a TransactionSender) ---------------------------------
    def register_fn(self, key: bytes, case_id: bytes, sha256: bytes, sm3: bytes, size: int, meta_digest: bytes,
                    supersedes: bytes | None) -> Any:
        return self.fn("register", key, case_id, sha256, sm3, size, meta_digest, supersedes or ZERO32)

    def transfer_fn(self, key: bytes, to_uscc: str, purpose_digest: bytes, digest_rechecked: bool) -> Any:
        return self.fn("transfer", key, b32(to_uscc), purpose_digest, digest_rechecked)

    def accept_fn(self, key: bytes, digest_rechecked: bool) -> Any:
        return self.fn("accept", key, digest_rechecked)

    def reject_fn(self, key: bytes) -> Any:
        return self.fn("reject", key)

    def seal_case_fn(self, case_id: bytes) -> Any:
        return self.fn("sealCase", case_id)

    # -- one-shot writes (send and wait) -----------------------------------------------------------
    def register(self, sender: TransactionSender, key: bytes, case_id: bytes, sha256: bytes, sm3: bytes, size: int,
                 meta_digest: bytes, supersedes: bytes | None = None) -> Receipt:
        return sender.transact(self.register_fn(key, case_id, sha256, sm3, size, meta_digest, supersedes))

    def transfer(self, sender: TransactionSender, key: bytes, to_uscc: str, purpose_digest: bytes = ZERO32,
                 digest_rechecked: bool = False) -> Receipt:
        return sender.transact(self.transfer_fn(key, to_uscc, purpose_digest, digest_rechecked))

    def accept(self, sender: TransactionSender, key: bytes, digest_rechecked: bool = False) -> Receipt:
        return sender.transact(self.accept_fn(key, digest_rechecked))

    def reject(self, sender: TransactionSender, key: bytes) -> Receipt:
        return sender.transact(self.reject_fn(key))

    def seal_case(self, sender: TransactionSender, case_id: bytes) -> Receipt:
        return sender.transact(self.seal_case_fn(case_id))

    # -- views -------------------------------------------------------------------------------------
    def get_record(self, key: bytes, *, block: int | str = "latest") -> EvidenceRecordState | None:
        (case_id, sha, sm3, size, meta, collector, custodian, pending, supersedes, superseded_by,
         registered, ts) = self._call("getRecord", key, block=block)
        if registered == 0:
            return None
        return EvidenceRecordState(bytes(key), bytes(case_id), bytes(sha), bytes(sm3), int(size), bytes(meta),
                                   unpad(collector), unpad(custodian), unpad(pending) or None, _opt(supersedes),
                                   _opt(superseded_by), int(registered), int(ts))

    def get_case(self, case_id: bytes, *, block: int | str = "latest") -> CaseState:
        owner, sealed, sealed_block, records = self._call("getCase", case_id, block=block)
        return CaseState(bytes(case_id), unpad(owner) or None, bool(sealed), int(sealed_block), int(records))


class ExchangeLedgerClient(_KeyedLedger):
    NAME = "ExchangeLedger"
    GAS: Mapping[str, int] = {"request": 250_000, "authorise": 100_000, "refuse": 100_000, "deliver": 150_000,
                              "acknowledge": 100_000}

    def request_fn(self, key: bytes, provider_uscc: str, catalogue_item: str, purpose_digest: bytes) -> Any:
        return self.fn("request", key, b32(provider_uscc), b32(catalogue_item), purpose_digest)

    def authorise_fn(self, key: bytes, granted: bool, reason_digest: bytes) -> Any:
        return self.fn("authorise", key, granted, reason_digest)

    def deliver_fn(self, key: bytes, payload_digest: bytes, size: int, records: int) -> Any:
        return self.fn("deliver", key, payload_digest, size, records)

    def acknowledge_fn(self, key: bytes, received_digest: bytes) -> Any:
        return self.fn("acknowledge", key, received_digest)

    def request(self, sender: TransactionSender, key: bytes, provider_uscc: str, catalogue_item: str,
                purpose_digest: bytes) -> Receipt:
        return sender.transact(self.request_fn(key, provider_uscc, catalogue_item, purpose_digest))

    def authorise(self, sender: TransactionSender, key: bytes, granted: bool, reason_digest: bytes = ZERO32) -> Receipt:
        return sender.transact(self.authorise_fn(key, granted, reason_digest))

    def deliver(self, sender: TransactionSender, key: bytes, payload_digest: bytes, size: int, records: int) -> Receipt:
        return sender.transact(self.deliver_fn(key, payload_digest, size, records))

    def acknowledge(self, sender: TransactionSender, key: bytes, received_digest: bytes) -> Receipt:
        return sender.transact(self.acknowledge_fn(key, received_digest))

    def get_exchange(self, key: bytes, *, block: int | str = "latest") -> ExchangeState | None:
        consumer, provider, item, purpose, payload, size, records, step, updated = self._call(
            "getExchange", key, block=block)
        if step == ExchangeStep.NONE:
            return None
        return ExchangeState(bytes(key), unpad(consumer), unpad(provider), bytes(item), bytes(purpose), bytes(payload),
                             int(size), int(records), ExchangeStep(step), int(updated))


# -- offline helpers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawTransaction:
    """What a signed transaction proves on its own: who signed it (recovered from the signature), for which
    chain, to which contract and with which calldata. Its hash is keccak256 of the raw bytes."""

    tx_hash: str
    sender: str
    to: str | None
    data: bytes
    nonce: int
    chain_id: int | None


def decode_raw_transaction(raw: bytes) -> RawTransaction:
    """Decode a signed legacy (EIP-155) or typed (EIP-2718) transaction and recover its signer."""
    raw = bytes(raw)
    sender = Account.recover_transaction(raw)
    if raw and raw[0] >= 0xC0:  # legacy RLP list: [nonce, gasPrice, gas, to, value, data, v, r, s]
        nonce, _gp, _gas, to, _value, data, v, _r, _s = rlp.decode(raw)
        v_int = int.from_bytes(v, "big")
        chain_id = (v_int - 35) // 2 if v_int >= 35 else None
        nonce_int = int.from_bytes(nonce, "big")
    else:  # EIP-2718 typed: type byte || rlp([chainId, nonce, ..., to, value, data, ...])
        fields = rlp.decode(raw[1:])
        chain_id, nonce_int = int.from_bytes(fields[0], "big"), int.from_bytes(fields[1], "big")
        # EIP-2930: [chainId, nonce, gasPrice, gas, to, value, data, ...];
        # EIP-1559 and later: [chainId, nonce, maxPriorityFee, maxFee, gas, to, value, data, ...]
        to, data = (fields[4], fields[6]) if raw[0] == 0x01 else (fields[5], fields[7])
    return RawTransaction(
        tx_hash="0x" + keccak(raw).hex(),
        sender=to_checksum_address(sender),
        to=to_checksum_address(to) if to else None,
        data=bytes(data),
        nonce=nonce_int,
        chain_id=chain_id,
    )


@functools.cache
def _offline_contract(name: str) -> Any:
    return Web3().eth.contract(abi=load_artifact(name).abi)  # no provider: ABI decoding only


def decode_call(contract: str, data: bytes) -> tuple[str, dict[str, Any]] | None:
    """(function name, arguments) of calldata for `contract`'s ABI, or None if it is not one of its calls."""
    try:
        fn, args = _offline_contract(contract).decode_function_input(HexBytes(data))
    except Exception:  # unknown selector or malformed arguments: not a call we recognise
        return None
    return fn.fn_name, dict(args)
