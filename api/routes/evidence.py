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
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from api.deps import CurrentAgency
from registry.crypto.hashing import digest_file, hash_constructor
from registry.errors import PayloadFormatError, ValidationError
from registry.evidence.package import export_case
from registry.evidence.service import EvidenceService, EvidenceSubmission

router = APIRouter(prefix="/api/v1", tags=["evidence"])


def service_for(app: FastAPI) -> EvidenceService:
    """The app's EvidenceService (built with the one outbox in api/services.py)."""
    return app.state.services.evidence  # type: ignore[no-any-return]


def _service(request: Request) -> EvidenceService:
    return service_for(request.app)


EvidenceDep = Annotated[EvidenceService, Depends(_service)]


def start(app: FastAPI) -> list[Any]:
    """Nothing of its own: the one outbox worker (api/services.py) sends evidence steps."""
    return []


# -- schemas -------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AcquisitionIn(_Strict):
    device: str | None = Field(None, max_length=500, description="device or source (执法记录仪 serial, URL ...)")
    tool: str | None = Field(None, max_length=500)
    tool_version: str | None = Field(None, max_length=100)
    place: str | None = Field(None, max_length=500)
    acquired_at: str | None = Field(None, description="ISO 8601 date-time with offset, e.g. 2026-03-15T09:30:00+08:00")


class EvidenceCreate(_Strict):
    """The digests and metadata of one file. Required fields are checked by the service, so a missing one
    gets its own error code (`missing_legal_basis`, `missing_authority`, ...)."""

    case_no: str | None = Field(None, max_length=200, description="案件/执法编号; only its SHA-256 goes on chain")
    scenario: str | None = Field(None, description="行政执法 | 刑罚执行 | 公证")
    type: str | None = Field(None, max_length=16, description="evidence type code (GET /api/v1/evidence-types)")
    sha256: str | None = Field(None, max_length=66)
    sm3: str | None = Field(None, max_length=66)
    size: int | None = None
    media_type: str | None = Field(None, max_length=100)
    authority: str | None = Field(None, description="执法主体 / the authority acting")
    legal_basis: str | None = Field(None, description="法律依据")
    operator_id: str | None = Field(None, description="real-name operator id (执法证号); never on chain")
    filename: str | None = None
    description: str | None = None
    acquisition: AcquisitionIn | None = None
    timestamp_token: str | None = Field(None, description="RFC 3161 TimeStampToken (DER), base64")
    supersedes: str | None = Field(None, description="the record this one corrects (same case)")
    correction_reason: str | None = None

    def submission(self) -> EvidenceSubmission:
        data = self.model_dump(exclude={"type", "acquisition"})
        return EvidenceSubmission(**data, type_code=self.type,
                                  acquisition=self.acquisition.model_dump() if self.acquisition else None)


class EvidenceBatchCreate(_Strict):
    records: list[EvidenceCreate] = Field(max_length=1000)


class TransferRequest(_Strict):
    to: str = Field(max_length=40, description="USCC of the receiving agency")
    purpose: str | None = Field(None, description="why custody moves (移送审查, 移送法院 ...)")
    digest_rechecked: bool = Field(False, description="the sender re-hashed the content before sending")


class AcceptRequest(_Strict):
    sha256: str | None = Field(None, description="digest of what was received: re-checked before accepting")
    sm3: str | None = None


class RejectRequest(_Strict):
    reason: str | None = None


class CaseRequest(_Strict):
    case_no: str = Field(max_length=200)


class CaseTransferRequest(_Strict):
    case_no: str = Field(max_length=200)
    to: str = Field(max_length=40)
    purpose: str | None = None


class VerifyDigests(_Strict):
    sha256: str
    sm3: str | None = None
    size: int | None = None
    id: str | None = Field(None, description="the record the file must match")
    case_no: str | None = Field(None, description="the case one of whose records the file must match")


def _written(response: Response, view: Any, *, created: bool = False) -> dict[str, Any]:
    pending = view.pending_steps if hasattr(view, "pending_steps") else any(
        r["pending_steps"] for r in view.records) or view.seal_pending
    response.status_code = 202 if pending else (201 if created else 200)
    return view.to_json()  # type: ignore[no-any-return]


# -- public --------------------------------------------------------------------------------------------


@router.get("/evidence-types")
def evidence_types(svc: EvidenceDep) -> dict[str, Any]:
    """Evidence types by scenario (行政执法, 刑罚执行, 公证) with media types and legal basis."""
    types = svc.types()
    return {"count": len(types), "scenarios": list(svc.scenario_codes), "types": types}


@router.post("/evidence/verify", tags=["verification"])
async def verify(request: Request, svc: EvidenceDep,
                 id: str | None = Query(None, description="record to match (octet-stream uploads)"),
                 case_no: str | None = Query(None)) -> dict[str, Any]:
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
        digests = VerifyDigests(sha256=d.sha256_hex, sm3=d.sm3_hex, size=d.size, id=record_id, case_no=case)
    elif ctype.startswith("application/octet-stream"):
        h256, hsm3, size = hash_constructor("sha256")(b""), hash_constructor("sm3")(b""), 0
        async for chunk in request.stream():
            h256.update(chunk)
            hsm3.update(chunk)
            size += len(chunk)
        digests = VerifyDigests(sha256=h256.digest().hex(), sm3=hsm3.digest().hex(), size=size, id=id, case_no=case_no)
    else:
        try:
            body = await request.json()
        except ValueError as exc:
            raise PayloadFormatError("request body is not valid JSON", code="invalid_json") from exc
        try:
            digests = VerifyDigests.model_validate(body)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValidationError(f"{where}: {first['msg']}", code="invalid_request") from exc
    result = await run_in_threadpool(svc.verify, sha256=digests.sha256, sm3=digests.sm3, size=digests.size,
                                     record_id=digests.id, case_no=digests.case_no)
    return result.to_json()


