"""Evidence (存证公正链): register file digests, custody transfers, sealing, verification and packages.

Agencies authenticate with their API key; verification and public status are open (they only show what
the chain shows anyway: no case number, no operator). Writes answer 201/200 when the step is on chain and
202 when the chain is unreachable and the step waits in the outbox.

    curl -H "Authorization: Bearer $KEY" -d @record.json localhost:8000/api/v1/evidence
    curl -F file=@photo.jpg -F id=EV-XZZF-20260315-000001 localhost:8000/api/v1/evidence/verify
"""

from __future__ import annotations

import os
import tempfile
from typing import Annotated, Any, Literal

import pydantic
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import Field, StrictBool, StrictInt, StrictStr
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from api.deps import CurrentAgency, EvidenceDep
from api.schemas import AGENCY_ERRORS, PUBLIC_ERRORS, Digest, Strict, Text, Uscc, links
from registry.crypto.hashing import digest_file, hash_constructor
from registry.errors import PayloadFormatError, ValidationError
from registry.evidence.package import export_case
from registry.evidence.service import EvidenceSubmission

router = APIRouter(prefix="/api/v1", tags=["evidence"])

# -- schemas -------------------------------------------------------------------------------------------

CaseNo = Text(200, min_length=1, description="案件/执法编号; only its SHA-256 goes on chain")
RecordIdPath = Annotated[str, Path(max_length=64, json_schema_extra={"minLength": 1})]
CaseQuery = Annotated[str, Query(min_length=1, max_length=200, description="案件/执法编号")]
_PENDING = {202: {"description": "recorded; the chain step waits in the outbox (chain unreachable)"}}
SealId = Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[0-9A-Z]+$",
                                    description="issue the record under one of your seals (its id, ES...): a sealed "
                                                "signature over its content digests is kept with it")]
Size = Annotated[StrictInt, Field(le=2**53 - 1, description="bytes", json_schema_extra={"minimum": 0})]


class AcquisitionIn(Strict):
    device: Text(500, description="device or source (执法记录仪 serial, URL ...)") | None = None
    tool: Text(500) | None = None
    tool_version: Text(100) | None = None
    place: Text(500) | None = None
    acquired_at: Text(64, description="ISO 8601 date-time with offset, e.g. 2026-03-15T09:30:00+08:00") | None = None


class EvidenceCreate(Strict):
    """The digests and metadata of one file. Required fields are checked by the service, so a missing one
    gets its own error code (`missing_legal_basis`, `missing_authority`, ...)."""

    case_no: CaseNo | None = None
    scenario: Text(20, description="行政执法 | 刑罚执行 | 公证") | None = None
    type: Text(16, description="evidence type code (GET /api/v1/evidence-types)") | None = None
    sha256: Digest | None = None
    sm3: Digest | None = None
    size: Size | None = None
    media_type: Text(100) | None = None
    authority: Text(200, description="执法主体 / the authority acting") | None = None
    legal_basis: Text(500, description="法律依据") | None = None
    operator_id: Text(64, description="real-name operator id (执法证号); never on chain") | None = None
    filename: Text(255) | None = None
    description: Text(2000) | None = None
    acquisition: AcquisitionIn | None = None
    timestamp_token: Text(65_536, description="RFC 3161 TimeStampToken (DER), base64") | None = None
    supersedes: Text(64, description="the record this one corrects (same case)") | None = None
    correction_reason: Text(500) | None = None
    seal: SealId | None = None

    def submission(self) -> EvidenceSubmission:
        data = self.model_dump(exclude={"type", "acquisition"})
        return EvidenceSubmission(**data, type_code=self.type,
                                  acquisition=self.acquisition.model_dump() if self.acquisition else None)


class EvidenceBatchCreate(Strict):
    records: list[EvidenceCreate] = Field(min_length=1, max_length=1000)


class TransferRequest(Strict):
    to: Uscc = Field(description="USCC of the receiving agency")
    purpose: Text(500, description="why custody moves (移送审查, 移送法院 ...)") | None = None
    digest_rechecked: StrictBool = Field(False, description="the sender re-hashed the content before sending")


class AcceptRequest(Strict):
    sha256: Digest | None = Field(None, description="digest of what was received: re-checked before accepting")
    sm3: Digest | None = None


class RejectRequest(Strict):
    reason: Text(500) | None = None


class CaseRequest(Strict):
    case_no: CaseNo


class CaseTransferRequest(Strict):
    case_no: CaseNo
    to: Uscc
    purpose: Text(500) | None = None


class VerifyDigests(Strict):
    sha256: Digest
    sm3: Digest | None = None
    size: Size | None = None
    id: Text(64, description="the record the file must match") | None = None
    case_no: Text(200, description="the case one of whose records the file must match") | None = None


def _written(response: Response, view: Any, *, created: bool = False) -> dict[str, Any]:
    pending = view.pending_steps if hasattr(view, "pending_steps") else any(
        r["pending_steps"] for r in view.records) or view.seal_pending
    response.status_code = 202 if pending else (201 if created else 200)
    return view.to_json()  # type: ignore[no-any-return]


