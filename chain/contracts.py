"""Typed clients for the deployed contracts. They speak hashes, roles and accounts; the registry gives
those meaning. Writes go through a TransactionSender (one per acting account); reads are eth_calls.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any, cast

from eth_abi.abi import encode as abi_encode
from eth_typing import HexStr
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types, get_abi_output_types
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import BlockIdentifier

from chain.artifacts import ErrorDecoder, load_artifact
from chain.backends import ChainBackend
from chain.blocks import BlockReader
from chain.sender import Receipt, TransactionSender, _revert_from


class Role(IntFlag):
    ADMIN = 1 << 0
    ISSUER = 1 << 1
    REVOKER = 1 << 2
    EVIDENCE = 1 << 3
    EXCHANGE = 1 << 4
    AUDITOR = 1 << 5
    GATEWAY = 1 << 6

    @classmethod
    def from_names(cls, names: Sequence[str]) -> Role:
        value = cls(0)
        for n in names:
            value |= cls[n.upper()]
        return value

    def names(self) -> list[str]:
        return list(_role_names(self.value))


@functools.lru_cache(maxsize=256)  # a member's roles, on every verification that names its issuer
def _role_names(value: int) -> tuple[str, ...]:
    roles = Role(value)
    return tuple(r.name.lower() for r in Role if r in roles and r.name)


class MemberStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2
    REMOVED = 3


class Action(IntEnum):
    NONE = 0
    ADMIT = 1
    SET_ROLES = 2
    SUSPEND = 3
    REINSTATE = 4
    REMOVE = 5
    ROTATE_KEY = 6
    ADD_ACCOUNT = 7
    SET_THRESHOLD = 8
    ROTATE_SM2_KEY = 9


class DocStatus(IntEnum):
    ISSUED = 0
    SUSPENDED = 1
    REVOKED = 2
    SUPERSEDED = 3


def b32(value: bytes | str) -> bytes:
    """32-byte value from raw bytes, 0x-hex, or a short ASCII key (right-padded with zeros)."""
    if isinstance(value, str):
        if value.startswith("0x") and len(value) == 66:
            return bytes.fromhex(value[2:])
        raw = value.encode()
        if len(raw) > 32:
            raise ValueError(f"{value!r} does not fit 32 bytes")
        return raw.ljust(32, b"\0")
    if len(value) != 32:
        raise ValueError(f"expected 32 bytes, got {len(value)}")
    return bytes(value)


def unpad(value: bytes) -> str:
    return bytes(value).rstrip(b"\0").decode()


@functools.lru_cache(maxsize=256)
def _function_abi(artifact: str, name: str) -> tuple[bytes, tuple[str, ...], tuple[str, ...]]:
    """The selector, input types and output types of a contract's function (web3's own encoder looks the
    function up in the whole ABI and hashes every signature again on each call)."""
    [abi] = [e for e in load_artifact(artifact).abi if e.get("type") == "function" and e.get("name") == name]
    return (function_abi_to_4byte_selector(abi), tuple(get_abi_input_types(abi)),  # type: ignore[arg-type]
            tuple(get_abi_output_types(abi)))  # type: ignore[arg-type]


def _normalized(abi_type: str, value: Any) -> Any:
    """A decoded value as web3's call answers it: addresses checksummed."""
    if abi_type == "address":
        return to_checksum_address(value)
    if abi_type == "address[]":
        return [to_checksum_address(a) for a in value]
    return value


