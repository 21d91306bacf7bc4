"""Audit reports for auditor members (省司法厅, 哈尔滨中院, 哈尔滨公证处 ...), authenticated by their API key.

- ``GET /api/v1/audit/report?format=json|html&from_block=N&resume=true&deadline=S``: replay the chain, check
  the checkpoints, compare with the database; the report is signed with the calling auditor's key.
- ``POST /api/v1/audit/reports``: the same, then anchored on the Backbone (the ``audit-reports`` log).
- ``GET /api/v1/audit/reports``: the signed reports stored so far.

    $ curl -H "Authorization: Bearer $AUDITOR_KEY" '127.0.0.1:8000/api/v1/audit/report?format=html' > report.html
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from api.deps import CurrentAgency
from api.routes.proofs import service as proof_service
from chain.contracts import MemberStatus, Role
from registry.audit.replay import Auditor
from registry.audit.report import AuditReport, anchor_report, render_html, sign_report
from registry.errors import ConflictError, PermissionDeniedError
from registry.node import Node
from registry.store.audit_models import AuditReportRow
from registry.store.db import Member

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def _require_auditor(node: Node, agency: str) -> None:
    with node.db.session() as s:
        member = s.get(Member, agency)
        ok = member is not None and member.status == MemberStatus.ACTIVE and bool(member.roles & Role.AUDITOR)
    if not ok:
        raise PermissionDeniedError(f"agency {agency} does not hold the auditor role", code="not_an_auditor")


def _run(request: Request, agency: str, *, from_block: int | None, resume: bool, deadline: float | None,
         anchor: bool) -> AuditReport:
    node: Node = request.app.state.node
    _require_auditor(node, agency)
    svc = proof_service(request)
    link = svc.link()
    report = Auditor(node, link=link).run(from_block=from_block, resume=resume,
                                          deadline=deadline or request.app.state.settings.checkpoint_deadline)
    signed = sign_report(node, report, agency)
    if anchor:
        if link is None:
            raise ConflictError("no Backbone is configured to anchor the report on", code="no_backbone")
        signed = signed.with_fields(anchor=anchor_report(node, svc.gateway_link(), signed))
    return signed


FromBlock = Annotated[int | None, Query(ge=0, le=2**53, description="first block of a window audit")]
Deadline = Annotated[float | None, Query(gt=0, le=10**9, description="seconds (default: checkpoint_deadline)")]


@router.get("/report", response_model=None)
async def report(request: Request, agency: CurrentAgency, format: Literal["json", "html"] = "json",
                 from_block: FromBlock = None, resume: bool = False, deadline: Deadline = None) -> Any:
    """Run the audit replay and return the signed report (findings, counts, ledgers, per-day chart data)."""
    signed = await run_in_threadpool(_run, request, agency, from_block=from_block, resume=resume, deadline=deadline,
                                     anchor=False)
    if format == "html":
        return HTMLResponse(render_html(signed))
    return signed.to_json()


@router.post("/reports", status_code=201)
async def create_report(request: Request, agency: CurrentAgency, from_block: FromBlock = None,
                        deadline: Deadline = None) -> dict[str, Any]:
    """Run the audit, sign it and anchor its digest on the Backbone; returns the report with `anchor`."""
    signed = await run_in_threadpool(_run, request, agency, from_block=from_block, resume=False, deadline=deadline,
                                     anchor=True)
    return signed.to_json()


@router.get("/reports")
async def list_reports(request: Request, agency: CurrentAgency) -> dict[str, Any]:
    """Signed reports stored here, newest first (digest, auditor, findings, where anchored)."""
    node: Node = request.app.state.node
    _require_auditor(node, agency)

    def work() -> list[dict[str, Any]]:
        with node.db.session() as s:
            rows = s.scalars(select(AuditReportRow).order_by(AuditReportRow.id.desc()).limit(100)).all()
            return [{"digest": r.digest, "auditor": r.auditor_uscc, "signer": r.signer, "findings": r.findings,
                     "from_block": r.from_block, "to_block": r.to_block, "log_index": r.log_index,
                     "checkpoint": r.checkpoint_hash, "anchor_tx": r.anchor_tx,
                     "created_at": r.created_at.isoformat() + "Z"} for r in rows]

    reports = await run_in_threadpool(work)
    return {"count": len(reports), "reports": reports}
