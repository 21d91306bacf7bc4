"""Custody steps signed on other nodes, mirrored from EvidenceLedger events (registry/outbox/inbox.py).

What this node stores, and when:

* a record offered to an agency hosted here (CustodyTransferRequested to it) that the database does not know
  becomes a *mirrored* record: id = its key's hex (the identifier is not on chain), digests, size, metaDigest,
  collector, case and correction link as the chain has them, every off-chain field empty (no operator, no
  purpose text); its case, unless known, a mirrored case whose number is its key (only sha256(case_no) is
  on chain) and whose owner the chain names;
* every event about a record (or case) the database has, signed by an agency not hosted here, becomes a done
  step row (register, transfer, accept, reject, seal) with its transaction, block and signing account;
* a record's custodian and pending recipient (and a mirrored record's status, a case's seal) are then
  recomputed from its done steps in chain order, so replaying events, or dropping those a chain reset took
  away, leaves exactly what the remaining steps say.

A registration by another node that corrects a record known here sets that record's `superseded_by`.

    >>> EvidenceInbox(node).apply(events, hosted_agencies(node))   # doctest: +SKIP
    2
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from chain.contracts import unpad
from chain.ledgers import EvidenceLedgerClient
from chain.logs import Event
from registry.crypto.hashing import hex0x
from registry.node import Node
from registry.outbox.inbox import ChainFacts, is_mirrored_id, lost_steps, mirrored_id
from registry.store.db import Member
from registry.store.ledger_models import EvidenceCase, EvidenceEvent, EvidenceRecord
from registry.store.rows import lock_row
from registry.store.states import StepState

__all__ = ["EvidenceInbox", "drop_mirrored_step", "recompute_case", "recompute_record"]

_ZERO = bytes(32)
_KIND = {"EvidenceRegistered": "register", "CustodyTransferRequested": "transfer",
         "CustodyTransferAccepted": "accept", "CustodyTransferRejected": "reject", "CaseSealed": "seal"}


def _actor(e: Event) -> str:
    """The agency whose account signed the event's transaction (the contract derives it from msg.sender)."""
    field = {"EvidenceRegistered": "collectorUscc", "CustodyTransferRequested": "fromUscc",
             "CaseSealed": "ownerUscc"}.get(e.name, "toUscc")
    return unpad(e.args[field])


def recompute_record(s: Session, rec: EvidenceRecord) -> None:
    """Custody from the record's done steps in chain order; a mirrored record is registered while its
    registration is on chain."""
    s.flush()
    steps = s.scalars(select(EvidenceEvent).where(EvidenceEvent.record_id == rec.id,
                                                  EvidenceEvent.state == StepState.DONE.value)
                      .order_by(EvidenceEvent.block_number, EvidenceEvent.id)).all()
    custodian, pending, registered = rec.collector_uscc, None, False
    for st in steps:
        if st.kind == "register":
            registered = True
        elif st.kind == "transfer":
            pending = st.to_uscc
        elif st.kind == "accept":
            custodian, pending = st.actor_uscc, None
        elif st.kind == "reject":
            pending = None
    rec.custodian_uscc, rec.pending_to = custodian, pending
    if is_mirrored_id(rec.id):
        rec.status = "registered" if registered else "pending"


def recompute_case(s: Session, case: EvidenceCase) -> None:
    """A case is sealed while a seal step of it is on chain."""
    s.flush()
    seal = s.scalars(select(EvidenceEvent).where(EvidenceEvent.case_key == case.case_key, EvidenceEvent.kind == "seal",
                                                 EvidenceEvent.state == StepState.DONE.value)
                     .order_by(EvidenceEvent.block_number)).first()
    case.sealed = seal is not None
    case.sealed_block = seal.block_number if seal is not None else None
    case.sealed_timestamp = seal.block_timestamp if seal is not None else None


def drop_mirrored_step(s: Session, step: EvidenceEvent) -> None:
    """A mirrored step whose block is gone: delete it and recompute what it changed (the inbox stores it
    again if the chain has it again)."""
    record_id, case_key = step.record_id, step.case_key
    s.delete(step)
    s.flush()
    rec = s.get(EvidenceRecord, record_id) if record_id else None
    if rec is not None:
        recompute_record(s, rec)
    case = s.get(EvidenceCase, case_key)
    if case is not None:
        recompute_case(s, case)


