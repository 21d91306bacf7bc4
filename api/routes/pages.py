"""The verifier web page, its static files and offline support, the landing page, the API docs, browser 404s,
and the printable certificate.

- ``GET /`` -- a landing page (what this service is, links to the verifier and the API docs).
- ``GET /v/{identifier}`` -- what a by-reference QR opens (``/v/<identifier>#<key>``). The page fetches the
  encrypted document, decrypts it in the browser (WebCrypto AES-GCM), recomputes the field leaves and the
  RFC 6962 root there, and asks the server only ``{"identifier", "digest"}`` (``POST /api/v1/verify/digest``):
  the server never sees a field value nor the key. Without JavaScript the page still shows the status by
  identifier (rendered here, inside ``<noscript>``).
- ``GET /verify`` -- the same page with only the scanner (camera, photo upload, drag and drop, paste). Offline
  codes are decoded and verified in the browser against the signed trust list it caches: the page never
  sends an offline payload anywhere.
- ``GET /wallet`` -- the browser wallet (电子卡包): the holder key lives in this browser only (WebCrypto, not
  extractable, in IndexedDB); it signs verifier challenges and grants (api/static/wallet).
- ``GET /sw.js``, ``GET /manifest.webmanifest``, ``GET /verifier/meta.json`` -- the service worker (scope
  ``/``), the web app manifest (installable PWA) and the page's data from seeds/ and the registry's frozen
  tables (offline field codes, revocation reasons, English field labels, type and member names).
- ``GET /docs``, ``GET /redoc`` -- Swagger UI and ReDoc from vendored assets (no CDN: they work offline).
- ``GET /static/{path}`` -- api/static (the page's modules and style, the vendored decoders and docs UIs).
- Unknown paths: an HTML 404 page for browsers (``Accept: text/html``), the JSON error for API clients.
- ``GET /api/v1/certificates/{id}/print`` (issuing agency, ``X-Document-Key``) -- an A4 certificate with its
  QR code, fields in Chinese, issuer and identifier. Server-rendered, because only a server can draw the QR
  (the page vendors a decoder, not an encoder) and sign an offline payload; the key comes in a header, as for
  the QR endpoint, never in the URL, and the plaintext lives only in memory for the request. The document is
  self-contained (inline SVG, inline style) so that it can be saved and printed later; it fits one A4 page
  and has a "download PDF" button (the browser's print to PDF). A sealed certificate shows its seal over the
  issuer's name, with the outcome of its `seal` check (api/print_seal.py).

Every page is sent with a strict Content-Security-Policy (scripts and connections to this origin only, no
inline script; WebAssembly compilation for the QR decoder) and ``Referrer-Policy: no-referrer``.

    $ curl -s localhost:8000/v/1.2.156.3005.2.11230000MB1A00028M001.11230000MB1A00028M.000000000001.001.7
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import inspect
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from api.certificate_qr import OpenedDocument, open_document, qr_text
from api.deps import (
    CertificatesDep,
    CurrentAgency,
    DocumentKey,
    NodeDep,
    SealCheckDep,
    SealsDep,
    SettingsDep,
    VerifierDep,
)
from api.print_seal import seal_block
from api.schemas import AGENCY_ERRORS, IdentifierPath
from api.sealed_print import sealed_pdf
from api.settings import Settings
from registry.certificates.documents import COMMON_FIELDS
from registry.certificates.print_sheet import PrintSheet
from registry.certificates.service import REVOCATION_REASONS
from registry.certificates.verification import VerificationResult, Verifier
from registry.errors import NotFoundError, RegistryError
from registry.formats.images import qr_svg
from registry.formats.offline_payload import FIELD_CODES
from registry.node import Node

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
_TEMPLATES = STATIC_DIR / "verifier"
# templates (.html) are not served raw; .wasm is the QR decoder (served as application/wasm)
_STATIC_SUFFIXES = {".js", ".css", ".png", ".svg", ".ico", ".woff2", ".wasm"}
_static = StaticFiles(directory=STATIC_DIR, check_dir=False)

# 'wasm-unsafe-eval' lets the page compile the vendored zxing WebAssembly (it allows no JavaScript eval).
_PAGE_CSP = ("default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob: data:; "
             "media-src 'self' blob: mediastream:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
             "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
_HEADERS = {"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
            "Permissions-Policy": "camera=(self), microphone=()"}
# The no-JavaScript fallback's colours; the page's own verdicts and colours are in static/verifier/i18n.js.
RED = {"revoked", "tampered", "unknown_issuer", "not_anchored", "superseded"}
AMBER = {"suspended", "expired", "not_yet_valid", "cannot_verify"}


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
    return _html(body, "no-store")


def _html(body: str, cache_control: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code,
                        headers={**_HEADERS, "Content-Security-Policy": _PAGE_CSP, "Cache-Control": cache_control})


def operator_page(name: str) -> HTMLResponse:
    """An operator page from api/static/operator/ (its scripts and style are static files, under the same CSP)."""
    return _html((STATIC_DIR / "operator" / name).read_text(encoding="utf-8"), "no-store")


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


@router.get("/wallet", response_class=HTMLResponse)
async def wallet_page() -> HTMLResponse:
    """The browser wallet (电子卡包, api/static/wallet): a holder key kept non-extractable in IndexedDB, challenge
    signing, grants and their QR codes."""
    return _html(_wallet_template(), "no-cache")


@cache
def _wallet_template() -> str:
    return (STATIC_DIR / "wallet" / "index.html").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse)
async def landing() -> HTMLResponse:
    return _html(_template("landing.html"), "no-cache")


# --- offline support: service worker, manifest, the page's data ---------------------------------------------


@router.get("/sw.js")
async def service_worker() -> Response:
    # Served from the root so that its scope covers /verify and /v/... (a worker's scope is its own folder).
    return Response(_template("sw.js"), media_type="text/javascript",
                    headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/", **_HEADERS})


@router.get("/manifest.webmanifest")
async def manifest() -> Response:
    return Response(_template("manifest.webmanifest"), media_type="application/manifest+json",
                    headers={"Cache-Control": "no-cache", **_HEADERS})


def _english(name_en: str) -> str:
    """A seed's English field name (``legal_representative``) as a label (``Legal representative``)."""
    text = name_en.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def page_meta(node: Node) -> dict[str, Any]:
    """What the page needs to label and decode certificates offline, from seeds/ and the registry's tables."""
    seeds = node.seeds
    labels = {f.name: _english(f.name_en) for f in COMMON_FIELDS}
    for cert_type in seeds.certificate_types:
        labels.update({f.name: _english(f.name_en) for f in cert_type.fields})
    return {
        "field_codes": list(FIELD_CODES),  # offline codes name standard fields by index (registry.formats.offline_payload)
        "revocation_reasons": {str(code): list(text) for code, text in REVOCATION_REASONS.items()},
        "labels": labels,
        "types": {t.code: {"name": t.name, "name_en": t.name_en} for t in seeds.certificate_types},
        "members": {m.uscc: m.name_en for m in seeds.members},
    }


