"""Ledger logs: each ledger (certificates, evidence, exchanges, consortium, usage) is the append-only sequence of
its contract's events in chain order (block number, then log index); each event is one entry of an
RFC 6962 Merkle tree (registry/crypto/merkle.py), so a checkpoint (size, root) commits to the whole history up to
a block, inclusion proofs show one event is in it, and consistency proofs show a later checkpoint only
appended to an earlier one (RFC 6962 §2.1.2; RFC 9162 §2.1.4).

An entry is the RFC 8785 canonical JSON of
``{"args", "block", "chainId", "contract", "event", "ledger", "logIndex", "tx"}`` where 32-byte and other
``bytes`` values are 0x-hex, addresses lower-case 0x-hex and integers beyond ±(2^53 - 1) decimal strings
(RFC 8785 §3.2.2.3 only renders I-JSON integers exactly). The leaf hash is SHA-256(0x00 || entry).

`fast_reader` reads events with chain.logs.WordDecoder, which reads static ABI words directly (the audit's read path).

    >>> from chain.logs import Event
    >>> e = Event("BatchAnchored", "0x" + "11" * 20, 7, "0x" + "22" * 32, "0x" + "33" * 32, 0,
    ...           {"root": b"\\x01" * 32, "count": 3})
    >>> canonical_entry("certificates", 1337, e)[:40]
    b'{"args":{"count":3,"root":"0x01010101010'
    >>> log = LedgerLog("certificates")
    >>> log.append(canonical_entry("certificates", 1337, e), e.block_number, key="0x" + "01" * 32)
    0
    >>> log.size_at_block(6), log.size_at_block(7)
    (0, 1)
"""

from __future__ import annotations

import base64
import bisect
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785
import structlog

from chain.artifacts import load_artifact
from chain.backends import ChainBackend
from chain.blocks import BlockReader
from chain.deploy import Deployment
from chain.logs import DEFAULT_CHUNK, Event, LogReader, WordDecoder
from registry.crypto.merkle import MerkleTree, empty_root, leaf_hash, root_from_leaf_hashes
from registry.errors import NotFoundError, ValidationError

log = structlog.get_logger(__name__)

# ledger name -> the contract whose events form it
LEDGER_CONTRACTS: dict[str, str] = {
    "certificates": "CertificateLedger",
    "evidence": "EvidenceLedger",
    "exchanges": "ExchangeLedger",
    "consortium": "ConsortiumRegistry",
    "usage": "UsageLedger",
}
LEDGERS = tuple(LEDGER_CONTRACTS)
# the log of signed audit reports (registry/audit/replay.py): checkpointed on the Backbone like the others, but its
# entries are report digests kept in the database, not contract events
AUDIT_LEDGER = "audit-reports"

# the event argument that names the record an event is about (for ?key= lookups of inclusion proofs)
PRIMARY_KEY: dict[str, str] = {
    "BatchAnchored": "root",
    "DocumentSuspended": "doc", "DocumentReinstated": "doc", "DocumentRevoked": "doc", "DocumentSuperseded": "oldDoc",
    "EvidenceRegistered": "id", "CustodyTransferRequested": "id", "CustodyTransferAccepted": "id",
    "CustodyTransferRejected": "id", "CaseSealed": "caseId",
    "ExchangeRequested": "id", "ExchangeAuthorised": "id", "ExchangeDelivered": "id", "ExchangeAcknowledged": "id",
    "MemberAdmitted": "uscc", "MemberRolesChanged": "uscc", "MemberStatusChanged": "uscc",
    "MemberAccountAdded": "uscc", "MemberKeyRotated": "uscc",
    "UsageRecorded": "id",
}

_MAX_SAFE = 2**53 - 1
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False).encode


def ledger_id(ledger: str) -> bytes:
    """The bytes32 ledger id used on the Backbone: the name, right-padded with zeros."""
    raw = ledger.encode()
    if not raw or len(raw) > 32:
        raise ValidationError(f"ledger name must be 1..32 bytes, got {ledger!r}", code="unknown_ledger")
    return raw.ljust(32, b"\0")


def check_ledger(ledger: str, *, allowed: Iterable[str] = LEDGERS) -> str:
    names = tuple(allowed)
    if ledger not in names:
        raise ValidationError(f"unknown ledger {ledger!r}; expected one of {', '.join(names)}", code="unknown_ledger",
                              details={"ledgers": list(names)})
    return ledger


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -_MAX_SAFE <= value <= _MAX_SAFE else str(value)
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") and len(value) == 42 else value  # addresses
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    raise ValidationError(f"cannot encode event argument of type {type(value).__name__}", code="invalid_event")