class EvidenceInbox:
    contract_name = "EvidenceLedger"

    def __init__(self, node: Node) -> None:
        self.node = node

    def _ledger(self) -> EvidenceLedgerClient:
        return self.node.client(EvidenceLedgerClient)

    # -- a pass --------------------------------------------------------------------------------------
    def apply(self, events: Sequence[Event], hosted: frozenset[str]) -> int:
        by_record: dict[str, list[Event]] = {}
        seals: dict[str, list[Event]] = {}
        for e in events:
            if e.name == "CaseSealed":
                seals.setdefault(hex0x(e.args["caseId"]), []).append(e)
            elif e.name in _KIND:
                by_record.setdefault(hex0x(e.args["id"]), []).append(e)
        with self.node.db.session() as s:
            known = set(s.scalars(select(EvidenceRecord.key).where(EvidenceRecord.key.in_(list(by_record)))))
        added = 0
        for key, evs in by_record.items():
            if key in known:
                added += self._store(key, evs, hosted, create=False)
            elif any(e.name == "CustodyTransferRequested" and unpad(e.args["toUscc"]) in hosted for e in evs):
                history = self._ledger().events_for(bytes.fromhex(key[2:]),
                                                    from_block=self.node.require_deployment().first_block)
                added += self._store(key, history, hosted, create=True)
        if seals:
            with self.node.db.session() as s:
                cases = set(s.scalars(select(EvidenceCase.case_key).where(EvidenceCase.case_key.in_(list(seals)))))
            added += sum(self._store_seals(k, evs, hosted) for k, evs in seals.items() if k in cases)
        self._link_corrections(events, hosted)
        return added

    def _new_steps(self, s: Session, evs: Sequence[Event], hosted: frozenset[str],
                   where: ColumnElement[bool]) -> list[Event]:
        """The foreign events among `evs` no step row of this record/case holds yet (keyed by transaction)."""
        have = {str(h).lower() for h in s.scalars(select(EvidenceEvent.tx_hash).where(where))}
        return [e for e in evs if e.name in _KIND and _actor(e) not in hosted and e.tx_hash.lower() not in have]

    def _store(self, key: str, evs: Sequence[Event], hosted: frozenset[str], *, create: bool) -> int:
        register = next((e for e in evs if e.name == "EvidenceRegistered"), None)
        if create and register is None:
            return 0
        with self.node.db.session() as s:
            rec_id = s.scalar(select(EvidenceRecord.id).where(EvidenceRecord.key == key))
            fresh = self._new_steps(s, evs, hosted, EvidenceEvent.record_id == rec_id) if rec_id else [
                e for e in evs if e.name in _KIND and _actor(e) not in hosted]
        if not fresh and rec_id is not None:
            return 0
        facts = ChainFacts.read(self.node, fresh)
        owner = None
        if rec_id is None and register is not None:
            owner = self._ledger().get_case(bytes(register.args["caseId"])).owner_uscc
        with self.node.db.session() as s:
            rec = s.scalar(select(EvidenceRecord).where(EvidenceRecord.key == key))
            if rec is None:
                if register is None:
                    return 0
                rec = self._new_record(s, key, register, owner or unpad(register.args["collectorUscc"]))
            else:
                lock_row(s, EvidenceRecord.status, EvidenceRecord.id, rec.id)
            todo = self._new_steps(s, fresh, hosted, EvidenceEvent.record_id == rec.id)
            for e in todo:
                s.add(self._step(e, rec.id, rec.case_key, facts))
            recompute_record(s, rec)
            return len(todo)

    def _store_seals(self, case_key: str, evs: Sequence[Event], hosted: frozenset[str]) -> int:
        with self.node.db.session() as s:
            fresh = self._new_steps(s, evs, hosted, EvidenceEvent.case_key == case_key)
        if not fresh:
            return 0
        facts = ChainFacts.read(self.node, fresh)
        with self.node.db.session() as s:
            lock_row(s, EvidenceCase.sealed, EvidenceCase.case_key, case_key)
            case = s.get(EvidenceCase, case_key)
            if case is None:
                return 0
            todo = self._new_steps(s, fresh, hosted, EvidenceEvent.case_key == case_key)
            for e in todo:
                s.add(self._step(e, None, case_key, facts))
            recompute_case(s, case)
            return len(todo)

    def _new_record(self, s: Session, key: str, register: Event, owner: str) -> EvidenceRecord:
        a = register.args
        case_key = hex0x(a["caseId"])
        if s.get(EvidenceCase, case_key) is None:  # its number is not on chain: the key stands in for it
            s.add(EvidenceCase(case_key=case_key, case_no=case_key, scenario="", owner_uscc=owner, sealed=False))
        collector = unpad(a["collectorUscc"])
        member = s.get(Member, collector)
        supersedes = None
        if bytes(a["supersedes"]) != _ZERO:
            old = hex0x(a["supersedes"])
            supersedes = s.scalar(select(EvidenceRecord.id).where(EvidenceRecord.key == old)) or mirrored_id(old)
        rec = EvidenceRecord(
            id=mirrored_id(key), key=key, case_key=case_key, scenario="", type_code="", authority="", legal_basis="",
            collector_uscc=collector, collector_bid=member.bid if member is not None else "", operator_id="",
            sha256=bytes(a["sha256Digest"]).hex(), sm3=bytes(a["sm3Digest"]).hex(), size=int(a["size"]),
            media_type="", acquisition={}, supersedes=supersedes, salt="", meta_digest=hex0x(a["metaDigest"]),
            status="pending", custodian_uscc=collector, pending_to=None)
        s.add(rec)
        s.flush()
        return rec

    @staticmethod
    def _step(e: Event, record_id: str | None, case_key: str, facts: ChainFacts) -> EvidenceEvent:
        a, kind = e.args, _KIND[e.name]
        actor = _actor(e)
        to = None
        if kind == "transfer":
            to = unpad(a["toUscc"])
        elif kind in ("accept", "reject"):
            to = unpad(a["fromUscc"])
        return EvidenceEvent(kind=kind, record_id=record_id, case_key=case_key, actor_uscc=actor, to_uscc=to,
                             purpose=None, digest_rechecked=bool(a.get("digestRechecked", False)),
                             purpose_digest=hex0x(a["purposeDigest"]) if kind == "transfer" else None,
                             **facts.anchor(e))

    def _link_corrections(self, events: Sequence[Event], hosted: frozenset[str]) -> None:
        """Another node's correction of a record known here links it (`superseded_by`), as on chain."""
        links = [(hex0x(e.args["supersedes"]), hex0x(e.args["id"])) for e in events
                 if e.name == "EvidenceRegistered" and bytes(e.args["supersedes"]) != _ZERO and _actor(e) not in hosted]
        if not links:
            return
        with self.node.db.session() as s:
            for old_key, new_key in links:
                old = s.scalar(select(EvidenceRecord).where(EvidenceRecord.key == old_key))
                if old is not None:
                    new_id = s.scalar(select(EvidenceRecord.id).where(EvidenceRecord.key == new_key))
                    old.superseded_by = new_id or mirrored_id(new_key)

    # -- chain resets --------------------------------------------------------------------------------
    def forget_lost(self, hosted: frozenset[str]) -> int:
        with self.node.db.session() as s:
            rows = [(i, n, h) for i, n, h, actor in s.execute(
                select(EvidenceEvent.id, EvidenceEvent.block_number, EvidenceEvent.block_hash, EvidenceEvent.actor_uscc)
                .where(EvidenceEvent.state == StepState.DONE.value)) if actor not in hosted]
        lost = lost_steps(self.node, rows) if rows else []
        if lost:
            with self.node.db.session() as s:
                for step in s.scalars(select(EvidenceEvent).where(EvidenceEvent.id.in_(lost))).all():
                    drop_mirrored_step(s, step)
        return len(lost)
