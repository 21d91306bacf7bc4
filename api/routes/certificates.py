"""Certificates: issue (single and batch, idempotent), the issuer view, lifecycle changes, types (verification:
api/routes/verify.py).

Issuing is idempotent by 证照编号 per type and issuer, and by the `Idempotency-Key` header
(registry/certificates/idempotency.py): a replayed certificate comes back with `idempotent_replay: true`
and 200, a replayed Idempotency-Key answer with the first answer's status and `Idempotent-Replayed: true`.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from json.encoder import encode_basestring as _json_string  # C; non-ASCII kept, as ensure_ascii=False
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, Field, StrictInt, StrictStr

from api.deps import CertificatesDep, CurrentAgency, NodeDep
from api.schemas import (
    AGENCY_ERRORS,
    MAX_BATCH,
    PUBLIC_ERRORS,
    Fields,
    IdempotencyKeyHeader,
    IdentifierPath,
    Strict,
    StrictIdentifier,
    TypeCode,
    links,
)
from registry.certificates.documents import COMMON_FIELDS
from registry.certificates.idempotency import IdempotencyKey
from registry.certificates.service import REVOCATION_REASONS, IssuedCertificate, IssueResult

router = APIRouter(prefix="/api/v1", tags=["certificates"])
log = structlog.get_logger(__name__)

Wait = Annotated[bool, Query(description="block until anchored")]
IdempotencyHeader = Annotated[IdempotencyKeyHeader, Header(
    alias="Idempotency-Key", description="replays the first answer to the same request; refuses a different one")]


def _known_reason(code: int) -> int:
    if code not in REVOCATION_REASONS:
        raise ValueError(f"must be one of the revocation reason codes {sorted(REVOCATION_REASONS)}, got {code}")
    return code


# StrictInt: "4" and true are refused, not coerced (a Literal of ints would take true for 1)
RevocationReason = Annotated[StrictInt, AfterValidator(_known_reason),
                             Field(json_schema_extra={"enum": sorted(REVOCATION_REASONS)})]


SealId = Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[0-9A-Z]+$",
                                    description="seal this issue with one of your seals (its id, ES...)")]


HolderKey = Annotated[StrictStr, Field(min_length=40, max_length=400, pattern=r"^[A-Za-z0-9_-]+={0,2}$",
                                       description="the holder's ECDSA P-256 public key: DER SubjectPublicKeyInfo, "
                                                   "base64url (binds the certificate to it: holderKeyDigest)")]


class CertificateCreate(Strict):
    type: TypeCode
    fields: Fields
    seal: SealId | None = None
    holder_key: HolderKey | None = None


class BatchCreate(Strict):
    type: TypeCode
    seal: SealId | None = None
    documents: list[Fields] = Field(min_length=1, description="field values of each document (1 to 10,000)",
                                    json_schema_extra={"maxItems": MAX_BATCH})
    holder_keys: list[HolderKey | None] | None = Field(
        default=None, description="one per document (null: not bound): the holder key each is bound to",
        json_schema_extra={"maxItems": MAX_BATCH})


class IssuedPublic(BaseModel):
    identifier: str
    status: str
    qr_url: str | None = Field(description="by-reference QR URL; the decryption key is only in its fragment. "
                                           "null for a replayed certificate: the key was returned once")
    document: dict[str, Any] | None = Field(description="the document; null for a replayed certificate")
    idempotent_replay: bool = Field(description="issued before with the same 证照编号 and values: no new certificate")


class BatchPublic(BaseModel):
    count: int
    status: str
    certificates: list[IssuedPublic]


class RevokeRequest(Strict):
    reason: RevocationReason = Field(
        description="revocation reason code: " + ", ".join(f"{k} {v[0]}" for k, v in REVOCATION_REASONS.items()))


class EmptyRequest(Strict):
    pass


class SupersedeRequest(Strict):
    fields: Fields


class StatusQuery(Strict):
    identifiers: list[StrictIdentifier] = Field(json_schema_extra={"maxItems": MAX_BATCH})


def _issued(i: IssuedCertificate) -> IssuedPublic:
    return IssuedPublic(identifier=i.identifier, status=i.status, qr_url=i.qr_url, document=i.body(),
                        idempotent_replay=i.replayed)


def _batch_json(issued: list[IssuedCertificate]) -> bytes:
    """The BatchPublic answer. A document built just now is spliced in as the JSON it was encoded to once
    (registry/certificates/parallel.py) instead of being parsed and encoded again; the rest as the model
    encodes it (tests/integration/test_certificates_api.py checks the answer against the model). The head of each
    is three strings in JSON, each written by the json module's C encoder: a fifth of a json.dumps of a dict."""
    status = "issued" if all(i.status == "issued" for i in issued) else "pending"
    parts = []
    for i in issued:
        if i.document_json is None:
            parts.append(_issued(i).model_dump_json().encode())
            continue
        qr_url = "null" if i.qr_url is None else _json_string(i.qr_url)
        head = f'{{"identifier":{_json_string(i.identifier)},"status":{_json_string(i.status)},"qr_url":{qr_url},"document":'
        parts.append(b"".join((head.encode(), i.document_json, b',"idempotent_replay":true}' if i.replayed
                               else b',"idempotent_replay":false}')))
    return b"".join((b'{"count":%d,"status":"%s","certificates":[' % (len(issued), status.encode()),
                     b",".join(parts), b"]}"))


def _key(header: str | None) -> IdempotencyKey | None:
    return None if header is None else IdempotencyKey.parse(header)


def _mark_replay(response: Response, result: IssueResult) -> None:
    if result.key_replayed:
        response.headers["Idempotent-Replayed"] = "true"


