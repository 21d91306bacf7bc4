"""Certificate batches as outbox steps: committed `pending` certificates are grouped per issuer into
Merkle batches, and each batch is anchored with one CertificateLedger.anchorBatch transaction carrying two
RFC 6962 roots over the same leaf order: the SHA-256 root (of the documents' SHA-256 digests; the batch's key
on chain) and the SM3 root (of their SM3 digests, GB/T 32905), so a verifier can recompute either.

Durability (DESIGN.md): a batch's root is fixed and committed (`prepared`) before its transaction, whose
hash is committed (`sent`) before its receipt is awaited. Resuming after a crash, looking for the root's
BatchAnchored event before a resend, and re-anchoring roots a reset chain lost are the outbox's
(registry/outbox/steps.py); the contract refuses a root twice, so nothing is anchored twice.

    >>> batches = BatchAnchoring(node, batch_size=1000, max_age=2.0)     # doctest: +SKIP
    >>> OutboxWorker([batches, StatusChanges(node)]).flush()              # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from registry.crypto.merkle import all_inclusion_proofs, leaf_hash, root_from_leaf_hashes
from registry.node import Node
from registry.outbox.steps import StepCall, StepLedger
from registry.store.db import Batch, Certificate, utcnow
from registry.store.states import BatchState, CertificateStatus, StepState

__all__ = ["CERTIFICATE_LEDGER", "BatchAnchoring", "sm3_root"]

log = structlog.get_logger(__name__)

CERTIFICATE_LEDGER = "certificates"  # Batch.ledger of certificate batches


def sm3_root(digests_sm3: Sequence[str]) -> bytes:
    """The batch's SM3 RFC 6962 root: leaves SM3(0x00 || document SM3 digest), in leaf order."""
    return root_from_leaf_hashes([leaf_hash(bytes.fromhex(d), algorithm="sm3") for d in digests_sm3],
                                 algorithm="sm3")


class BatchAnchoring(StepLedger):
    step_model = Batch
    ledger_name = "batches"
    contract_name = "CertificateLedger"
    resend_after = 0.0  # the worker makes batches itself: no request is about to send them
    pipelined = True  # batches are independent: new roots go out back to back, then their receipts

    def __init__(self, node: Node, *, batch_size: int = 1000, max_age: float = 2.0) -> None:
        super().__init__(node)
        self.batch_size = batch_size
        self.max_age = max_age
        self.anchored_batches = 0

    def _stored(self, state: StepState) -> str:
        return BatchState.of(state).value

    # -- forming batches -----------------------------------------------------------------------------
    def _before_pass(self, *, flush: bool) -> None:
        now = utcnow()
        with self.node.db.session() as s:
            rows = s.execute(
                select(Certificate.issuer_uscc, func.count(), func.min(Certificate.created_at))
                .where(Certificate.status == CertificateStatus.PENDING, Certificate.batch_id.is_(None))
                .group_by(Certificate.issuer_uscc)
            ).all()
        for issuer, count, oldest in rows:
            age = (now - oldest).total_seconds()
            while count >= self.batch_size or (count > 0 and (flush or age >= self.max_age)):
                taken = self._prepare_one(issuer)
                if taken == 0:
                    break
                count -= taken

    def prepare_batches(self, *, flush: bool) -> None:
        """Fix and commit the roots of what is pending (the first half of a pass)."""
        self._before_pass(flush=flush)

    def _prepare_one(self, issuer: str) -> int:
        with self.node.db.session() as s:
            certs = s.execute(
                select(Certificate.identifier, Certificate.digest_sha256, Certificate.digest_sm3)
                .where(Certificate.issuer_uscc == issuer, Certificate.status == CertificateStatus.PENDING,
                       Certificate.batch_id.is_(None))
                .order_by(Certificate.created_at, Certificate.identifier)
                .limit(self.batch_size)
            ).all()
            if not certs:
                return 0
            root = root_from_leaf_hashes([leaf_hash(bytes.fromhex(d)) for _, d, _ in certs])
            batch = Batch(ledger=CERTIFICATE_LEDGER, issuer_uscc=issuer, root="0x" + root.hex(),
                          root_sm3="0x" + sm3_root([d for _, _, d in certs]).hex(), size=len(certs),
                          state=BatchState.PREPARED)
            s.add(batch)
            s.flush()
            s.execute(update(Certificate), [
                {"identifier": ident, "batch_id": batch.id, "leaf_index": i} for i, (ident, _, _) in enumerate(certs)
            ])
            return len(certs)

    # -- outbox hooks --------------------------------------------------------------------------------
    def _call_for(self, s: Session, step: Batch) -> StepCall:
        ledger = self.node.certificate_ledger
        root = bytes.fromhex(step.root[2:])
        if step.root_sm3 is None:  # prepared before revision 0007s: fix its SM3 root before the first send
            step.root_sm3 = "0x" + sm3_root(s.scalars(select(Certificate.digest_sm3).where(
                Certificate.batch_id == step.id).order_by(Certificate.leaf_index)).all()).hex()
        sm3 = bytes.fromhex(step.root_sm3[2:])
        return StepCall(step.id, step.issuer_uscc, root, ledger.anchor_batch_fn(root, sm3, step.size),
                        ledger.ANCHOR_GAS, "BatchAnchored", {}, step.tx_hash)

    def _apply_mirror(self, s: Session, step: Batch) -> None:
        certs = s.execute(select(Certificate.identifier, Certificate.digest_sha256, Certificate.digest_sm3,
                                 Certificate.status)
                          .where(Certificate.batch_id == step.id).order_by(Certificate.leaf_index)).all()
        proofs = all_inclusion_proofs([leaf_hash(bytes.fromhex(d)) for _, d, _, _ in certs])
        sm3_proofs = all_inclusion_proofs([leaf_hash(bytes.fromhex(d), algorithm="sm3") for _, _, d, _ in certs],
                                          algorithm="sm3")
        now = step.done_at or utcnow()
        s.execute(update(Certificate), [
            {"identifier": ident, "proof": b"".join(p), "proof_sm3": b"".join(p3),
             **({"status": CertificateStatus.ISSUED, "issued_at": now} if status == CertificateStatus.PENDING else {})}
            for (ident, _, _, status), p, p3 in zip(certs, proofs, sm3_proofs, strict=True)
        ])
        self.anchored_batches += 1
        log.info("batch anchored", batch=step.id, size=len(certs), block=step.block_number)

    def _discard(self, s: Session, step: Batch) -> None:
        self._mark_failed(s, step)  # never the request's own attempt: a refused batch is kept, failed

    def _mark_failed(self, s: Session, step: Batch) -> None:
        step.state = BatchState.FAILED
        log.error("batch refused by the contract", batch=step.id, error=step.error)
        s.execute(update(Certificate).where(Certificate.batch_id == step.id).values(status=CertificateStatus.FAILED))

    def _on_lost(self, s: Session, step: Any) -> None:
        """The certificates keep their status: the re-anchored root is the same, so are their proofs."""

    def pending_count(self) -> int:
        """Open batches plus certificates not in a batch yet."""
        with self.node.db.session() as s:
            loose = s.scalar(select(func.count()).select_from(Certificate).where(
                Certificate.status == CertificateStatus.PENDING, Certificate.batch_id.is_(None))) or 0
        return super().pending_count() + int(loose)
