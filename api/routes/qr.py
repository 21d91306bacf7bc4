"""QR codes and what verifiers need: the encrypted by-reference document, QR generation in both modes, the
signed trust list, and the two verification forms the verifier page uses.

- ``GET  /api/v1/certificates/{id}/blob`` (public): the AES-256-GCM ciphertext of the document. Useless
  without the key, which only the QR's URL fragment carries (browsers never send a fragment, RFC 3986 §3.5).
- ``GET  /api/v1/certificates/{id}/qr?mode=ref|offline&format=png|svg`` (issuing agency): the QR image. The
  server does not have the key: the caller sends it in ``X-Document-Key`` (a header, not the query string,
  so it stays out of access logs, proxies and browser history). For ``offline`` the server decrypts the
  blob in memory, builds the payload and signs it with the agency's key (registry.offline).
- ``GET  /api/v1/trust-list`` (public): members, keys, roles and revocations as of a block, signed by the
  consortium operator (registry.trust_list).
- ``POST /api/v1/verify/digest`` ``{"identifier", "digest"}``: the chain checks for a document whose fields
  the caller checked itself -- the verifier page decrypts in the browser and sends only this.
- ``POST /api/v1/verify/offline`` ``{"payload": "LZ2:..."}``: an offline payload checked against the
  current trust list (for the page's scanner; the CLI verifies offline payloads with no network at all).

    $ curl -s -H "Authorization: Bearer $KEY" -H "X-Document-Key: $DOCKEY" \\
        "$API/api/v1/certificates/$ID/qr?mode=offline&format=svg" > qr.svg
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from api.certificate_qr import open_document, qr_text
from api.deps import (
    CertificatesDep,
    CurrentAgency,
    DocumentKey,
    NodeDep,
    TrustListsDep,
    VerificationLaneDep,
    VerifierDep,
)
from api.schemas import AGENCY_ERRORS, PUBLIC_ERRORS, Identifier, IdentifierPath, Strict, Text
from registry.certificates.offline import OfflineVerifier
from registry.certificates.remote import public_record
from registry.errors import NotFoundError
from registry.formats.images import qr_png, qr_svg
from registry.identifiers import CertificateId

router = APIRouter(prefix="/api/v1", tags=["qr"])

_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _hide_list(hide: str | None) -> list[str]:
    return [h.strip() for h in (hide or "").split(",") if h.strip()]


@router.get("/certificates/{identifier}/blob", response_class=Response, operation_id="blob",
            responses={**PUBLIC_ERRORS, 200: {"content": {"application/octet-stream": {}}, "description": "the blob"}})
async def blob(identifier: IdentifierPath, certificates: CertificatesDep, verifier: VerifierDep) -> Response:
    """The encrypted document (version byte, 12-byte nonce, ciphertext and tag; AAD = identifier). For a
    certificate issued on another node, that node's blob (found through the endpoint its issuer published on
    chain): ciphertext either way, so this node learns nothing."""
    def fetch() -> bytes:
        try:
            return certificates.blob(identifier)
        except NotFoundError:
            cid = CertificateId.parse(identifier)
            if verifier.remote is None or certificates.node.keys.has_signing_key(cid.issuer_uscc):
                raise
            return verifier.remote.blob(cid)

    data = await run_in_threadpool(fetch)
    return Response(data, media_type="application/octet-stream", headers=_NO_STORE)


@router.get("/certificates/{identifier}/record", tags=["verification"], responses=PUBLIC_ERRORS,
            operation_id="public_record")
async def record(identifier: IdentifierPath, node: NodeDep) -> JSONResponse:
    """The public record of a certificate issued on this node: its digests, validity dates and Merkle audit path
    (no holder field; a bound certificate's holder key id). Other nodes ask for it to verify this node's
    certificates by identifier, and check every number against the chain."""
    rec = await run_in_threadpool(public_record, node, identifier)
    return JSONResponse(rec.to_json(), headers={"Cache-Control": "no-store"})


@router.get("/certificates/{identifier}/qr", response_class=Response,
            responses={**AGENCY_ERRORS, 200: {"content": {"image/png": {}, "image/svg+xml": {}}, "description": "the QR"}})
async def qr_image(
    identifier: IdentifierPath, agency: CurrentAgency, certificates: CertificatesDep, node: NodeDep,
    key: DocumentKey = None,
    mode: Annotated[Literal["ref", "offline"], Query(description="ref: link + key; offline: signed payload")] = "ref",
    format: Annotated[Literal["png", "svg"], Query()] = "png",
    scale: Annotated[int, Query(ge=1, le=40, description="pixels per module")] = 8,
    hide: Annotated[str | None, Query(max_length=2000, description="offline: comma-separated fields to hide")] = None,
    max_version: Annotated[int, Query(ge=1, le=40, description="offline: largest QR version allowed (level M)")] = 25,
) -> Response:
    """The certificate's QR code. Needs the document key in ``X-Document-Key`` (the server never stored it)."""

    def render() -> tuple[bytes | str, dict[str, str]]:
        opened = open_document(certificates, agency, identifier, key)
        text, headers = qr_text(node, certificates, opened, mode, hide=_hide_list(hide), max_version=max_version)
        image = qr_png(text, scale=scale) if format == "png" else qr_svg(text, scale=scale, title=identifier)
        return image, headers

    image, headers = await run_in_threadpool(render)
    media = "image/png" if format == "png" else "image/svg+xml"
    return Response(image, media_type=media, headers={**_NO_STORE, **headers})


@router.get("/trust-list", tags=["verification"], responses={
    **PUBLIC_ERRORS, 200: {"content": {"application/json": {"schema": {"type": "object"}}}, "description": "signed"}})
async def trust_list(trust_lists: TrustListsDep) -> JSONResponse:
    """The signed trust list for offline verification (as of the chain's latest block)."""
    signed, _ = await run_in_threadpool(lambda: trust_lists.current(force=True))
    return JSONResponse(signed, headers={"Cache-Control": "no-cache"})


class DigestVerify(Strict):
    identifier: Identifier
    digest: Text(66, description="SHA-256 document digest (hex), recomputed by the caller")
    sm3: Text(66, description="SM3 document digest (hex), recomputed by the caller; checked against the registered "
                              "one and, with its SM3 audit path, against the SM3 batch root on chain") | None = None


class OfflineVerify(Strict):
    payload: str = Field(max_length=8000, description="the scanned LZ2:... text")


@router.post("/verify/digest", tags=["verification"], responses=PUBLIC_ERRORS)
async def verify_digest(body: DigestVerify, verifier: VerifierDep, lane: VerificationLaneDep) -> dict[str, Any]:
    """Chain checks for a by-reference document verified in the browser: only the identifier and digests."""
    result = await lane.run(verifier.verify_digest, body.identifier, body.digest, body.sm3)
    return {**result.to_json(), "mode": "reference"}


@router.post("/verify/offline", tags=["verification"], responses=PUBLIC_ERRORS)
async def verify_offline(body: OfflineVerify, trust_lists: TrustListsDep) -> dict[str, Any]:
    """An offline (by-value) payload checked against the current trust list."""

    def run() -> dict[str, Any]:
        _, parsed = trust_lists.current()
        return {**OfflineVerifier(parsed).verify_text(body.payload).to_json(), "mode": "offline"}

    return await run_in_threadpool(run)
