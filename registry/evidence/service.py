"""Evidence records (存证公正链, 区块链+法治): register, transfer custody, accept or reject, seal a case, and
verify a file against what was registered.

What goes on chain (EvidenceLedger): sha256(identifier) as the record id, sha256(case number) as the case
id, the content's SHA-256 and SM3 digests and size, and `metaDigest` = SHA-256 of the RFC 8785 canonical
JSON of the off-chain metadata (authority, legal basis, collector and real-name operator, acquisition,
RFC 3161 token digest ...). The metadata carries a random salt, so the digest is a hiding commitment: the
low-entropy personal data in it (the operator id) cannot be guessed back from the chain (DESIGN.md:
"never personal data"). An auditor recomputes the digest from the database row and compares.

Every step is an outbox row committed before its transaction (DESIGN.md, Durability). The request tries
to send it at once; if the chain is down the row stays `pending` and `OutboxWorker` sends it later. A
resend first looks for the step on chain (its receipt, else its event in the logs), so nothing is done
twice; a contract refusal on the first attempt deletes what the request stored (nothing is kept), a
refusal on a resend marks the step `failed` with the reason.

    >>> service = EvidenceService(node)                                                   # doctest: +SKIP
    >>> view = service.register("11230000MB1A00044B", EvidenceSubmission(case_no="哈公行罚〔2026〕17号",
    ...     scenario="行政执法", sha256=d.sha256_hex, sm3=d.sm3_hex, size=d.size, media_type="image/jpeg",
    ...     authority="黑龙江省公安厅", legal_basis="《行政处罚法》第四十七条", operator_id="23010012345"))  # doctest: +SKIP
    >>> view.id, view.status                                                              # doctest: +SKIP
    ('EV-XZZF-20260315-000001', 'registered')
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chain.contracts import MemberStatus, Role, b32
from chain.errors import ChainError, TransactionError
from chain.errors import ChainUnavailableError as ChainDown
from chain.ledgers import EvidenceLedgerClient
from registry.audit.records import LedgerRecord
from registry.errors import (
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RegistryError,
    ValidationError,
)
from registry.node import Node
from registry.outbox.steps import (
    OutboxLedgerService,
    OutboxWorker,
    StepCall,
    agency_json,
    canonical_digest,
    hex0x,
    is_auditor,
    iso_time,
    lock_row,
    next_serial,
    normalise_digest,
    optional_text,
    require_role,
    required_text,
    sha256_key,
)
from registry.store.db import Member
from registry.store.ledger_models import EvidenceCase, EvidenceEvent, EvidenceRecord, StepState

log = structlog.get_logger(__name__)

METADATA_FORMAT = "lianzheng-evidence/1"
MAX_TOKEN_BYTES = 64 * 1024  # an RFC 3161 TimeStampToken is a few KB; refuse anything absurd
MAX_BATCH = 1000
_MEDIA_TYPE = re.compile(r"[a-z]+/[a-z0-9.+-]+")
_MAX_SAFE_INT = 2**53 - 1  # RFC 8785 §3.2.2.3: larger integers do not round-trip through I-JSON


# =====================================================================================================
# Evidence: value objects and views
# =====================================================================================================


@dataclass(frozen=True)
class Acquisition:
    """How the content was acquired (执法全过程记录: device, tool, place and time)."""

    device: str | None = None  # device or source: 执法记录仪 serial, camera, web page URL ...
    tool: str | None = None
    tool_version: str | None = None
    place: str | None = None
    acquired_at: str | None = None  # ISO 8601 date-time

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Acquisition:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValidationError("acquisition must be an object", code="invalid_acquisition")
        unknown = sorted(set(data) - {"device", "tool", "tool_version", "place", "acquired_at"})
        if unknown:
            raise ValidationError(f"acquisition has unknown fields {unknown}", code="invalid_acquisition")
        values = {k: optional_text(data.get(k), f"acquisition.{k}", max_length=500) for k in
                  ("device", "tool", "tool_version", "place", "acquired_at")}
        if values["acquired_at"] is not None:
            try:
                when = dt.datetime.fromisoformat(values["acquired_at"].replace("Z", "+00:00"))
            except ValueError:
                raise ValidationError(f"acquisition.acquired_at must be an ISO 8601 date-time, got "
                                      f"{values['acquired_at']!r}", code="invalid_acquired_at") from None
            if when.tzinfo is None:
                raise ValidationError("acquisition.acquired_at must carry a UTC offset (e.g. +08:00 or Z)",
                                      code="invalid_acquired_at")
            values["acquired_at"] = when.isoformat()
        return cls(**values)

    def to_json(self) -> dict[str, str | None]:
        return {"device": self.device, "tool": self.tool, "tool_version": self.tool_version, "place": self.place,
                "acquired_at": self.acquired_at}


@dataclass(frozen=True)
class EvidenceSubmission:
    """What an agency submits to register a file (its digests: the content itself never leaves the agency)."""

    case_no: str | None
    scenario: str | None
    sha256: str | None
    sm3: str | None
    size: int | None
    media_type: str | None
    authority: str | None = None
    legal_basis: str | None = None
    operator_id: str | None = None
    type_code: str | None = None
    filename: str | None = None
    description: str | None = None
    acquisition: Mapping[str, Any] | None = None
    timestamp_token: str | None = None  # RFC 3161 TimeStampToken, DER, base64
    supersedes: str | None = None
    correction_reason: str | None = None


@dataclass(frozen=True)
class _Prepared:
    case_no: str
    scenario: str
    type_code: str
    sha256: str
    sm3: str
    size: int
    media_type: str
    authority: str
    legal_basis: str
    operator_id: str
    filename: str | None
    description: str | None
    acquisition: Acquisition
    token: bytes | None
    supersedes: str | None
    correction_reason: str | None


def evidence_metadata(row: EvidenceRecord, case_no: str) -> dict[str, Any]:
    """The off-chain metadata whose RFC 8785 digest is the record's on-chain metaDigest. Rebuilt from the
    row's columns, so an edited row no longer matches the chain (what the auditor and packages check)."""
    token = row.timestamp_token
    acquisition = dict(row.acquisition or {})
    acquisition["timestamp_token_sha256"] = hashlib.sha256(token).hexdigest() if token else None
    return {
        "format": METADATA_FORMAT,
        "id": row.id,
        "case_no": case_no,
        "scenario": row.scenario,
        "type_code": row.type_code,
        "authority": row.authority,
        "legal_basis": row.legal_basis,
        "collector": {"uscc": row.collector_uscc, "bid": row.collector_bid, "operator_id": row.operator_id},
        "content": {"sha256": row.sha256, "sm3": row.sm3, "size": row.size, "media_type": row.media_type,
                    "filename": row.filename},
        "acquisition": acquisition,
        "description": row.description,
        "supersedes": row.supersedes,
        "correction_reason": row.correction_reason,
        "salt": row.salt,
    }