class ContractClient:
    NAME = ""

    def __init__(self, backend: ChainBackend, address: str, *, blocks: BlockReader | None = None) -> None:
        self.backend = backend
        self.address = to_checksum_address(address)
        self.contract: Contract = backend.w3.eth.contract(address=self.address, abi=load_artifact(self.NAME).abi)
        # `_calls`' batches go through `blocks` (a node passes its own: one HTTP session per thread for all its
        # reads, instead of one more per client left open until collected)
        self._blocks = blocks if blocks is not None else BlockReader(backend)

    def _call(self, fn_name: str, *args: Any, block: int | str = "latest") -> Any:
        fn = self.contract.functions[fn_name](*args)
        try:
            return fn.call(block_identifier=cast(BlockIdentifier, block))
        except Exception as exc:
            revert = _revert_from(exc, ErrorDecoder.for_all_contracts_cached())
            if revert is None:
                raise
            raise revert from exc

    def _calls(self, calls: Sequence[tuple[str, tuple[Any, ...]]], *, block: int) -> list[Any]:
        """`_call` of each (function, arguments) at one block, answered as `_call` answers, in one JSON-RPC batch
        (chain/blocks.py) where the backend speaks HTTP. A call the batch answers with an error is made again on
        its own, so that its revert or failure is raised as `_call` raises it."""
        reader = self._blocks
        if not reader.batches:  # eth-tester, in process: nothing to save
            return [self._call(name, *args, block=block) for name, args in calls]
        tag = hex(block)
        abis = [_function_abi(self.NAME, name) for name, _ in calls]
        answers = reader.batch([
            ("eth_call", [{"to": self.address, "data": "0x" + (selector + abi_encode(inputs, args)).hex()}, tag])
            for (selector, inputs, _), (_, args) in zip(abis, calls, strict=True)])
        results = []
        for (_, _, outputs), (name, args), answer in zip(abis, calls, answers, strict=True):
            if answer is None:
                results.append(self._call(name, *args, block=block))
                continue
            values = [_normalized(t, v) for t, v in zip(outputs, self.backend.w3.codec.decode(outputs, bytes.fromhex(
                str(answer).removeprefix("0x"))), strict=True)]
            results.append(values[0] if len(values) == 1 else tuple(values))
        return results

    def _tx(self, sender: TransactionSender, fn_name: str, *args: Any, gas: int | None = None) -> Receipt:
        return sender.transact(self.contract.functions[fn_name](*args), gas=gas)

    def fn(self, fn_name: str, *args: Any) -> Any:
        return self.contract.functions[fn_name](*args)


@dataclass(frozen=True)
class MemberInfo:
    uscc: str
    name: str
    bid: str
    roles: Role
    status: MemberStatus
    admitted_block: int
    updated_block: int
    accounts: tuple[str, ...]
    sm2_key: bytes = b""  # the current SM2 signing key, 64 bytes x || y; empty for a member without one

    @classmethod
    def read(cls, uscc: str, member: Sequence[Any], accounts: Sequence[str], sm2_key: bytes) -> MemberInfo:
        """From the answers of getMember, memberAccounts and memberSm2Key for ``uscc``."""
        name, bid, roles, status, admitted, updated = member
        return cls(uscc, name, bid, Role(roles), MemberStatus(status), admitted, updated, tuple(accounts),
                   bytes(sm2_key))


@dataclass(frozen=True)
class Sm2KeyRecord:
    """A member's SM2 key and when it was valid (block timestamps; ``until`` 0 while it is current)."""

    uscc: str
    key: bytes  # 64 bytes x || y
    since: int
    until: int

    def valid_at(self, timestamp: int) -> bool:
        """True when a signature made at ``timestamp`` (seconds) falls in the key's validity. The rotation's
        own second counts for the old key: block timestamps have a resolution of one second."""
        return self.since <= timestamp and (self.until == 0 or timestamp <= self.until)


@dataclass(frozen=True)
class ProposalInfo:
    id: int
    action: Action
    uscc: str
    data: bytes
    proposer: str
    expires_at: int
    approvals: int
    executed: bool