# -- public --------------------------------------------------------------------------------------------


@router.get("/evidence-types", responses=PUBLIC_ERRORS)
def evidence_types(svc: EvidenceDep) -> dict[str, Any]:
    """Evidence types by scenario (行政执法, 刑罚执行, 公证) with media types and legal basis."""
    types = svc.types()
    return {"count": len(types), "scenarios": list(svc.scenario_codes), "types": types}


@router.post("/evidence/verify", tags=["verification"], responses=PUBLIC_ERRORS)
async def verify(request: Request, svc: EvidenceDep,
                 id: Annotated[str | None, Query(max_length=64, description="record to match (uploads)")] = None,
                 case_no: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    """Is this file unaltered? Send it as multipart (`file`, optional `id` / `case_no`), as a raw
    `application/octet-stream` body, or send its digests as JSON `{"sha256", "sm3", "size", "id"}`. Uploads
    are hashed as they stream (constant memory); the content is not kept. Uploads are bounded by the API's
    request limit (LIANZHENG_MAX_REQUEST_BYTES, 16 MiB by default): for larger files send the digests, as
    `lianzheng evidence verify` does after hashing the file locally."""
    ctype = request.headers.get("content-type", "").lower()
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ValidationError("multipart verification needs a 'file' part", code="missing_file")
            # Starlette spools the part to a temporary file past 1 MiB; hash it from there in 1 MiB chunks
            d = await run_in_threadpool(digest_file, upload.file)
            record_id = _form_text(form.get("id")) or id
            case = _form_text(form.get("case_no")) or case_no
        finally:
            await form.close()
        digests = _digests({"sha256": d.sha256_hex, "sm3": d.sm3_hex, "size": d.size, "id": record_id,
                            "case_no": case})
    elif ctype.startswith("application/octet-stream"):
        h256, hsm3, size = hash_constructor("sha256")(b""), hash_constructor("sm3")(b""), 0
        async for chunk in request.stream():
            h256.update(chunk)
            hsm3.update(chunk)
            size += len(chunk)
        digests = _digests({"sha256": h256.digest().hex(), "sm3": hsm3.digest().hex(), "size": size, "id": id,
                            "case_no": case_no})
    else:
        try:
            body = await request.json()
        except ValueError as exc:
            raise PayloadFormatError("request body is not valid JSON", code="invalid_json") from exc
        digests = _digests(body)
    result = await run_in_threadpool(svc.verify, sha256=digests.sha256, sm3=digests.sm3, size=digests.size,
                                     record_id=digests.id, case_no=digests.case_no)
    return result.to_json()


def _digests(data: Any) -> VerifyDigests:
    try:
        return VerifyDigests.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationError(f"{where}: {first['msg']}", code="invalid_request") from exc


def _form_text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


@router.get("/evidence/cases/status", responses=PUBLIC_ERRORS)
async def case_status(svc: EvidenceDep, case_no: CaseQuery) -> dict[str, Any]:
    """Public: a case's owner, sealed state and number of records (what the chain shows)."""
    return await run_in_threadpool(svc.case_status, case_no)


# -- agencies ------------------------------------------------------------------------------------------


_RECORD_LINKS = links("id", get_record="record_id", custody_status="record_id", transfer_record="record_id",
                      accept_record="record_id", reject_record="record_id")


@router.post("/evidence", status_code=201, operation_id="register_evidence", responses={
    **AGENCY_ERRORS, **_PENDING, 201: {"description": "registered and on chain", "links": _RECORD_LINKS}})
async def register(body: EvidenceCreate, agency: CurrentAgency, svc: EvidenceDep, response: Response) -> dict[str, Any]:
    """Register one file by its digests (the content stays with the agency)."""
    view = await run_in_threadpool(svc.register, agency, body.submission())
    return _written(response, view, created=True)


@router.post("/evidence/batch", status_code=201, responses={**AGENCY_ERRORS, **_PENDING})
async def register_batch(body: EvidenceBatchCreate, agency: CurrentAgency, svc: EvidenceDep,
                         response: Response) -> dict[str, Any]:
    """Register up to 1,000 files at once (e.g. a day's on-site photos): validated as a whole, then sent
    pipelined. `refused` lists any the contract refused (by index; not stored)."""
    views, refused = await run_in_threadpool(svc.register_many, agency, [r.submission() for r in body.records])
    response.status_code = 202 if any(v.pending_steps for v in views) else 201
    return {"count": len(views), "records": [v.to_json() for v in views],
            "refused": [{"index": i, "code": e.code, "message": e.message} for i, e in sorted(refused.items())]}


@router.get("/evidence/cases", responses=AGENCY_ERRORS)
async def get_case(agency: CurrentAgency, svc: EvidenceDep, case_no: CaseQuery) -> dict[str, Any]:
    """A case and its records (owner, involved agencies and auditors)."""
    return (await run_in_threadpool(svc.case, agency, case_no)).to_json()


@router.post("/evidence/cases/seal", responses={**AGENCY_ERRORS, **_PENDING})
async def seal(body: CaseRequest, agency: CurrentAgency, svc: EvidenceDep, response: Response) -> dict[str, Any]:
    """Seal a case (its owner): no record can be added, transferred or accepted afterwards."""
    return _written(response, await run_in_threadpool(svc.seal, agency, body.case_no))


@router.post("/evidence/cases/transfer", responses={**AGENCY_ERRORS, **_PENDING})
async def transfer_case(body: CaseTransferRequest, agency: CurrentAgency, svc: EvidenceDep,
                        response: Response) -> dict[str, Any]:
    """Transfer every record of the case you hold to another agency (pipelined)."""
    view = await run_in_threadpool(svc.transfer_case, agency, body.case_no, body.to, body.purpose)
    return _written(response, view)


@router.post("/evidence/cases/accept", responses={**AGENCY_ERRORS, **_PENDING})
async def accept_case(body: CaseRequest, agency: CurrentAgency, svc: EvidenceDep, response: Response) -> dict[str, Any]:
    """Accept every transfer of the case pending to you (pipelined)."""
    return _written(response, await run_in_threadpool(svc.accept_case, agency, body.case_no))


@router.get("/evidence/cases/export", response_class=FileResponse,
            responses={**AGENCY_ERRORS, 200: {"content": {"application/zip": {}}, "description": "the package"}})
async def export(agency: CurrentAgency, svc: EvidenceDep, case_no: CaseQuery) -> FileResponse:
    """The case's evidence package (zip), signed with your agency key."""
    fd, path = tempfile.mkstemp(prefix="lianzheng-package-", suffix=".zip")
    try:
        with os.fdopen(fd, "wb") as out:
            info = await run_in_threadpool(export_case, svc, agency, case_no, out)
    except BaseException:
        os.unlink(path)
        raise
    return FileResponse(path, media_type="application/zip", filename=f"evidence-{info.as_of_block}.zip",
                        background=BackgroundTask(os.unlink, path),
                        headers={"X-Lianzheng-As-Of-Block": str(info.as_of_block)})


@router.get("/evidence", responses=AGENCY_ERRORS, operation_id="list_records")
async def list_records(agency: CurrentAgency, svc: EvidenceDep,
                       role: Annotated[Literal["incoming", "held", "collected", "involved"], Query(description=(
                           "incoming (transfers offered to you) | held | collected | involved (any of these)"))]
                       = "involved",
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                       offset: Annotated[int, Query(ge=0, le=2**53)] = 0) -> dict[str, Any]:
    """Records your agency deals with, newest first, including those offered to it by agencies of other
    nodes (known from the chain only: `mirrored`, `id` = the record's key without 0x)."""
    return await run_in_threadpool(svc.search, agency, role=role, limit=limit, offset=offset)


@router.get("/evidence/{record_id}", responses=AGENCY_ERRORS, operation_id="get_record")
async def get_record(record_id: RecordIdPath, agency: CurrentAgency, svc: EvidenceDep) -> dict[str, Any]:
    """A record with its custody log (involved agencies and auditors)."""
    return (await run_in_threadpool(svc.get, agency, record_id)).to_json()


@router.get("/evidence/{record_id}/status", responses=PUBLIC_ERRORS, operation_id="custody_status")
async def custody_status(record_id: RecordIdPath, svc: EvidenceDep) -> dict[str, Any]:
    """Public: the record's collector, custodian, pending recipient and case state."""
    return await run_in_threadpool(svc.custody_status, record_id)


@router.post("/evidence/{record_id}/transfer", responses={**AGENCY_ERRORS, **_PENDING}, operation_id="transfer_record")
async def transfer(record_id: RecordIdPath, body: TransferRequest, agency: CurrentAgency, svc: EvidenceDep,
                   response: Response) -> dict[str, Any]:
    """Ask another agency to take custody (the current custodian only)."""
    view = await run_in_threadpool(svc.transfer, agency, record_id, body.to, body.purpose,
                                   digest_rechecked=body.digest_rechecked)
    return _written(response, view)


@router.post("/evidence/{record_id}/accept", responses={**AGENCY_ERRORS, **_PENDING}, operation_id="accept_record")
async def accept(record_id: RecordIdPath, agency: CurrentAgency, svc: EvidenceDep, response: Response,
                 body: AcceptRequest | None = None) -> dict[str, Any]:
    """Take custody (the recipient only). With digests, the content received is re-checked first."""
    body = body or AcceptRequest()
    view = await run_in_threadpool(svc.accept, agency, record_id, sha256=body.sha256, sm3=body.sm3)
    return _written(response, view)


@router.post("/evidence/{record_id}/reject", responses={**AGENCY_ERRORS, **_PENDING}, operation_id="reject_record")
async def reject(record_id: RecordIdPath, agency: CurrentAgency, svc: EvidenceDep, response: Response,
                 body: RejectRequest | None = None) -> dict[str, Any]:
    """Decline a transfer (the recipient only); custody stays with the sender."""
    body = body or RejectRequest()
    return _written(response, await run_in_threadpool(svc.reject, agency, record_id, reason=body.reason))
