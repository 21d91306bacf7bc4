"""Usage records (用证记录), 免证办 and 用证率.

- ``POST /api/v1/usages`` (agency): record a usage of a certificate with the holder's consent — a grant naming
  your agency, or the holder's presentation over a challenge. Checked before anything is stored; 201 when on
  chain, 202 when it waits in the outbox.
- ``POST /api/v1/usages/fetch`` (agency, 免证办): with a grant naming your agency, this node unwraps the document
  key with your agency's exchange key, opens the encrypted document and returns it to you only, and records
  the usage (channel ``fetch``). Nothing decrypted is stored.
- ``GET /api/v1/usages``, ``GET /api/v1/usages/{id}`` (agency): the usages you recorded (an auditor: all).
- ``GET /api/v1/holders/me/usages`` (holder-signed request, api/holder_auth.py): who used which of my certificates,
  when and why — usages of certificates bound to my key or granted with it, recorded on this node or mirrored from
  the chain (those carry the matter's digest only).
- ``GET /api/v1/indicators/usage-rate?by=agency|type|month`` (public, aggregate counts only): 电子证照用证率.
- ``GET /operator/usage-rate``: the chart of it (no CDN, inline SVG drawn by api/static/operator/usage_rate.js).

    curl -H "Authorization: Bearer $KEY" -d @usage.json localhost:8000/api/v1/usages
    curl 'localhost:8000/api/v1/indicators/usage-rate?by=type'
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import Field

from api.deps import CurrentAgency, FetchDep, NodeDep, UsageDep
from api.holder_auth import CurrentHolder
from api.routes.pages import operator_page
from api.schemas import AGENCY_ERRORS, PUBLIC_ERRORS, Limit, Offset, Strict, Text
from registry.usage.indicators import usage_rate
from registry.usage.service import UsageSubmission, UsageView

router = APIRouter(prefix="/api/v1", tags=["usage"])
pages = APIRouter(include_in_schema=False)

UsageIdPath = Annotated[str, Path(max_length=64, json_schema_extra={"minLength": 1})]
_PENDING = {202: {"description": "recorded; the chain step waits in the outbox (chain unreachable)"}}
_WRITE = {**AGENCY_ERRORS, **_PENDING}
Certificate = Annotated[str, Field(max_length=128, description="电子证照标识 (GB/T 36904) or the document digest (64 hex)")]
SignedObject = Annotated[dict[str, Any], Field(description="a holder-signed JSON object (docs/HOLDERS.md)")]


class UsageCreate(Strict):
    certificate: Certificate | None = None
    purpose: Text(2000, description="the matter (申请事由); only a salted digest goes on chain") | None = None
    grant: SignedObject | Annotated[str, Field(max_length=8192, description="the grant's QR text")] | None = None
    presentation: SignedObject | None = None
    operator_id: Text(64) | None = None


def _written(response: Response, view: UsageView) -> dict[str, Any]:
    response.status_code = 201 if view.status == "recorded" else 202
    return view.to_json()


@router.post("/usages", status_code=201, operation_id="record_usage", responses=_WRITE)
async def record_usage(body: UsageCreate, agency: CurrentAgency, svc: UsageDep, response: Response) -> dict[str, Any]:
    """Record that your agency used a certificate for a matter, with the holder's grant or presentation."""
    sub = UsageSubmission(certificate=body.certificate, purpose=body.purpose, grant=body.grant,
                          presentation=body.presentation, operator_id=body.operator_id)
    return _written(response, await run_in_threadpool(svc.record, agency, sub))


class FetchRequest(Strict):
    certificate: Certificate | None = None
    purpose: Text(2000, description="the matter (申请事由); only a salted digest goes on chain") | None = None
    grant: SignedObject | Annotated[str, Field(max_length=8192, description="the grant's QR text")] | None = None
    operator_id: Text(64) | None = None


@router.post("/usages/fetch", operation_id="fetch_certificate", responses=_WRITE)
async def fetch_certificate(body: FetchRequest, agency: CurrentAgency, svc: FetchDep,
                            response: Response) -> dict[str, Any]:
    """免证办: open the certificate a holder granted to your agency and record the usage. The document is in the
    answer only (fields outside the grant's scope hidden); nothing decrypted is stored."""
    sub = UsageSubmission(certificate=body.certificate, purpose=body.purpose, grant=body.grant,
                          operator_id=body.operator_id)
    answer = await run_in_threadpool(svc.fetch, agency, sub)
    response.status_code = 200 if answer["usage"]["status"] == "recorded" else 202
    response.headers["Cache-Control"] = "no-store"
    return answer


@router.get("/usages", responses=AGENCY_ERRORS)
async def search_usages(agency: CurrentAgency, svc: UsageDep,
                        certificate: Annotated[str | None, Query(max_length=128, description="identifier or digest")] = None,
                        limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """The usages your agency recorded (every usage for an auditor), newest first."""
    return await run_in_threadpool(lambda: svc.search(agency, certificate=certificate, limit=limit, offset=offset))


@router.get("/usages/{usage_id}", responses=AGENCY_ERRORS, operation_id="get_usage")
async def get_usage(usage_id: UsageIdPath, agency: CurrentAgency, svc: UsageDep) -> dict[str, Any]:
    return (await run_in_threadpool(svc.get, agency, usage_id)).to_json()


@router.get("/holders/me/usages", responses={**PUBLIC_ERRORS, 401: AGENCY_ERRORS[401]})
async def my_usages(holder: CurrentHolder, svc: UsageDep, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """用证记录 for the calling holder: every usage of a certificate bound to their key or granted with it."""
    found = await run_in_threadpool(lambda: svc.of_holder(holder.key_id, limit=limit, offset=offset))
    return {"holder_key": holder.key_id, **found}


@router.get("/indicators/usage-rate", responses=PUBLIC_ERRORS)
async def usage_rate_indicator(node: NodeDep, by: Annotated[str, Query(
        max_length=10, description="agency | type | month", json_schema_extra={"enum": ["agency", "type", "month"]})]
                               = "agency") -> dict[str, Any]:
    """电子证照用证率: certificates used at least once / certificates issued (this node's), per issuing agency,
    certificate type or month of issue. Aggregate counts only."""
    return await run_in_threadpool(usage_rate, node, by)


@pages.get("/operator/usage-rate", response_class=HTMLResponse)
def usage_rate_page() -> HTMLResponse:
    return operator_page("usage_rate.html")