@router.get("/verifier/meta.json")
async def verifier_meta(node: NodeDep) -> JSONResponse:
    return JSONResponse(page_meta(node), headers={"Cache-Control": "no-cache", **_HEADERS})


# --- API docs from vendored assets --------------------------------------------------------------------------

_VENDOR = "/static/vendor"
_ICON = "/static/verifier/icon-192.png"
# Nothing leaves this origin: ReDoc's "powered by" logo (a CDN image) is blocked before any request is made.
# The UIs need what they are built with: an inline start-up script (Swagger UI, as FastAPI writes it), styles
# injected at run time and ReDoc's search worker from a blob: URL.
_DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
             "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
             "base-uri 'none'; frame-ancestors 'none'")


def _docs(page: HTMLResponse) -> HTMLResponse:
    page.headers.update({**_HEADERS, "Content-Security-Policy": _DOCS_CSP})
    return page


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui(request: Request) -> HTMLResponse:
    app = request.app
    # validatorUrl None: Swagger UI would otherwise fetch a validity badge from an external validator
    return _docs(get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} — API",
                                     swagger_js_url=f"{_VENDOR}/swagger-ui/swagger-ui-bundle.js",
                                     swagger_css_url=f"{_VENDOR}/swagger-ui/swagger-ui.css", swagger_favicon_url=_ICON,
                                     swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None}))