class ConsortiumClient(ContractClient):
    NAME = "ConsortiumRegistry"

    @staticmethod
    def admit_data(name: str, bid: str, accounts: Sequence[str], roles: int, sm2_key: bytes = b"") -> bytes:
        """The ADMIT payload; ``sm2_key`` is the member's SM2 public key (64 bytes x || y) or empty."""
        return abi_encode(["string", "string", "address[]", "uint64", "bytes"],
                          [name, bid, [to_checksum_address(a) for a in accounts], int(roles), bytes(sm2_key)])

    @staticmethod
    def rotate_sm2_key_data(new_key: bytes, new_bid: str = "") -> bytes:
        """The ROTATE_SM2_KEY payload: the new 64-byte key and the member's new BID ("" keeps it)."""
        return abi_encode(["bytes", "string"], [bytes(new_key), new_bid])

    def propose(self, sender: TransactionSender, action: Action, uscc: str, data: bytes = b"") -> int:
        receipt = self._tx(sender, "propose", int(action), b32(uscc) if uscc else b"\0" * 32, data)
        events = self.contract.events.ProposalCreated().process_receipt(_receipt_for(self.backend, receipt), errors=DISCARD)
        return int(events[0]["args"]["id"])

    def approve(self, sender: TransactionSender, proposal_id: int) -> Receipt:
        return self._tx(sender, "approve", proposal_id)

    def execute(self, sender: TransactionSender, proposal_id: int) -> Receipt:
        return self._tx(sender, "execute", proposal_id)

    def set_revoker_delegate(self, sender: TransactionSender, delegate_uscc: str, allowed: bool) -> Receipt:
        return self._tx(sender, "setRevokerDelegate", b32(delegate_uscc), allowed)

    def set_endpoint(self, sender: TransactionSender, url: str) -> Receipt:
        """Publish where the sender's member serves its public API."""
        return self._tx(sender, "setEndpoint", url)

    def endpoint_of(self, uscc: str, *, block: int | str = "latest") -> str:
        return str(self._call("endpointOf", b32(uscc), block=block))

    def member_of(self, account: str, *, block: int | str = "latest") -> str | None:
        raw = self._call("memberOf", to_checksum_address(account), block=block)
        return unpad(raw) or None

    def member_status(self, uscc: str, *, block: int | str = "latest") -> MemberStatus:
        """A member's status alone (one call; `get_member` makes three): NONE when never admitted."""
        return MemberStatus(self._call("getMember", b32(uscc), block=block)[3])

    def get_member(self, uscc: str, *, block: int | str = "latest") -> MemberInfo | None:
        member = self._call("getMember", b32(uscc), block=block)
        if member[3] == MemberStatus.NONE:
            return None
        return MemberInfo.read(uscc, member, self._call("memberAccounts", b32(uscc), block=block),
                               self._call("memberSm2Key", b32(uscc), block=block))

    def sm2_key_record(self, key: bytes, *, block: int | str = "latest") -> Sm2KeyRecord | None:
        """Whose SM2 key ``key`` (64 bytes) is and when it was valid; None if it was never registered."""
        uscc, since, until = self._call("sm2KeyRecord", keccak(bytes(key)), block=block)
        owner = unpad(uscc)
        return Sm2KeyRecord(owner, bytes(key), int(since), int(until)) if owner else None

    def sm2_keys(self, *, from_block: int = 0, to_block: int | str = "latest") -> list[Sm2KeyRecord]:
        """Every SM2 key ever registered (MemberSm2KeySet events), oldest first, with its validity."""
        logs = self.contract.events.MemberSm2KeySet().get_logs(from_block=from_block, to_block=to_block)
        records = []
        for log in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])):
            record = self.sm2_key_record(bytes(log["args"]["key"]), block=to_block)
            if record is not None:
                records.append(record)
        return records

    def members(self) -> list[MemberInfo]:
        """Every member ever admitted and not NONE, as `get_member` reads each, all at one block: three JSON-RPC
        batches where it made four calls a member (a node's inbox reads them when it starts, and after every
        membership event)."""
        block = self._blocks.head()
        count = int(self._call("memberCount", block=block))
        usccs = [unpad(k) for k in self._calls([("memberAt", (i,)) for i in range(count)], block=block)]
        answers = self._calls([(name, (b32(uscc),)) for uscc in usccs
                               for name in ("getMember", "memberAccounts", "memberSm2Key")], block=block)
        return [MemberInfo.read(uscc, *answers[3 * k:3 * k + 3]) for k, uscc in enumerate(usccs)
                if answers[3 * k][3] != MemberStatus.NONE]

    def has_role(self, account: str, role: Role, *, block: int | str = "latest") -> bool:
        return bool(self._call("hasRole", to_checksum_address(account), int(role), block=block))

    def can_revoke_for(self, account: str, issuer_uscc: str) -> bool:
        return bool(self._call("canRevokeFor", to_checksum_address(account), b32(issuer_uscc)))

    def required_approvals(self) -> int:
        return int(self._call("requiredApprovals"))

    def proposal_count(self) -> int:
        return int(self._call("proposalCount"))

    def has_approved(self, proposal_id: int, uscc: str) -> bool:
        return bool(self._call("hasApproved", proposal_id, b32(uscc)))

    def get_proposal(self, proposal_id: int) -> ProposalInfo:
        action, uscc, data, proposer, expires, approvals, executed = self._call("getProposal", proposal_id)
        return ProposalInfo(proposal_id, Action(action), unpad(uscc), bytes(data), unpad(proposer), expires, approvals, executed)


