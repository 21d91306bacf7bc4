"""Certificates: issue (single and batch), the issuer view, lifecycle changes, verification, types."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentAgency, NodeDep, ServicesDep
from registry.certificates.service import REVOCATION_REASONS, IssuedCertificate
from registry.certificates.verification import parse_verify_body
from registry.errors import ValidationError

router = APIRouter(prefix="/api/v1", tags=["certificates"])


class CertificateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="证照类型代码 (see GET /api/v1/certificate-types)", max_length=32)
    fields: dict[str, Any] = Field(description="field values by Chinese field name")


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(max_length=32)
    documents: list[dict[str, Any]] = Field(description="field values of each document (at most 10,000)")


class IssuedPublic(BaseModel):
    identifier: str
    status: str
    qr_url: str = Field(description="by-reference QR URL; the decryption key is only in its fragment")
    document: dict[str, Any]


class BatchPublic(BaseModel):
    count: int
    status: str
    certificates: list[IssuedPublic]


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: int = Field(description="revocation reason code: " + ", ".join(f"{k} {v[0]}" for k, v in REVOCATION_REASONS.items()))


class EmptyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SupersedeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fields: dict[str, Any]


def _issued(i: IssuedCertificate) -> IssuedPublic:
    return IssuedPublic(identifier=i.identifier, status=i.status, qr_url=i.qr_url, document=i.document)


@router.post("/certificates", status_code=201)
async def issue_one(body: CertificateCreate, agency: CurrentAgency, services: ServicesDep,
                    wait: bool = Query(False, description="block until anchored")) -> IssuedPublic:
    """Issue one certificate. Returns at once with status `pending` unless `wait=true`."""
    [issued] = await run_in_threadpool(services.certificates.issue, agency, body.type, [body.fields], wait=wait)
    return _issued(issued)


@router.post("/certificates/batch", status_code=201)
async def issue_batch(body: BatchCreate, agency: CurrentAgency, services: ServicesDep,
                      wait: bool = Query(False, description="block until all are anchored")) -> BatchPublic:
    """Issue up to 10,000 certificates of one type. All are validated before any is stored: all or nothing."""
    issued = await run_in_threadpool(services.certificates.issue, agency, body.type, body.documents, wait=wait)
    status = "issued" if all(i.status == "issued" for i in issued) else "pending"
    return BatchPublic(count=len(issued), status=status, certificates=[_issued(i) for i in issued])


class StatusQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identifiers: list[str] = Field(max_length=10_000)


@router.post("/certificates/status")
async def statuses(body: StatusQuery, agency: CurrentAgency, services: ServicesDep) -> dict[str, Any]:
    """Status of many of your certificates at once (pending / issued / suspended / revoked / superseded)."""
    found = await run_in_threadpool(services.certificates.statuses, agency, body.identifiers)
    return {"count": len(found), "statuses": found}


@router.get("/certificates/{identifier}")
async def get_certificate(identifier: str, agency: CurrentAgency, services: ServicesDep) -> dict[str, Any]:
    """The issuer view: status, digests, anchor and history (the server keeps no holder data)."""
    return asdict(await run_in_threadpool(services.certificates.get, agency, identifier))


@router.post("/certificates/{identifier}/revoke")
async def revoke(identifier: str, body: RevokeRequest, agency: CurrentAgency, services: ServicesDep) -> dict[str, Any]:
    view = await run_in_threadpool(services.certificates.change_status, agency, identifier, "revoke", reason=body.reason)
    return asdict(view)


@router.post("/certificates/{identifier}/suspend")
async def suspend(identifier: str, agency: CurrentAgency, services: ServicesDep,
                  body: EmptyRequest | None = None) -> dict[str, Any]:
    return asdict(await run_in_threadpool(services.certificates.change_status, agency, identifier, "suspend"))


@router.post("/certificates/{identifier}/reinstate")
async def reinstate(identifier: str, agency: CurrentAgency, services: ServicesDep,
                    body: EmptyRequest | None = None) -> dict[str, Any]:
    return asdict(await run_in_threadpool(services.certificates.change_status, agency, identifier, "reinstate"))


@router.post("/certificates/{identifier}/supersede")
async def supersede(identifier: str, body: SupersedeRequest, agency: CurrentAgency,
                    services: ServicesDep) -> dict[str, Any]:
    """Issue a corrected version (version + 1) and mark this one superseded, linking both."""
    old, new = await run_in_threadpool(services.certificates.supersede, agency, identifier, body.fields)
    return {"superseded": asdict(old), "replacement": _issued(new).model_dump()}


@router.post("/verify", tags=["verification"])
async def verify(body: dict[str, Any], services: ServicesDep) -> dict[str, Any]:
    """Verify a certificate document (full or selectively disclosed), or `{"identifier": ...}` for status only."""
    kind, value = parse_verify_body(body)
    if kind == "identifier":
        if not isinstance(value, str):
            raise ValidationError("identifier must be a string", code="invalid_identifier")
        result = await run_in_threadpool(services.verifier.verify_identifier, value)
    else:
        result = await run_in_threadpool(services.verifier.verify_document, value)
    return result.to_json()


@router.get("/certificate-types")
def certificate_types(node: NodeDep) -> dict[str, Any]:
    """Each certificate type: code, name, the agencies allowed to issue it, and its fields."""
    from registry.certificates.documents import COMMON_FIELDS

    types = []
    for t in node.seeds.certificate_types:
        types.append({
            "code": t.code, "name": t.name, "name_en": t.name_en, "authority": t.authority,
            "issuers": list(t.issuers), "holder_code_type": t.holder_code_type, "validity_years": t.validity_years,
            "common_fields": [f.model_dump() for f in COMMON_FIELDS],
            "fields": [f.model_dump() for f in t.fields],
        })
    return {"count": len(types), "types": types,
            "revocation_reasons": {k: {"zh": v[0], "en": v[1]} for k, v in REVOCATION_REASONS.items()}}
