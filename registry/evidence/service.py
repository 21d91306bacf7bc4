"""Evidence records (存证公正链, 区块链+法治): register file digests, read records and cases, and verify a
file against what was registered. Custody (transfer, accept, reject, seal) is in custody.py, the steps'
transactions in steps.py, the values and views in views.py, the verdict in verification.py.

What goes on chain (EvidenceLedger): sha256(identifier) as the record id, sha256(case number) as the case
id, the content's SHA-256 and SM3 digests and size, and `metaDigest` = SHA-256 of the RFC 8785 canonical
JSON of the off-chain metadata (views.py: `evidence_metadata`).

Every step is an outbox row committed before its transaction (DESIGN.md, Durability). The request tries
to send it at once; if the chain is down the row stays `pending` and the outbox worker sends it later. A
contract refusal on the first attempt deletes what the request stored (nothing is kept), a refusal on a
resend marks the step `failed` with the reason.

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
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chain.contracts import Role
from registry.audit.records import LedgerRecord
from registry.clock import CHINA, iso_time
from registry.consortium.roles import agency_json, is_auditor, require_role
from registry.crypto.hashing import hex0x, sha256_key
from registry.errors import (
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RegistryError,
    ValidationError,
)
from registry.evidence.custody import EvidenceCustody
from registry.evidence.verification import SealCheck, verdict
from registry.evidence.views import (
    Acquisition,
    CaseView,
    EvidenceSubmission,
    EvidenceView,
    Prepared,
    VerifyResult,
    build_view,
    check,
    evidence_metadata,
    metadata_digest,
)
from registry.node import Node
from registry.outbox.inbox import is_mirrored_id
from registry.store.db import Member
from registry.store.ledger_models import EvidenceCase, EvidenceEvent, EvidenceRecord
from registry.store.rows import next_serial
from registry.store.states import StepState
from registry.validation import normalise_digest, optional_text, required_text

__all__ = [
    "MAX_BATCH",
    "Acquisition",
    "RecordSealer",
    "CaseView",
    "EvidenceService",
    "EvidenceSubmission",
    "EvidenceView",
    "VerifyResult",
    "audit_records",
    "evidence_metadata",
    "metadata_digest",
]

MAX_TOKEN_BYTES = 64 * 1024  # an RFC 3161 TimeStampToken is a few KB; refuse anything absurd
MAX_BATCH = 1000
_MEDIA_TYPE = re.compile(r"[a-z]+/[a-z0-9.+-]+")
_MAX_SAFE_INT = 2**53 - 1  # RFC 8785 §3.2.2.3: larger integers do not round-trip through I-JSON


class RecordSealer(Protocol):
    """Sealing (用章) at registration (registry/seals/sealing.py `Sealer`): `prepare` refuses an unusable seal
    before anything is stored; `store` writes the records' sealed signatures in the registering unit of work."""

    def prepare(self, agency: str, seal_id: str) -> Any: ...

    def store(self, s: Session, ready: Any, docs: Sequence[tuple[str, bytes, bytes]], *, kind: str = ...) -> None: ...


