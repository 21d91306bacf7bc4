"""The verifier page without the network, and the pages around it, in a real Chromium against a real API and
anvil (one stack and one browser for the module).

- offline codes are decoded and verified in the browser against the trust list it caches (signature checked
  there): with Playwright's offline mode after one load, and with no request ever carrying the payload or a
  holder value; an altered code and a forged trust list are refused;
- the page is an installable PWA (manifest, icons, a service worker controlling it);
- photos of dense offline codes (versions 20-25, rotated 5-30°, blurred, noisy, JPEG 40-60, >= 4 px per
  module) decode in the page at least 90% as often as with the CLI's zxing-cpp; drag and drop and paste work;
- the printable certificate is one A4 page in Chromium's print, with a PDF button;
- /docs and /redoc render from local assets with every other host blocked; / is a landing page; browsers get
  an HTML 404 while API clients keep the JSON one.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import random
import re
import zlib
from collections.abc import Iterator
from typing import Any

import cbor2
import pytest
from PIL import Image

from api.stack import LocalStack
from registry.certificates.documents import AnchorProof, Document
from registry.certificates.offline import make_offline_qr
from registry.formats.images import decode_qr_image, qr_version
from registry.formats.qr import b45decode, b45encode, decode_payload, encode_payload, sign_payload
from tests.support import plain_http
from tests.support.browser import RequestLog, chromium, shot
from tests.support.photos import degraded_photos
from tests.support.verifier import DENSE, issue_roles, offline_png, offline_text

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

MOBILE = {"width": 390, "height": 844}
ROLES = ("offline", "revoked", "print", "upload", "camera", "privacy")
# fields that are not holder data (type, issuer, identifier, dates): everything else must never leave the device
PUBLIC = {"证照标识", "证照类型代码", "颁发机构代码", "颁发机构", "证照名称", "持证主体代码类型", "属地编码", "颁发日期",
          "有效期起始", "有效期截止", "成立日期", "营业期限", "注册资本", "类型"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("offline"), batch_max_age=0.2) as s:
        yield s


@pytest.fixture(scope="module")
def certs(stack: LocalStack) -> dict[str, dict[str, Any]]:
    return issue_roles(stack, roles=ROLES)


@pytest.fixture(scope="module")
def texts(stack: LocalStack, certs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The offline payload of each role, read back from the PNG the API draws."""
    roles = (*ROLES, "not_yet_valid", "expired", *(f"dense-{n}" for n in DENSE))
    return {role: offline_text(stack, certs[role]) for role in roles}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport=MOBILE, device_scale_factor=1, locale="zh-CN")
    errors: list[str] = []
    ctx.on("weberror", lambda e: errors.append(str(e.error)))
    yield ctx
    ctx.close()
    assert errors == [], errors


def _ready(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)


def _verdict(page: Any) -> str:
    page.wait_for_selector("#result[data-verdict]", timeout=30_000)
    return str(page.get_attribute("#result", "data-verdict"))


def _paste(page: Any, text: str) -> str:
    page.evaluate("document.getElementById('result').removeAttribute('data-verdict')")
    page.fill("#paste-text", text)
    page.click("#paste-form button[type=submit]")
    return _verdict(page)


def test_an_offline_code_is_verified_with_the_network_off_and_never_leaves_the_device(
        context: Any, stack: LocalStack, certs: dict[str, dict[str, Any]], texts: dict[str, str], tmp_path: Any) -> None:
    log = RequestLog(context)  # the whole context: pages and the service worker
    page = context.new_page()
    _ready(page, stack.url + "/verify")
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=30_000)
    block = plain_http.get(stack.url + "/api/v1/trust-list").json()["as_of"]["block"]
    assert page.get_attribute("#trust-status", "data-block") == str(block)

    context.set_offline(True)
    try:
        _ready(page, stack.url + "/verify")  # from the service worker's cache
        assert "离线" in page.inner_text("#trust-status")
        (tmp_path / "offline.png").write_bytes(offline_png(stack, certs["offline"]))
        page.set_input_files("#photo", str(tmp_path / "offline.png"))
        assert _verdict(page) == "valid"
        banner = page.inner_text("#verdict")
        assert f"截至区块 {block}" in banner and "本机离线核验" in banner
        assert certs["offline"]["document"]["fields"]["持证主体"]["value"] in banner
        checks = page.eval_on_selector_all("#checks li", "els => els.map(e => [e.dataset.check, e.dataset.status])")
        # a small batch: the code carries the SM3 part, which the page recomputes with sm-crypto (gm.js)
        assert checks == [[c, "VALID"]
                          for c in ("integrity", "anchoring", "sm3", "signature", "issuer", "status", "validity")]
        assert "SM2" in page.inner_text("#checks")  # the gm code's batch statement, checked on this device
        assert _paste(page, texts["revoked"]) == "revoked"
        assert "违法违规" in page.inner_text("#verdict")
        assert _paste(page, texts["not_yet_valid"]) == "not_yet_valid"
        assert _paste(page, texts["expired"]) == "expired"
        shot(page, tmp_path, "verifier_offline_network_off")
    finally:
        context.set_offline(False)

    assert log.sent, "no request recorded"
    assert not [s.url for s in log.sent if "/verify/offline" in s.url]
    for role in ("offline", "revoked"):
        fields = certs[role]["document"]["fields"]
        secrets = [texts[role], texts[role][4:60], *(str(f["value"]) for name, f in fields.items()
                                                    if name not in PUBLIC and len(str(f["value"])) > 3)]
        for secret in secrets:
            assert log.carrying(secret) == [], secret[:40]


