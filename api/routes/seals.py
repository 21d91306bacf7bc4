"""E-seals (电子印章): an agency registers its seals (制章), suspends, reinstates and revokes them; anyone reads a
seal's public view and image, and a sealed certificate's sealed signature (验章 material) and the seal image
inside it (``/certificates/{id}/seal/image``, on any node: from the issuing node's public record when the
certificate was issued elsewhere; the verifier page shows it only when its SHA-256 is the registered one).

Writes act as the authenticated agency and are checked here and again by the SealRegistry contract.
201/200 when on chain, 202 when the chain step waits in the outbox.

    curl -H "Authorization: Bearer $KEY" -d '{"name": "…行政许可专用章", "category": "permit",
         "image": "<base64 PNG>", "valid_until": "2031-12-31T00:00:00Z"}' localhost:8000/api/v1/seals
    curl -H "Authorization: Bearer $KEY" -d '{"reason": "印章遗失"}' localhost:8000/api/v1/seals/ES.../suspend
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime, Field, StrictInt, StrictStr
from sqlalchemy import select

from api.deps import CurrentAgency, NodeDep, SealCheckDep, SealsDep
from api.schemas import AGENCY_ERRORS, PUBLIC_ERRORS, IdentifierPath, Strict, Text
from registry.errors import NotFoundError, ValidationError
from registry.seals.images import MAX_BYTES
from registry.seals.service import CATEGORIES, SealRequest, SealView
from registry.store.seal_models import SealedSignature

router = APIRouter(prefix="/api/v1", tags=["seals"])

SealIdPath = Annotated[str, Path(max_length=64, pattern=r"^[0-9A-Z]+$", json_schema_extra={"minLength": 1})]
_WRITE = {**AGENCY_ERRORS, 202: {"description": "recorded; the chain step waits in the outbox"}}


class SealCreate(Strict):
    name: Text(100, min_length=1, description="印章名称, e.g. 黑龙江省市场监督管理局行政许可专用章")
    category: StrictStr = Field(description="印章类别", json_schema_extra={"enum": sorted(CATEGORIES)})
    image: StrictStr = Field(max_length=(MAX_BYTES * 4) // 3 + 4, description="the seal image, PNG or SVG, base64")
    valid_from: AwareDatetime | None = Field(default=None, strict=False, description="ISO 8601 with offset; "
                                                                                   "default: now")
    valid_until: AwareDatetime = Field(strict=False, description="ISO 8601 with offset")
    width_mm: StrictInt = Field(default=40, description="printed width (10..100 mm)")
    height_mm: StrictInt = Field(default=40, description="printed height (10..100 mm)")


class SealChange(Strict):
    reason: Text(500) | None = None


def _written(response: Response, view: SealView, *, created: bool = False) -> dict[str, Any]:
    pending = any(st["state"] in ("pending", "sent") for st in view.steps)
    response.status_code = 202 if pending else (201 if created else 200)
    return view.to_json()


@router.post("/seals", status_code=201, responses={**_WRITE, 201: {"description": "registered on chain"}})
async def create_seal(body: SealCreate, agency: CurrentAgency, svc: SealsDep, response: Response) -> dict[str, Any]:
    """Register a seal of your agency (制章): its SESeal is signed by the seal maker, its digests go on chain."""
    try:
        image = base64.b64decode(body.image, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("image must be base64", code="invalid_seal_image") from None
    req = SealRequest(name=body.name, category=body.category, image=image, valid_from=body.valid_from,
                      valid_until=body.valid_until, width_mm=body.width_mm, height_mm=body.height_mm)
    return _written(response, await run_in_threadpool(svc.create, agency, req), created=True)


@router.get("/seals", responses=AGENCY_ERRORS)
async def list_seals(agency: CurrentAgency, svc: SealsDep) -> dict[str, Any]:
    """Your agency's seals."""
    seals = [v.to_json() for v in await run_in_threadpool(svc.list, agency)]
    return {"count": len(seals), "seals": seals}