def metadata_digest(metadata: Mapping[str, Any]) -> str:
    return hex0x(canonical_digest(dict(metadata)))


@dataclass(frozen=True)
class EvidenceView:
    """A record as an involved agency sees it (`public()` drops the case number and the operator)."""

    id: str
    key: str
    case_no: str
    case_key: str
    scenario: str
    type_code: str
    type_name: str
    status: str
    authority: str
    legal_basis: str
    collector: dict[str, Any]
    operator_id: str
    content: dict[str, Any]
    acquisition: dict[str, Any]
    timestamp_token_sha256: str | None
    description: str | None
    supersedes: str | None
    superseded_by: str | None
    correction_reason: str | None
    meta_digest: str
    custodian: dict[str, Any]
    pending_transfer_to: dict[str, Any] | None
    case_sealed: bool
    case_sealed_at: str | None
    registered: dict[str, Any] | None
    custody_chain: list[dict[str, Any]]
    custody_log: list[dict[str, Any]]
    pending_steps: int
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def public(self) -> dict[str, Any]:
        out = self.to_json()
        # the case number and the real-name operator identify people; free text may too
        for private in ("case_no", "operator_id", "description", "correction_reason"):
            out.pop(private, None)
        out["collector"] = {k: v for k, v in self.collector.items() if k != "operator_id"}
        out["custody_log"] = [{k: v for k, v in e.items() if k != "purpose"} for e in self.custody_log]
        return out


@dataclass(frozen=True)
class CaseView:
    case_no: str
    case_key: str
    scenario: str
    owner: dict[str, Any]
    sealed: bool
    sealed_at: str | None
    sealed_block: int | None
    seal_pending: bool
    records: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class VerifyResult:
    """The verdict on a file: `unaltered`, `altered`, `unknown`, `not_anchored`, `tampered` (the registry's
    row no longer matches the chain) or `cannot_verify` (chain unreachable: never valid or invalid)."""

    verdict: str
    summary: str
    summary_zh: str
    checks: list[dict[str, Any]]
    record: dict[str, Any] | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    # the record's entry in the evidence ledger log: an RFC 6962 inclusion proof and the covering checkpoint
    log_proof: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _check(name: str, status: str, detail: str) -> dict[str, str]:
    return {"check": name, "status": status, "detail": detail}


# =====================================================================================================
# Evidence: the service
# =====================================================================================================

_CHINA = dt.timezone(dt.timedelta(hours=8))  # identifiers carry the date as the agencies see it (UTC+8)
_OPEN = (StepState.PENDING.value, StepState.SENT.value)