def test_the_server_says_not_yet_valid_too(stack: LocalStack, certs: dict[str, dict[str, Any]],
                                          texts: dict[str, str]) -> None:
    # the same verdict from the API clients use (by identifier, and the offline endpoint kept for them)
    ident = certs["not_yet_valid"]["identifier"]
    assert plain_http.post(stack.url + "/api/v1/verify", json={"identifier": ident}).json()["verdict"] == "not_yet_valid"
    r = plain_http.post(stack.url + "/api/v1/verify/offline", json={"payload": texts["not_yet_valid"]})
    assert r.json()["verdict"] == "not_yet_valid"
    expired = plain_http.post(stack.url + "/api/v1/verify/offline", json={"payload": texts["expired"]})
    assert expired.json()["verdict"] == "expired"


def test_an_altered_offline_code_and_a_forged_trust_list_are_refused(
        context: Any, stack: LocalStack, texts: dict[str, str]) -> None:
    page = context.new_page()
    _ready(page, stack.url + "/verify")
    payload = decode_payload(texts["offline"])
    changed = {**payload.disclosed, "持证主体": (payload.disclosed["持证主体"][0], "某某伪造有限公司")}
    forged = dataclasses.replace(payload, disclosed=changed, issuer_account=b"")
    forged = dataclasses.replace(forged, batch_root=forged.computed_batch_root())
    assert _paste(page, encode_payload(forged)) == "tampered"  # the old signature, another body
    assert _paste(page, texts["offline"][:-30]) == "unreadable"  # a partial scan
    assert "充满" in page.inner_text("#verdict")  # and what to do about it

    fresh = context.browser.new_context(viewport=MOBILE)
    try:
        def tamper(route: Any) -> None:
            body = route.fetch().json()
            body["members"][0]["name"] = "伪造的成员"
            route.fulfill(json=body)

        fresh.route("**/api/v1/trust-list", tamper)
        other = fresh.new_page()
        _ready(other, stack.url + "/verify")
        assert other.get_attribute("#trust-status", "data-block") is None
        assert "尚未下载信任列表" in other.inner_text("#trust-status")
        other.fill("#paste-text", texts["offline"])
        other.click("#paste-form button[type=submit]")
        other.wait_for_selector("#notice:not([hidden])")
        assert "尚无信任列表" in other.inner_text("#notice") and other.is_hidden("#result")
    finally:
        fresh.close()


