"""The one background sender of the outbox: a thread that, pass after pass, lets each kind of step
(certificate batches, status changes, evidence steps, exchange steps) send what is pending, reconciles
with the chain after an outage and now and then anyway, and backs off while the chain is unreachable.

    >>> worker = OutboxWorker([batches, changes, evidence, exchanges]).start()   # doctest: +SKIP
    >>> worker.flush(timeout=30); worker.stop()                                  # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import structlog
from sqlalchemy import Select, or_, select

from chain.errors import ChainError
from registry.background import PollingLoop
from registry.errors import ChainUnavailableError
from registry.outbox.steps import StepLedger

__all__ = ["OutboxWorker", "ReconcileReport"]

log = structlog.get_logger(__name__)

L = TypeVar("L", bound=StepLedger)


@dataclass(frozen=True)
class ReconcileReport:
    """How many done steps of each kind the chain had lost (they are pending again)."""

    lost: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.lost.values())


class OutboxWorker(PollingLoop):
    """Runs the passes of every kind of step, one pass at a time (the thread, `flush()` and tests share it).
    A chain outage keeps every row; the passes retry with backoff and reconcile when the chain is back."""

    thread_name = "outbox-worker"
    idle_max = 0.4  # idle: up to 0.4 s between passes; an issue, a change or a flush wakes it at once
    outages = (ChainError, OSError)

    def __init__(self, lanes: Sequence[StepLedger], *, poll: float = 0.1, max_backoff: float = 2.0,
                 reconcile_every: float = 30.0) -> None:
        super().__init__(poll=poll, max_backoff=max_backoff)
        self.lanes = list(lanes)
        self._work_query: Select[tuple[bool]] | None = None  # _has_work's, made on first use
        self.reconcile_every = reconcile_every
        self._pass_lock = threading.Lock()
        self._flush_requested = False
        self._needs_reconcile = True
        self._last_reconcile = 0.0

    def lane(self, kind: type[L]) -> L | None:
        """The lane of one kind of step, if this outbox has one (e.g. `worker.lane(StatusChanges)`)."""
        return next((lane for lane in self.lanes if isinstance(lane, kind)), None)

    def request_flush(self) -> None:
        """Anchor what is pending at the next pass without waiting for the batch age (`wait=true`)."""
        self._flush_requested = True
        self._wake.set()

    def run_pass(self) -> bool:
        return bool(self.run_once())

    def on_outage(self, exc: BaseException) -> None:
        for lane in self.lanes:
            lane.last_error = str(exc)
        self._needs_reconcile = True
        if self.lanes:
            self.lanes[0].node.reset_senders()

    # -- one pass ------------------------------------------------------------------------------------
    def run_once(self, *, flush: bool = False) -> int:
        """Reconcile if due, then one pass of every lane in order (batches before the status changes that
        need them). Returns how many steps finished (0 = idle). A chain outage propagates."""
        with self._pass_lock:
            # after an outage, and now and then anyway: a devnet restarted from an older state loses blocks
            # without any request failing
            if self._needs_reconcile or time.monotonic() - self._last_reconcile > self.reconcile_every:
                self._reconcile()
            flush = flush or self._flush_requested
            self._flush_requested = False
            if not self._has_work():
                return 0
            return sum(self._pass(lane, flush=flush) for lane in self.lanes)

    def _has_work(self) -> bool:
        """Whether any lane's pass would do anything, in one query: an idle pass of every lane's own queries cost
        ~4 ms of CPU, and an idle worker passes every `idle_max` seconds."""
        if not self.lanes:
            return False
        if self._work_query is None:
            self._work_query = select(or_(*(e for lane in self.lanes for e in lane.work_exists())))
        with self.lanes[0].node.db.session() as s:
            return bool(s.scalar(self._work_query))

    def _pass(self, lane: StepLedger, *, flush: bool) -> int:
        """One lane's pass. A chain outage stops the whole pass (every lane needs the chain); any other
        error is that lane's alone: it is logged and the other lanes still run."""
        try:
            return lane.process_pending(flush=flush)
        except (ChainError, OSError):
            raise
        except Exception as exc:
            lane.last_error = self.last_error = repr(exc)
            log.exception("outbox lane error", lane=lane.ledger_name, error=repr(exc))
            return 0

    def reconcile(self) -> ReconcileReport:
        """Put every done step whose block the chain lost back to pending (each lane's `reconcile`)."""
        with self._pass_lock:
            return self._reconcile()

    def _reconcile(self) -> ReconcileReport:
        report = ReconcileReport({lane.ledger_name: lane.reconcile() for lane in self.lanes})
        self._needs_reconcile = False
        self._last_reconcile = time.monotonic()
        return report

    def pending_count(self) -> int:
        return sum(lane.pending_count() for lane in self.lanes)

    def flush(self, timeout: float = 60.0) -> None:
        """Send everything pending now, waiting out a chain outage up to `timeout` (`wait=true`, the CLI,
        tests)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.run_once(flush=True)
                left = self.pending_count()
            except (ChainError, OSError) as exc:
                self.last_error = str(exc)
                self.on_outage(exc)
                left = -1
            if not left:
                return
            if time.monotonic() > deadline:
                raise ChainUnavailableError(
                    f"{left if left > 0 else 'some'} outbox steps still pending after {timeout:.0f} s "
                    f"(last error: {self.last_error})", code="steps_pending")
            time.sleep(0.05 if left > 0 else 0.2)
