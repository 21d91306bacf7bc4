"""Certificate batches as outbox steps: `pending` certificates are grouped per issuer into Merkle batches (a
request's whole batches in the transaction that stores it, `form_at_store`; the rest by the worker's passes,
with later documents of the same issuer), and each batch is anchored with one CertificateLedger.anchorBatch
transaction carrying two RFC 6962 roots over the same leaf order: the SHA-256 root (of the documents' SHA-256
digests; the batch's key on chain) and the SM3 root (of their SM3 digests, GB/T 32905), so a verifier can
recompute either.

Durability (DESIGN.md): a batch's root is fixed and committed (`prepared`) before its transaction, whose
hash is committed (`sent`) before its receipt is awaited. Resuming after a crash, looking for the root's
BatchAnchored event before a resend, and re-anchoring roots a reset chain lost are the outbox's
(registry/outbox/steps.py); the contract refuses a root twice, so nothing is anchored twice.

    >>> batches = BatchAnchoring(node, batch_size=1000, max_age=2.0)     # doctest: +SKIP
    >>> OutboxWorker([batches, StatusChanges(node)]).flush()              # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, Exists, func, select, update
from sqlalchemy.orm import Session

from registry.crypto.merkle import MerkleTree, leaf_hash, root_from_leaf_hashes
from registry.node import Node
from registry.outbox.steps import StepCall, StepLedger
from registry.store.db import Batch, Certificate, utcnow
from registry.store.states import BatchState, CertificateStatus, StepState
from registry.store.tables import table_of, update_rows

__all__ = ["CERTIFICATE_LEDGER", "LEAF_COLUMNS", "BatchAnchoring", "Leaf", "sm3_root"]

log = structlog.get_logger(__name__)

CERTIFICATE_LEDGER = "certificates"  # Batch.ledger of certificate batches
LEAF_COLUMNS = ("batch_id", "leaf_index", "proof", "proof_sm3")  # a certificate's place in its batch
Leaf = tuple[int, int, bytes, bytes]  # LEAF_COLUMNS' values: batch id, leaf index, SHA-256 and SM3 audit paths


def sm3_root(digests_sm3: Sequence[str]) -> bytes:
    """The batch's SM3 RFC 6962 root: leaves SM3(0x00 || document SM3 digest), in leaf order."""
    return root_from_leaf_hashes([leaf_hash(bytes.fromhex(d), algorithm="sm3") for d in digests_sm3],
                                 algorithm="sm3")


