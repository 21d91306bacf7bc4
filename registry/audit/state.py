"""The replayed chain state: what the audit knows at the current event, as typed value objects.

Each record is a frozen, slotted dataclass reusing chain/'s enums (`Role`, `MemberStatus`, `DocStatus`,
`ExchangeStep`); the rules (registry/audit/rules.py) replace a value with `dataclasses.replace` when an event
changes it. `ReplayState` holds them by key and round-trips through JSON for the resume snapshot.

Keys and digests are 0x-hex (lower case); USCCs are the 18-character strings; accounts are checksummed as
the events give them (compare them lower-cased).

    >>> m = MemberState(name="省司法厅", bid="did:bid:x", roles=Role.AUDITOR, status=MemberStatus.ACTIVE,
    ...                 accounts=("0xAb",), admitted_block=3)
    >>> s = ReplayState(members={"11230000MB1A00036G": m})
    >>> ReplayState.from_json(s.to_json()).members["11230000MB1A00036G"] == m
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from chain.contracts import DocStatus, MemberStatus, Role
from chain.ledgers import ExchangeStep
from registry.audit.report import Finding

SNAPSHOT_VERSION = 4  # bump when the shape of the state changes: older snapshots are replayed from scratch


@dataclass(frozen=True, slots=True)
class MemberState:
    """A ConsortiumRegistry member as its events left it."""

    name: str
    bid: str
    roles: Role
    status: MemberStatus
    accounts: tuple[str, ...]
    admitted_block: int


@dataclass(frozen=True, slots=True)
class BatchState:
    """A certificate batch root as BatchAnchored recorded it."""

    issuer_account: str
    issuer_uscc: str
    count: int
    block: int
    block_hash: str
    tx_hash: str
    timestamp: int
    sm3_root: str = ""  # 0x RFC 6962 root of the batch over SM3, anchored beside the SHA-256 root


@dataclass(frozen=True, slots=True)
class DocState:
    """A document whose status changed at least once (documents never changed are ISSUED)."""

    status: DocStatus
    reason: int
    root: str
    block: int
    superseded_by: str  # 0x document digest of the corrected version, "" if none


@dataclass(frozen=True, slots=True)
class EvidenceState:
    """An EvidenceLedger record and its custody."""

    case_id: str
    collector: str
    custodian: str
    pending_to: str  # "" when no transfer is pending
    sha256: str
    sm3: str
    size: int
    meta_digest: str
    supersedes: str  # 0x key of the record it corrects, "" if none
    superseded_by: str  # 0x key of the record correcting it, "" if none
    block: int

    @property
    def digests(self) -> tuple[str, ...]:
        return (self.sha256, self.sm3, self.meta_digest)


@dataclass(frozen=True, slots=True)
class CaseState:
    """An EvidenceLedger case: its owner (the first record's collector), records and seal."""

    owner: str
    sealed: bool
    sealed_block: int
    records: int


@dataclass(frozen=True, slots=True)
class ExchangeState:
    """An ExchangeLedger exchange and the fields each step recorded."""

    consumer: str
    provider: str
    catalogue_item: str  # 0x-hex of the bytes32
    purpose_digest: str
    step: ExchangeStep
    reason_digest: str = ""
    payload_digest: str = ""
    size: int = 0
    records: int = 0
    received_digest: str = ""
    block: int = 0

    @property
    def digests(self) -> tuple[str, ...]:
        return (self.purpose_digest, self.catalogue_item, self.payload_digest)


@dataclass(frozen=True, slots=True)
class SealState:
    """A SealRegistry seal: its registration and every status it went through, (block, status) in chain order."""

    agency: str
    image_digest: str
    key_digest: str
    seal_info_digest: str
    valid_from: int  # Unix seconds
    valid_until: int
    block: int  # created in
    changes: tuple[tuple[int, str], ...]  # (block, "active" | "suspended" | "revoked"), the creation first

    @property
    def status(self) -> str:
        return self.changes[-1][1]

    def status_at(self, block: int) -> str | None:
        """The status after every event up to and including ``block`` (None: not registered yet)."""
        status = None
        for at, value in self.changes:
            if at > block:
                break
            status = value
        return status


@dataclass(frozen=True, slots=True)
class UsageState:
    """A UsageLedger usage (用证记录) as UsageRecorded recorded it."""

    agency: str
    certificate_doc: str
    grant_digest: str  # "" for an in-person presentation
    presentation_digest: str  # "" for a usage under a grant
    purpose_digest: str
    block: int = 0

    @property
    def digests(self) -> tuple[str, ...]:
        return (self.purpose_digest,)


@dataclass(frozen=True, slots=True)
class TxEvent:
    """One ledger event, filed under its transaction: what the database's outbox rows are compared with.

    `args` are JSON values: USCC arguments (``…Uscc``) as their strings, other bytes as 0x-hex."""

    ledger: str
    name: str
    key: str
    block: int
    block_hash: str
    args: Mapping[str, Any]


# how each value type's fields come back from JSON (lists become tuples, ints become enums)
_FROM_JSON: dict[type, dict[str, Callable[[Any], Any]]] = {
    MemberState: {"roles": Role, "status": MemberStatus, "accounts": tuple},
    DocState: {"status": DocStatus},
    ExchangeState: {"step": ExchangeStep},
    SealState: {"changes": lambda v: tuple((int(b), str(st)) for b, st in v)},
}


def _load(cls: type[Any], data: Mapping[str, Any]) -> Any:
    convert = _FROM_JSON.get(cls, {})
    # a field added later (with a default) may be absent from an older snapshot
    return cls(**{f.name: convert.get(f.name, _same)(data[f.name]) for f in fields(cls) if f.name in data})


def _same(value: Any) -> Any:
    return value


@dataclass
class ReplayState:
    """Everything the replay knows at the current event (mutable maps of immutable values)."""

    members: dict[str, MemberState] = field(default_factory=dict)  # uscc -> member
    account_member: dict[str, str] = field(default_factory=dict)  # lower-case account -> uscc
    delegates: set[tuple[str, str]] = field(default_factory=set)  # (issuer, delegate) revoker delegations
    batches: dict[str, BatchState] = field(default_factory=dict)  # root -> batch
    docs: dict[str, DocState] = field(default_factory=dict)  # document digest -> status
    evidence: dict[str, EvidenceState] = field(default_factory=dict)  # record key -> record
    cases: dict[str, CaseState] = field(default_factory=dict)  # case id -> case
    exchanges: dict[str, ExchangeState] = field(default_factory=dict)  # exchange key -> exchange
    usages: dict[str, UsageState] = field(default_factory=dict)  # usage key -> usage
    txs: dict[str, tuple[TxEvent, ...]] = field(default_factory=dict)  # lower-case tx hash -> its ledger events
    per_day: dict[str, dict[str, int]] = field(default_factory=dict)  # YYYY-MM-DD -> uscc -> records anchored
    block_times: dict[int, int] = field(default_factory=dict)  # block -> timestamp
    findings: list[Finding] = field(default_factory=list)  # findings of the replay rules (kept across resumes)
    events: dict[str, int] = field(default_factory=dict)  # ledger -> events replayed
    seals: dict[str, SealState] = field(default_factory=dict)  # seal id (0x sha256 esID) -> seal
    maker_keys: dict[str, int] = field(default_factory=dict)  # seal maker's key digest -> block published
    # every SealRegistry event by "<tx hash>:<log index>", its args as the seal index stores them (bytes as
    # 0x-hex): what the index's copy (seal_chain_events) is compared with
    seal_events: dict[str, TxEvent] = field(default_factory=dict)

    def block_time(self, block: int) -> int | None:
        return self.block_times.get(block)

    def events_in(self, tx_hash: str | None) -> tuple[TxEvent, ...]:
        return self.txs.get((tx_hash or "").lower(), ())

    # -- the resume snapshot -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        def values(d: Mapping[str, Any]) -> dict[str, Any]:
            return {k: asdict(v) for k, v in d.items()}

        return {
            "v": SNAPSHOT_VERSION,
            "members": values(self.members), "account_member": self.account_member,
            "delegates": sorted(list(p) for p in self.delegates),
            "batches": values(self.batches), "docs": values(self.docs), "evidence": values(self.evidence),
            "cases": values(self.cases), "exchanges": values(self.exchanges),
            "usages": values(self.usages),
            "txs": {h: [asdict(e) for e in es] for h, es in self.txs.items()},
            "per_day": self.per_day, "block_times": {str(k): v for k, v in self.block_times.items()},
            "findings": [f.to_json() for f in self.findings], "events": self.events,
            "seals": values(self.seals), "maker_keys": self.maker_keys,
            "seal_events": {k: asdict(e) for k, e in self.seal_events.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReplayState:
        def load(name: str, typ: type[Any]) -> dict[str, Any]:
            return {k: _load(typ, v) for k, v in data[name].items()}

        return cls(
            members=load("members", MemberState), account_member=dict(data["account_member"]),
            delegates={(a, b) for a, b in data["delegates"]},
            batches=load("batches", BatchState), docs=load("docs", DocState), evidence=load("evidence", EvidenceState),
            cases=load("cases", CaseState), exchanges=load("exchanges", ExchangeState),
            usages=load("usages", UsageState),
            txs={h: tuple(_load(TxEvent, e) for e in es) for h, es in data["txs"].items()},
            per_day={d: dict(v) for d, v in data["per_day"].items()},
            block_times={int(k): int(v) for k, v in data["block_times"].items()},
            findings=[Finding(**f) for f in data["findings"]], events=dict(data["events"]),
            seals=load("seals", SealState), maker_keys={k: int(v) for k, v in data["maker_keys"].items()},
            seal_events={k: _load(TxEvent, e) for k, e in data["seal_events"].items()},
        )


__all__ = ["BatchState", "CaseState", "DocState", "EvidenceState", "ExchangeState", "MemberState", "ReplayState",
           "SNAPSHOT_VERSION", "SealState", "TxEvent", "UsageState"]
