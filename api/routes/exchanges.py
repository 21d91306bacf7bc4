"""Data exchanges (数据共享交换链): request -> authorise/refuse -> deliver -> acknowledge, and queries.

Every route acts as the authenticated agency; each step is checked here and again by the ExchangeLedger
contract. 200/201 when the step is on chain, 202 when it waits in the outbox (chain unreachable).

    curl -H "Authorization: Bearer $KEY" -d '{"item": "SCJG-001", "purpose": "...", "legal_basis": "..."}' \\
         localhost:8000/api/v1/exchanges
    curl -H "Authorization: Bearer $KEY" 'localhost:8000/api/v1/exchanges?status=unacknowledged'
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentAgency
from registry.exchanges.service import ExchangeService, ExchangeSubmission, ExchangeView

router = APIRouter(prefix="/api/v1", tags=["exchanges"])


def service_for(app: FastAPI) -> ExchangeService:
    """The app's ExchangeService (built with the one outbox in api/services.py)."""
    return app.state.services.exchanges  # type: ignore[no-any-return]


def _service(request: Request) -> ExchangeService:
    return service_for(request.app)


ExchangeDep = Annotated[ExchangeService, Depends(_service)]


def start(app: FastAPI) -> list[Any]:
    """Nothing of its own: the one outbox worker (api/services.py) sends exchange steps."""
    return []


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExchangeCreate(_Strict):
    item: str | None = Field(None, max_length=20, description="data catalogue item code (seeds/catalogue.yaml)")
    provider: str | None = Field(None, max_length=18, description="defaults to the item's provider")
    purpose: str | None = Field(None, description="申请事由; only a salted digest goes on chain")
    legal_basis: str | None = Field(None, description="法律依据")
    operator_id: str | None = Field(None, max_length=64)


class AuthoriseRequest(_Strict):
    granted: bool = True
    reason: str | None = None


class RefuseRequest(_Strict):
    reason: str | None = None


class DeliverRequest(_Strict):
    sha256: str = Field(max_length=66, description="SHA-256 of the delivered payload")
    sm3: str | None = Field(None, max_length=66)
    size: int
    records: int


class AcknowledgeRequest(_Strict):
    sha256: str = Field(max_length=66, description="SHA-256 of what the consumer received")


def _written(response: Response, view: ExchangeView, *, created: bool = False) -> dict[str, Any]:
    response.status_code = 202 if view.pending_steps else (201 if created else 200)
    return view.to_json()


@router.get("/catalogue")
def catalogue(request: Request) -> dict[str, Any]:
    """The data catalogue (数据共享交换目录): items, providers and share conditions."""
    items = [c.model_dump() for c in request.app.state.node.seeds.catalogue]
    return {"count": len(items), "items": items}


@router.post("/exchanges", status_code=201)
async def request_exchange(body: ExchangeCreate, agency: CurrentAgency, svc: ExchangeDep,
                           response: Response) -> dict[str, Any]:
    """Request a catalogue item from its provider (you are the consumer)."""
    sub = ExchangeSubmission(item=body.item, purpose=body.purpose, legal_basis=body.legal_basis,
                             provider=body.provider, operator_id=body.operator_id)
    return _written(response, await run_in_threadpool(svc.request, agency, sub), created=True)


@router.get("/exchanges")
async def search(agency: CurrentAgency, svc: ExchangeDep,
                 party: str | None = Query(None, alias="agency", description="exchanges involving this agency (USCC)"),
                 item: str | None = Query(None, description="catalogue item code"),
                 status: str | None = Query(None, description="a step, or unacknowledged / disputed / open"),
                 limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)) -> dict[str, Any]:
    """Your exchanges (every exchange for an auditor), by counterpart agency, item or status."""
    return await run_in_threadpool(svc.search, agency, party=party, item=item, status=status, limit=limit, offset=offset)


@router.get("/exchanges/{exchange_id}")
async def get_exchange(exchange_id: str, agency: CurrentAgency, svc: ExchangeDep) -> dict[str, Any]:
    return (await run_in_threadpool(svc.get, agency, exchange_id)).to_json()


@router.post("/exchanges/{exchange_id}/authorise")
async def authorise(exchange_id: str, agency: CurrentAgency, svc: ExchangeDep, response: Response,
                    body: AuthoriseRequest | None = None) -> dict[str, Any]:
    """The provider grants the request (or refuses it with `granted: false` and a reason)."""
    body = body or AuthoriseRequest()
    view = await run_in_threadpool(lambda: svc.authorise(agency, exchange_id, granted=body.granted, reason=body.reason))
    return _written(response, view)


@router.post("/exchanges/{exchange_id}/refuse")
async def refuse(exchange_id: str, body: RefuseRequest, agency: CurrentAgency, svc: ExchangeDep,
                 response: Response) -> dict[str, Any]:
    """The provider refuses the request, with a reason."""
    view = await run_in_threadpool(lambda: svc.authorise(agency, exchange_id, granted=False, reason=body.reason))
    return _written(response, view)


@router.post("/exchanges/{exchange_id}/deliver")
async def deliver(exchange_id: str, body: DeliverRequest, agency: CurrentAgency, svc: ExchangeDep,
                  response: Response) -> dict[str, Any]:
    """The provider records the delivered payload's digest, size and record count (after authorisation)."""
    view = await run_in_threadpool(lambda: svc.deliver(agency, exchange_id, sha256=body.sha256, sm3=body.sm3,
                                                       size=body.size, records=body.records))
    return _written(response, view)


@router.post("/exchanges/{exchange_id}/acknowledge")
async def acknowledge(exchange_id: str, body: AcknowledgeRequest, agency: CurrentAgency, svc: ExchangeDep,
                      response: Response) -> dict[str, Any]:
    """The consumer confirms the digest it received: acknowledged if it matches, disputed otherwise."""
    view = await run_in_threadpool(lambda: svc.acknowledge(agency, exchange_id, sha256=body.sha256))
    return _written(response, view)
