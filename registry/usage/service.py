"""Usage records (用证记录): an agency handling a matter records that it used a certificate, with the holder's
consent — a holder-signed grant naming the agency (授权他人用证) or the holder's in-person presentation — on the
UsageLedger (contracts/UsageLedger.sol). The consent is checked here first (registry/usage/consent.py: the grant's
signature, scope, validity and its anchor on the GrantRegistry), so a usage without a valid consent is refused
before any chain write; the contract checks the grant again.

On chain: the usage id (SHA-256 of its identifier ``UR-<yyyymmdd>-<serial>``), the document digest, the grant
digest or the presentation digest, and a salted RFC 8785 digest of the usage (`usage_metadata`), so the matter
text (申请事由) stays off chain but provable. The row is its own outbox step (registry/outbox/steps.py).

    >>> svc = UsageService(node, consent=ConsentChecker(node))                            # doctest: +SKIP
    >>> svc.record("11230000MB1A00044B", UsageSubmission(certificate=digest, purpose="办理企业开办",
    ...            grant=grant_json)).status                                               # doctest: +SKIP
    'recorded'
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from chain.contracts import MemberStatus
from chain.ledgers import ZERO32
from chain.usage import UsageLedgerClient
from registry.audit.records import LedgerRecord
from registry.clock import CHINA, iso_time
from registry.consortium.roles import agency_json, is_auditor
from registry.crypto.hashing import canonical_digest, hex0x, sha256_key
from registry.errors import NotFoundError, PermissionDeniedError, ValidationError
from registry.node import Node
from registry.outbox.inbox import hosted_agencies, is_mirrored_id
from registry.outbox.steps import StepCall, StepLedger
from registry.store.db import Certificate, Member
from registry.store.holder_models import GrantRow
from registry.store.rows import next_serial
from registry.store.states import StepState
from registry.store.usage_models import UsageRecord
from registry.usage.consent import Consent, ConsentChecker
from registry.validation import optional_text, required_text

__all__ = ["UsageService", "UsageSubmission", "UsageView", "audit_records", "usage_metadata"]

CHANNELS = ("grant", "presentation", "fetch")
MAX_PURPOSE = 2000


@dataclass(frozen=True)
class UsageSubmission:
    certificate: str | None  # the GB/T 36904 identifier or the document digest (64 hex)
    purpose: str | None  # the matter (申请事由)
    grant: Any = None  # the holder-signed grant (JSON object), or
    presentation: Any = None  # the holder's signed presentation over a challenge this node issued
    operator_id: str | None = None


@dataclass(frozen=True)
class UsageView:
    id: str
    key: str
    agency: dict[str, Any]
    certificate: dict[str, Any]
    channel: str
    grant: dict[str, Any] | None
    presentation_digest: str | None
    purpose: str
    purpose_digest: str
    status: str
    used_at: str | None  # the block time of the usage
    anchor: dict[str, Any] | None
    created_at: str
    error: str | None = None
    mirrored: bool = False  # recorded on another node: the matter text is not here

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def usage_metadata(u: UsageRecord) -> dict[str, Any]:
    """The usage whose RFC 8785 digest is the on-chain purposeDigest (salted: the matter may name people)."""
    return {"format": "lianzheng-usage/1", "id": u.ref, "agency": u.agency_uscc, "certificate": u.certificate_doc,
            "channel": u.channel, "grant": u.grant_digest, "presentation": u.presentation_digest,
            "purpose": u.purpose, "operator_id": u.operator_id, "salt": u.salt}


class UsageService(StepLedger):
    step_model = UsageRecord
    ledger_name = "usage"
    contract_name = "UsageLedger"

    def __init__(self, node: Node, *, consent: ConsentChecker | None = None) -> None:
        super().__init__(node)
        self.consent = consent or ConsentChecker(node)

    # -- outbox hooks --------------------------------------------------------------------------------
    def _ledger(self) -> UsageLedgerClient:
        return self.node.client(UsageLedgerClient)

    def _call_for(self, s: Session, step: UsageRecord) -> StepCall:
        key = bytes.fromhex(step.key[2:])
        fn = self._ledger().record_fn(key, bytes.fromhex(step.certificate_doc[2:]), _b32(step.grant_digest),
                                      _b32(step.presentation_digest), bytes.fromhex(step.purpose_digest[2:]))
        return StepCall(step.id, step.agency_uscc, key, fn, UsageLedgerClient.GAS["record"], "UsageRecorded", {},
                        step.tx_hash)

    def _apply_mirror(self, s: Session, step: UsageRecord) -> None:
        step.status = "recorded"

    def _discard(self, s: Session, step: UsageRecord) -> None:
        s.delete(step)

    def _created_row(self, s: Session, step: UsageRecord) -> UsageRecord:
        return step

    def _on_lost(self, s: Session, step: UsageRecord) -> None:
        if step.agency_uscc not in hosted_agencies(self.node, s):
            s.delete(step)  # recorded on another node: never sent from here; the inbox restores it
            return
        super()._on_lost(s, step)

    # -- writes --------------------------------------------------------------------------------------
    def record(self, agency: str, sub: UsageSubmission, *, channel: str = "grant",
               checked: Consent | None = None) -> UsageView:
        """Record a usage by `agency` after checking the holder's consent (nothing is stored if it fails).
        `checked`: a consent the caller already verified for this very request (the 免证办 fetch)."""
        self._ledger()  # DeploymentError (503) before anything is checked or stored: no UsageLedger deployed
        purpose = required_text(sub.purpose, "purpose", "missing_purpose", max_length=MAX_PURPOSE)
        operator = optional_text(sub.operator_id, "operator_id", max_length=64)
        if checked is None:
            if (sub.grant is None) == (sub.presentation is None):
                raise ValidationError("a usage needs the holder's consent: exactly one of grant (授权) or "
                                      "presentation (当面出示)", code="missing_consent")
            certificate = self.consent.certificate(sub.certificate)
            checked = (self.consent.check_grant(agency, certificate, sub.grant) if sub.grant is not None
                       else self.consent.check_presentation(agency, certificate, sub.presentation))
            channel = "grant" if sub.grant is not None else "presentation"
        if channel not in CHANNELS:
            raise ValidationError(f"unknown usage channel {channel!r}", code="invalid_channel")
        self._require_member(agency)

        def work(s: Session) -> int:
            prefix = f"UR-{dt.datetime.now(CHINA):%Y%m%d}"
            ref = f"{prefix}-{next_serial(s, prefix):06d}"
            # the same grant may serve several matters and fetches until it expires: each use is one record
            u = UsageRecord(ref=ref, key=hex0x(sha256_key(ref)), agency_uscc=agency,
                            certificate_doc=checked.certificate.doc, certificate_id=checked.certificate.identifier,
                            channel=channel, grant_digest=checked.grant_digest, grant=checked.grant,
                            presentation_digest=checked.presentation_digest, presentation=checked.presentation,
                            holder_key_id=checked.holder_key_id, purpose=purpose, operator_id=operator,
                            salt=secrets.token_hex(16), purpose_digest="", status="pending")
            u.purpose_digest = hex0x(canonical_digest(usage_metadata(u)))
            s.add(u)
            s.flush()
            return int(u.id)

        step_id: int | None = None
        try:
            with self.node.db.session() as s:
                step_id = work(s)
                s.flush()
                self._claim([step_id])
        except BaseException:
            if step_id is not None:
                self._release([step_id])
            raise
        self.try_now(step_id)
        return self.get(agency, step_id)

    def _require_member(self, agency: str) -> None:
        with self.node.db.session() as s:
            m = s.get(Member, agency)
            if m is None or m.status != int(MemberStatus.ACTIVE):
                raise PermissionDeniedError(f"agency {agency} is not an active consortium member",
                                            code="member_not_active")

    # -- reads ---------------------------------------------------------------------------------------
    def get(self, agency: str | None, usage: int | str) -> UsageView:
        with self.node.db.session() as s:
            u = self._find(s, usage)
            if agency is not None and agency != u.agency_uscc and not is_auditor(s, agency):
                raise PermissionDeniedError(f"agency {agency} did not record usage {u.ref}", code="not_a_party")
            return self._view(s, u)

    @staticmethod
    def _find(s: Session, usage: int | str) -> UsageRecord:
        if isinstance(usage, int):
            u = s.get(UsageRecord, usage)
        else:
            if not isinstance(usage, str) or len(usage) > 64 or not (usage.startswith("UR-") or is_mirrored_id(usage)):
                raise ValidationError(f"not a usage identifier: {str(usage)[:80]!r} (expected UR-... or the usage's "
                                      f"64-hex key)", code="invalid_usage_id")
            u = s.scalar(select(UsageRecord).where(UsageRecord.ref == usage))
        if u is None:
            raise NotFoundError(f"no usage {usage}", code="unknown_usage")
        return u

    def _view(self, s: Session, u: UsageRecord) -> UsageView:
        grant = None
        if u.grant_digest is not None:
            g = u.grant or {}
            grant = {"digest": u.grant_digest, "id": g.get("id"), "purpose": g.get("purpose"),
                     "expires": g.get("expires"), "not_before": g.get("not_before")}
        return UsageView(
            id=u.ref, key=u.key, agency=agency_json(s, u.agency_uscc) or {},
            certificate={"digest": u.certificate_doc, "identifier": u.certificate_id},
            channel=u.channel, grant=grant, presentation_digest=u.presentation_digest, purpose=u.purpose,
            purpose_digest=u.purpose_digest, status=u.status, used_at=iso_time(u.block_timestamp),
            anchor=u.anchor_json(), created_at=u.created_at.isoformat() + "Z",
            error=u.error if u.state == StepState.FAILED.value else None, mirrored=is_mirrored_id(u.ref))

    def search(self, agency: str | None, *, certificate: str | None = None, holder_key_id: str | None = None,
               docs: Iterable[str] | None = None, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """Usages: those the agency recorded (every usage for an auditor; every one when `agency` is None, for
        the holder's own view filtered by `holder_key_id` / `docs`), newest first."""
        if not 1 <= limit <= 1000 or offset < 0:
            raise ValidationError("limit must be 1..1000 and offset >= 0", code="invalid_page")
        with self.node.db.session() as s:
            q = select(UsageRecord).where(UsageRecord.status != "failed")
            if agency is not None and not is_auditor(s, agency):
                q = q.where(UsageRecord.agency_uscc == agency)
            if certificate:
                doc = self.consent.certificate(certificate).doc
                q = q.where(UsageRecord.certificate_doc == doc)
            if holder_key_id is not None or docs is not None:
                conds: list[ColumnElement[bool]] = []
                owned = list(docs or [])
                if owned:
                    conds.append(UsageRecord.certificate_doc.in_(owned))
                if holder_key_id is not None:
                    conds.append(UsageRecord.holder_key_id == holder_key_id)
                q = q.where(or_(*conds))
            total = s.scalar(select(func.count()).select_from(q.subquery()))
            rows = s.scalars(q.order_by(UsageRecord.id.desc()).limit(limit).offset(offset)).all()
            return {"count": int(total or 0), "limit": limit, "offset": offset,
                    "usages": [self._view(s, u).to_json() for u in rows]}

    def of_holder(self, holder_key_id: str, *, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """What the holder sees: every usage of a certificate bound to their key or granted with it — who used
        which certificate, when and why (the matter text where the usage was recorded on this node)."""
        with self.node.db.session() as s:
            docs = {"0x" + d for d in s.scalars(select(Certificate.digest_sha256).where(
                Certificate.holder_key_digest == holder_key_id))}
            docs |= {"0x" + d for d in s.scalars(select(GrantRow.certificate_digest).where(
                GrantRow.holder_key_digest == holder_key_id))}
        return self.search(None, holder_key_id=holder_key_id, docs=sorted(docs), limit=limit, offset=offset)


def _b32(hex_value: str | None) -> bytes:
    return bytes.fromhex(hex_value[2:]) if hex_value else ZERO32


def audit_records(session: Session) -> Iterable[LedgerRecord]:
    """Usages for the auditor: key = sha256(id), digest = the purposeDigest recomputed from the row (the
    chain's for a usage recorded on another node), anchored = its step is done."""
    for u in session.scalars(select(UsageRecord).order_by(UsageRecord.id)):
        digest = u.purpose_digest if is_mirrored_id(u.ref) else hex0x(canonical_digest(usage_metadata(u)))
        yield LedgerRecord("usage", u.ref, u.key, digest, u.status, u.state == StepState.DONE.value, u.block_number,
                           u.tx_hash)