def test_intl_codes_verify_in_the_page_beside_gm_ones(context: Any, stack: LocalStack,
                                                     certs: dict[str, dict[str, Any]]) -> None:
    """The stack is gm (its codes carry the SM2 batch statement, checked above). An intl code carries the batch's
    statement signed with the issuer's secp256k1 account, and a code of the first intl form a signature over
    its body: both verify against the same trust list v2. A statement signed by an outsider, or given another
    signing time, recovers an account that is no member's."""
    cert = certs["offline"]
    uscc = cert["document"]["fields"]["颁发机构代码"]["value"]
    key = bytes(stack.node.keys.signing_account(uscc).key)  # type: ignore[union-attr]
    document, anchor = Document.from_json(cert["document"]), AnchorProof.from_json(cert["document"]["anchor"])
    qr = make_offline_qr(document, anchor, key)
    statement = qr.payload.statement
    assert statement is not None and statement.scheme == "secp256k1"
    first_form = encode_payload(sign_payload(dataclasses.replace(qr.payload, statement=None), key))
    outsider = make_offline_qr(document, anchor, bytes(31) + b"\x07").text
    shifted = encode_payload(dataclasses.replace(
        qr.payload, statement=dataclasses.replace(statement, signed_at=statement.signed_at + 1)))
    page = context.new_page()
    _ready(page, stack.url + "/verify")
    for text, says in ((qr.text, "签署批次声明"), (first_form, "签名")):
        assert _paste(page, text) == "valid"
        checks = dict(page.eval_on_selector_all("#checks li", "els => els.map(e => [e.dataset.check, e.dataset.status])"))
        assert checks["signature"] == "VALID" and checks["sm3"] == "VALID"
        account = stack.node.keys.signing_account(uscc).address  # type: ignore[union-attr]
        assert says in page.inner_text("#checks") and account in page.inner_text("#checks")
    for text in (outsider, shifted):
        assert _paste(page, text) == "unknown_issuer"
        assert "声明被改动，或由非成员签署" in page.inner_text("#checks")
    # an audit path one step too long leads to no root at all (the Python decoder refuses such a code): both
    # kinds of statement are then refused as tampered, not checked against a root that is not there
    gm_text = offline_text(stack, cert)
    for text in (qr.text, gm_text):
        assert decode_payload(text).statement is not None
        assert _paste(page, _with_proof_step_added(text)) == "tampered"
        assert "默克尔证明与批次大小不符" in page.inner_text("#checks")


def _with_proof_step_added(text: str) -> str:
    """``text`` with one more 32-byte step in its audit paths (SHA-256 and SM3), re-encoded as the encoder would
    (LZ2)."""
    envelope = cbor2.loads(zlib.decompress(b45decode(text[4:])))
    body = cbor2.loads(envelope[0])
    body[8] += bytes(32)
    if len(body) == 14:  # the SM3 part: its path is as long as the SHA-256 one
        body[13][1] += bytes(32)
    envelope[0] = cbor2.dumps(body, canonical=True)
    return "LZ2:" + b45encode(zlib.compress(cbor2.dumps(envelope), 9))