@router.get("/redoc", response_class=HTMLResponse)
async def redoc(request: Request) -> HTMLResponse:
    app = request.app
    return _docs(get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} — API",
                                redoc_js_url=f"{_VENDOR}/redoc/redoc.standalone.js", redoc_favicon_url=_ICON,
                                with_google_fonts=False))


# --- browsers get an HTML 404, API clients the JSON error -----------------------------------------------------


def install(app: FastAPI) -> None:
    """Wrap the JSON handler of HTTP errors (api/errors.py, installed first): a browser asking for a page that
    does not exist gets a page with links; anything else, and every path under /api/, keeps the JSON body."""
    json_handler = app.exception_handlers[StarletteHTTPException]

    async def handler(request: Request, exc: Exception) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "")
        if (isinstance(exc, StarletteHTTPException) and exc.status_code == 404 and wants_html
                and request.method in ("GET", "HEAD") and not request.url.path.startswith("/api/")):
            return _html(_fill(_template("not_found.html"), path=html.escape(request.url.path)), "no-store", 404)
        response = json_handler(request, exc)
        return await response if inspect.isawaitable(response) else response

    app.add_exception_handler(StarletteHTTPException, handler)


# --- the printable certificate ---------------------------------------------------------------------------


def _label(name: str, name_en: str) -> str:
    return (f'<span class="zh">{html.escape(name)}</span>'
            f'<span class="en">{html.escape(name_en.replace("_", " "))}</span>')


def render_print(node: Node, opened: OpenedDocument, text: str, mode: str, seal: str = "") -> str:
    doc, view = opened.document, opened.view
    cert_type = node.seeds.certificate_type(doc.type_code)
    sheet = PrintSheet.of(node.seeds, doc, view)  # the rows the sealed PDF prints too (registry/seals/pdf.py)
    rows = "".join(f"<tr><th>{_label(r.name, r.name_en)}</th><td>{html.escape(r.text)}</td></tr>" for r in sheet.rows)
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
                 issuer=html.escape(issuer.name), issuer_en=html.escape(issuer.name_en), seal=seal,
                 issuer_uscc=html.escape(view.issuer_uscc), identifier=html.escape(doc.identifier),
                 digest=html.escape(view.digest_sha256), anchored=anchored,
                 printed=dt.date.today().isoformat())


@cache
def _print_csp() -> str:
    style = re.search(r"<style>(.*?)</style>", _template("print.html"), re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode("utf-8")).digest()).decode()
    return (f"default-src 'none'; script-src 'self'; style-src 'sha256-{digest}'; img-src data:; base-uri 'none'; "
            "frame-ancestors 'none'")


@router.get("/api/v1/certificates/{identifier}/print", response_class=HTMLResponse, include_in_schema=True,
            tags=["qr"], responses={**AGENCY_ERRORS, 200: {"content": {"text/html": {}, "application/pdf": {}},
                                                           "description": "the page, or the sealed PDF"}})
async def print_view(
    identifier: IdentifierPath, agency: CurrentAgency, certificates: CertificatesDep, node: NodeDep,
    verifier: VerifierDep, seal_check: SealCheckDep, seals: SealsDep, key: DocumentKey = None,
    mode: Annotated[Literal["ref", "offline"], Query(description="which QR to print")] = "ref",
    fmt: Annotated[Literal["html", "pdf"], Query(alias="format", description="html, or pdf: one A4 page with the "
                                                 "seal image, PAdES-signed with the seal's certificate")] = "html",
) -> Response:
    """A printable A4 certificate (HTML, or the sealed PDF): fields in Chinese, issuer, identifier and the QR code.
    Needs the document key in ``X-Document-Key``; nothing of the plaintext is stored or logged."""
    if fmt == "pdf":  # api/sealed_print.py; 409 not_sealed for a certificate issued without a seal
        return await sealed_pdf(node, certificates, seals, agency, identifier, key, mode, _HEADERS)

    def render() -> str:
        opened = open_document(certificates, agency, identifier, key)
        text, _ = qr_text(node, certificates, opened, mode, hide=[], max_version=40 if mode == "ref" else 25)
        return render_print(node, opened, text, mode, seal_block(verifier, seal_check, opened.document.identifier))

    page = await run_in_threadpool(render)
    return HTMLResponse(page, headers={**_HEADERS, "Content-Security-Policy": _print_csp(), "Cache-Control": "no-store"})