class _BatchTrees:
    """The SHA-256 and SM3 RFC 6962 trees of one batch, each leaf hashed once for its root and its path."""

    def __init__(self, digests_sha256: Sequence[str], digests_sm3: Sequence[str]) -> None:
        self.sha256 = MerkleTree([leaf_hash(bytes.fromhex(d)) for d in digests_sha256])
        self.sm3 = MerkleTree([leaf_hash(bytes.fromhex(d), algorithm="sm3") for d in digests_sm3], algorithm="sm3")

    def proofs(self) -> tuple[list[bytes], list[bytes]]:
        """Every leaf's audit path in each tree, as the concatenated 32-byte hashes the database stores."""
        return ([b"".join(p) for p in self.sha256.all_inclusion_proofs()],
                [b"".join(p) for p in self.sm3.all_inclusion_proofs()])


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
        self.anchored_documents = 0
        self._busy_seconds = 0.0  # passes that prepared or anchored something, since the last log line
        self._prepared = 0

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
                self._prepared += taken
                count -= taken

    def work_exists(self) -> list[Exists]:
        unbatched = (select(Certificate.identifier)
                     .where(Certificate.status == CertificateStatus.PENDING, Certificate.batch_id.is_(None)))
        return [*super().work_exists(), unbatched.exists()]

    def process_pending(self, *, flush: bool = False) -> int:
        """One pass (StepLedger.process_pending), timed: the `anchor` stage of registry/certificates/timing.py
        is the wall time of the passes that prepared or anchored batches, logged with the documents anchored."""
        started, anchored, prepared = time.perf_counter(), self.anchored_documents, self._prepared
        done = super().process_pending(flush=flush)
        if self.anchored_documents > anchored or self._prepared > prepared:
            self._busy_seconds += time.perf_counter() - started
        if self.anchored_documents > anchored:
            log.info("certificates anchored", count=self.anchored_documents - anchored,  # "documents" is redacted
                     anchor_ms=round(self._busy_seconds * 1000, 3))
            self._busy_seconds = 0.0
        return done

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
            # one executemany by primary key (registry/store/tables.py): no ORM or Core bookkeeping per row
            update_rows(s, table_of(Certificate), "identifier", LEAF_COLUMNS, [
                (*leaf, ident) for leaf, (ident, _, _) in zip(self._prepare(s, issuer, [certs]), certs, strict=True)])
            return len(certs)

    def form_at_store(self, s: Session, issuer: str, leaves: Sequence[tuple[str, str, str]]) -> list[Leaf]:
        """Whole batches of one request's documents ((identifier, SHA-256 digest, SM3 digest) each, hex),
        prepared in the transaction that stores them: their rows are inserted with the `Leaf` returned for each of
        the first ``batch_size * k`` documents, in order, so the worker neither reads nor rewrites them before it
        sends the roots. The rest (fewer than ``batch_size``) waits for later documents in the worker's passes."""
        whole = len(leaves) - len(leaves) % self.batch_size
        return self._prepare(s, issuer, [leaves[k:k + self.batch_size] for k in range(0, whole, self.batch_size)])

    def _prepare(self, s: Session, issuer: str, groups: Sequence[Sequence[tuple[str, str, str]]]) -> list[Leaf]:
        """A prepared batch of each group (leaf order), its roots fixed, and each leaf's `Leaf` in order. The
        audit paths are fixed with the roots: stored with the leaves, they cost no second pass over the batch
        once it is anchored (readers use them only when it is)."""
        made = []
        for group in groups:
            trees = _BatchTrees([d for _, d, _ in group], [d for _, _, d in group])
            made.append((Batch(ledger=CERTIFICATE_LEDGER, issuer_uscc=issuer, root="0x" + trees.sha256.root.hex(),
                               root_sm3="0x" + trees.sm3.root.hex(), size=len(group), state=BatchState.PREPARED),
                         trees))
        s.add_all([batch for batch, _ in made])
        s.flush()
        return [(batch.id, i, p, p3) for batch, trees in made for i, (p, p3) in enumerate(zip(*trees.proofs(), strict=True))]

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
        without_proof = s.scalar(select(func.count()).select_from(Certificate).where(
            Certificate.batch_id == step.id, (Certificate.proof.is_(None)) | (Certificate.proof_sm3.is_(None))))
        if without_proof:  # prepared before the paths were stored with the roots: compute them now
            certs = s.execute(select(Certificate.identifier, Certificate.digest_sha256, Certificate.digest_sm3)
                              .where(Certificate.batch_id == step.id).order_by(Certificate.leaf_index)).all()
            trees = _BatchTrees([d for _, d, _ in certs], [d for _, _, d in certs])
            s.execute(update(Certificate), [{"identifier": ident, "proof": p, "proof_sm3": p3}
                                            for (ident, _, _), p, p3 in zip(certs, *trees.proofs(), strict=True)])
        issued = cast(CursorResult[Any], s.execute(update(Certificate).where(
            Certificate.batch_id == step.id, Certificate.status == CertificateStatus.PENDING,
        ).values(status=CertificateStatus.ISSUED, issued_at=step.done_at or utcnow()).execution_options(
            synchronize_session=False))).rowcount
        self.anchored_batches += 1
        self.anchored_documents += step.size
        log.info("batch anchored", batch=step.id, size=step.size, issued=issued, block=step.block_number)

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
