"""The states stored in the database, as enums. They are `StrEnum`s whose values are the words the rows
have always held, so a stored value compares equal to its member and no data migration is needed.

`StepState` is the one state machine of the outbox (registry/outbox/): every row that becomes a
transaction (a certificate batch, a status change, an evidence or exchange step) is pending, sent, done or
failed. Certificate batches keep their historical words for two of those states (``prepared`` for
pending: the root is fixed, ``anchored`` for done); `BatchState` names them and maps them to `StepState`.

    >>> StepState.DONE == "done", BatchState.ANCHORED.step is StepState.DONE
    (True, True)
    >>> BatchState.of(StepState.PENDING), CertificateStatus.REVOKED == "revoked"
    (<BatchState.PREPARED: 'prepared'>, True)
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["BatchState", "CertificateStatus", "ChangeAction", "StepState"]


class StepState(StrEnum):
    PENDING = "pending"  # committed, not yet (known to be) sent
    SENT = "sent"  # broadcast; tx hash (and signed bytes) recorded, receipt not yet seen
    DONE = "done"  # on chain (receipt status 1, or found on chain when resuming)
    FAILED = "failed"  # the contract refused it when the worker resent it (kept, with the reason)


class BatchState(StrEnum):
    """A certificate batch's stored state: the outbox states under the words batches always used."""

    PREPARED = "prepared"  # root fixed and committed, no transaction known yet
    SENT = "sent"
    ANCHORED = "anchored"
    FAILED = "failed"

    @property
    def step(self) -> StepState:
        return _BATCH_TO_STEP[self]

    @classmethod
    def of(cls, state: StepState) -> BatchState:
        return _STEP_TO_BATCH[state]


_BATCH_TO_STEP = {BatchState.PREPARED: StepState.PENDING, BatchState.SENT: StepState.SENT,
                  BatchState.ANCHORED: StepState.DONE, BatchState.FAILED: StepState.FAILED}
_STEP_TO_BATCH = {v: k for k, v in _BATCH_TO_STEP.items()}


class CertificateStatus(StrEnum):
    """A certificate row's status: `pending` until its batch is anchored, then the chain's status."""

    PENDING = "pending"
    ISSUED = "issued"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"
    FAILED = "failed"  # its batch was refused by the contract


class ChangeAction(StrEnum):
    """A status change of an anchored certificate (CertificateLedger's lifecycle functions)."""

    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    REVOKE = "revoke"
    SUPERSEDE = "supersede"