def entry_object(ledger: str, chain_id: int, event: Event) -> dict[str, Any]:
    return {
        "ledger": ledger, "chainId": chain_id, "contract": event.address.lower(), "event": event.name,
        "block": event.block_number, "tx": event.tx_hash.lower(), "logIndex": event.log_index,
        "args": {k: _jsonable(v) for k, v in event.args.items()},
    }


def canonical_entry(ledger: str, chain_id: int, event: Event) -> bytes:
    """The log entry of one event: RFC 8785 canonical JSON (see the module docstring).

    With ASCII keys, strings, booleans and I-JSON integers only (which `entry_object` guarantees), Python's
    sorted compact JSON with ensure_ascii=False is byte-for-byte RFC 8785 (same key order, escapes and
    integer rendering) at a fraction of the cost; tests/integration/test_checkpoints.py checks the two agree.
    """
    obj = entry_object(ledger, chain_id, event)
    try:
        return _dumps(obj).encode()
    except UnicodeEncodeError:  # a lone surrogate: let rfc8785 refuse it with its own error
        return rfc8785.dumps(obj)


class LedgerLog:
    """One ledger's entries with their blocks; RFC 6962 roots and proofs at any size (thread-safe reads)."""

    def __init__(self, ledger: str, *, keep_entries: bool = True) -> None:
        self.ledger = ledger
        self.keep_entries = keep_entries  # the auditor needs leaf hashes only; the proof API serves entries too
        self._entries: list[bytes] = []
        self._leaves: list[bytes] = []
        self._blocks: list[int] = []
        self._keys: dict[str, int] = {}
        self._trees: OrderedDict[int, MerkleTree] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self._leaves)

    @property
    def leaf_hashes(self) -> list[bytes]:
        return self._leaves

    @property
    def blocks(self) -> list[int]:
        return self._blocks

    def append(self, entry: bytes, block: int, *, key: str | None = None) -> int:
        """Add an entry (blocks never decrease); returns its index."""
        if self._blocks and block < self._blocks[-1]:
            raise ValidationError(f"{self.ledger} log is in chain order: block {block} after {self._blocks[-1]}",
                                  code="invalid_event_order")
        index = len(self._leaves)
        if self.keep_entries:
            self._entries.append(entry)
        self._leaves.append(leaf_hash(entry))
        self._blocks.append(block)
        if key is not None:
            self._keys.setdefault(key, index)
        return index

    def entry(self, index: int) -> bytes:
        self._check_size(index + 1, what="leaf index", code="invalid_leaf_index")
        if not self.keep_entries:
            raise NotFoundError(f"this {self.ledger} log keeps leaf hashes only", code="entries_not_kept")
        return self._entries[index]

    def state(self) -> dict[str, Any]:
        """Leaf hashes, blocks and keys (for the auditor's resumable snapshot)."""
        return {"leaves": base64.b64encode(b"".join(self._leaves)).decode(), "blocks": self._blocks, "keys": self._keys}

    @classmethod
    def from_state(cls, ledger: str, state: Mapping[str, Any]) -> LedgerLog:
        out = cls(ledger, keep_entries=False)
        raw = base64.b64decode(state["leaves"])
        out._leaves = [raw[i:i + 32] for i in range(0, len(raw), 32)]
        out._blocks = [int(b) for b in state["blocks"]]
        out._keys = {str(k): int(v) for k, v in state["keys"].items()}
        if len(out._leaves) != len(out._blocks):
            raise ValidationError(f"{ledger} log snapshot is inconsistent", code="invalid_snapshot")
        return out

    def block_of(self, index: int) -> int:
        return self._blocks[index]

    def index_of(self, key: str) -> int:
        """The first entry about `key` (a batch root, an evidence or exchange id, a member USCC as 0x-hex)."""
        index = self._keys.get(key.lower())
        if index is None:
            raise NotFoundError(f"no {self.ledger} log entry is about {key}", code="unknown_log_key")
        return index

    def size_at_block(self, block: int) -> int:
        """How many entries are in blocks <= `block`."""
        return bisect.bisect_right(self._blocks, block)

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        self._check_size(size)
        if size == 0:
            return empty_root()
        if size == self.size or size not in self._trees:
            return root_from_leaf_hashes(self._leaves[:size])
        return self._trees[size].root

    def _tree(self, size: int) -> MerkleTree:
        with self._lock:
            tree = self._trees.get(size)
            if tree is not None:
                self._trees.move_to_end(size)
                return tree
        tree = MerkleTree(self._leaves[:size])
        with self._lock:
            self._trees[size] = tree
            while len(self._trees) > 4:  # the sizes of the latest checkpoints are asked for again and again
                self._trees.popitem(last=False)
        return tree

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 §2.1.1 PATH(index, D[size])."""
        self._check_size(size)
        if not isinstance(index, int) or not 0 <= index < size:
            raise ValidationError(f"leaf index out of range: expected 0 <= index < {size}, got {index}",
                                  code="invalid_leaf_index", details={"index": index, "size": size})
        return self._tree(size).inclusion_proof(index)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """RFC 6962 §2.1.2 PROOF(first, D[second])."""
        self._check_size(second)
        if not isinstance(first, int) or not 0 <= first <= second:
            raise ValidationError(f"first tree size must be between 0 and {second}, got {first}",
                                  code="invalid_tree_size", details={"first": first, "second": second})
        return self._tree(second).consistency_proof(first)

    def _check_size(self, size: int, *, what: str = "tree size", code: str = "invalid_tree_size") -> None:
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= self.size:
            raise ValidationError(f"{self.ledger} log has {self.size} entries; {what} {size!r} is out of range",
                                  code=code, details={"log_size": self.size})


@dataclass(frozen=True)
class SyncResult:
    new_entries: int
    head: int
    reset: bool


def fast_reader(backend: ChainBackend, abis: Mapping[str, list[dict[str, Any]]], *, chunk: int = DEFAULT_CHUNK) -> LogReader:
    """A LogReader decoding with chain.logs.WordDecoder (the audit's read path)."""
    return LogReader(backend, abis, chunk=chunk, decoder=WordDecoder(abis))


class LedgerLogs:
    """The ledger logs of one deployment, kept in step with the sub-chain by incremental eth_getLogs.

    If the block the logs were synced to has disappeared or changed hash (a reset or re-organised chain),
    the logs are rebuilt from the deployment block.
    """

    def __init__(self, backend: ChainBackend, deployment: Deployment, *, chunk: int = DEFAULT_CHUNK,
                 keep_entries: bool = True) -> None:
        self.backend = backend
        self.blocks = BlockReader(backend)
        self.keep_entries = keep_entries
        self.deployment = deployment
        self.chain_id = deployment.chain_id
        self._ledger_of = {deployment.address(c).lower(): name for name, c in LEDGER_CONTRACTS.items()
                           if c in deployment.contracts}
        self.reader = fast_reader(backend, {deployment.address(c): load_artifact(c).abi
                                            for c in LEDGER_CONTRACTS.values() if c in deployment.contracts},
                                  chunk=chunk)
        self.lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self.logs: dict[str, LedgerLog] = {name: LedgerLog(name, keep_entries=self.keep_entries) for name in LEDGERS}
        self.synced_block = self.deployment.first_block - 1
        self.synced_hash = ""

    def ledger_of(self, event: Event) -> str | None:
        return self._ledger_of.get(event.address.lower())

    def log(self, ledger: str) -> LedgerLog:
        return self.logs[check_ledger(ledger)]

    def apply(self, event: Event) -> str | None:
        """Append `event` to its ledger's log; returns the ledger (None for contracts that are not ledgers)."""
        ledger = self.ledger_of(event)
        if ledger is None:
            return None
        key_arg = PRIMARY_KEY.get(event.name)
        key = _jsonable(event.args[key_arg]) if key_arg else None
        self.logs[ledger].append(canonical_entry(ledger, self.chain_id, event), event.block_number, key=key)
        return ledger

    def sync(self, to_block: int | None = None) -> SyncResult:
        """Read the events after the last synced block up to `to_block` (default: the head)."""
        with self.lock:
            head = self.reader.head() if to_block is None else to_block
            reset = False
            if self.synced_hash and (head < self.synced_block or self._hash(self.synced_block) != self.synced_hash):
                log.warning("sub-chain went backwards or re-organised; rebuilding ledger logs",
                            synced=self.synced_block, head=head)
                self._reset()
                reset = True
            count = 0
            if head > self.synced_block:
                for event in self.reader.events(from_block=self.synced_block + 1, to_block=head):
                    if self.apply(event) is not None:
                        count += 1
                self.synced_block = head
                self.synced_hash = self._hash(head)
            return SyncResult(count, head, reset)

    def _hash(self, number: int) -> str:
        header = self.blocks.header(number)
        return header.hash if header is not None else ""  # no such block: the chain was reset

    def __iter__(self) -> Iterator[LedgerLog]:
        return iter(self.logs.values())
