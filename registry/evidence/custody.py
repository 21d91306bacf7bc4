"""Custody of evidence: transfer, accept, reject (one record or a whole case) and sealing a case, and who
holds a record as the chain shows it.

The EvidenceLedger contract is the authority on custody: the custodian, the pending recipient and the
case's seal are read from `getRecord`/`getCase`, both for the public status and for the custodian checks
here, so an edited database row can neither misreport custody nor lock the real custodian out (the
contract refuses a false one anyway). Only while the chain is unreachable do the checks fall back to the
registry's mirror; the step then waits in the outbox and the contract decides when it is sent.

    >>> service.transfer(POLICE, "EV-XZZF-20260315-000001", COURT, "移送审查起诉")   # doctest: +SKIP
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chain.contracts import MemberStatus, Role
from chain.errors import ChainError
from registry.clock import iso_time
from registry.consortium.roles import agency_json, require_role
from registry.crypto.hashing import canonical_digest, hex0x
from registry.errors import ConflictError, PermissionDeniedError, ValidationError
from registry.evidence.steps import EvidenceSteps
from registry.evidence.views import OPEN_STEPS, CaseView, EvidenceView
from registry.identifiers import validate_uscc
from registry.store.db import Member
from registry.store.ledger_models import EvidenceCase, EvidenceEvent, EvidenceRecord
from registry.store.rows import lock_row
from registry.validation import normalise_digest, optional_text, required_text

__all__ = ["Custody", "EvidenceCustody"]


@dataclass(frozen=True)
class Custody:
    """Who holds a record and who it is offered to; `source` says whether the chain said so (`chain`) or,
    the record not being on chain yet or the chain unreachable, the registry's mirror (`registry`)."""

    custodian: str
    pending_to: str | None
    source: str


