"""Evidence records as values: what an agency submits (`EvidenceSubmission`, `Acquisition`), the off-chain
metadata whose RFC 8785 digest is the on-chain metaDigest, and what the API shows (`EvidenceView`,
`CaseView`, `VerifyResult`).

The metadata carries a random salt, so its digest is a hiding commitment: the low-entropy personal data in
it (the operator id) cannot be guessed back from the chain (DESIGN.md: "never personal data"). An auditor
recomputes the digest from the database row and compares.

    >>> Acquisition.from_json({"device": "执法记录仪 A-17"}).to_json()["device"]
    '执法记录仪 A-17'
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.clock import iso_time
from registry.consortium.roles import agency_json
from registry.crypto.hashing import canonical_digest, hex0x
from registry.errors import ValidationError
from registry.outbox.inbox import is_mirrored_id
from registry.seeds import Seeds
from registry.store.ledger_models import EvidenceCase, EvidenceEvent, EvidenceRecord
from registry.store.seal_models import SealedSignature
from registry.store.states import StepState
from registry.validation import optional_text

__all__ = [
    "METADATA_FORMAT",
    "Acquisition",
    "CaseView",
    "EvidenceSubmission",
    "EvidenceView",
    "Prepared",
    "VerifyResult",
    "build_view",
    "check",
    "evidence_metadata",
    "metadata_digest",
]

METADATA_FORMAT = "lianzheng-evidence/1"
OPEN_STEPS = (StepState.PENDING.value, StepState.SENT.value)

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
    seal: str | None = None  # issue the record under one of the agency's seals (用章, registry/seals/sealing.py)


@dataclass(frozen=True)
class Prepared:
    """A submission after validation (service.py `_prepare`)."""

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
    seal: str | None = None  # the seal the record was issued under (its sealed signature is kept beside it)
    # known from the chain only (registered on another node): the identifier, the case number and every
    # off-chain field are unknown here; `id` is the record's key without 0x
    mirrored: bool = False

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


def check(name: str, status: str, detail: str) -> dict[str, str]:
    return {"check": name, "status": status, "detail": detail}

def build_view(s: Session, seeds: Seeds, rec: EvidenceRecord, case: EvidenceCase) -> EvidenceView:
    """A record with its custody chain and log, as the registry's rows show it."""
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
    type_name = next((t.name for t in seeds.evidence_types if t.code == rec.type_code), rec.type_code)
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
        pending_steps=sum(1 for e in steps if e.state in OPEN_STEPS),
        error=register.error if register is not None and register.state == StepState.FAILED.value else None,
        mirrored=is_mirrored_id(rec.id),
        seal=s.scalar(select(SealedSignature.seal_id).where(SealedSignature.record_kind == "evidence",
                                                            SealedSignature.record_id == rec.id)),
    )
