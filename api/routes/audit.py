"""Audit reports for auditor members (省司法厅, 哈尔滨中院, 哈尔滨公证处 ...), authenticated by their API key.

- ``GET /api/v1/audit/report?format=json|html&from_block=N&resume=true&deadline=S``: replay the chain, check
  the checkpoints, compare with the database; the report is signed with the calling auditor's key.
- ``POST /api/v1/audit/reports``: the same, then anchored on the Backbone (the ``audit-reports`` log).
- ``GET /api/v1/audit/reports``: the signed reports stored so far.

    $ curl -H "Authorization: Bearer $AUDITOR_KEY" '127.0.0.1:8000/api/v1/audit/report?format=html' > report.html
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from api.deps import AuditDep, CurrentAgency
from api.schemas import AGENCY_ERRORS
from registry.audit.report import render_html

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=AGENCY_ERRORS)

FromBlock = Annotated[int | None, Query(ge=0, le=2**53, description="first block of a window audit")]
Deadline = Annotated[float | None, Query(gt=0, le=10**9, description="seconds (default: checkpoint_deadline)")]


@router.get("/report", response_model=None, responses={
    200: {"content": {"application/json": {"schema": {"type": "object"}}, "text/html": {"schema": {"type": "string"}}},
          "description": "the signed report (JSON, or HTML with format=html)"}})
async def report(agency: CurrentAgency, audit: AuditDep, format: Literal["json", "html"] = "json",
                 from_block: FromBlock = None, resume: bool = False, deadline: Deadline = None) -> Any:
    """Run the audit replay and return the signed report (findings, counts, ledgers, per-day chart data)."""
    signed = await run_in_threadpool(lambda: audit.run(agency, from_block=from_block, resume=resume,
                                                       deadline=deadline, anchor=False))
    if format == "html":
        return HTMLResponse(render_html(signed))
    return signed.to_json()


@router.post("/reports", status_code=201)
async def create_report(agency: CurrentAgency, audit: AuditDep, from_block: FromBlock = None,
                        deadline: Deadline = None) -> dict[str, Any]:
    """Run the audit, sign it and anchor its digest on the Backbone; returns the report with `anchor`."""
    signed = await run_in_threadpool(lambda: audit.run(agency, from_block=from_block, deadline=deadline, anchor=True))
    return signed.to_json()


@router.get("/reports")
async def list_reports(agency: CurrentAgency, audit: AuditDep) -> dict[str, Any]:
    """Signed reports stored here, newest first (digest, auditor, findings, where anchored)."""
    reports = await run_in_threadpool(audit.reports, agency)
    return {"count": len(reports), "reports": reports}