def _form_text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


@router.get("/evidence/cases/status")
async def case_status(svc: EvidenceDep, case_no: str = Query(max_length=200)) -> dict[str, Any]:
    """Public: a case's owner, sealed state and number of records (what the chain shows)."""
    return await run_in_threadpool(svc.case_status, case_no)


# -- agencies ------------------------------------------------------------------------------------------


@router.post("/evidence", status_code=201)
async def register(body: EvidenceCreate, agency: CurrentAgency, svc: EvidenceDep, response: Response) -> dict[str, Any]:
    """Register one file by its digests (the content stays with the agency)."""
    view = await run_in_threadpool(svc.register, agency, body.submission())
    return _written(response, view, created=True)


@router.post("/evidence/batch", status_code=201)
async def register_batch(body: EvidenceBatchCreate, agency: CurrentAgency, svc: EvidenceDep,
                         response: Response) -> dict[str, Any]:
    """Register up to 1,000 files at once (e.g. a day's on-site photos): validated as a whole, then sent
    pipelined. `refused` lists any the contract refused (by index; not stored)."""
    views, refused = await run_in_threadpool(svc.register_many, agency, [r.submission() for r in body.records])
    response.status_code = 202 if any(v.pending_steps for v in views) else 201
    return {"count": len(views), "records": [v.to_json() for v in views],
            "refused": [{"index": i, "code": e.code, "message": e.message} for i, e in sorted(refused.items())]}


@router.get("/evidence/cases")
async def get_case(agency: CurrentAgency, svc: EvidenceDep, case_no: str = Query(max_length=200)) -> dict[str, Any]:
    """A case and its records (owner, involved agencies and auditors)."""
    return (await run_in_threadpool(svc.case, agency, case_no)).to_json()


@router.post("/evidence/cases/seal")
async def seal(body: CaseRequest, agency: CurrentAgency, svc: EvidenceDep, response: Response) -> dict[str, Any]:
    """Seal a case (its owner): no record can be added, transferred or accepted afterwards."""
    return _written(response, await run_in_threadpool(svc.seal, agency, body.case_no))


@router.post("/evidence/cases/transfer")
async def transfer_case(body: CaseTransferRequest, agency: CurrentAgency, svc: EvidenceDep,
                        response: Response) -> dict[str, Any]:
    """Transfer every record of the case you hold to another agency (pipelined)."""
    view = await run_in_threadpool(svc.transfer_case, agency, body.case_no, body.to, body.purpose)
    return _written(response, view)


@router.post("/evidence/cases/accept")
async def accept_case(body: CaseRequest, agency: CurrentAgency, svc: EvidenceDep, response: Response) -> dict[str, Any]:
    """Accept every transfer of the case pending to you (pipelined)."""
    return _written(response, await run_in_threadpool(svc.accept_case, agency, body.case_no))


@router.get("/evidence/cases/export", response_class=FileResponse)
async def export(agency: CurrentAgency, svc: EvidenceDep, case_no: str = Query(max_length=200)) -> FileResponse:
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


@router.get("/evidence/{record_id}")
async def get_record(record_id: str, agency: CurrentAgency, svc: EvidenceDep) -> dict[str, Any]:
    """A record with its custody log (involved agencies and auditors)."""
    return (await run_in_threadpool(svc.get, agency, record_id)).to_json()


@router.get("/evidence/{record_id}/status")
async def custody_status(record_id: str, svc: EvidenceDep) -> dict[str, Any]:
    """Public: the record's collector, custodian, pending recipient and case state."""
    return await run_in_threadpool(svc.custody_status, record_id)


@router.post("/evidence/{record_id}/transfer")
async def transfer(record_id: str, body: TransferRequest, agency: CurrentAgency, svc: EvidenceDep,
                   response: Response) -> dict[str, Any]:
    """Ask another agency to take custody (the current custodian only)."""
    view = await run_in_threadpool(svc.transfer, agency, record_id, body.to, body.purpose,
                                   digest_rechecked=body.digest_rechecked)
    return _written(response, view)


@router.post("/evidence/{record_id}/accept")
async def accept(record_id: str, agency: CurrentAgency, svc: EvidenceDep, response: Response,
                 body: AcceptRequest | None = None) -> dict[str, Any]:
    """Take custody (the recipient only). With digests, the content received is re-checked first."""
    body = body or AcceptRequest()
    view = await run_in_threadpool(svc.accept, agency, record_id, sha256=body.sha256, sm3=body.sm3)
    return _written(response, view)


@router.post("/evidence/{record_id}/reject")
async def reject(record_id: str, agency: CurrentAgency, svc: EvidenceDep, response: Response,
                 body: RejectRequest | None = None) -> dict[str, Any]:
    """Decline a transfer (the recipient only); custody stays with the sender."""
    body = body or RejectRequest()
    return _written(response, await run_in_threadpool(svc.reject, agency, record_id, reason=body.reason))
