"""The verifier web page, its static files, and the printable certificate.

- ``GET /v/{identifier}`` -- what a by-reference QR opens (``/v/<identifier>#<key>``). The page fetches the
  encrypted document, decrypts it in the browser (WebCrypto AES-GCM), recomputes the field leaves and the
  RFC 6962 root there, and asks the server only ``{"identifier", "digest"}`` (``POST /api/v1/verify/digest``):
  the server never sees a field value nor the key. Without JavaScript the page still shows the status by
  identifier (rendered here, inside ``<noscript>``).
- ``GET /verify`` -- the same page with only the scanner (camera or photo upload).
- ``GET /static/{path}`` -- api/static (the page's script and style, the vendored jsQR decoder).
- ``GET /api/v1/certificates/{id}/print`` (issuing agency, ``X-Document-Key``) -- an A4 certificate with its
  QR code, fields in Chinese, issuer and identifier. Server-rendered, because only a server can draw the QR
  (the page vendors a decoder, not an encoder) and sign an offline payload; the key comes in a header, as for
  the QR endpoint, never in the URL, and the plaintext lives only in memory for the request. The document is
  self-contained (inline SVG, inline style) so that it can be saved and printed later.

Every page is sent with a strict Content-Security-Policy (scripts and connections to this origin only, no
inline script) and ``Referrer-Policy: no-referrer``.

    $ curl -s localhost:8000/v/1.2.156.3005.2.11230000MB1A00028M001.11230000MB1A00028M.000000000001.001.7
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from api.certificate_qr import OpenedDocument, open_document, qr_text
from api.deps import CertificatesDep, CurrentAgency, DocumentKey, NodeDep, SettingsDep, VerifierDep
from api.schemas import AGENCY_ERRORS, IdentifierPath
from api.settings import Settings
from registry.certificates.documents import COMMON_FIELDS
from registry.certificates.verification import VerificationResult, Verifier
from registry.errors import NotFoundError, RegistryError
from registry.formats.images import qr_svg
from registry.node import Node

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
_TEMPLATES = STATIC_DIR / "verifier"
_STATIC_SUFFIXES = {".js", ".css", ".png", ".svg", ".ico", ".woff2"}  # templates (.html) are not served raw
_static = StaticFiles(directory=STATIC_DIR, check_dir=False)

_PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
             "media-src 'self' blob: mediastream:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
             "frame-ancestors 'none'")
_HEADERS = {"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
            "Permissions-Policy": "camera=(self), microphone=()"}
RED = {"revoked", "tampered", "unknown_issuer", "not_anchored", "superseded"}
AMBER = {"suspended", "expired", "cannot_verify"}


def verdict_colour(verdict: str) -> str:
    return "green" if verdict == "valid" else "amber" if verdict in AMBER else "red"


@cache
def _template(name: str) -> str:
    return (_TEMPLATES / name).read_text(encoding="utf-8")


def _fill(template: str, **values: str) -> str:
    """Replace ``{{name}}`` placeholders; every value is inserted as given (escape before calling)."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template)


def _page(settings: Settings, *, page: str, identifier: str = "", noscript: str = "") -> HTMLResponse:
    body = _fill(_template("index.html"), page=page, identifier=html.escape(identifier),
                 public_base=html.escape(settings.public_base), noscript=noscript)
    return HTMLResponse(body, headers={**_HEADERS, "Content-Security-Policy": _PAGE_CSP, "Cache-Control": "no-store"})


def _status_only(verifier: Verifier, identifier: str) -> str:
    """The no-JavaScript fallback: the status by identifier (no holder fields: they need the key)."""
    try:
        result: VerificationResult = verifier.verify_identifier(identifier)
    except RegistryError as exc:
        return f'<p class="notice notice-foreign">{html.escape(exc.message)}</p>'
    checks = "".join(
        f'<li class="check check-{html.escape(c.status.lower())}"><b>{html.escape(c.name)}</b> {html.escape(c.status)}: '
        f"{html.escape(c.reason_zh)} / {html.escape(c.reason_en)}</li>" for c in result.checks)
    return (f'<section class="verdict verdict-{verdict_colour(result.verdict)}" data-verdict="{result.verdict}">'
            f'<p class="verdict-text">{html.escape(result.verdict_zh)} / {html.escape(result.verdict_en)}</p>'
            f"<p>仅核验状态：未启用 JavaScript，无法解密证照内容 / status only: with JavaScript off the contents "
            f"cannot be decrypted</p></section><ul class=\"checks\">{checks}</ul>")