class EvidenceService(OutboxLedgerService):
    step_model = EvidenceEvent
    ledger_name = "evidence"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        self.scenario_codes: dict[str, str] = {}
        for t in node.seeds.evidence_types:  # 行政执法 -> XZZF: the prefix of the scenario's type codes
            self.scenario_codes.setdefault(t.scenario, t.code.split("-")[0])

    # -- OutboxLedgerService hooks -----------------------------------------------------------------
    def _ledger(self) -> EvidenceLedgerClient:
        return self.node.client(EvidenceLedgerClient)

    def _scopes(self, step: EvidenceEvent) -> tuple[set[str], set[str]]:
        # a record's steps go in order; a seal waits for every earlier step of its case
        if step.kind == "seal":
            return {f"case:{step.case_key}"}, {f"case:{step.case_key}"}
        return {f"rec:{step.record_id}"}, {f"rec:{step.record_id}", f"case:{step.case_key}"}

    def _call_for(self, s: Session, step: EvidenceEvent) -> StepCall:
        ledger = self._ledger()
        gas = ledger.GAS[step.kind]
        if step.kind == "seal":
            case_id = bytes.fromhex(step.case_key[2:])
            return StepCall(step.id, step.actor_uscc, case_id, ledger.seal_case_fn(case_id), gas, "CaseSealed", {},
                            step.tx_hash)
        rec = s.get(EvidenceRecord, step.record_id)
        assert rec is not None
        key = bytes.fromhex(rec.key[2:])
        if step.kind == "register":
            fn = ledger.register_fn(key, bytes.fromhex(rec.case_key[2:]), bytes.fromhex(rec.sha256),
                                    bytes.fromhex(rec.sm3), rec.size, bytes.fromhex(rec.meta_digest[2:]),
                                    sha256_key(rec.supersedes) if rec.supersedes else None)
            return StepCall(step.id, step.actor_uscc, key, fn, gas, "EvidenceRegistered", {}, step.tx_hash)
        if step.kind == "transfer":
            assert step.to_uscc is not None and step.purpose_digest is not None
            fn = ledger.transfer_fn(key, step.to_uscc, bytes.fromhex(step.purpose_digest[2:]), step.digest_rechecked)
            return StepCall(step.id, step.actor_uscc, key, fn, gas, "CustodyTransferRequested",
                            {"toUscc": b32(step.to_uscc)}, step.tx_hash)
        if step.kind == "accept":
            return StepCall(step.id, step.actor_uscc, key, ledger.accept_fn(key, step.digest_rechecked), gas,
                            "CustodyTransferAccepted", {"toUscc": b32(step.actor_uscc)}, step.tx_hash)
        if step.kind == "reject":
            return StepCall(step.id, step.actor_uscc, key, ledger.reject_fn(key), gas, "CustodyTransferRejected",
                            {"toUscc": b32(step.actor_uscc)}, step.tx_hash)
        raise ValueError(f"unknown evidence step {step.kind!r}")

    def _apply_mirror(self, s: Session, step: EvidenceEvent) -> None:
        if step.kind == "seal":
            case = s.get(EvidenceCase, step.case_key)
            assert case is not None
            case.sealed, case.sealed_block, case.sealed_timestamp = True, step.block_number, step.block_timestamp
            return
        rec = s.get(EvidenceRecord, step.record_id)
        assert rec is not None
        if step.kind == "register":
            rec.status = "registered"
            if rec.supersedes:
                old = s.get(EvidenceRecord, rec.supersedes)
                if old is not None:
                    old.superseded_by = rec.id
        elif step.kind == "transfer":
            rec.pending_to = step.to_uscc
        elif step.kind == "accept":
            rec.custodian_uscc, rec.pending_to = step.actor_uscc, None
        elif step.kind == "reject":
            rec.pending_to = None

    def _discard(self, s: Session, step: EvidenceEvent) -> None:
        record_id, kind, case_key = step.record_id, step.kind, step.case_key
        s.delete(step)
        s.flush()
        if kind != "register":
            return
        rec = s.get(EvidenceRecord, record_id)
        if rec is not None:
            s.delete(rec)
            s.flush()
        if not s.scalar(select(func.count()).select_from(EvidenceRecord).where(EvidenceRecord.case_key == case_key)):
            case = s.get(EvidenceCase, case_key)
            if case is not None:
                s.delete(case)

    def _created_row(self, s: Session, step: EvidenceEvent) -> EvidenceRecord | None:
        return s.get(EvidenceRecord, step.record_id) if step.kind == "register" else None

    # -- seeds ---------------------------------------------------------------------------------------
    def types(self) -> list[dict[str, Any]]:
        return [t.model_dump() for t in self.node.seeds.evidence_types]

    def _type_for(self, scenario: str, type_code: str | None, media_type: str) -> str:
        if scenario not in self.scenario_codes:
            raise ValidationError(f"unknown scenario {scenario!r}: expected one of {', '.join(self.scenario_codes)}",
                                  code="unknown_scenario", details={"scenarios": list(self.scenario_codes)})
        if type_code:
            t = self.node.seeds.evidence_type(type_code)
            if t.scenario != scenario:
                raise ValidationError(f"evidence type {type_code} ({t.name}) belongs to {t.scenario}, not {scenario}",
                                      code="type_not_in_scenario")
            return t.code
        of_scenario = [t for t in self.node.seeds.evidence_types if t.scenario == scenario]
        fitting = [t for t in of_scenario if media_type in t.media_types]
        return (fitting or of_scenario)[0].code

    # -- validation ----------------------------------------------------------------------------------
    def _prepare(self, sub: EvidenceSubmission) -> _Prepared:
        case_no = required_text(sub.case_no, "case_no", "missing_case_no", max_length=200)
        scenario = required_text(sub.scenario, "scenario", "unknown_scenario", max_length=10)
        media_type = required_text(sub.media_type, "media_type", "invalid_media_type", max_length=100).lower()
        if not _MEDIA_TYPE.fullmatch(media_type):
            raise ValidationError(f"media_type must look like type/subtype, got {media_type!r}", code="invalid_media_type")
        type_code = self._type_for(scenario, optional_text(sub.type_code, "type", max_length=16), media_type)
        legal_basis = required_text(sub.legal_basis, "legal_basis", "missing_legal_basis", max_length=2000)
        authority = required_text(sub.authority, "authority", "missing_authority", max_length=200)
        operator = required_text(sub.operator_id, "operator_id", "missing_operator", max_length=64)
        if isinstance(sub.size, bool) or not isinstance(sub.size, int) or not 0 <= sub.size <= _MAX_SAFE_INT:
            raise ValidationError(f"size must be a byte count between 0 and {_MAX_SAFE_INT}, got {sub.size!r}",
                                  code="invalid_size")
        token = None
        if sub.timestamp_token:
            try:
                token = base64.b64decode(sub.timestamp_token, validate=True)
            except (binascii.Error, ValueError):
                raise ValidationError("timestamp_token must be base64 (an RFC 3161 TimeStampToken in DER)",
                                      code="invalid_timestamp_token") from None
            if len(token) > MAX_TOKEN_BYTES:
                raise PayloadTooLargeError(f"timestamp_token is {len(token)} bytes, at most {MAX_TOKEN_BYTES}",
                                           code="timestamp_token_too_large")
            if not token or token[0] != 0x30:  # RFC 3161 §2.4.2: a TimeStampToken is a DER SEQUENCE (ContentInfo)
                raise ValidationError("timestamp_token is not DER (an RFC 3161 TimeStampToken starts with a SEQUENCE)",
                                      code="invalid_timestamp_token")
        supersedes = optional_text(sub.supersedes, "supersedes", max_length=64)
        reason = optional_text(sub.correction_reason, "correction_reason", max_length=2000)
        if supersedes and not reason:
            raise ValidationError("a correction (supersedes) needs a correction_reason", code="missing_correction_reason")
        return _Prepared(
            case_no=case_no, scenario=scenario, type_code=type_code, sha256=normalise_digest(sub.sha256, "sha256"),
            sm3=normalise_digest(sub.sm3, "sm3"), size=sub.size, media_type=media_type, authority=authority,
            legal_basis=legal_basis, operator_id=operator,
            filename=optional_text(sub.filename, "filename", max_length=255),
            description=optional_text(sub.description, "description", max_length=2000),
            acquisition=Acquisition.from_json(sub.acquisition), token=token, supersedes=supersedes,
            correction_reason=reason)

    def _check_case_open(self, s: Session, case: EvidenceCase | None) -> None:
        if case is None:
            return
        if case.sealed or self._seal_pending(s, case.case_key):
            raise ConflictError(f"case {case.case_no} is sealed: its records are frozen", code="case_sealed",
                                details={"case_no": case.case_no})

    def _seal_pending(self, s: Session, case_key: str) -> bool:
        return s.scalar(select(EvidenceEvent.id).where(EvidenceEvent.case_key == case_key, EvidenceEvent.kind == "seal",
                                                       EvidenceEvent.state.in_(_OPEN))) is not None

    def _reserve_id(self, s: Session, p: _Prepared) -> str:
        """The record's identifier; reserving its serial is the unit of work's first write (see lock_row)."""
        prefix = f"EV-{self.scenario_codes[p.scenario]}-{dt.datetime.now(_CHINA):%Y%m%d}"
        return f"{prefix}-{next_serial(s, prefix):06d}"

    def _insert(self, s: Session, agency: str, member: Member, p: _Prepared, seen: set[tuple[str, str]],
                record_id: str) -> EvidenceEvent:
        case_key = hex0x(sha256_key(p.case_no))
        case = s.get(EvidenceCase, case_key)
        self._check_case_open(s, case)
        if case is not None and case.scenario != p.scenario:
            raise ValidationError(f"case {p.case_no} is a {case.scenario} case, not {p.scenario}", code="scenario_mismatch")
        if (case_key, p.sha256) in seen or s.scalar(select(EvidenceRecord.id).where(
                EvidenceRecord.case_key == case_key, EvidenceRecord.sha256 == p.sha256,
                EvidenceRecord.superseded_by.is_(None), EvidenceRecord.status != "failed")) is not None:
            raise ConflictError(f"this content (sha256 {p.sha256[:16]}...) is already registered in case {p.case_no}",
                                code="duplicate_evidence")
        seen.add((case_key, p.sha256))
        if p.supersedes:
            old = s.get(EvidenceRecord, p.supersedes)
            if old is None:
                raise NotFoundError(f"no evidence record {p.supersedes} to correct", code="unknown_evidence")
            if old.case_key != case_key:
                raise ValidationError(f"{p.supersedes} belongs to another case; a correction stays in its case",
                                      code="supersedes_other_case")
            if old.superseded_by or s.scalar(select(EvidenceRecord.id).where(
                    EvidenceRecord.supersedes == old.id, EvidenceRecord.status != "failed")) is not None:
                raise ConflictError(f"{old.id} is already corrected by {old.superseded_by or 'a pending record'}",
                                    code="already_superseded")
            if old.status != "registered":
                raise ConflictError(f"{old.id} is {old.status}, not registered yet", code="not_registered_yet")
            if agency not in (old.collector_uscc, old.custodian_uscc):
                raise PermissionDeniedError(f"only the collector or the custodian of {old.id} may correct it",
                                            code="not_custodian")
        if case is None:
            case = EvidenceCase(case_key=case_key, case_no=p.case_no, scenario=p.scenario, owner_uscc=agency)
            s.add(case)
        acquisition = p.acquisition.to_json()
        rec = EvidenceRecord(
            id=record_id, key=hex0x(sha256_key(record_id)), case_key=case_key, scenario=p.scenario,
            type_code=p.type_code, authority=p.authority, legal_basis=p.legal_basis, collector_uscc=agency,
            collector_bid=member.bid, operator_id=p.operator_id, sha256=p.sha256, sm3=p.sm3, size=p.size,
            media_type=p.media_type, filename=p.filename, description=p.description, acquisition=acquisition,
            timestamp_token=p.token, supersedes=p.supersedes, correction_reason=p.correction_reason,
            salt=secrets.token_hex(16), meta_digest="", status="pending", custodian_uscc=agency)
        rec.meta_digest = metadata_digest(evidence_metadata(rec, p.case_no))
        s.add(rec)
        s.flush()
        step = EvidenceEvent(kind="register", record_id=record_id, case_key=case_key, actor_uscc=agency)
        s.add(step)
        s.flush()
        return step

    @contextmanager
    def _new_steps(self) -> Iterator[tuple[Session, list[int]]]:
        """A unit of work that creates steps; their ids are claimed before the commit, so the worker never
        races the request's own attempt."""
        claimed: list[int] = []
        try:
            with self.node.db.session() as s:
                yield s, claimed
                s.flush()
                self._claim(claimed)
        except BaseException:
            self._release(claimed)
            raise

    # -- writes --------------------------------------------------------------------------------------
    def register(self, agency: str, sub: EvidenceSubmission) -> EvidenceView:
        """Register one file's digests; returns the record (`pending` if the chain is unreachable)."""
        p = self._prepare(sub)
        with self._new_steps() as (s, claimed):
            record_id = self._reserve_id(s, p)
            member = require_role(s, agency, Role.EVIDENCE, "missing_evidence_role")
            step = self._insert(s, agency, member, p, set(), record_id)
            claimed.append(step.id)
            record_id = step.record_id
        self.try_now(step.id)
        assert record_id is not None
        return self.get(None, record_id)

    def register_many(self, agency: str,
                      subs: Sequence[EvidenceSubmission]) -> tuple[list[EvidenceView], dict[int, RegistryError]]:
        """Register up to MAX_BATCH files at once: all validated before any is stored, then sent pipelined.
        Returns the records and, by index, any the contract refused (those are not kept)."""
        if not subs:
            raise ValidationError("no records to register", code="empty_batch")
        if len(subs) > MAX_BATCH:
            raise PayloadTooLargeError(f"{len(subs)} records; at most {MAX_BATCH} per request", code="batch_too_large")
        prepared = []
        for i, sub in enumerate(subs):
            try:
                prepared.append(self._prepare(sub))
            except RegistryError as exc:
                raise type(exc)(f"record {i}: {exc.message}", code=exc.code, details={**exc.details, "index": i}) from exc
        with self._new_steps() as (s, claimed):
            ids = [self._reserve_id(s, p) for p in prepared]
            member = require_role(s, agency, Role.EVIDENCE, "missing_evidence_role")
            seen: set[tuple[str, str]] = set()
            steps = []
            for i, p in enumerate(prepared):
                try:
                    steps.append(self._insert(s, agency, member, p, seen, ids[i]))
                except RegistryError as exc:
                    raise type(exc)(f"record {i}: {exc.message}", code=exc.code,
                                    details={**exc.details, "index": i}) from exc
            claimed.extend(st.id for st in steps)
            pairs = [(st.id, st.record_id) for st in steps]
        refused = self._pipeline([sid for sid, _ in pairs])
        by_index = {i: refused[sid] for i, (sid, _) in enumerate(pairs) if sid in refused}
        with self.node.db.session() as s:
            recs = {r.id: r for r in s.scalars(select(EvidenceRecord).where(
                EvidenceRecord.id.in_([rid for sid, rid in pairs if sid not in refused])))}
            cases = {c.case_key: c for c in s.scalars(select(EvidenceCase).where(
                EvidenceCase.case_key.in_({r.case_key for r in recs.values()})))}
            views = [self._view(s, recs[rid], cases[recs[rid].case_key]) for sid, rid in pairs if rid in recs]
        return views, by_index

    def _pipeline(self, step_ids: list[int]) -> dict[int, RegistryError]:
        try:
            return self.run_pipelined(step_ids, claimed=True)
        except (ChainDown, TransactionError) as exc:
            self.last_error = str(exc)
            log.warning("chain unreachable; steps stay in the outbox", ledger=self.ledger_name, error=str(exc))
            return {}

    def _record(self, s: Session, record_id: str) -> EvidenceRecord:
        if not isinstance(record_id, str) or not record_id.startswith("EV-") or len(record_id) > 64:
            raise ValidationError(f"not an evidence identifier: {str(record_id)[:80]!r} (expected EV-...)",
                                  code="invalid_evidence_id")
        rec = s.get(EvidenceRecord, record_id)
        if rec is None:
            raise NotFoundError(f"no evidence record {record_id}", code="unknown_evidence")
        return rec

    def _case(self, s: Session, case_no: str) -> EvidenceCase:
        case_no = required_text(case_no, "case_no", "missing_case_no", max_length=200)
        case = s.get(EvidenceCase, hex0x(sha256_key(case_no)))
        if case is None:
            raise NotFoundError(f"no evidence case {case_no}", code="unknown_case")
        return case

    def _ready_for_custody(self, s: Session, rec: EvidenceRecord) -> EvidenceCase:
        if rec.status != "registered":
            raise ConflictError(f"{rec.id} is {rec.status}, not registered on chain yet", code="not_registered_yet")
        if s.scalar(select(EvidenceEvent.id).where(EvidenceEvent.record_id == rec.id,
                                                   EvidenceEvent.state.in_(_OPEN))) is not None:
            raise ConflictError(f"a custody step of {rec.id} is still being anchored; retry shortly",
                                code="step_in_progress")
        case = s.get(EvidenceCase, rec.case_key)
        self._check_case_open(s, case)
        assert case is not None
        return case

    def _transfer_step(self, s: Session, agency: str, rec: EvidenceRecord, to: str, purpose: str,
                       rechecked: bool) -> EvidenceEvent:
        self._ready_for_custody(s, rec)
        if rec.custodian_uscc != agency:
            raise PermissionDeniedError(f"{rec.id} is held by {rec.custodian_uscc}; only the current custodian may "
                                        f"transfer it, not {agency}", code="not_custodian")
        if rec.pending_to:
            raise ConflictError(f"{rec.id} already has a transfer pending to {rec.pending_to}", code="transfer_pending")
        step = EvidenceEvent(kind="transfer", record_id=rec.id, case_key=rec.case_key, actor_uscc=agency, to_uscc=to,
                             purpose=purpose, digest_rechecked=rechecked,
                             purpose_digest=hex0x(canonical_digest({"record": rec.id, "from": agency, "to": to,
                                                                    "purpose": purpose})))
        s.add(step)
        s.flush()
        return step

    def _recipient(self, s: Session, agency: str, to: str) -> str:
        from registry.identifiers import validate_uscc

        to = validate_uscc(str(to).strip())
        m = s.get(Member, to)
        if to == agency or m is None or m.status != int(MemberStatus.ACTIVE) or not Role(m.roles) & Role.EVIDENCE:
            why = "the sender itself" if to == agency else "not an active member with the evidence role"
            raise ValidationError(f"cannot transfer custody to {to}: {why}", code="invalid_recipient")
        return to

    def transfer(self, agency: str, record_id: str, to: str, purpose: str | None, *,
                 digest_rechecked: bool = False) -> EvidenceView:
        """Ask `to` to take custody of a record (the current custodian only)."""
        purpose_text = required_text(purpose, "purpose", "missing_purpose", max_length=1000)
        with self._new_steps() as (s, claimed):
            lock_row(s, EvidenceRecord.status, EvidenceRecord.id, record_id)
            require_role(s, agency, Role.EVIDENCE, "missing_evidence_role")
            rec = self._record(s, record_id)
            recipient = self._recipient(s, agency, to)
            claimed.append(self._transfer_step(s, agency, rec, recipient, purpose_text, digest_rechecked).id)
        self.try_now(claimed[0])
        return self.get(None, record_id)

    def _answer_step(self, s: Session, agency: str, rec: EvidenceRecord, kind: str, rechecked: bool,
                     note: str | None) -> EvidenceEvent:
        if kind == "accept":
            self._ready_for_custody(s, rec)
        elif s.scalar(select(EvidenceEvent.id).where(EvidenceEvent.record_id == rec.id,
                                                     EvidenceEvent.state.in_(_OPEN))) is not None:
            raise ConflictError(f"a custody step of {rec.id} is still being anchored; retry shortly",
                                code="step_in_progress")
        if not rec.pending_to:
            raise ConflictError(f"{rec.id} has no pending transfer", code="no_pending_transfer")
        if rec.pending_to != agency:
            raise PermissionDeniedError(f"the transfer of {rec.id} is addressed to {rec.pending_to}, not {agency}",
                                        code="not_recipient")
        step = EvidenceEvent(kind=kind, record_id=rec.id, case_key=rec.case_key, actor_uscc=agency,
                             to_uscc=rec.custodian_uscc, digest_rechecked=rechecked, purpose=note)
        s.add(step)
        s.flush()
        return step

    def _recheck(self, rec: EvidenceRecord, sha256: str | None, sm3: str | None) -> bool:
        """The recipient may re-hash what it received; a mismatch refuses the accept (reject it instead)."""
        if sha256 is None and sm3 is None:
            return False
        differences = []
        if sha256 is not None and normalise_digest(sha256, "sha256") != rec.sha256:
            differences.append("sha256")
        if sm3 is not None and normalise_digest(sm3, "sm3") != rec.sm3:
            differences.append("sm3")
        if differences:
            raise ConflictError(f"the content received does not match {rec.id} ({' and '.join(differences)} differ); "
                                f"reject the transfer instead", code="digest_mismatch",
                                details={"differs": differences})
        return True

    def accept(self, agency: str, record_id: str, *, sha256: str | None = None, sm3: str | None = None) -> EvidenceView:
        """Take custody (the pending recipient only); with digests, the content is re-checked first."""
        with self._new_steps() as (s, claimed):
            lock_row(s, EvidenceRecord.status, EvidenceRecord.id, record_id)
            require_role(s, agency, Role.EVIDENCE, "missing_evidence_role")
            rec = self._record(s, record_id)
            rechecked = self._recheck(rec, sha256, sm3)
            claimed.append(self._answer_step(s, agency, rec, "accept", rechecked, None).id)
        self.try_now(claimed[0])
        return self.get(None, record_id)

    def reject(self, agency: str, record_id: str, *, reason: str | None = None) -> EvidenceView:
        """Decline a pending transfer (the recipient only); custody stays with the sender."""
        note = optional_text(reason, "reason", max_length=1000)
        with self._new_steps() as (s, claimed):
            lock_row(s, EvidenceRecord.status, EvidenceRecord.id, record_id)
            rec = self._record(s, record_id)
            claimed.append(self._answer_step(s, agency, rec, "reject", False, note).id)
        self.try_now(claimed[0])
        return self.get(None, record_id)

    def seal(self, agency: str, case_no: str) -> CaseView:
        """Seal a case (its owner only): afterwards no record of it can be added, transferred or accepted."""
        with self._new_steps() as (s, claimed):
            lock_row(s, EvidenceCase.sealed, EvidenceCase.case_no, str(case_no).strip())
            require_role(s, agency, Role.EVIDENCE, "missing_evidence_role")
            case = self._case(s, case_no)
            if case.owner_uscc != agency:
                raise PermissionDeniedError(f"case {case.case_no} belongs to {case.owner_uscc}; only its owner may seal it",
                                            code="not_case_owner")
            self._check_case_open(s, case)
            earlier = s.scalar(select(EvidenceEvent.id).where(EvidenceEvent.case_key == case.case_key,
                                                              EvidenceEvent.state.in_(_OPEN)))
            step = EvidenceEvent(kind="seal", case_key=case.case_key, actor_uscc=agency)
            s.add(step)
            s.flush()
            if earlier is None:
                claimed.append(step.id)
            case_no = case.case_no
        if claimed:
            self.try_now(claimed[0])
        # else: earlier steps of the case are still in the outbox; the worker seals after them, in order
        return self.case(None, case_no)

    def transfer_case(self, agency: str, case_no: str, to: str, purpose: str | None) -> CaseView:
        """Transfer every record of a case the agency holds (e.g. the whole file to the court), pipelined."""
        purpose_text = required_text(purpose, "purpose", "missing_purpose", max_length=1000)
        with self._new_steps() as (s, claimed):
            lock_row(s, EvidenceCase.sealed, EvidenceCase.case_no, str(case_no).strip())
            require_role(s, agency, Role.EVIDENCE, "missing_evidence_role")
            case = self._case(s, case_no)
            self._check_case_open(s, case)
            recipient = self._recipient(s, agency, to)
            held = s.scalars(select(EvidenceRecord).where(
                EvidenceRecord.case_key == case.case_key, EvidenceRecord.custodian_uscc == agency,
                EvidenceRecord.status == "registered", EvidenceRecord.pending_to.is_(None)).order_by(EvidenceRecord.id)).all()
            if not held:
                raise ConflictError(f"agency {agency} holds no transferable record of case {case.case_no}",
                                    code="nothing_to_transfer")
            claimed.extend(self._transfer_step(s, agency, rec, recipient, purpose_text, False).id for rec in held)
            case_no = case.case_no
        self._pipeline(list(claimed))
        return self.case(None, case_no)

    def accept_case(self, agency: str, case_no: str) -> CaseView:
        """Accept every transfer of a case pending to the agency, pipelined."""
        with self._new_steps() as (s, claimed):
            lock_row(s, EvidenceCase.sealed, EvidenceCase.case_no, str(case_no).strip())
            require_role(s, agency, Role.EVIDENCE, "missing_evidence_role")
            case = self._case(s, case_no)
            self._check_case_open(s, case)
            offered = s.scalars(select(EvidenceRecord).where(EvidenceRecord.case_key == case.case_key,
                                                             EvidenceRecord.pending_to == agency)
                                .order_by(EvidenceRecord.id)).all()
            if not offered:
                raise ConflictError(f"no transfer of case {case.case_no} is pending to {agency}",
                                    code="no_pending_transfer")
            claimed.extend(self._answer_step(s, agency, rec, "accept", False, None).id for rec in offered)
            case_no = case.case_no
        self._pipeline(list(claimed))
        return self.case(None, case_no)

    # -- reads ---------------------------------------------------------------------------------------
    def _involved(self, s: Session, agency: str, rec: EvidenceRecord, case: EvidenceCase) -> bool:
        if agency in (rec.collector_uscc, rec.custodian_uscc, rec.pending_to, case.owner_uscc):
            return True
        party = s.scalar(select(EvidenceEvent.id).where(EvidenceEvent.record_id == rec.id, (
            (EvidenceEvent.actor_uscc == agency) | (EvidenceEvent.to_uscc == agency))))
        return party is not None or is_auditor(s, agency)

    def get(self, agency: str | None, record_id: str) -> EvidenceView:
        """A record with its custody log. `agency=None` is internal use; an agency must be involved (collector,
        custodian, recipient, party to a step, case owner) or an auditor."""
        with self.node.db.session() as s:
            rec = self._record(s, record_id)
            case = s.get(EvidenceCase, rec.case_key)
            assert case is not None
            if agency is not None and not self._involved(s, agency, rec, case):
                raise PermissionDeniedError(f"agency {agency} is not involved in {record_id}", code="not_involved")
            return self._view(s, rec, case)

    def _view(self, s: Session, rec: EvidenceRecord, case: EvidenceCase) -> EvidenceView:
        steps = s.scalars(select(EvidenceEvent).where(EvidenceEvent.record_id == rec.id).order_by(EvidenceEvent.id)).all()
        register = next((e for e in steps if e.kind == "register"), None)
        chain: list[dict[str, Any]] = []
        log_: list[dict[str, Any]] = []
        for e in steps:
            anchor = e.anchor_json()
            if e.kind == "register" and anchor:
                chain.append({**(agency_json(s, e.actor_uscc) or {}), "since": iso_time(e.block_timestamp),
                              "block_number": e.block_number, "tx_hash": e.tx_hash})
            if e.kind == "accept" and anchor:
                chain.append({**(agency_json(s, e.actor_uscc) or {}), "since": iso_time(e.block_timestamp),
                              "block_number": e.block_number, "tx_hash": e.tx_hash})
            frm, to = (e.actor_uscc, e.to_uscc) if e.kind == "transfer" else (e.to_uscc, e.actor_uscc)
            log_.append({
                "step": e.kind, "state": e.state, "by": e.actor_uscc,
                "from": frm if e.kind != "register" else None, "to": to if e.kind != "register" else e.actor_uscc,
                "purpose": e.purpose, "purpose_digest": e.purpose_digest, "digest_rechecked": e.digest_rechecked,
                "at": iso_time(e.block_timestamp), "block_number": e.block_number, "block_hash": e.block_hash,
                "tx_hash": e.tx_hash, "account": e.account, "error": e.error,
            })
        type_name = next((t.name for t in self.node.seeds.evidence_types if t.code == rec.type_code), rec.type_code)
        token = rec.timestamp_token
        return EvidenceView(
            id=rec.id, key=rec.key, case_no=case.case_no, case_key=case.case_key, scenario=rec.scenario,
            type_code=rec.type_code, type_name=type_name, status=rec.status, authority=rec.authority,
            legal_basis=rec.legal_basis,
            collector={**(agency_json(s, rec.collector_uscc) or {}), "bid": rec.collector_bid,
                       "operator_id": rec.operator_id},
            operator_id=rec.operator_id,
            content={"sha256": rec.sha256, "sm3": rec.sm3, "size": rec.size, "media_type": rec.media_type,
                     "filename": rec.filename},
            acquisition=dict(rec.acquisition or {}),
            timestamp_token_sha256=hashlib.sha256(token).hexdigest() if token else None,
            description=rec.description, supersedes=rec.supersedes, superseded_by=rec.superseded_by,
            correction_reason=rec.correction_reason, meta_digest=rec.meta_digest,
            custodian=agency_json(s, rec.custodian_uscc) or {}, pending_transfer_to=agency_json(s, rec.pending_to),
            case_sealed=case.sealed, case_sealed_at=iso_time(case.sealed_timestamp),
            registered=register.anchor_json() if register is not None else None,
            custody_chain=chain, custody_log=log_,
            pending_steps=sum(1 for e in steps if e.state in _OPEN),
            error=register.error if register is not None and register.state == StepState.FAILED.value else None,
        )

    def case(self, agency: str | None, case_no: str) -> CaseView:
        """A case and its records (an agency must own it, be involved in one of its records, or audit)."""
        with self.node.db.session() as s:
            case = self._case(s, case_no)
            recs = s.scalars(select(EvidenceRecord).where(EvidenceRecord.case_key == case.case_key)
                             .order_by(EvidenceRecord.created_at, EvidenceRecord.id)).all()
            if agency is not None and agency != case.owner_uscc and not is_auditor(s, agency) and not any(
                    self._involved(s, agency, r, case) for r in recs):
                raise PermissionDeniedError(f"agency {agency} is not involved in case {case.case_no}", code="not_involved")
            return CaseView(case_no=case.case_no, case_key=case.case_key, scenario=case.scenario,
                            owner=agency_json(s, case.owner_uscc) or {}, sealed=case.sealed,
                            sealed_at=iso_time(case.sealed_timestamp), sealed_block=case.sealed_block,
                            seal_pending=self._seal_pending(s, case.case_key),
                            records=[self._view(s, r, case).to_json() for r in recs])

    def case_status(self, case_no: str) -> dict[str, Any]:
        """What the chain says about a case anyway (owner, sealed, number of records); public."""
        with self.node.db.session() as s:
            case = self._case(s, case_no)
            count = s.scalar(select(func.count()).select_from(EvidenceRecord).where(
                EvidenceRecord.case_key == case.case_key))
            return {"case_key": case.case_key, "scenario": case.scenario, "owner": agency_json(s, case.owner_uscc),
                    "sealed": case.sealed, "sealed_at": iso_time(case.sealed_timestamp),
                    "seal_pending": self._seal_pending(s, case.case_key), "records": int(count or 0)}

    def custody_status(self, record_id: str) -> dict[str, Any]:
        """Public: who holds a record and who it is offered to (what the chain shows)."""
        with self.node.db.session() as s:
            rec = self._record(s, record_id)
            case = s.get(EvidenceCase, rec.case_key)
            assert case is not None
            return {"id": rec.id, "status": rec.status, "collector": agency_json(s, rec.collector_uscc),
                    "custodian": agency_json(s, rec.custodian_uscc), "pending_transfer_to": agency_json(s, rec.pending_to),
                    "case_owner": agency_json(s, case.owner_uscc), "case_sealed": case.sealed}

    # -- verification --------------------------------------------------------------------------------
    def verify(self, *, sha256: str, sm3: str | None = None, size: int | None = None, record_id: str | None = None,
               case_no: str | None = None) -> VerifyResult:
        """Is this file (given by its digests) what was registered? With `record_id` (or `case_no`) it must
        match that record (or one of the case's records); without, it is looked up by digest."""
        sha = normalise_digest(sha256, "sha256")
        sm = normalise_digest(sm3, "sm3") if sm3 is not None else None
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ValidationError(f"size must be a non-negative integer, got {size!r}", code="invalid_size")
        rec: EvidenceRecord | None
        with self.node.db.session() as s:
            if record_id:
                rec = self._record(s, record_id)
            elif case_no:
                case = self._case(s, case_no)
                recs = s.scalars(select(EvidenceRecord).where(EvidenceRecord.case_key == case.case_key)
                                 .order_by(EvidenceRecord.id)).all()
                rec = next((r for r in recs if r.sha256 == sha), None)
                if rec is None:
                    views = [self._view(s, r, case).public() for r in recs]
                    return VerifyResult(
                        "altered",
                        f"the file matches none of the {len(recs)} records of this case (sha256 {sha[:16]}...)",
                        f"该文件与本案 {len(recs)} 条存证记录均不一致，可能已被篡改", [
                            _check("content", "INVALID", f"sha256 {sha} is not the digest of any record of the case")],
                        candidates=views, differences=["sha256"])
            else:
                rec = s.scalars(select(EvidenceRecord).where(EvidenceRecord.sha256 == sha, EvidenceRecord.status != "failed")
                                .order_by(EvidenceRecord.created_at)).first()
                if rec is None:
                    return VerifyResult("unknown", f"no evidence record has sha256 {sha}",
                                        "未找到与该文件摘要一致的存证记录", [
                                            _check("lookup", "INVALID", "no record with this SHA-256")])
            case_row = s.get(EvidenceCase, rec.case_key)
            assert case_row is not None
            view = self._view(s, rec, case_row)
            metadata = evidence_metadata(rec, case_row.case_no)
        return self._verdict(view, metadata, sha, sm, size)

    def _verdict(self, view: EvidenceView, metadata: dict[str, Any], sha: str, sm: str | None,
                 size: int | None) -> VerifyResult:
        record = view.public()
        checks: list[dict[str, Any]] = []
        try:
            on_chain = self._ledger().get_record(bytes.fromhex(view.key[2:]))
        except (ChainError, OSError) as exc:
            return VerifyResult("cannot_verify", f"the chain is unreachable ({exc}); nothing can be concluded",
                                "区块链节点不可用，无法核验", [_check("anchoring", "SKIPPED", f"chain unreachable: {exc}")],
                                record=record)
        if on_chain is None:
            return VerifyResult("not_anchored", f"{view.id} is {view.status} and not on chain",
                                f"存证 {view.id} 尚未上链", [_check("anchoring", "INVALID", "no such record on chain")],
                                record=record)
        checks.append(_check("anchoring", "VALID", f"registered in block {on_chain.registered_block} by "
                                                   f"{on_chain.collector_uscc}"))
        log_proof = f"/api/v1/proofs/inclusion?ledger=evidence&key={view.key}"
        expected_meta = metadata_digest(metadata)
        registry_ok = (hex0x(on_chain.meta_digest) == expected_meta and on_chain.sha256.hex() == view.content["sha256"]
                       and on_chain.sm3.hex() == view.content["sm3"] and on_chain.size == view.content["size"])
        checks.append(_check("registry", "VALID" if registry_ok else "INVALID",
                             "the registry's row matches the on-chain digests" if registry_ok else
                             "the registry's row no longer matches what was anchored (metaDigest or digests differ)"))
        # the file is compared with the chain's digests: the chain is authoritative, not the database
        differences: list[str] = []
        details = []
        if on_chain.sha256.hex() != sha:
            differences.append("sha256")
            details.append(f"SHA-256 differs: registered {on_chain.sha256.hex()}, file {sha}")
        if sm is not None and on_chain.sm3.hex() != sm:
            differences.append("sm3")
            details.append(f"SM3 differs: registered {on_chain.sm3.hex()}, file {sm}")
        if size is not None and on_chain.size != size:
            differences.append("size")
            details.append(f"size differs: registered {on_chain.size} bytes, file {size} bytes")
        for name, given in (("sha256", sha), ("sm3", sm), ("size", size)):
            status = "SKIPPED" if given is None else ("INVALID" if name in differences else "VALID")
            checks.append(_check(name, status, "not supplied" if given is None else
                                 ("differs from the registered value" if status == "INVALID" else "matches")))
        collector = view.collector.get("short_name") or view.collector["uscc"]
        collected_at = iso_time(on_chain.timestamp)
        custody = " -> ".join(c.get("short_name") or c["uscc"] for c in view.custody_chain) or collector
        custody_zh = " → ".join(c.get("short_name") or c["uscc"] for c in view.custody_chain) or collector
        sealed = f"; sealed at {view.case_sealed_at}" if view.case_sealed else "; case not sealed"
        sealed_zh = f"；已于 {view.case_sealed_at} 封存" if view.case_sealed else "；案件未封存"
        correction = f"; superseded by {view.superseded_by}" if view.superseded_by else ""
        if differences:
            return VerifyResult("altered", f"exhibit {view.id} does NOT match the file: " + "; ".join(details),
                                f"证据 {view.id} 与该文件不一致（{'、'.join(differences)} 不同），文件已被改动", checks,
                                record=record, differences=differences, log_proof=log_proof)
        if not registry_ok:
            return VerifyResult("tampered", f"the file matches the chain, but the registry's copy of {view.id} was "
                                            f"edited after anchoring", f"文件与链上一致，但登记库中的 {view.id} 记录已被改动",
                                checks, record=record, log_proof=log_proof)
        return VerifyResult(
            "unaltered",
            f"exhibit {view.id}, unaltered since collection at {collected_at} by {collector}; custody {custody}"
            f"{sealed}{correction}",
            f"证据 {view.id} 自 {collected_at} 由 {collector} 采集以来未被篡改；保管链：{custody_zh}{sealed_zh}"
            + (f"；已被 {view.superseded_by} 更正" if view.superseded_by else ""),
            checks, record=record, log_proof=log_proof)


