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

import threading
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentAgency, NodeDep, ServicesDep
from api.services import Services
from registry.certificates.documents import AnchorProof, Document
from registry.certificates.offline import OfflineVerifier, make_offline_qr
from registry.certificates.service import CertificateView
from registry.consortium.trust_list import TrustList, build_trust_list
from registry.errors import ConflictError, ValidationError
from registry.formats import envelope
from registry.formats.images import qr_png, qr_svg
from registry.node import Node

router = APIRouter(prefix="/api/v1", tags=["qr"])

DocumentKey = Annotated[str | None, Header(alias="X-Document-Key", description="the document key (base64url), "
                                           "from the by-reference QR URL's fragment")]
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class TrustListCache:
    """The signed trust list, rebuilt only when the chain index has moved to a new block."""

    def __init__(self, node: Node, services: Services) -> None:
        self.node = node
        self.index = services.index
        self._lock = threading.Lock()
        self._block = -1
        self._signed: dict[str, Any] | None = None
        self._parsed: TrustList | None = None

    def current(self, *, force: bool = False) -> tuple[dict[str, Any], TrustList]:
        self.index.refresh(force=force)
        with self._lock:
            if self._signed is None or self._parsed is None or self._block != self.index.synced_block:
                signed = build_trust_list(self.node, self.index)
                self._parsed = TrustList.from_json(signed)
                self._signed, self._block = signed, int(signed["as_of"]["block"])
            return self._signed, self._parsed


def trust_lists(request: Request) -> TrustListCache:
    extras: dict[str, Any] = request.app.state.extras
    cache = extras.get("trust_lists")
    if cache is None:
        cache = extras.setdefault("trust_lists", TrustListCache(request.app.state.node, request.app.state.services))
    return cache  # type: ignore[no-any-return]


@dataclass(frozen=True)
class OpenedDocument:
    document: Document
    view: CertificateView
    key: bytes


def open_document(services: Services, agency: str, identifier: str, key_text: str | None) -> OpenedDocument:
    """Decrypt one of ``agency``'s documents with the key its caller holds (kept in memory only)."""
    view = services.certificates.get(agency, identifier)  # 404 / 403 before anything is decrypted
    if not key_text:
        raise ValidationError("需要证照密钥 / the document key is required in the X-Document-Key header "
                              "(the fragment of the by-reference QR URL); the server does not keep it",
                              code="missing_key")
    key = envelope.decode_key(key_text.strip())
    plaintext = envelope.open_(services.certificates.blob(identifier), key, aad=envelope.aad_for(identifier))
    return OpenedDocument(Document.from_json(plaintext), view, key)


def anchor_of(view: CertificateView) -> AnchorProof:
    if view.anchor is None:
        raise ConflictError(f"certificate {view.identifier} is not anchored yet; an offline QR needs its anchor proof",
                            code="not_anchored_yet")
    return AnchorProof.from_json(view.anchor)


def qr_text(node: Node, services: Services, opened: OpenedDocument, mode: str, *, hide: list[str],
            max_version: int) -> tuple[str, dict[str, str]]:
    """The text to encode and headers describing it."""
    if mode == "ref":
        return envelope.build_ref_url(services.certificates.public_base, opened.view.identifier, opened.key), {
            "X-QR-Mode": "ref"}
    account = node.keys.signing_account(opened.view.issuer_uscc)
    qr = make_offline_qr(opened.document, anchor_of(opened.view), bytes(account.key), hide=hide,
                         max_version=max_version)
    return qr.text, {"X-QR-Mode": "offline", "X-QR-Version": str(qr.version),
                     "X-QR-Hidden-Fields": ",".join(quote(h, safe="") for h in qr.hidden)}


def _hide_list(hide: str | None) -> list[str]:
    return [h.strip() for h in (hide or "").split(",") if h.strip()]


@router.get("/certificates/{identifier}/blob", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
async def blob(identifier: str, services: ServicesDep) -> Response:
    """The encrypted document (version byte, 12-byte nonce, AES-256-GCM ciphertext and tag; AAD = identifier)."""
    data = await run_in_threadpool(services.certificates.blob, identifier)
    return Response(data, media_type="application/octet-stream", headers=_NO_STORE)


@router.get("/certificates/{identifier}/qr", response_class=Response,
            responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}})
async def qr_image(
    identifier: str, agency: CurrentAgency, services: ServicesDep, node: NodeDep, key: DocumentKey = None,
    mode: Annotated[Literal["ref", "offline"], Query(description="ref: link + key; offline: signed payload")] = "ref",
    format: Annotated[Literal["png", "svg"], Query()] = "png",
    scale: Annotated[int, Query(ge=1, le=40, description="pixels per module")] = 8,
    hide: Annotated[str | None, Query(description="offline: comma-separated fields to hide")] = None,
    max_version: Annotated[int, Query(ge=1, le=40, description="offline: largest QR version allowed (level M)")] = 25,
) -> Response:
    """The certificate's QR code. Needs the document key in ``X-Document-Key`` (the server never stored it)."""

    def render() -> tuple[bytes | str, dict[str, str]]:
        opened = open_document(services, agency, identifier, key)
        text, headers = qr_text(node, services, opened, mode, hide=_hide_list(hide), max_version=max_version)
        image = qr_png(text, scale=scale) if format == "png" else qr_svg(text, scale=scale, title=identifier)
        return image, headers

    image, headers = await run_in_threadpool(render)
    media = "image/png" if format == "png" else "image/svg+xml"
    return Response(image, media_type=media, headers={**_NO_STORE, **headers})


@router.get("/trust-list", tags=["verification"])
async def trust_list(request: Request) -> JSONResponse:
    """The signed trust list for offline verification (as of the chain's latest block)."""
    signed, _ = await run_in_threadpool(lambda: trust_lists(request).current(force=True))
    return JSONResponse(signed, headers={"Cache-Control": "no-cache"})


class DigestVerify(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identifier: str = Field(max_length=128)
    digest: str = Field(max_length=66, description="SHA-256 document digest (hex), recomputed by the caller")


class OfflineVerify(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payload: str = Field(max_length=8000, description="the scanned LZ2:... text")


@router.post("/verify/digest", tags=["verification"])
async def verify_digest(body: DigestVerify, services: ServicesDep) -> dict[str, Any]:
    """Chain checks for a by-reference document verified in the browser: only the identifier and digest."""
    result = await run_in_threadpool(services.verifier.verify_digest, body.identifier, body.digest)
    return {**result.to_json(), "mode": "reference"}


@router.post("/verify/offline", tags=["verification"])
async def verify_offline(body: OfflineVerify, request: Request) -> dict[str, Any]:
    """An offline (by-value) payload checked against the current trust list."""

    def run() -> dict[str, Any]:
        _, parsed = trust_lists(request).current()
        return {**OfflineVerifier(parsed).verify_text(body.payload).to_json(), "mode": "offline"}

    return await run_in_threadpool(run)
