"""The verifier page in a real headless Chromium (Debian's /usr/bin/chromium, Playwright) against a real uvicorn
and anvil (LocalStack): by-reference links, photo upload, the fake camera, offline codes, foreign codes, the
colours of the verdicts, and what the browser sends (never a field value, never the key).

One browser and one stack for the module. Screenshots go to each test's folder and to test-output/.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.stack import LocalStack
from registry.formats.images import qr_png
from tests.support.browser import RequestLog, chromium, fake_camera_args, shot, write_y4m
from tests.support.photos import photograph
from tests.support.verifier import issue_roles, offline_png

STATIC = Path(__file__).resolve().parents[2] / "api" / "static"
pytestmark = [pytest.mark.browser, pytest.mark.anvil]

GREEN, RED, AMBER, GREY = "rgb(19, 115, 51)", "rgb(179, 38, 30)", "rgb(232, 161, 0)", "rgb(74, 85, 104)"
MOBILE = {"width": 412, "height": 915}
ROLES = ("valid", "revoked", "suspended", "camera", "upload", "offline", "privacy")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("page"), batch_max_age=0.2) as s:
        yield s


@pytest.fixture(scope="module")
def certs(stack: LocalStack) -> dict[str, dict[str, Any]]:
    """One 营业执照 per role, in one anchored batch; one revoked and one suspended."""
    return issue_roles(stack, roles=ROLES)


@pytest.fixture(scope="module")
def browser(certs: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # Chromium's fake camera shows the "camera" certificate's QR code, as a phone held over the paper would.
    video = write_y4m(qr_png(certs["camera"]["qr_url"], scale=6), tmp_path_factory.mktemp("camera") / "qr.y4m")
    with chromium(fake_camera_args(video)) as b:
        yield b


@pytest.fixture
def page(browser: Any, stack: LocalStack) -> Iterator[Any]:
    context = browser.new_context(viewport=MOBILE, device_scale_factor=1, locale="zh-CN")
    context.grant_permissions(["camera"], origin=stack.url)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert errors == [], errors  # no script error on any page


def _verdict(page: Any) -> str:
    page.wait_for_selector("#result[data-verdict]", timeout=20_000)
    return str(page.get_attribute("#result", "data-verdict"))


def _colour(page: Any) -> str:
    return str(page.eval_on_selector("#verdict", "e => getComputedStyle(e).backgroundColor"))


def _visible_text(page: Any, selector: str = "#result") -> str:
    return str(page.inner_text(selector))


def test_a_by_reference_link_shows_a_green_verdict_with_issuer_anchor_checks_and_fields(
        page: Any, stack: LocalStack, certs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    cert = certs["valid"]
    page.goto(cert["qr_url"])
    assert _verdict(page) == "valid"
    assert _colour(page) == GREEN
    page.click("#technical summary")  # the chain details are folded under 技术详情
    text = _visible_text(page)
    issuer = stack.node.seeds.member(stack.node.seeds.certificate_types[0].issuers[0])
    member = next(m for m in stack.services.index.members.values() if m.uscc == issuer.uscc)
    fields = cert["document"]["fields"]
    for expected in ("有效", issuer.name, member.bid, cert["document"]["anchor"]["tx_hash"], "技术详情", "核验项",
                     fields["持证主体"]["value"], fields["经营范围"]["value"], "披露 20 项，隐藏 0 项"):
        assert expected in text, expected
    assert "Valid" not in text  # Chinese first
    checks = page.eval_on_selector_all("#checks li", "els => els.map(e => [e.dataset.check, e.dataset.status])")
    # SM3 too: the browser recomputed the SM3 root and the server followed it to the SM3 batch root on chain
    assert checks == [["integrity", "VALID"], ["sm3", "VALID"], ["anchoring", "VALID"], ["issuer", "VALID"],
                      ["status", "VALID"], ["validity", "VALID"]]
    assert "本机已核验 20 个字段" in _visible_text(page, "#checks")
    shot(page, tmp_path, "verifier_valid_zh")
    page.click("#lang-toggle")
    english = _visible_text(page)
    assert "Valid" in english and "Issuer" in english and "有效期" not in _visible_text(page, "#checks")
    shot(page, tmp_path, "verifier_valid_en")


def test_a_revoked_certificate_is_red_and_a_suspended_one_amber(page: Any, certs: dict[str, dict[str, Any]],
                                                                   tmp_path: Path) -> None:
    page.goto(certs["revoked"]["qr_url"])
    assert _verdict(page) == "revoked"
    assert _colour(page) == RED
    assert "已撤销" in _visible_text(page, "#verdict") and "违法违规" in _visible_text(page, "#checks")
    shot(page, tmp_path, "verifier_revoked")
    page.goto(certs["suspended"]["qr_url"])
    assert _verdict(page) == "suspended"
    assert _colour(page) == AMBER and "已暂停" in _visible_text(page, "#verdict")


def test_the_server_never_sees_the_plaintext_or_the_key(page: Any, stack: LocalStack,
                                                         certs: dict[str, dict[str, Any]]) -> None:
    cert = certs["privacy"]
    key = cert["qr_url"].split("#", 1)[1]
    fields = cert["document"]["fields"]
    # fields that are not holder data (type, issuer, identifier)
    public = ("证照标识", "证照类型代码", "颁发机构代码", "颁发机构", "证照名称", "持证主体代码类型", "属地编码")
    holder = [f["value"] for name, f in fields.items() if name not in public and isinstance(f["value"], str)
              and len(f["value"]) > 3]
    secrets = [key, *holder, *(f["salt"] for f in fields.values())]
    log = RequestLog(page)
    page.goto(cert["qr_url"])
    assert _verdict(page) == "valid"
    assert fields["持证主体"]["value"] in _visible_text(page)  # decrypted here ...
    page.wait_for_selector("body[data-ready=true]")  # and the page has done all it does on load
    assert log.sent, "no request recorded"
    for secret in secrets:  # ... and nothing of it, nor the key, went out in any URL, header or body
        assert log.carrying(secret) == [], secret
    assert all("#" not in s.url for s in log.sent)  # the fragment never reaches the server
    posts = [s for s in log.sent if s.method == "POST"]
    assert [s.url.split(stack.url, 1)[1] for s in posts] == ["/api/v1/verify/digest"]
    assert set(json.loads(posts[0].body)) == {"identifier", "digest", "sm3"}
    gets = {s.url.split(stack.url, 1)[1].split("?")[0] for s in log.sent if s.method == "GET"}
    # (the web app manifest is fetched only when the browser considers installing the page)
    assert {g for g in gets if not g.startswith("/static/")} - {"/manifest.webmanifest"} == {
        f"/v/{cert['identifier']}", f"/api/v1/certificates/{cert['identifier']}/blob", "/api/v1/trust-list",
        "/verifier/meta.json"}
    static = {g for g in gets if g.startswith("/static/")}  # the page's own files, nothing else
    assert {"/static/verifier/main.js", "/static/verifier/verifier.css", "/static/vendor/jsQR.js"} <= static
    assert all((STATIC / g.removeprefix("/static/")).is_file() for g in static), static
    # And what the server stores: ciphertext only (the whole database file, in every encoding we use). Dates
    # are left out: the registry keeps each certificate's validity window (not holder data) for its checks.
    db = stack.data_dir / "lianzheng.db"
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA wal_checkpoint(PASSIVE)")
    stored = b"".join(p.read_bytes() for p in db.parent.glob("lianzheng.db*"))
    for secret in (s for s in secrets if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", s)):
        for encoding in ("utf-8", "gb18030", "utf-16-le"):
            assert secret.encode(encoding) not in stored, secret


def test_uploading_a_photo_of_a_qr_code_shows_the_verdict(page: Any, stack: LocalStack,
                                                          certs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(photograph(qr_png(certs["upload"]["qr_url"]), rng=random.Random(8), angle=33))
    page.goto(stack.url + "/verify")
    page.wait_for_selector("body[data-ready=true]")
    page.set_input_files("#photo", str(photo))
    assert _verdict(page) == "valid"
    assert certs["upload"]["document"]["fields"]["持证主体"]["value"] in _visible_text(page, "#verdict")
    shot(page, tmp_path, "verifier_upload")
    revoked = tmp_path / "revoked.jpg"
    revoked.write_bytes(photograph(qr_png(certs["revoked"]["qr_url"]), rng=random.Random(9), angle=90))
    page.set_input_files("#photo", str(revoked))
    page.wait_for_selector("#result[data-verdict=revoked]", timeout=20_000)
    assert _colour(page) == RED


def test_an_offline_code_is_verified_and_says_as_of_which_block(page: Any, stack: LocalStack,
                                                                certs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    (tmp_path / "offline.png").write_bytes(offline_png(stack, certs["offline"]))
    log = RequestLog(page)
    page.goto(stack.url + "/verify")
    page.wait_for_selector("body[data-ready=true]")
    page.set_input_files("#photo", str(tmp_path / "offline.png"))
    assert _verdict(page) == "valid"
    text = _visible_text(page)
    assert "截至区块" in text and "签名" in _visible_text(page, "#checks")
    checks = page.eval_on_selector_all("#checks li", "els => els.map(e => e.dataset.check)")
    # a small batch: the code carries the SM3 part, which this page does not recompute yet
    assert checks == ["integrity", "anchoring", "sm3", "signature", "issuer", "status", "validity"]
    assert [s.url for s in log.sent if s.method == "POST"] == []  # verified on this device
    shot(page, tmp_path, "verifier_offline")


def test_a_foreign_qr_code_gets_a_clear_not_ours_message(page: Any, stack: LocalStack, tmp_path: Path) -> None:
    photo = tmp_path / "promo.jpg"
    photo.write_bytes(photograph(qr_png("https://example.com/promo?id=42"), rng=random.Random(4), angle=7))
    page.goto(stack.url + "/verify")
    page.wait_for_selector("body[data-ready=true]")
    page.set_input_files("#photo", str(photo))
    page.wait_for_selector("#notice:not([hidden])", timeout=20_000)
    notice = _visible_text(page, "#notice")
    assert "这不是链证电子证照二维码" in notice and "https://example.com/promo?id=42" in notice
    assert page.is_hidden("#result")
    shot(page, tmp_path, "verifier_foreign")
    page.click("#lang-toggle")
    assert "Not a Lianzheng certificate QR code" in _visible_text(page, "#notice")
    page.fill("#paste-text", "http://127.0.0.1:1/v/x#abc")  # a /v/ link, but not from this service
    page.click("#paste-form button[type=submit]")
    page.locator("#notice", has_text="127.0.0.1:1/v/x").wait_for(timeout=10_000)
    assert "Not a Lianzheng certificate QR code" in _visible_text(page, "#notice")


def test_the_camera_scans_a_code(page: Any, stack: LocalStack, certs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    page.goto(stack.url + "/verify")
    page.wait_for_selector("body[data-ready=true]")
    page.click("#camera-start")
    assert _verdict(page) == "valid"
    assert certs["camera"]["document"]["fields"]["持证主体"]["value"] in _visible_text(page, "#verdict")
    assert page.is_hidden("#camera")  # the camera stops once a code is read
    shot(page, tmp_path, "verifier_camera")


def test_a_wrong_key_is_not_tampering_a_missing_key_gives_status_only_and_without_javascript_the_status_still_shows(
        page: Any, browser: Any, stack: LocalStack, certs: dict[str, dict[str, Any]]) -> None:
    url = certs["valid"]["qr_url"]
    page.goto(url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBA"))
    assert _verdict(page) == "wrong_key" and _colour(page) == GREY  # a decrypt failure is not a digest mismatch
    assert "解密失败" in _visible_text(page, "#checks") and "篡改" not in _visible_text(page, "#verdict").replace(
        "并不表示证照被篡改", "")
    page.goto("about:blank")
    page.goto(url.split("#", 1)[0])  # a link without its key: the status by identifier, and why
    assert _verdict(page) == "status_only" and _colour(page) == AMBER
    assert "缺少解密密钥" in _visible_text(page, "#verdict") and page.is_hidden("#fields")
    context = browser.new_context(java_script_enabled=False, viewport=MOBILE)
    try:
        plain = context.new_page()
        plain.goto(certs["revoked"]["qr_url"])
        assert plain.get_attribute("section.verdict", "data-verdict") == "revoked"
        assert "仅核验状态" in plain.inner_text("main")
    finally:
        context.close()
