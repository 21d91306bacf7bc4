"""Evidence steps as outbox steps: register, transfer, accept, reject and seal, each an `EvidenceEvent` row
committed before its EvidenceLedger transaction. Sending, resuming, looking for a step's event before a
resend and reconciling are the outbox's (registry/outbox/steps.py); this module says what each step's
transaction is, which event proves it, and what it changes in the mirrored record or case. Also the
lookups every evidence operation starts from (a record, a case, whether a case is open).

    >>> steps = EvidenceSteps(node)                       # doctest: +SKIP
    >>> steps.try_now(step_id)                             # doctest: +SKIP
    True
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from chain.contracts import b32
from chain.ledgers import EvidenceLedgerClient
from registry.crypto.hashing import hex0x, sha256_key
from registry.errors import ConflictError, NotFoundError, ValidationError
from registry.evidence.inbox import drop_mirrored_step
from registry.evidence.views import OPEN_STEPS
from registry.outbox.inbox import hosted_agencies, is_mirrored_id, key_of, mirrored_id
from registry.outbox.steps import StepCall, StepLedger
from registry.store.ledger_models import EvidenceCase, EvidenceEvent, EvidenceRecord
from registry.store.rows import lock_row
from registry.store.seal_models import SealedSignature
from registry.validation import required_text

__all__ = ["EvidenceSteps"]


class EvidenceSteps(StepLedger):
    step_model = EvidenceEvent
    ledger_name = "evidence"
    contract_name = "EvidenceLedger"

    # -- outbox hooks --------------------------------------------------------------------------------
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
            s.execute(delete(SealedSignature).where(SealedSignature.record_kind == "evidence",
                                                    SealedSignature.record_id == record_id))
            s.delete(rec)
            s.flush()
        if not s.scalar(select(func.count()).select_from(EvidenceRecord).where(EvidenceRecord.case_key == case_key)):
            case = s.get(EvidenceCase, case_key)
            if case is not None:
                s.delete(case)

    def _created_row(self, s: Session, step: EvidenceEvent) -> EvidenceRecord | None:
        return s.get(EvidenceRecord, step.record_id) if step.kind == "register" else None

    def _on_lost(self, s: Session, step: EvidenceEvent) -> None:
        if step.actor_uscc not in hosted_agencies(self.node, s):
            drop_mirrored_step(s, step)  # signed on another node: never sent from here; the inbox restores it
            return
        super()._on_lost(s, step)

    # -- lookups -------------------------------------------------------------------------------------
    def _record(self, s: Session, record_id: str) -> EvidenceRecord:
        """A record by its identifier (EV-...) or, for a record known from the chain only, its id (the key's
        64 hex digits); an identifier whose SHA-256 is a mirrored record's key finds that record too."""
        if not isinstance(record_id, str) or len(record_id) > 64 or not (
                record_id.startswith("EV-") or is_mirrored_id(record_id)):
            raise ValidationError(f"not an evidence identifier: {str(record_id)[:80]!r} (expected EV-... or the "
                                  f"record's 64-hex key)", code="invalid_evidence_id")
        rec = s.get(EvidenceRecord, record_id)
        if rec is None and not is_mirrored_id(record_id):
            rec = s.get(EvidenceRecord, mirrored_id(key_of(record_id)))
            if rec is not None:  # the caller locked the identifier's row, which is not this one's id
                lock_row(s, EvidenceRecord.status, EvidenceRecord.id, rec.id)
        if rec is None:
            raise NotFoundError(f"no evidence record {record_id}", code="unknown_evidence")
        return rec

    def _case(self, s: Session, case_no: str) -> EvidenceCase:
        case_no = required_text(case_no, "case_no", "missing_case_no", max_length=200)
        case = s.get(EvidenceCase, hex0x(sha256_key(case_no)))
        if case is None and is_mirrored_id(case_no.lower().removeprefix("0x")) and case_no.startswith("0x"):
            case = s.get(EvidenceCase, case_no.lower())  # a case known from the chain only: its key stands in
        if case is None:
            raise NotFoundError(f"no evidence case {case_no}", code="unknown_case")
        return case

    def _check_case_open(self, s: Session, case: EvidenceCase | None) -> None:
        if case is None:
            return
        if case.sealed or self._seal_pending(s, case.case_key):
            raise ConflictError(f"case {case.case_no} is sealed: its records are frozen", code="case_sealed",
                                details={"case_no": case.case_no})

    def _seal_pending(self, s: Session, case_key: str) -> bool:
        return s.scalar(select(EvidenceEvent.id).where(EvidenceEvent.case_key == case_key, EvidenceEvent.kind == "seal",
                                                       EvidenceEvent.state.in_(OPEN_STEPS))) is not None