def test_the_page_is_an_installable_app(context: Any, stack: LocalStack) -> None:
    manifest = plain_http.get(stack.url + "/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    m = manifest.json()
    assert m["start_url"] == "/verify" and m["display"] == "standalone" and m["name"] and m["short_name"]
    sizes = set()
    for icon in m["icons"]:
        r = plain_http.get(stack.url + icon["src"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(r.content)) as im:
            assert f"{im.width}x{im.height}" == icon["sizes"]
            sizes.add(im.width)
    assert {192, 512} <= sizes
    page = context.new_page()
    _ready(page, stack.url + "/verify")
    assert page.get_attribute("link[rel=manifest]", "href") == "/manifest.webmanifest"
    scope = page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == stack.url + "/"
    sw = plain_http.get(stack.url + "/sw.js")
    assert sw.headers["content-type"].startswith("text/javascript") and sw.headers["service-worker-allowed"] == "/"


_DECODE = """async (b64) => {
  const m = await import('/static/verifier/photo.js');
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  return m.decodePhoto(new Blob([bytes], {type: 'image/jpeg'}));
}"""

def test_degraded_photos_of_dense_offline_codes_decode_in_the_page_as_well_as_in_the_cli(
        context: Any, stack: LocalStack, texts: dict[str, str]) -> None:
    chosen = [texts[f"dense-{n}"] for n in DENSE]
    versions = [qr_version(t) for t in chosen]
    assert all(20 <= v <= 25 for v in versions) and max(versions) >= 24, versions
    photos = degraded_photos(chosen, rng=random.Random(12), per_text=5)
    cli = [decode_qr_image(jpeg) == [text] for text, _, jpeg in photos]
    page = context.new_page()
    _ready(page, stack.url + "/verify")
    in_page = [page.evaluate(_DECODE, base64.b64encode(jpeg).decode()) == text for text, _, jpeg in photos]
    both = sum(a and b for a, b in zip(cli, in_page, strict=True))
    print(f"versions {versions}; CLI {sum(cli)}/{len(cli)}, page {sum(in_page)}/{len(in_page)}")
    assert sum(cli) >= len(photos) // 2, "the photo set is too hard to say anything"
    assert both >= 0.9 * sum(cli), (sum(cli), both)


def test_dropped_and_pasted_images_are_read(context: Any, stack: LocalStack, certs: dict[str, dict[str, Any]]) -> None:
    page = context.new_page()
    _ready(page, stack.url + "/verify")
    for role, how in (("upload", "drop"), ("camera", "paste")):
        b64 = base64.b64encode(offline_png(stack, certs[role])).decode()
        page.evaluate("document.getElementById('result').removeAttribute('data-verdict')")
        page.evaluate("""([b64, how]) => {
          const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
          const data = new DataTransfer();
          data.items.add(new File([bytes], 'code.png', {type: 'image/png'}));
          if (how === 'drop') document.getElementById('scanner').dispatchEvent(
            new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
          else document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
        }""", [b64, how])
        assert _verdict(page) == "valid", how
        assert certs[role]["document"]["fields"]["持证主体"]["value"] in page.inner_text("#verdict"), how
    page.evaluate("document.getElementById('result').removeAttribute('data-verdict')")
    blank = Image.new("RGB", (400, 300), "white")  # a photo without a code: concrete advice, no verdict
    buf = io.BytesIO()
    blank.save(buf, "PNG")
    page.set_input_files("#photo", files=[{"name": "blank.png", "mimeType": "image/png", "buffer": buf.getvalue()}])
    page.wait_for_selector("#notice:not([hidden])", timeout=30_000)
    advice = page.inner_text("#notice")
    assert "图片中未找到二维码" in advice and "充满画面" in advice and "反光" in advice and "稳定" in advice


@pytest.mark.parametrize("role,mode", [("print", "ref"), ("print", "offline"), (f"dense-{DENSE[-1]}", "offline")])
def test_the_printable_certificate_is_one_a4_page_with_a_pdf_button(
        browser: Any, stack: LocalStack, certs: dict[str, dict[str, Any]], role: str, mode: str, tmp_path: Any) -> None:
    cert = certs[role]
    issuer = cert["identifier"].split(".")[6]
    ctx = browser.new_context(extra_http_headers={**stack.auth(issuer), "X-Document-Key": cert["qr_url"].split("#")[1]})
    try:
        page = ctx.new_page()
        r = page.goto(f"{stack.url}/api/v1/certificates/{cert['identifier']}/print?mode={mode}")
        assert r.status == 200
        assert page.is_visible("#download-pdf")
        pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
        (tmp_path / f"{role}-{mode}.pdf").write_bytes(pdf)
        assert len(re.findall(rb"/Type\s*/Page(?!s)", pdf)) == 1
        page.emulate_media(media="print")
        assert page.is_hidden("#download-pdf")  # the button is not printed
    finally:
        ctx.close()


def test_docs_and_redoc_render_with_every_other_host_blocked(browser: Any, stack: LocalStack, tmp_path: Any) -> None:
    spec = plain_http.get(stack.url + "/openapi.json").json()
    # Swagger UI shows an operation once under each of its tags
    operations = sum(max(1, len(op.get("tags", []))) for item in spec["paths"].values()
                     for method, op in item.items() if method in ("get", "post", "put", "patch", "delete"))
    schemes = spec.get("components", {}).get("securitySchemes", {})
    ctx = browser.new_context()
    outside: list[str] = []

    def only_here(route: Any) -> None:
        if route.request.url.startswith(stack.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    ctx.route("**/*", only_here)
    try:
        page = ctx.new_page()
        page.goto(stack.url + "/docs")
        page.wait_for_selector(".opblock", timeout=30_000)
        assert page.locator(".opblock").count() == operations
        # the Authorize button is there exactly when the OpenAPI declares a security scheme (bearer key)
        assert page.locator(".auth-wrapper .authorize").count() == (1 if schemes else 0)
        shot(page, tmp_path, "docs_offline")
        page.goto(stack.url + "/redoc")
        page.wait_for_selector("[data-section-id^='operation/']", timeout=60_000)
        assert page.locator("[data-section-id^='operation/']").count() >= 1
    finally:
        ctx.close()
    assert outside == []


def test_a_landing_page_and_html_404s_for_browsers_while_api_clients_get_json(browser: Any, stack: LocalStack) -> None:
    home = plain_http.get(stack.url + "/")
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    assert 'href="/verify"' in home.text and 'href="/docs"' in home.text
    html = {"Accept": "text/html,application/xhtml+xml"}
    page404 = plain_http.get(stack.url + "/no/such/page", headers=html)
    assert page404.status_code == 404 and page404.headers["content-type"].startswith("text/html")
    assert "未找到页面" in page404.text and "/no/such/page" in page404.text
    for path, headers in (("/no/such/page", {}), ("/no/such/page", {"Accept": "application/json"}),
                          ("/api/v1/no-such-endpoint", html)):
        r = plain_http.get(stack.url + path, headers=headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (path, headers)
    assert plain_http.post(stack.url + "/api/v1/verify/digest", headers=html, json={}).status_code == 422
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.goto(stack.url + "/somewhere")
        assert "未找到页面" in page.inner_text("h1")
        page.click("a[href='/verify']")
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    finally:
        ctx.close()