@router.get("/v/{identifier}", response_class=HTMLResponse)
async def verify_page(identifier: str, settings: SettingsDep, verifier: VerifierDep) -> HTMLResponse:
    noscript = await run_in_threadpool(_status_only, verifier, identifier)
    return _page(settings, page="reference", identifier=identifier, noscript=noscript)


@router.get("/verify", response_class=HTMLResponse)
async def scanner_page(settings: SettingsDep) -> HTMLResponse:
    return _page(settings, page="scanner",
                 noscript="<p>扫码需要 JavaScript / scanning needs JavaScript</p>")


@router.get("/static/{path:path}")
async def static(path: str, request: Request) -> Response:
    if Path(path).suffix.lower() not in _STATIC_SUFFIXES:
        raise NotFoundError(f"no static file {path!r}", code="not_found")
    response = await _static.get_response(path, request.scope)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# --- the printable certificate ---------------------------------------------------------------------------


def _label(name: str, name_en: str) -> str:
    return (f'<span class="zh">{html.escape(name)}</span>'
            f'<span class="en">{html.escape(name_en.replace("_", " "))}</span>')


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    return html.escape(str(value))


def render_print(node: Node, opened: OpenedDocument, text: str, mode: str) -> str:
    doc, view = opened.document, opened.view
    cert_type = node.seeds.certificate_type(doc.type_code)
    specs = [*COMMON_FIELDS, *cert_type.fields]
    rows = "".join(
        f"<tr><th>{_label(s.name, s.name_en)}</th><td>{_value(doc.fields[s.name].value)}</td></tr>"
        for s in specs if s.name in doc.fields)
    issuer = node.seeds.member(view.issuer_uscc)
    anchor = view.anchor or {}
    anchored = (f"区块 {anchor['block_number']} · 交易 {html.escape(anchor['tx_hash'])}" if anchor else
                "等待上链 / pending anchoring")
    qr = qr_svg(text, scale=4, title=doc.identifier)
    qr = re.sub(r"^<svg ", '<svg class="qr" role="img" ', qr)
    caption = ("扫码核验（联网）/ scan to verify online" if mode == "ref" else
               "离线核验码（含签名）/ offline verification code (signed)")
    template = _template("print.html")
    style = re.search(r"<style>(.*?)</style>", template, re.S)
    assert style is not None
    return _fill(template, title=html.escape(f"{cert_type.name} {doc.identifier}"), name=html.escape(cert_type.name),
                 name_en=html.escape(cert_type.name_en), rows=rows, qr=qr, caption=caption,
                 issuer=html.escape(issuer.name), issuer_en=html.escape(issuer.name_en),
                 issuer_uscc=html.escape(view.issuer_uscc), identifier=html.escape(doc.identifier),
                 digest=html.escape(view.digest_sha256), anchored=anchored,
                 printed=dt.date.today().isoformat())


@cache
def _print_csp() -> str:
    style = re.search(r"<style>(.*?)</style>", _template("print.html"), re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode("utf-8")).digest()).decode()
    return f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; base-uri 'none'; frame-ancestors 'none'"


@router.get("/api/v1/certificates/{identifier}/print", response_class=HTMLResponse, include_in_schema=True,
            tags=["qr"], responses=AGENCY_ERRORS)
async def print_view(
    identifier: IdentifierPath, agency: CurrentAgency, certificates: CertificatesDep, node: NodeDep,
    key: DocumentKey = None,
    mode: Annotated[Literal["ref", "offline"], Query(description="which QR to print")] = "ref",
) -> HTMLResponse:
    """A printable A4 certificate (HTML): fields in Chinese, issuer, identifier and the QR code.
    Needs the document key in ``X-Document-Key``; nothing of the plaintext is stored or logged."""

    def render() -> str:
        opened = open_document(certificates, agency, identifier, key)
        text, _ = qr_text(node, certificates, opened, mode, hide=[], max_version=40 if mode == "ref" else 25)
        return render_print(node, opened, text, mode)

    page = await run_in_threadpool(render)
    return HTMLResponse(page, headers={**_HEADERS, "Content-Security-Policy": _print_csp(), "Cache-Control": "no-store"})