class EvidenceCustody(EvidenceSteps):
    """Custody operations; `EvidenceService` (service.py) adds registration, reads and verification."""

    @abstractmethod
    def get(self, agency: str | None, record_id: str) -> EvidenceView:
        """A record as `agency` may see it (service.py)."""

    @abstractmethod
    def case(self, agency: str | None, case_no: str) -> CaseView:
        """A case and its records as `agency` may see them (service.py)."""

    # -- custody as the chain shows it ---------------------------------------------------------------
    def custody_of(self, recs: Sequence[EvidenceRecord]) -> dict[str, Custody]:
        """The custody of each record, from EvidenceLedger.getRecord (the mirror where the chain has none)."""
        out = {r.id: Custody(r.custodian_uscc, r.pending_to, "registry") for r in recs}
        ledger = self._ledger()
        try:
            for rec in recs:
                if rec.status != "registered":
                    continue
                state = ledger.get_record(bytes.fromhex(rec.key[2:]))
                if state is not None:
                    out[rec.id] = Custody(state.custodian_uscc, state.pending_to, "chain")
        except (ChainError, OSError):
            pass  # unreachable: the mirror stands in; the contract checks the step when it is sent
        return out

    def custody_status(self, record_id: str) -> dict[str, Any]:
        """Public: who holds a record and who it is offered to, and its case's owner and seal, as the chain
        shows them (`source` is `registry` only while the record is not on chain or the chain is down)."""
        with self.node.db.session() as s:
            rec = self._record(s, record_id)
            case = s.get(EvidenceCase, rec.case_key)
            assert case is not None
            out = {"id": rec.id, "status": rec.status, "collector": agency_json(s, rec.collector_uscc),
                   "custodian": agency_json(s, rec.custodian_uscc), "pending_transfer_to": agency_json(s, rec.pending_to),
                   "case_owner": agency_json(s, case.owner_uscc), "case_sealed": case.sealed,
                   "case_sealed_at": iso_time(case.sealed_timestamp), "source": "registry"}
            if rec.status != "registered":
                return out
            ledger = self._ledger()
            try:
                state = ledger.get_record(bytes.fromhex(rec.key[2:]))
                on_case = ledger.get_case(bytes.fromhex(rec.case_key[2:]))
            except (ChainError, OSError):
                return out  # the chain is unreachable: the mirror, marked as such
            if state is None:  # registered in the mirror, unknown to the chain: lost in a reset, or edited
                return {**out, "status": "not_on_chain", "source": "chain"}
            sealed_at = case.sealed_timestamp if on_case.sealed and case.sealed_block == on_case.sealed_block else None
            return {**out, "collector": agency_json(s, state.collector_uscc),
                    "custodian": agency_json(s, state.custodian_uscc),
                    "pending_transfer_to": agency_json(s, state.pending_to),
                    "case_owner": agency_json(s, on_case.owner_uscc), "case_sealed": on_case.sealed,
                    "case_sealed_at": iso_time(sealed_at), "source": "chain"}

    # -- custody steps -------------------------------------------------------------------------------
    def _ready_for_custody(self, s: Session, rec: EvidenceRecord) -> EvidenceCase:
        if rec.status != "registered":
            raise ConflictError(f"{rec.id} is {rec.status}, not registered on chain yet", code="not_registered_yet")
        if s.scalar(select(EvidenceEvent.id).where(EvidenceEvent.record_id == rec.id,
                                                   EvidenceEvent.state.in_(OPEN_STEPS))) is not None:
            raise ConflictError(f"a custody step of {rec.id} is still being anchored; retry shortly",
                                code="step_in_progress")
        case = s.get(EvidenceCase, rec.case_key)
        self._check_case_open(s, case)
        assert case is not None
        return case

    def _transfer_step(self, s: Session, agency: str, rec: EvidenceRecord, to: str, purpose: str,
                       rechecked: bool) -> EvidenceEvent:
        self._ready_for_custody(s, rec)
        custody = self.custody_of([rec])[rec.id]
        if custody.custodian != agency:
            raise PermissionDeniedError(f"{rec.id} is held by {custody.custodian}; only the current custodian may "
                                        f"transfer it, not {agency}", code="not_custodian")
        if custody.pending_to:
            raise ConflictError(f"{rec.id} already has a transfer pending to {custody.pending_to}",
                                code="transfer_pending")
        step = EvidenceEvent(kind="transfer", record_id=rec.id, case_key=rec.case_key, actor_uscc=agency, to_uscc=to,
                             purpose=purpose, digest_rechecked=rechecked,
                             purpose_digest=hex0x(canonical_digest({"record": rec.id, "from": agency, "to": to,
                                                                    "purpose": purpose})))
        s.add(step)
        s.flush()
        return step

    def _recipient(self, s: Session, agency: str, to: str) -> str:
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
        with self.new_steps() as (s, claimed):
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
                                                     EvidenceEvent.state.in_(OPEN_STEPS))) is not None:
            raise ConflictError(f"a custody step of {rec.id} is still being anchored; retry shortly",
                                code="step_in_progress")
        custody = self.custody_of([rec])[rec.id]
        if not custody.pending_to:
            raise ConflictError(f"{rec.id} has no pending transfer", code="no_pending_transfer")
        if custody.pending_to != agency:
            raise PermissionDeniedError(f"the transfer of {rec.id} is addressed to {custody.pending_to}, not {agency}",
                                        code="not_recipient")
        step = EvidenceEvent(kind=kind, record_id=rec.id, case_key=rec.case_key, actor_uscc=agency,
                             to_uscc=custody.custodian, digest_rechecked=rechecked, purpose=note)
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
        with self.new_steps() as (s, claimed):
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
        with self.new_steps() as (s, claimed):
            lock_row(s, EvidenceRecord.status, EvidenceRecord.id, record_id)
            rec = self._record(s, record_id)
            claimed.append(self._answer_step(s, agency, rec, "reject", False, note).id)
        self.try_now(claimed[0])
        return self.get(None, record_id)

    def seal(self, agency: str, case_no: str) -> CaseView:
        """Seal a case (its owner only): afterwards no record of it can be added, transferred or accepted."""
        with self.new_steps() as (s, claimed):
            lock_row(s, EvidenceCase.sealed, EvidenceCase.case_no, str(case_no).strip())
            require_role(s, agency, Role.EVIDENCE, "missing_evidence_role")
            case = self._case(s, case_no)
            if case.owner_uscc != agency:
                raise PermissionDeniedError(f"case {case.case_no} belongs to {case.owner_uscc}; only its owner may seal it",
                                            code="not_case_owner")
            self._check_case_open(s, case)
            earlier = s.scalar(select(EvidenceEvent.id).where(EvidenceEvent.case_key == case.case_key,
                                                              EvidenceEvent.state.in_(OPEN_STEPS)))
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
        with self.new_steps() as (s, claimed):
            lock_row(s, EvidenceCase.sealed, EvidenceCase.case_no, str(case_no).strip())
            require_role(s, agency, Role.EVIDENCE, "missing_evidence_role")
            case = self._case(s, case_no)
            self._check_case_open(s, case)
            recipient = self._recipient(s, agency, to)
            registered = s.scalars(select(EvidenceRecord).where(
                EvidenceRecord.case_key == case.case_key, EvidenceRecord.status == "registered")
                .order_by(EvidenceRecord.id)).all()
            custody = self.custody_of(registered)
            held = [r for r in registered if custody[r.id].custodian == agency and custody[r.id].pending_to is None]
            if not held:
                raise ConflictError(f"agency {agency} holds no transferable record of case {case.case_no}",
                                    code="nothing_to_transfer")
            claimed.extend(self._transfer_step(s, agency, rec, recipient, purpose_text, False).id for rec in held)
            case_no = case.case_no
        self.try_pipelined(list(claimed))
        return self.case(None, case_no)

    def accept_case(self, agency: str, case_no: str) -> CaseView:
        """Accept every transfer of a case pending to the agency, pipelined."""
        with self.new_steps() as (s, claimed):
            lock_row(s, EvidenceCase.sealed, EvidenceCase.case_no, str(case_no).strip())
            require_role(s, agency, Role.EVIDENCE, "missing_evidence_role")
            case = self._case(s, case_no)
            self._check_case_open(s, case)
            registered = s.scalars(select(EvidenceRecord).where(
                EvidenceRecord.case_key == case.case_key, EvidenceRecord.status == "registered")
                .order_by(EvidenceRecord.id)).all()
            custody = self.custody_of(registered)
            offered = [r for r in registered if custody[r.id].pending_to == agency]
            if not offered:
                raise ConflictError(f"no transfer of case {case.case_no} is pending to {agency}",
                                    code="no_pending_transfer")
            claimed.extend(self._answer_step(s, agency, rec, "accept", False, None).id for rec in offered)
            case_no = case.case_no
        self.try_pipelined(list(claimed))
        return self.case(None, case_no)

    # -- reads ---------------------------------------------------------------------------------------
