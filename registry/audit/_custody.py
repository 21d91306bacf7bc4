"""The evidence ledger's tables against the chain: records, cases and custody steps.

Records: registration status (``status_mismatch``), content and metadata digests (``digest_mismatch``), case
(``case_mismatch``), collector, custodian and pending transfer (``custody_mismatch``), correction links
(``supersession_mismatch``). Cases: owner and seal, block and time (``case_mismatch``), the case number's key
(``digest_mismatch``). Steps (register, transfer, accept, reject, seal): each done row against the event in its
transaction (``step_mismatch``, ``anchor_mismatch``). A record or case with a step still in flight is compared
once that step is done.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.audit._context import OPEN, Anchor, CompareContext, opt_hex
from registry.crypto.hashing import canonical_digest, hex0x, sha256_key
from registry.outbox.inbox import hosted_agencies, is_mirrored_id, key_of
from registry.store.ledger_models import EvidenceCase, EvidenceEvent, EvidenceRecord

LEDGER = "evidence"
REGISTERED = "registered"
_EVENT = {"register": "EvidenceRegistered", "transfer": "CustodyTransferRequested",
          "accept": "CustodyTransferAccepted", "reject": "CustodyTransferRejected", "seal": "CaseSealed"}


def _key(text: str | None) -> str:
    return key_of(text)  # SHA-256 of an identifier; a mirrored record's id spells its key


def compare_evidence(ctx: CompareContext) -> int:
    """Returns how many evidence rows (records, cases, steps) were compared."""
    with ctx.node.db.session() as s:
        open_steps = s.execute(select(EvidenceEvent.record_id, EvidenceEvent.case_key)
                               .where(EvidenceEvent.state.in_(OPEN))).all()
        busy_records = {r for r, _ in open_steps if r}
        busy_cases = {c for _, c in open_steps}
        hosted = hosted_agencies(ctx.node, s)
        n = _compare_records(ctx, s, busy_records, hosted)
        n += _compare_cases(ctx, s, busy_cases)
        n += _compare_steps(ctx, s, hosted)
    return n


def _compare_records(ctx: CompareContext, s: Session, busy: set[str], hosted: frozenset[str]) -> int:
    rows = list(s.scalars(select(EvidenceRecord).order_by(EvidenceRecord.id)))
    for rec in rows:
        if is_mirrored_id(rec.id) and rec.collector_uscc in hosted:  # only another node's records are mirrored
            ctx.add("digest_mismatch", LEDGER, rec.id, f"the record claims to be known from the chain only, but its "
                                                       f"collector {rec.collector_uscc} is hosted on this node")
        chain = ctx.state.evidence.get(rec.key)
        if chain is None or rec.id in busy:
            continue  # never anchored, or not yet: the generic comparison names it (db_record_not_on_chain)
        if rec.status != REGISTERED:
            ctx.add("status_mismatch", LEDGER, rec.id, f"registered on chain in block {chain.block}; the database "
                                                       f"says {rec.status}")
        if rec.key != _key(rec.id):
            ctx.add("digest_mismatch", LEDGER, rec.id, f"the record's key {rec.key} is not SHA-256 of its identifier")
        ctx.differs("digest_mismatch", LEDGER, rec.id, "content", [
            ("sha256", opt_hex(rec.sha256), chain.sha256), ("sm3", opt_hex(rec.sm3), chain.sm3),
            ("size", rec.size, chain.size), ("metadata digest", rec.meta_digest, chain.meta_digest)])
        ctx.differs("case_mismatch", LEDGER, rec.id, "case", [("case", rec.case_key, chain.case_id)])
        ctx.differs("custody_mismatch", LEDGER, rec.id, "custody", [
            ("collector", rec.collector_uscc, chain.collector), ("custodian", rec.custodian_uscc, chain.custodian),
            ("pending transfer to", rec.pending_to or "", chain.pending_to)])
        ctx.differs("supersession_mismatch", LEDGER, rec.id, "correction links", [
            ("supersedes", _key(rec.supersedes), chain.supersedes),
            ("superseded by", _key(rec.superseded_by), chain.superseded_by)])
    return len(rows)


def _compare_cases(ctx: CompareContext, s: Session, busy: set[str]) -> int:
    rows = list(s.scalars(select(EvidenceCase).order_by(EvidenceCase.case_key)))
    known = {c.case_key for c in rows}
    for case in rows:
        ref = case.case_no
        # a case known from the chain only has its key for a number (the number is not on chain)
        if case.case_no != case.case_key and case.case_key != hex0x(sha256_key(case.case_no)):
            ctx.add("digest_mismatch", LEDGER, ref, f"the case's key {case.case_key} is not SHA-256 of its number")
        chain = ctx.state.cases.get(case.case_key)
        if chain is None or case.case_key in busy:
            continue
        ctx.differs("case_mismatch", LEDGER, ref, "case", [
            ("owner", case.owner_uscc, chain.owner), ("sealed", case.sealed, chain.sealed),
            ("sealed in block", case.sealed_block or 0, chain.sealed_block),
            ("sealed at", case.sealed_timestamp, ctx.state.block_time(chain.sealed_block) if chain.sealed else None)])
    for case_key, chain in ctx.state.cases.items():
        if case_key not in known and ctx.window_start is None and ctx.hosts(chain.owner):
            ctx.add("chain_record_not_in_db", LEDGER, case_key, f"case {case_key} of {chain.owner} ({chain.records} "
                                                                f"records) is on chain but not in the database")
    return len(rows)


def _compare_steps(ctx: CompareContext, s: Session, hosted: frozenset[str]) -> int:
    rows = s.execute(select(EvidenceEvent, EvidenceRecord.key, EvidenceRecord.case_key)
                     .outerjoin(EvidenceRecord, EvidenceRecord.id == EvidenceEvent.record_id)
                     .order_by(EvidenceEvent.id)).all()
    ctx.receipts([step.tx_hash for step, _, _ in rows if step.account])
    for step, record_key, record_case in rows:
        ref = f"{step.kind} step {step.id}" + (f" of {step.record_id}" if step.record_id else f" of case {step.case_key}")
        key = step.case_key if step.kind == "seal" else (record_key or "?")
        anchor = Anchor(step.state, step.tx_hash, step.block_number, step.block_hash, step.block_timestamp,
                        step.account, step.raw_tx)
        event = ctx.check_step(LEDGER, ref, f"the {step.kind}", anchor, {_EVENT.get(step.kind, step.kind)}, key)
        if event is None:
            continue
        a = event.args
        expected: list[tuple[str, object, object]]
        if step.kind == "seal":
            expected = [("record", step.record_id, None), ("actor", step.actor_uscc, a["ownerUscc"]),
                        ("case", step.case_key, a["caseId"]), ("to", step.to_uscc, None)]
        else:
            chain = ctx.state.evidence.get(key)
            expected = [("case", step.case_key, chain.case_id if chain else record_case)]
            if step.kind == "register":
                expected += [("actor", step.actor_uscc, a["collectorUscc"]), ("to", step.to_uscc, None),
                             ("case id in the event", step.case_key, a["caseId"])]
            elif step.kind == "transfer":
                purpose = hex0x(canonical_digest({"record": step.record_id, "from": step.actor_uscc,
                                                  "to": step.to_uscc, "purpose": step.purpose}))
                expected += [("actor", step.actor_uscc, a["fromUscc"]), ("to", step.to_uscc, a["toUscc"]),
                             ("purpose digest", step.purpose_digest, a["purposeDigest"])]
                if step.actor_uscc in hosted or step.purpose is not None:  # a mirrored step has no purpose text
                    expected.append(("purpose (its digest)", purpose, a["purposeDigest"]))
            else:  # accept / reject: the actor is the recipient, `to` the custodian it came from
                expected += [("actor", step.actor_uscc, a["toUscc"]), ("to", step.to_uscc, a["fromUscc"])]
        expected.append(("digest re-checked", step.digest_rechecked, bool(a.get("digestRechecked", False))))
        if step.kind != "transfer":
            expected.append(("purpose digest", step.purpose_digest, None))
        ctx.differs("step_mismatch", LEDGER, ref, "custody step", expected)
    return len(rows)


__all__ = ["compare_evidence"]