class EvidenceService(EvidenceCustody):
    def __init__(self, node: Node, *, sealer: RecordSealer | None = None, seal_check: SealCheck | None = None) -> None:
        super().__init__(node)
        self.sealer = sealer
        self.seal_check = seal_check
        self.scenario_codes: dict[str, str] = {}
        for t in node.seeds.evidence_types:  # 行政执法 -> XZZF: the prefix of the scenario's type codes
            self.scenario_codes.setdefault(t.scenario, t.code.split("-")[0])

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
    def _prepare(self, sub: EvidenceSubmission) -> Prepared:
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
        return Prepared(
            case_no=case_no, scenario=scenario, type_code=type_code, sha256=normalise_digest(sub.sha256, "sha256"),
            sm3=normalise_digest(sub.sm3, "sm3"), size=sub.size, media_type=media_type, authority=authority,
            legal_basis=legal_basis, operator_id=operator,
            filename=optional_text(sub.filename, "filename", max_length=255),
            description=optional_text(sub.description, "description", max_length=2000),
            acquisition=Acquisition.from_json(sub.acquisition), token=token, supersedes=supersedes,
            correction_reason=reason)

    def _reserve_id(self, s: Session, p: Prepared) -> str:
        """The record's identifier; reserving its serial is the unit of work's first write (see lock_row)."""
        prefix = f"EV-{self.scenario_codes[p.scenario]}-{dt.datetime.now(CHINA):%Y%m%d}"
        return f"{prefix}-{next_serial(s, prefix):06d}"

    def _insert(self, s: Session, agency: str, member: Member, p: Prepared, seen: set[tuple[str, str]],
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
            if agency not in (old.collector_uscc, self.custody_of([old])[old.id].custodian):
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

    # -- writes --------------------------------------------------------------------------------------
    def register(self, agency: str, sub: EvidenceSubmission) -> EvidenceView:
        """Register one file's digests; returns the record (`pending` if the chain is unreachable)."""
        p = self._prepare(sub)
        ready = self._ready_seals(agency, [sub])
        with self.new_steps() as (s, claimed):
            record_id = self._reserve_id(s, p)
            member = require_role(s, agency, Role.EVIDENCE, "missing_evidence_role")
            step = self._insert(s, agency, member, p, set(), record_id)
            self._store_seals(s, ready, [(sub, p, record_id)])
            claimed.append(step.id)
        self.try_now(step.id)
        return self.get(None, record_id)

    def _ready_seals(self, agency: str, subs: Sequence[EvidenceSubmission]) -> Mapping[str, Any]:
        """Each seal the submissions name, ready to seal with — or a refusal before anything is stored (the same
        rules as for certificates: unknown, another agency's, suspended, revoked, expired, not yet valid)."""
        wanted = sorted({sub.seal for sub in subs if sub.seal is not None})
        if wanted and self.sealer is None:
            raise ValidationError("sealing is not available on this node", code="sealing_unavailable")
        ready: dict[str, Any] = {}
        for seal_id in wanted:
            assert self.sealer is not None
            try:
                ready[seal_id] = self.sealer.prepare(agency, seal_id)
            except RegistryError as exc:
                if len(subs) == 1:
                    raise
                index = next(i for i, sub in enumerate(subs) if sub.seal == seal_id)
                raise type(exc)(f"record {index}: {exc.message}", code=exc.code,
                                details={**exc.details, "index": index}) from exc
        return ready

    def _store_seals(self, s: Session, ready: Mapping[str, Any],
                     records: Sequence[tuple[EvidenceSubmission, Prepared, str]]) -> None:
        """The sealed signatures over each sealed record's content digests (SHA-256, SM3), with the records."""
        for seal_id, prepared in ready.items():
            docs = [(rid, bytes.fromhex(p.sha256), bytes.fromhex(p.sm3)) for sub, p, rid in records if sub.seal == seal_id]
            if docs and self.sealer is not None:
                self.sealer.store(s, prepared, docs, kind="evidence")

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
        ready = self._ready_seals(agency, subs)
        with self.new_steps() as (s, claimed):
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
            self._store_seals(s, ready, list(zip(subs, prepared, ids, strict=True)))
            claimed.extend(st.id for st in steps)
            pairs = [(st.id, st.record_id) for st in steps]
        refused = self.try_pipelined([sid for sid, _ in pairs])
        by_index = {i: refused[sid] for i, (sid, _) in enumerate(pairs) if sid in refused}
        with self.node.db.session() as s:
            recs = {r.id: r for r in s.scalars(select(EvidenceRecord).where(
                EvidenceRecord.id.in_([rid for sid, rid in pairs if sid not in refused])))}
            cases = {c.case_key: c for c in s.scalars(select(EvidenceCase).where(
                EvidenceCase.case_key.in_({r.case_key for r in recs.values()})))}
            views = [self._view(s, recs[rid], cases[recs[rid].case_key]) for sid, rid in pairs if rid in recs]
        return views, by_index

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
        return build_view(s, self.node.seeds, rec, case)


    SEARCH_ROLES = ("incoming", "held", "collected", "involved")

    def search(self, agency: str, *, role: str = "involved", limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """The records an agency deals with, newest first: transfers offered to it (`incoming`), records it
        holds (`held`), records it collected (`collected`), or all of these (`involved`). Records known from
        the chain only (offered by an agency of another node) are listed too (`mirrored`)."""
        if role not in self.SEARCH_ROLES:
            raise ValidationError(f"unknown role {role!r}: expected one of {', '.join(self.SEARCH_ROLES)}",
                                  code="invalid_role")
        if not 1 <= limit <= 1000 or offset < 0:
            raise ValidationError("limit must be 1..1000 and offset >= 0", code="invalid_page")
        conditions = {"incoming": EvidenceRecord.pending_to == agency, "held": EvidenceRecord.custodian_uscc == agency,
                      "collected": EvidenceRecord.collector_uscc == agency}
        where = conditions[role] if role != "involved" else (
            conditions["incoming"] | conditions["held"] | conditions["collected"])
        with self.node.db.session() as s:
            q = select(EvidenceRecord).where(where)
            total = s.scalar(select(func.count()).select_from(q.subquery()))
            recs = s.scalars(q.order_by(EvidenceRecord.created_at.desc(), EvidenceRecord.id.desc())
                             .limit(limit).offset(offset)).all()
            cases = {c.case_key: c for c in s.scalars(select(EvidenceCase).where(
                EvidenceCase.case_key.in_({r.case_key for r in recs})))}
            return {"count": int(total or 0), "limit": limit, "offset": offset,
                    "records": [self._view(s, r, cases[r.case_key]).to_json() for r in recs]}

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
                            check("content", "INVALID", f"sha256 {sha} is not the digest of any record of the case")],
                        candidates=views, differences=["sha256"])
            else:
                rec = s.scalars(select(EvidenceRecord).where(EvidenceRecord.sha256 == sha, EvidenceRecord.status != "failed")
                                .order_by(EvidenceRecord.created_at)).first()
                if rec is None:
                    return VerifyResult("unknown", f"no evidence record has sha256 {sha}",
                                        "未找到与该文件摘要一致的存证记录", [
                                            check("lookup", "INVALID", "no record with this SHA-256")])
            case_row = s.get(EvidenceCase, rec.case_key)
            assert case_row is not None
            view = self._view(s, rec, case_row)
            metadata = evidence_metadata(rec, case_row.case_no)
        return verdict(self._ledger(), view, metadata, sha, sm, size, seal_check=self.seal_check)


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
        # a record mirrored from another node has no metadata here: its digest is the chain's (the audit's
        # key check still ties the row to its key, and the content digests are compared column by column)
        digest = rec.meta_digest if is_mirrored_id(rec.id) else metadata_digest(evidence_metadata(rec, case_no))
        yield LedgerRecord("evidence", rec.id, rec.key, digest, rec.status, state == StepState.DONE.value, block, tx)

