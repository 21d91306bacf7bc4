"""The one outbox: every row that must become a transaction (a certificate batch, a certificate status
change, an evidence step, an exchange step) is a step of some kind, committed before it is sent and
resumed, looked up on chain before a resend, and reconciled after a chain reset by the same code
(`steps.StepLedger`), sent in the background by one thread (`worker.OutboxWorker`). States: `StepState`.

    >>> from registry.outbox import OutboxWorker, StepLedger, StepState   # doctest: +SKIP
"""

from registry.outbox.steps import Landed, Readiness, StepCall, StepLedger
from registry.outbox.worker import OutboxWorker, ReconcileReport
from registry.store.states import StepState

__all__ = ["Landed", "OutboxWorker", "Readiness", "ReconcileReport", "StepCall", "StepLedger", "StepState"]