def audit_records(session: Session) -> Iterable[LedgerRecord]:
    """Evidence for the auditor: one entry per record; key = sha256(id), digest = the metaDigest recomputed
    from the row (so an edited row shows as a digest mismatch), anchored = its register step is done."""
    rows = session.execute(
        select(EvidenceRecord, EvidenceCase.case_no, EvidenceEvent.state, EvidenceEvent.block_number,
               EvidenceEvent.tx_hash)
        .join(EvidenceCase, EvidenceCase.case_key == EvidenceRecord.case_key)
        .outerjoin(EvidenceEvent, (EvidenceEvent.record_id == EvidenceRecord.id) & (EvidenceEvent.kind == "register"))
        .order_by(EvidenceRecord.created_at, EvidenceRecord.id))
    for rec, case_no, state, block, tx in rows:
        yield LedgerRecord("evidence", rec.id, rec.key, metadata_digest(evidence_metadata(rec, case_no)), rec.status,
                           state == StepState.DONE.value, block, tx)


__all__ = [
    "Acquisition",
    "CaseView",
    "EvidenceService",
    "EvidenceSubmission",
    "EvidenceView",
    "OutboxLedgerService",
    "OutboxWorker",
    "StepCall",
    "VerifyResult",
    "audit_records",
    "evidence_metadata",
    "metadata_digest",
]
