"""The anchoring worker: turns committed `pending` certificates into anchored batches.

Durability (DESIGN.md): rows are committed before any transaction is sent; a batch's root is fixed and
committed (`prepared`) before its transaction, whose hash is committed (`sent`) before its receipt is
awaited. After a crash of this process or of the chain node, `run_once` resumes from those states; the
contract refuses a root twice, so nothing is anchored twice; the reconciler re-anchors batches that the
chain lost (devnet restarted from an older state) and re-sends lost status changes.

    >>> worker = AnchoringWorker(node, batch_size=1000, max_age=2.0)   # doctest: +SKIP
    >>> worker.start(); ...; worker.stop()                              # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import func, select, update

from chain.artifacts import load_artifact
from chain.contracts import CertificateLedgerClient
from chain.errors import ChainError, ChainUnavailableError, ContractRevertError, TransactionError
from chain.logs import LogReader
from chain.sender import PendingTx
from registry.crypto.merkle import all_inclusion_proofs, leaf_hash, root_from_leaf_hashes
from registry.node import Node
from registry.store.db import Batch, Certificate, StatusChange, utcnow

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReconcileReport:
    checked: int
    reanchored: list[str]
    resent_changes: int


class AnchoringWorker:
    def __init__(
        self,
        node: Node,
        *,
        batch_size: int = 1000,
        max_age: float = 2.0,
        poll: float = 0.1,
        on_lifecycle: Callable[[Node], int] | None = None,
    ) -> None:
        self.node = node
        self.batch_size = batch_size
        self.max_age = max_age
        self.poll = poll
        self.on_lifecycle = on_lifecycle
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pass_lock = threading.Lock()  # one pass at a time: the thread, flush() and tests share it
        self._flush_requested = False
        self._thread: threading.Thread | None = None
        self._needs_reconcile = True
        self._last_check = 0.0
        self.anchored_batches = 0
        self.last_error: str | None = None

    # -- thread ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="anchoring-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        backoff = self.poll
        while not self._stop.is_set():
            try:
                if self._needs_reconcile or time.monotonic() - self._last_check > 30:
                    self.reconcile()
                worked = self.run_once()
                backoff = self.poll
                self.last_error = None
                if worked:
                    continue
            except (ChainError, OSError) as exc:
                # the node is down or restarting: keep everything, retry with backoff, reconcile after
                self.last_error = str(exc)
                self._needs_reconcile = True
                self.node.reset_senders()
                log.warning("chain unavailable; will retry", error=str(exc), backoff=backoff)
                backoff = min(backoff * 2, 2.0)
            except Exception as exc:  # never let the worker die
                self.last_error = repr(exc)
                log.exception("anchoring worker error", error=repr(exc))
                backoff = min(backoff * 2, 2.0)
            self._wake.wait(backoff)
            self._wake.clear()

    # -- one pass ----------------------------------------------------------------------------------
    def run_once(self, *, flush: bool = False) -> int:
        """Resume unfinished batches, form new ones, anchor them, apply lifecycle changes.
        Returns the number of batches anchored plus changes applied (0 = idle)."""
        with self._pass_lock:
            flush = flush or self._flush_requested
            self._flush_requested = False
            self._prepare_batches(flush=flush)
            done = self._anchor_prepared()
            if self.on_lifecycle is not None:
                done += self.on_lifecycle(self.node)
            return done

    def request_flush(self) -> None:
        """Anchor what is pending at the next pass without waiting for the batch age (`wait=true`)."""
        self._flush_requested = True
        self._wake.set()

    def _prepare_batches(self, *, flush: bool) -> None:
        now = utcnow()
        with self.node.db.session() as s:
            rows = s.execute(
                select(Certificate.issuer_uscc, func.count(), func.min(Certificate.created_at))
                .where(Certificate.status == "pending", Certificate.batch_id.is_(None))
                .group_by(Certificate.issuer_uscc)
            ).all()
        for issuer, count, oldest in rows:
            age = (now - oldest).total_seconds()
            while count >= self.batch_size or (count > 0 and (flush or age >= self.max_age)):
                taken = self._prepare_one(issuer)
                if taken == 0:
                    break
                count -= taken

    def _prepare_one(self, issuer: str) -> int:
        with self.node.db.session() as s:
            certs = s.execute(
                select(Certificate.identifier, Certificate.digest_sha256)
                .where(Certificate.issuer_uscc == issuer, Certificate.status == "pending",
                       Certificate.batch_id.is_(None))
                .order_by(Certificate.created_at, Certificate.identifier)
                .limit(self.batch_size)
            ).all()
            if not certs:
                return 0
            leaves = [leaf_hash(bytes.fromhex(d)) for _, d in certs]
            root = root_from_leaf_hashes(leaves)
            batch = Batch(issuer_uscc=issuer, root="0x" + root.hex(), size=len(certs), state="prepared")
            s.add(batch)
            s.flush()
            s.execute(update(Certificate), [
                {"identifier": ident, "batch_id": batch.id, "leaf_index": i} for i, (ident, _) in enumerate(certs)
            ])
            return len(certs)

    def _anchor_prepared(self) -> int:
        with self.node.db.session() as s:
            batches = s.scalars(select(Batch).where(Batch.ledger == "certificates",
                                                    Batch.state.in_(("prepared", "sent"))).order_by(Batch.id)).all()
        if not batches:
            return 0
        ledger = self.node.certificate_ledger
        inflight: list[tuple[Batch, PendingTx | None]] = []
        for batch in batches:
            root = bytes.fromhex(batch.root[2:])
            if batch.state == "sent" and self._finish_if_on_chain(batch, ledger, root):
                continue
            sender = self.node.sender_for(batch.issuer_uscc)
            try:
                pending = sender.send(ledger.anchor_batch_fn(root, batch.size), gas=ledger.ANCHOR_GAS)
            except ContractRevertError as exc:
                if exc.name == "CertificateLedgerRootExists":
                    self._finish_if_on_chain(batch, ledger, root)
                    continue
                self._fail(batch, exc)
                continue
            with self.node.db.session() as s:
                s.execute(update(Batch).where(Batch.id == batch.id).values(
                    state="sent", tx_hash=pending.tx_hash, issuer_account=sender.address, attempts=Batch.attempts + 1))
            inflight.append((batch, pending))
        done = 0
        for batch, pending in inflight:
            assert pending is not None
            sender = self.node.sender_for(batch.issuer_uscc)
            try:
                receipt = sender.wait(pending, timeout=30)
            except ContractRevertError as exc:
                if not self._finish_if_on_chain(batch, ledger, bytes.fromhex(batch.root[2:])):
                    self._fail(batch, exc)
                continue
            self._mark_anchored(batch.id, receipt.tx_hash, receipt.block_number, receipt.block_hash,
                                sender.address, receipt.gas_used)
            done += 1
        return done

    def _finish_if_on_chain(self, batch: Batch, ledger: CertificateLedgerClient, root: bytes) -> bool:
        info = ledger.get_batch(root)
        if info is None:
            return False
        block = self.node.backend.w3.eth.get_block(info.block_number)
        tx_hash = batch.tx_hash or ""
        try:
            receipt = self.node.backend.w3.eth.get_transaction_receipt(tx_hash) if tx_hash else None
        except Exception:  # our tx was lost with the node; the root was anchored by a resend
            receipt = None
        if receipt is None or receipt["blockNumber"] != info.block_number:
            tx_hash = self._find_anchor_tx(root) or tx_hash
        self._mark_anchored(batch.id, tx_hash, info.block_number, "0x" + bytes(block["hash"]).hex(), info.issuer, None)
        return True

    def _find_anchor_tx(self, root: bytes) -> str | None:
        reader = LogReader(self.node.backend, {self.node.certificate_ledger.address: load_artifact("CertificateLedger").abi})
        for e in reader.events(from_block=self.node.require_deployment().first_block):
            if e.name == "BatchAnchored" and e.args["root"] == root:
                return e.tx_hash
        return None

    def _mark_anchored(self, batch_id: int, tx_hash: str, block_number: int, block_hash: str, account: str,
                       gas_used: int | None) -> None:
        ts = int(self.node.backend.w3.eth.get_block(block_number)["timestamp"])
        with self.node.db.session() as s:
            batch = s.get(Batch, batch_id)
            assert batch is not None
            certs = s.execute(select(Certificate.identifier, Certificate.digest_sha256, Certificate.status)
                              .where(Certificate.batch_id == batch_id).order_by(Certificate.leaf_index)).all()
            proofs = all_inclusion_proofs([leaf_hash(bytes.fromhex(d)) for _, d, _ in certs])
            now = utcnow()
            s.execute(update(Certificate), [
                {"identifier": ident, "proof": b"".join(p),
                 **({"status": "issued", "issued_at": now} if status == "pending" else {})}
                for (ident, _, status), p in zip(certs, proofs, strict=True)
            ])
            batch.state, batch.tx_hash, batch.block_number, batch.block_hash = "anchored", tx_hash, block_number, block_hash
            batch.block_timestamp, batch.issuer_account, batch.anchored_at = ts, account, now
            if gas_used is not None:
                batch.gas_used = gas_used
        self.anchored_batches += 1
        log.info("batch anchored", batch=batch_id, size=len(certs), block=block_number)

    def _fail(self, batch: Batch, exc: Exception) -> None:
        log.error("batch refused by the contract", batch=batch.id, error=str(exc))
        with self.node.db.session() as s:
            s.execute(update(Batch).where(Batch.id == batch.id).values(state="failed"))
            s.execute(update(Certificate).where(Certificate.batch_id == batch.id).values(status="failed"))

    # -- reconciliation ----------------------------------------------------------------------------
    def reconcile(self) -> ReconcileReport:
        """Compare anchored batches with the chain's BatchAnchored events; re-anchor what the chain lost."""
        with self._pass_lock:
            return self._reconcile()

    def _reconcile(self) -> ReconcileReport:
        ledger = self.node.certificate_ledger
        reader = LogReader(self.node.backend, {ledger.address: load_artifact("CertificateLedger").abi})
        on_chain: dict[str, tuple[int, str]] = {}
        for e in reader.events(from_block=self.node.require_deployment().first_block):
            if e.name == "BatchAnchored":
                on_chain["0x" + e.args["root"].hex()] = (e.block_number, e.block_hash)
        reanchored: list[str] = []
        with self.node.db.session() as s:
            anchored = s.scalars(select(Batch).where(Batch.ledger == "certificates", Batch.state == "anchored")).all()
            for b in anchored:
                seen = on_chain.get(b.root)
                if seen is None:
                    b.state, b.tx_hash, b.block_number, b.block_hash = "prepared", None, None, None
                    reanchored.append(b.root)
                elif seen != (b.block_number, b.block_hash):
                    b.block_number, b.block_hash = seen
        resent = self._reconcile_changes()
        self._needs_reconcile = False
        self._last_check = time.monotonic()
        if reanchored:
            log.warning("the chain lost anchored batches; re-anchoring", count=len(reanchored))
        return ReconcileReport(len(on_chain), reanchored, resent)

    def _reconcile_changes(self) -> int:
        """Status changes marked done whose effect the chain no longer shows go back to pending."""
        ledger = self.node.certificate_ledger
        expected = {"suspend": 1, "revoke": 2, "supersede": 3}
        resent = 0
        with self.node.db.session() as s:
            latest: dict[str, StatusChange] = {}
            for ch in s.scalars(select(StatusChange).where(StatusChange.state == "done").order_by(StatusChange.id)):
                latest[ch.identifier] = ch
            for ident, ch in latest.items():
                cert = s.get(Certificate, ident)
                if cert is None:
                    continue
                state = ledger.document_state(bytes.fromhex(cert.digest_sha256))
                want = expected.get(ch.action, 0)
                if int(state.status) != want:
                    ch.state = "pending"
                    resent += 1
        return resent

    def flush(self, timeout: float = 60.0) -> None:
        """Anchor everything pending now (used by `wait=true`, the CLI and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.run_once(flush=True)
            except (ChainUnavailableError, TransactionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            with self.node.db.session() as s:
                left = s.scalar(select(func.count()).select_from(Certificate).where(Certificate.status == "pending"))
            if not left:
                return
            if time.monotonic() > deadline:
                raise TransactionError(f"{left} certificates still pending after {timeout:.0f} s")
