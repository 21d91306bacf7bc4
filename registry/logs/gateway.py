"""The checkpoint gateway (registry.logs.checkpoints): builds, signs and submits checkpoints of the ledger
logs to the Backbone, and the background service that runs it. With witness processes configured
(`CheckpointCosigning.remote`) they cosign on the Backbone themselves, with their own accounts; otherwise (a
single dev node) the local witnesses, whose agency keys this data dir holds, cosign in process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from chain.backbone import ZERO32, CheckpointFields, CheckpointHead
from chain.errors import ChainError, ContractRevertError
from registry.errors import ConflictError, NotFoundError, ProofError
from registry.logs.backbone import BackboneLink, gateway_uscc
from registry.logs.checkpoint_format import read_checkpoints, sign_hash
from registry.logs.cosigning import CheckpointCosigning, QuorumError
from registry.logs.log import LEDGERS, LedgerLogs, ledger_id
from registry.logs.witness import LogProofs, local_witnesses
from registry.node import Node
from registry.store.audit_models import CheckpointRecord

__all__ = ["CheckpointGateway", "CheckpointService", "SubmittedCheckpoint"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SubmittedCheckpoint:
    ledger: str
    fields: CheckpointFields
    index: int
    signer: str
    signature: str
    tx_hash: str
    main_block: int


class CheckpointGateway:
    """Builds, signs and submits checkpoints of the ledger logs (see the module docstring)."""

    def __init__(self, node: Node, logs: LedgerLogs, *, link_provider: Callable[[], BackboneLink],
                 interval: float = 60.0, max_events: int = 1000, ledgers: Sequence[str] = LEDGERS,
                 clock: Callable[[], float] = time.monotonic, cosigning: CheckpointCosigning | None = None) -> None:
        self.node = node
        self.cosigning = cosigning  # C2SP checkpoint notes and their witnesses (registry/logs/cosigning.py)
        self.logs = logs
        self.link_provider = link_provider
        self.interval = interval
        self.max_events = max_events
        self.ledgers = tuple(ledgers)
        self.clock = clock
        self._link: BackboneLink | None = None
        self._heads: dict[str, CheckpointHead] = {}
        self._pending_since: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def link(self) -> BackboneLink:
        if self._link is None:
            self._link = self.link_provider()
        return self._link

    def head(self, ledger: str) -> CheckpointHead:
        head = self._heads.get(ledger)
        if head is None:
            head = self.link.client.latest_checkpoint(self.link.subchain_id, ledger_id(ledger))
            self._heads[ledger] = head
        return head

    def due(self) -> list[str]:
        """Ledgers whose waiting events reached `max_events`, or have waited `interval` seconds."""
        now, due = self.clock(), []
        for ledger in self.ledgers:
            known = self._heads.get(ledger)
            waiting = self.logs.log(ledger).size - (known.tree_size if known else 0)
            if waiting <= 0:
                self._pending_since.pop(ledger, None)
                continue
            since = self._pending_since.setdefault(ledger, now)
            if waiting >= self.max_events or now - since >= self.interval:
                due.append(ledger)
        return due

    def run_once(self, *, force: bool = False) -> list[SubmittedCheckpoint]:
        """Sync the logs and submit what is due (every ledger with new events when `force`)."""
        with self._lock:
            self.logs.sync()
            ledgers = self.ledgers if force else self.due()
            done = []
            for ledger in ledgers:
                submitted = self.checkpoint(ledger)
                if submitted is not None:
                    done.append(submitted)
            return done

    def checkpoint(self, ledger: str) -> SubmittedCheckpoint | None:
        """Submit the next checkpoint of `ledger` up to the synced block; None when nothing is new."""
        link = self.link
        with self.logs.lock:
            lg = self.logs.log(ledger)
            to_block, to_hash = self.logs.synced_block, self.logs.synced_hash
            size = lg.size_at_block(to_block)
            head = self.head(ledger)
            if head.exists:
                if size < head.tree_size or lg.root(head.tree_size) != head.root:
                    raise ConflictError(
                        f"the {ledger} log no longer matches checkpoint #{head.index} (size {head.tree_size}, "
                        f"sub-chain block {head.to_block}): the sub-chain lost or rewrote history; an auditor must look",
                        code="subchain_diverged", details={"ledger": ledger, "checkpoint": "0x" + head.hash.hex()})
                if to_block <= head.to_block or size == head.tree_size:
                    return None
                from_block, prev = head.to_block + 1, head.hash
            else:
                if size == 0:
                    return None
                from_block, prev = self.logs.deployment.first_block, ZERO32
            root = lg.root(size)
        if self.cosigning is not None:
            # the witness quorum first: with witness processes configured, QuorumError stops the submission here
            self.cosigning.cosign(ledger, size, root)
        fields = CheckpointFields(link.subchain_id, ledger_id(ledger), size, root, prev, from_block, to_block,
                                  bytes.fromhex(to_hash[2:]))
        uscc = gateway_uscc(self.node)
        signer, signature = sign_hash(self.node, uscc, fields.hash)
        try:
            receipt = link.client.submit_checkpoint(link.sender_for(uscc), fields)
        except ContractRevertError:
            self._heads.pop(ledger, None)  # someone else moved the head: re-read it next time
            raise
        index = head.index + 1 if head.exists else 0
        with self.node.db.session() as s:
            s.merge(CheckpointRecord(
                hash="0x" + fields.hash.hex(), subchain_id="0x" + fields.subchain_id.hex(), ledger=ledger, index=index,
                tree_size=size, root="0x" + root.hex(), prev_hash="0x" + prev.hex(), from_block=from_block,
                to_block=to_block, to_block_hash=to_hash, signer=signer, signer_uscc=uscc, signature=signature,
                main_chain_id=link.chain_id, tx_hash=receipt.tx_hash, main_block=receipt.block_number))
        self._heads[ledger] = CheckpointHead(fields.hash, size, root, to_block, index, 0)
        self._pending_since.pop(ledger, None)
        log.info("checkpoint submitted", ledger=ledger, index=index, size=size, to_block=to_block,
                 tx=receipt.tx_hash)
        return SubmittedCheckpoint(ledger, fields, index, signer, signature, receipt.tx_hash, receipt.block_number)


class CheckpointService:
    """Runs the gateway (and the local witnesses) in a thread; errors are logged and retried with backoff."""

    def __init__(self, gateway: CheckpointGateway, *, poll: float = 1.0) -> None:
        self.gateway = gateway
        self.poll = poll
        self.last_error: str | None = None
        self.submitted = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> CheckpointService:
        if self._thread is not None and self._thread.is_alive():  # started again after a stop (a new leader term)
            self._thread.join()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="checkpoint-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self, *, force: bool = False) -> list[SubmittedCheckpoint]:
        done = self.gateway.run_once(force=force)
        cosigning = self.gateway.cosigning
        if done and (cosigning is None or not cosigning.remote):
            self.submitted += len(done)
            link = self.gateway.link
            cps = read_checkpoints(link)
            for witness in local_witnesses(self.gateway.node, link, LogProofs(self.gateway.logs)):
                witness.review(cps)
        return done

    def _run(self) -> None:
        backoff = self.poll
        while not self._stop.wait(backoff):
            try:
                self.run_once()
                self.last_error, backoff = None, self.poll
            except (ChainError, OSError, ConflictError, ProofError, NotFoundError) as exc:
                self.last_error = str(exc)
                # a missing witness quorum is retried soon: witnesses come back on their own
                backoff = min(backoff * 2, 5.0 if isinstance(exc, QuorumError) else 30.0)
                log.warning("checkpoint gateway: will retry", error=str(exc), backoff=backoff)
            except Exception as exc:  # never let the service die
                self.last_error = repr(exc)
                backoff = min(backoff * 2, 30.0)
                log.exception("checkpoint gateway error", error=repr(exc))
