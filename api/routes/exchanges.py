"""Data exchanges (数据共享交换链): request -> authorise/refuse -> deliver -> acknowledge, and queries.

Every route acts as the authenticated agency; each step is checked here and again by the ExchangeLedger
contract. 200/201 when the step is on chain, 202 when it waits in the outbox (chain unreachable).

    curl -H "Authorization: Bearer $KEY" -d '{"item": "SCJG-001", "purpose": "...", "legal_basis": "..."}' \\
         localhost:8000/api/v1/exchanges
    curl -H "Authorization: Bearer $KEY" 'localhost:8000/api/v1/exchanges?status=unacknowledged'
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import Field, StrictBool, StrictInt

from api.deps import CurrentAgency, ExchangesDep, NodeDep
from api.schemas import AGENCY_ERRORS, PUBLIC_ERRORS, Digest, Limit, Offset, Strict, Text, links
from registry.exchanges.service import ExchangeSubmission, ExchangeView

router = APIRouter(prefix="/api/v1", tags=["exchanges"])

ExchangeIdPath = Annotated[str, Path(max_length=64, json_schema_extra={"minLength": 1})]
_PENDING = {202: {"description": "recorded; the chain step waits in the outbox (chain unreachable)"}}
_WRITE = {**AGENCY_ERRORS, **_PENDING}
Count = Annotated[StrictInt, Field(le=2**53 - 1, json_schema_extra={"minimum": 0})]  # the service: invalid_size


class ExchangeCreate(Strict):
    item: Text(20, description="data catalogue item code (seeds/catalogue.yaml)") | None = None
    provider: Text(18, description="defaults to the item's provider") | None = None
    purpose: Text(2000, description="申请事由; only a salted digest goes on chain") | None = None
    legal_basis: Text(500, description="法律依据") | None = None
    operator_id: Text(64) | None = None


class AuthoriseRequest(Strict):
    granted: StrictBool = True
    reason: Text(500) | None = None


class RefuseRequest(Strict):
    reason: Text(500) | None = None


class DeliverRequest(Strict):
    sha256: Digest = Field(description="SHA-256 of the delivered payload")
    sm3: Digest | None = None
    size: Count = Field(description="bytes delivered")
    records: Count = Field(description="records delivered")


class AcknowledgeRequest(Strict):
    sha256: Digest = Field(description="SHA-256 of what the consumer received")


def _written(response: Response, view: ExchangeView, *, created: bool = False) -> dict[str, Any]:
    response.status_code = 202 if view.pending_steps else (201 if created else 200)
    return view.to_json()


@router.get("/catalogue", responses=PUBLIC_ERRORS)
def catalogue(node: NodeDep) -> dict[str, Any]:
    """The data catalogue (数据共享交换目录): items, providers and share conditions."""
    items = [c.model_dump() for c in node.seeds.catalogue]
    return {"count": len(items), "items": items}


_EXCHANGE_LINKS = links("id", get_exchange="exchange_id", authorise_exchange="exchange_id", refuse_exchange="exchange_id",
                        deliver_exchange="exchange_id", acknowledge_exchange="exchange_id")


@router.post("/exchanges", status_code=201, operation_id="request_exchange", responses={
    **_WRITE, 201: {"description": "requested", "links": _EXCHANGE_LINKS}})
async def request_exchange(body: ExchangeCreate, agency: CurrentAgency, svc: ExchangesDep,
                           response: Response) -> dict[str, Any]:
    """Request a catalogue item from its provider (you are the consumer)."""
    sub = ExchangeSubmission(item=body.item, purpose=body.purpose, legal_basis=body.legal_basis,
                             provider=body.provider, operator_id=body.operator_id)
    return _written(response, await run_in_threadpool(svc.request, agency, sub), created=True)


@router.get("/exchanges", responses=AGENCY_ERRORS)
async def search(agency: CurrentAgency, svc: ExchangesDep,
                 party: Annotated[str | None, Query(alias="agency", max_length=18,
                                                    description="exchanges involving this agency (USCC)")] = None,
                 item: Annotated[str | None, Query(max_length=20, description="catalogue item code")] = None,
                 status: Annotated[str | None, Query(max_length=20, description="a step, or unacknowledged / "
                                                                                 "disputed / open")] = None,
                 limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """Your exchanges (every exchange for an auditor), by counterpart agency, item or status."""
    return await run_in_threadpool(svc.search, agency, party=party, item=item, status=status, limit=limit, offset=offset)


@router.get("/exchanges/{exchange_id}", responses=AGENCY_ERRORS, operation_id="get_exchange")
async def get_exchange(exchange_id: ExchangeIdPath, agency: CurrentAgency, svc: ExchangesDep) -> dict[str, Any]:
    return (await run_in_threadpool(svc.get, agency, exchange_id)).to_json()


@router.post("/exchanges/{exchange_id}/authorise", responses=_WRITE, operation_id="authorise_exchange")
async def authorise(exchange_id: ExchangeIdPath, agency: CurrentAgency, svc: ExchangesDep, response: Response,
                    body: AuthoriseRequest | None = None) -> dict[str, Any]:
    """The provider grants the request (or refuses it with `granted: false` and a reason)."""
    body = body or AuthoriseRequest()
    view = await run_in_threadpool(lambda: svc.authorise(agency, exchange_id, granted=body.granted, reason=body.reason))
    return _written(response, view)


@router.post("/exchanges/{exchange_id}/refuse", responses=_WRITE, operation_id="refuse_exchange")
async def refuse(exchange_id: ExchangeIdPath, body: RefuseRequest, agency: CurrentAgency, svc: ExchangesDep,
                 response: Response) -> dict[str, Any]:
    """The provider refuses the request, with a reason."""
    view = await run_in_threadpool(lambda: svc.authorise(agency, exchange_id, granted=False, reason=body.reason))
    return _written(response, view)


@router.post("/exchanges/{exchange_id}/deliver", responses=_WRITE, operation_id="deliver_exchange")
async def deliver(exchange_id: ExchangeIdPath, body: DeliverRequest, agency: CurrentAgency, svc: ExchangesDep,
                  response: Response) -> dict[str, Any]:
    """The provider records the delivered payload's digest, size and record count (after authorisation)."""
    view = await run_in_threadpool(lambda: svc.deliver(agency, exchange_id, sha256=body.sha256, sm3=body.sm3,
                                                       size=body.size, records=body.records))
    return _written(response, view)


@router.post("/exchanges/{exchange_id}/acknowledge", responses=_WRITE, operation_id="acknowledge_exchange")
async def acknowledge(exchange_id: ExchangeIdPath, body: AcknowledgeRequest, agency: CurrentAgency, svc: ExchangesDep,
                      response: Response) -> dict[str, Any]:
    """The consumer confirms the digest it received: acknowledged if it matches, disputed otherwise."""
    view = await run_in_threadpool(lambda: svc.acknowledge(agency, exchange_id, sha256=body.sha256))
    return _written(response, view)
