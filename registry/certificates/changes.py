"""Certificate status changes (suspend, reinstate, revoke, supersede) as outbox steps.

A change is a `StatusChange` row committed before its transaction; sending, resuming, looking for the
change's event before a resend and reconciling are the outbox's (registry/outbox/steps.py).

Applying a change to the certificate row is a compare-and-set against the chain's order: the row remembers
the change its status reflects (`Certificate.status_change_id`), and a change writes the status only if
it sits later on chain (block number, then creation order) than that one. A late or repeated finish of an
older change (a retry of a suspend that a revoke has since overtaken) therefore never overwrites the
newer status, and the row ends with the status of the chain's last change.

    >>> changes = StatusChanges(node)                           # doctest: +SKIP
    >>> changes.run_step(change_id, immediate=True, claimed=True)  # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from sqlalchemy.orm import Session

from registry.outbox.steps import StepCall, StepLedger
from registry.store.db import Batch, Certificate, StatusChange
from registry.store.states import BatchState, CertificateStatus, ChangeAction

__all__ = ["RESULT", "StatusChanges"]

log = structlog.get_logger(__name__)

RESULT: Mapping[ChangeAction, CertificateStatus] = {
    ChangeAction.SUSPEND: CertificateStatus.SUSPENDED,
    ChangeAction.REINSTATE: CertificateStatus.ISSUED,
    ChangeAction.REVOKE: CertificateStatus.REVOKED,
    ChangeAction.SUPERSEDE: CertificateStatus.SUPERSEDED,
}

_EVENT = {  # CertificateLedger's event for each change; its first indexed argument is the document digest
    ChangeAction.SUSPEND: "DocumentSuspended",
    ChangeAction.REINSTATE: "DocumentReinstated",
    ChangeAction.REVOKE: "DocumentRevoked",
    ChangeAction.SUPERSEDE: "DocumentSuperseded",
}


def _proof(blob: bytes | None) -> list[bytes]:
    raw = blob or b""
    return [raw[i:i + 32] for i in range(0, len(raw), 32)]


def _anchored(s: Session, cert: Certificate | None) -> Batch | None:
    """The certificate's batch if it is anchored and the certificate has its proof, else None."""
    if cert is None or cert.batch_id is None or cert.proof is None or cert.leaf_index is None:
        return None
    batch = s.get(Batch, cert.batch_id)
    return batch if batch is not None and batch.state == BatchState.ANCHORED else None


class StatusChanges(StepLedger):
    step_model = StatusChange
    ledger_name = "status changes"
    contract_name = "CertificateLedger"
    keep_refused = False  # a refused change did not happen: it is removed, as the request's own attempt is

    def _scopes(self, step: StatusChange) -> tuple[set[str], set[str]]:
        return {f"cert:{step.identifier}"}, {f"cert:{step.identifier}"}

    def _call_for(self, s: Session, step: StatusChange) -> StepCall | None:
        cert = s.get(Certificate, step.identifier)
        batch = _anchored(s, cert)
        if cert is None or batch is None:
            return None  # its batch is being (re-)anchored
        action = ChangeAction(step.action)
        ledger = self.node.certificate_ledger
        doc, root = bytes.fromhex(cert.digest_sha256), bytes.fromhex(batch.root[2:])
        index, proof = cert.leaf_index, _proof(cert.proof)
        expect: dict[str, object] = {}
        if action is ChangeAction.SUSPEND:
            fn = ledger.fn("suspend", doc, root, index, proof)
        elif action is ChangeAction.REINSTATE:
            fn = ledger.fn("reinstate", doc)
        elif action is ChangeAction.REVOKE:
            fn = ledger.fn("revoke", doc, root, index, proof, step.reason)
            expect = {"reason": step.reason}
        else:
            new = s.get(Certificate, step.new_identifier) if step.new_identifier else None
            new_batch = _anchored(s, new)
            if new is None or new_batch is None:
                return None  # the corrected version is not anchored yet
            fn = ledger.fn("supersede", doc, root, index, proof, bytes.fromhex(new.digest_sha256),
                           bytes.fromhex(new_batch.root[2:]), new.leaf_index, _proof(new.proof))
            expect = {"newDoc": bytes.fromhex(new.digest_sha256)}
        return StepCall(step.id, step.actor_uscc, doc, fn, None, _EVENT[action], expect, step.tx_hash)

    def _apply_mirror(self, s: Session, step: StatusChange) -> None:
        cert = s.get(Certificate, step.identifier)
        assert cert is not None and step.block_number is not None
        current = s.get(StatusChange, cert.status_change_id) if cert.status_change_id else None
        if current is not None and current.id != step.id and current.block_number is not None and \
                (current.block_number, current.id) > (step.block_number, step.id):
            log.info("an older status change finished late; the certificate keeps the newer status",
                     certificate=cert.identifier, change=step.id, newer=current.id, status=cert.status)
            return
        action = ChangeAction(step.action)
        cert.status, cert.status_change_id = RESULT[action], step.id
        if action is ChangeAction.REVOKE:
            cert.reason = step.reason
        elif action is ChangeAction.REINSTATE:
            cert.reason = None
        elif action is ChangeAction.SUPERSEDE:
            cert.superseded_by = step.new_identifier

    def _discard(self, s: Session, step: StatusChange) -> None:
        s.delete(step)

    def _on_lost(self, s: Session, step: StatusChange) -> None:
        """The change's block is gone: the row no longer reflects it, so its resend (in whatever block the
        reset chain gives it) may write the status again."""
        cert = s.get(Certificate, step.identifier)
        if cert is not None and cert.status_change_id == step.id:
            cert.status_change_id = None