@router.get("/seals/{seal_id}", responses=PUBLIC_ERRORS)
async def get_seal(seal_id: SealIdPath, svc: SealsDep) -> dict[str, Any]:
    """A seal's public view (digests, validity, status, chain steps)."""
    return (await run_in_threadpool(svc.get, seal_id)).to_json()


@router.get("/seals/{seal_id}/image", responses=PUBLIC_ERRORS, response_class=Response)
async def seal_image(seal_id: SealIdPath, svc: SealsDep) -> Response:
    """The seal's image (its SHA-256 is on chain)."""
    media, data = await run_in_threadpool(svc.image, seal_id)
    return Response(data, media_type=media, headers=_IMAGE_HEADERS)


# an SVG opened directly runs no script and loads nothing (it was checked at 制章, but a sealed signature from
# another node was not)
_IMAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'", "Cache-Control": "no-cache",
                  "X-Content-Type-Options": "nosniff"}


@router.get("/certificates/{identifier}/seal/image", responses=PUBLIC_ERRORS, response_class=Response)
async def sealed_image(identifier: IdentifierPath, seals: SealCheckDep) -> Response:
    """The seal image as sealed on this certificate (inside its sealed signature; for a certificate issued on
    another node, from that node's public record). ``X-Seal-Image-SHA256`` is its digest: compare it with the
    registered one (the verification's `seal` check, ``details.image_sha256``) before showing it."""
    media, data, digest = await run_in_threadpool(seals.image, identifier)
    return Response(data, media_type=media, headers={**_IMAGE_HEADERS, "X-Seal-Image-SHA256": digest})


def _action(action: str) -> Any:
    async def change(seal_id: SealIdPath, agency: CurrentAgency, svc: SealsDep, response: Response,
                     body: SealChange | None = None) -> dict[str, Any]:
        reason = body.reason if body is not None else None
        view = await run_in_threadpool(lambda: svc.change(agency, seal_id, action, reason=reason))
        return _written(response, view)

    change.__doc__ = {"suspend": "Suspend your seal (reversible): sealing with it is refused.",
                      "reinstate": "Reinstate your suspended seal.",
                      "revoke": "Revoke your seal for good."}[action]
    return change


for _name in ("suspend", "reinstate", "revoke"):
    router.add_api_route(f"/seals/{{seal_id}}/{_name}", _action(_name), methods=["POST"], responses=_WRITE,
                         operation_id=f"{_name}_seal", name=f"{_name}_seal")


def _sealed(node: Any, kind: str, identifier: str) -> dict[str, Any]:
    with node.db.session() as s:
        row = s.scalars(select(SealedSignature).where(SealedSignature.record_kind == kind,
                                                      SealedSignature.record_id == identifier)).first()
        if row is None:
            raise NotFoundError(f"{kind} {identifier[:80]} was not sealed on this node", code="not_sealed")
        return {"identifier": identifier, "seal": row.seal_id, "format": row.format,
                "signature": base64.b64encode(row.signature).decode(),
                "created_at": row.created_at.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")}


@router.get("/certificates/{identifier}/seal", responses=PUBLIC_ERRORS)
async def sealed_signature(identifier: Annotated[str, Path(max_length=120)], node: NodeDep) -> dict[str, Any]:
    """The sealed signature of a certificate issued here under a seal: a GB/T 38540 SES_Signature (DER,
    base64) in the gm profile, a signed JSON proof in the intl profile."""
    return await run_in_threadpool(_sealed, node, "certificate", identifier)


@router.get("/evidence/{record_id}/seal", responses=PUBLIC_ERRORS)
async def sealed_evidence_signature(record_id: Annotated[str, Path(max_length=64)], node: NodeDep) -> dict[str, Any]:
    """The sealed signature of an evidence record registered here under a seal (over the file's digests and
    the record's identifier; no case number, no operator): SES_Signature (gm) or signed JSON proof (intl)."""
    return await run_in_threadpool(_sealed, node, "evidence", record_id)