@dataclass(frozen=True)
class BatchInfo:
    root: bytes
    issuer: str
    issuer_uscc: str
    count: int
    block_number: int
    timestamp: int
    sm3_root: bytes  # the RFC 6962 root of the same batch over SM3


@dataclass(frozen=True)
class DocumentState:
    status: DocStatus
    reason: int
    since_block: int
    root: bytes
    superseded_by: bytes


class CertificateLedgerClient(ContractClient):
    NAME = "CertificateLedger"
    ANCHOR_GAS = 200_000  # used ~75k; a generous explicit limit costs nothing (unused gas is not charged)

    def anchor_batch_fn(self, root: bytes, sm3_root: bytes, count: int) -> Any:
        """anchorBatch(root, sm3Root, count): the SHA-256 and SM3 RFC 6962 roots of one batch."""
        return self.fn("anchorBatch", root, sm3_root, count)

    def anchor_batch(self, sender: TransactionSender, root: bytes, sm3_root: bytes, count: int) -> Receipt:
        return self._tx(sender, "anchorBatch", root, sm3_root, count, gas=self.ANCHOR_GAS)

    def get_batch(self, root: bytes, *, block: int | str = "latest") -> BatchInfo | None:
        issuer, uscc, count, number, ts, sm3_root = self._call("getBatch", root, block=block)
        if count == 0:
            return None
        return BatchInfo(root, issuer, unpad(uscc), count, number, ts, bytes(sm3_root))

    def document_state(self, doc: bytes, *, block: int | str = "latest") -> DocumentState:
        status, reason, since, root, by = self._call("documentState", doc, block=block)
        return DocumentState(DocStatus(status), reason, since, bytes(root), bytes(by))

    def suspend(self, sender: TransactionSender, doc: bytes, root: bytes, index: int, proof: Sequence[bytes]) -> Receipt:
        return self._tx(sender, "suspend", doc, root, index, list(proof))

    def reinstate(self, sender: TransactionSender, doc: bytes) -> Receipt:
        return self._tx(sender, "reinstate", doc)

    def revoke(self, sender: TransactionSender, doc: bytes, root: bytes, index: int, proof: Sequence[bytes],
               reason: int) -> Receipt:
        return self._tx(sender, "revoke", doc, root, index, list(proof), reason)

    def supersede(self, sender: TransactionSender, old: bytes, root: bytes, index: int, proof: Sequence[bytes],
                  new: bytes, new_root: bytes, new_index: int, new_proof: Sequence[bytes]) -> Receipt:
        return self._tx(sender, "supersede", old, root, index, list(proof), new, new_root, new_index, list(new_proof))


def _receipt_for(backend: ChainBackend, receipt: Receipt) -> Any:
    return backend.w3.eth.get_transaction_receipt(HexStr(receipt.tx_hash))
