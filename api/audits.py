"""Audit reports on request of an auditor member: run the replay, sign the report with the auditor's key,
optionally anchor it on the Backbone, and list the reports stored so far.

    >>> AuditService(node, proofs, default_deadline=600).run("11230000MB...", anchor=False)   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from api.proofs import ProofService
from chain.contracts import MemberStatus, Role
from registry.audit.replay import Auditor
from registry.audit.report import AuditReport, anchor_report, sign_report
from registry.errors import ConflictError, PermissionDeniedError
from registry.node import Node
from registry.store.audit_models import AuditReportRow
from registry.store.db import Member


@dataclass(frozen=True)
class AuditService:
    node: Node
    proofs: ProofService
    default_deadline: float
    witness_quorum: int = 2  # Backbone cosignatures by distinct witness agencies each checkpoint needs

    def require_auditor(self, agency: str) -> None:
        with self.node.db.session() as s:
            member = s.get(Member, agency)
            ok = member is not None and member.status == MemberStatus.ACTIVE and bool(member.roles & Role.AUDITOR)
        if not ok:
            raise PermissionDeniedError(f"agency {agency} does not hold the auditor role", code="not_an_auditor")

    def run(self, agency: str, *, from_block: int | None = None, resume: bool = False,
            deadline: float | None = None, anchor: bool) -> AuditReport:
        """Replay, check checkpoints, compare with the database; the report is signed by `agency`."""
        self.require_auditor(agency)
        link = self.proofs.link()
        report = Auditor(self.node, link=link, witness_quorum=self.witness_quorum).run(from_block=from_block, resume=resume,
                                                    deadline=deadline or self.default_deadline)
        signed = sign_report(self.node, report, agency)
        if anchor:
            if link is None:
                raise ConflictError("no Backbone is configured to anchor the report on", code="no_backbone")
            signed = signed.with_fields(anchor=anchor_report(self.node, self.proofs.gateway_link(), signed))
        return signed

    def reports(self, agency: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """Signed reports stored here, newest first."""
        self.require_auditor(agency)
        with self.node.db.session() as s:
            rows = s.scalars(select(AuditReportRow).order_by(AuditReportRow.id.desc()).limit(limit)).all()
            return [{"digest": r.digest, "auditor": r.auditor_uscc, "signer": r.signer, "findings": r.findings,
                     "from_block": r.from_block, "to_block": r.to_block, "log_index": r.log_index,
                     "checkpoint": r.checkpoint_hash, "anchor_tx": r.anchor_tx,
                     "created_at": r.created_at.isoformat() + "Z"} for r in rows]