_CERTIFICATE_LINKS = links("identifier", get_certificate="identifier", revoke="identifier", suspend="identifier",
                           reinstate="identifier", supersede="identifier", blob="identifier")


@router.post("/certificates", status_code=201, operation_id="issue_one", responses={
    **AGENCY_ERRORS, 201: {"description": "issued (pending until anchored)", "links": _CERTIFICATE_LINKS},
    200: {"model": IssuedPublic, "description": "issued before: the existing one", "links": _CERTIFICATE_LINKS}})
async def issue_one(body: CertificateCreate, agency: CurrentAgency, certificates: CertificatesDep, response: Response,
                    wait: Wait = False, idempotency_key: IdempotencyHeader = None) -> IssuedPublic:
    """Issue one certificate. Returns at once with status `pending` unless `wait=true`. The same 证照编号
    with the same values returns the existing certificate (200); with other values: 409."""
    result = await run_in_threadpool(lambda: certificates.issue_request(
        agency, body.type, [body.fields], wait=wait, idempotency_key=_key(idempotency_key), route="single",
        seal=body.seal, holder_keys=None if body.holder_key is None else [body.holder_key]))
    [issued] = result.certificates
    response.status_code = 200 if issued.replayed else 201
    _mark_replay(response, result)
    return _issued(issued)


@router.post("/certificates/batch", status_code=201, response_model=BatchPublic,
             responses={**AGENCY_ERRORS, 200: {"model": BatchPublic, "description": "every one issued before"}})
async def issue_batch(body: BatchCreate, agency: CurrentAgency, certificates: CertificatesDep, request: Request,
                      wait: Annotated[bool, Query(description="block until all are anchored")] = False,
                      idempotency_key: IdempotencyHeader = None) -> Response:
    """Issue up to 10,000 certificates of one type. All are validated before any is stored (all or nothing);
    every invalid document is reported at once in `error.details.errors`."""
    parsed = time.perf_counter()  # the body is received, checked and validated by now (api/middleware.py)

    def issue_and_encode() -> tuple[IssueResult, bytes]:
        # in the threadpool, serialising included: thousands of documents' JSON must not stall the event loop
        result = certificates.issue_request(agency, body.type, body.documents, wait=wait,
                                            idempotency_key=_key(idempotency_key), route="batch", seal=body.seal,
                                            holder_keys=body.holder_keys)
        with result.timer.stage("respond"):
            # validated when built; FastAPI would validate the model again and encode it twice
            content = _batch_json(result.certificates)
        return result, content

    result, content = await run_in_threadpool(issue_and_encode)
    result.timer.add("parse", parsed - getattr(request.state, "started_at", parsed))
    log.info("certificates issued", agency=agency, count=len(result.certificates), **result.timer.as_ms(),
             build_processes=result.timer.processes)
    response = Response(content, status_code=200 if all(i.replayed for i in result.certificates) else 201,
                        media_type="application/json")
    _mark_replay(response, result)
    return response


@router.post("/certificates/status", responses=AGENCY_ERRORS)
async def statuses(body: StatusQuery, agency: CurrentAgency, certificates: CertificatesDep) -> dict[str, Any]:
    """Status of many of your certificates at once (pending / issued / suspended / revoked / superseded)."""
    found = await run_in_threadpool(certificates.statuses, agency, body.identifiers)
    return {"count": len(found), "statuses": found}


@router.get("/certificates/{identifier}", responses=AGENCY_ERRORS, operation_id="get_certificate")
async def get_certificate(identifier: IdentifierPath, agency: CurrentAgency,
                          certificates: CertificatesDep) -> dict[str, Any]:
    """The issuer view: status, digests, anchor and history (the server keeps no holder data)."""
    return asdict(await run_in_threadpool(certificates.get, agency, identifier))


@router.post("/certificates/{identifier}/revoke", responses=AGENCY_ERRORS, operation_id="revoke")
async def revoke(identifier: IdentifierPath, body: RevokeRequest, agency: CurrentAgency,
                 certificates: CertificatesDep) -> dict[str, Any]:
    view = await run_in_threadpool(certificates.change_status, agency, identifier, "revoke", reason=body.reason)
    return asdict(view)


@router.post("/certificates/{identifier}/suspend", responses=AGENCY_ERRORS, operation_id="suspend")
async def suspend(identifier: IdentifierPath, agency: CurrentAgency, certificates: CertificatesDep,
                  body: EmptyRequest | None = None) -> dict[str, Any]:
    return asdict(await run_in_threadpool(certificates.change_status, agency, identifier, "suspend"))


@router.post("/certificates/{identifier}/reinstate", responses=AGENCY_ERRORS, operation_id="reinstate")
async def reinstate(identifier: IdentifierPath, agency: CurrentAgency, certificates: CertificatesDep,
                    body: EmptyRequest | None = None) -> dict[str, Any]:
    return asdict(await run_in_threadpool(certificates.change_status, agency, identifier, "reinstate"))


@router.post("/certificates/{identifier}/supersede", responses=AGENCY_ERRORS, operation_id="supersede")
async def supersede(identifier: IdentifierPath, body: SupersedeRequest, agency: CurrentAgency,
                    certificates: CertificatesDep) -> dict[str, Any]:
    """Issue a corrected version (version + 1) and mark this one superseded, linking both."""
    old, new = await run_in_threadpool(certificates.supersede, agency, identifier, body.fields)
    return {"superseded": asdict(old), "replacement": _issued(new).model_dump()}


@router.get("/certificate-types", responses=PUBLIC_ERRORS)
def certificate_types(node: NodeDep) -> dict[str, Any]:
    """Each certificate type: code, name, the agencies allowed to issue it, and its fields."""
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
