"""The seal (电子印章) where a certificate is seen, in a real headless Chromium against a real API and anvil
(LocalStack, gm profile: GB/T 38540 SES_Signature):

- the verifier page shows a sealed certificate's seal image over the agency name with "印章有效", after checking
  the image's SHA-256 against the digest registered on chain; an image served that is not the registered one is
  not shown and said so in words;
- a seal image swapped (inside the stored sealed signature) for another agency's seal is called out in words,
  Chinese first, naming whose seal the image is; the certificate is red, and the banner says it is the seal;
- a seal revoked after sealing: the seal is still verified, "valid when sealed", and the page says it was
  revoked later;
- an unsealed certificate gets no seal card and stays green;
- the printable certificate shows the seal image (loaded, the registered digest) over the issuer name with the
  mark, on one A4 page.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from api.devtools.samples import sample_values
from api.stack import LocalStack
from tests.support import plain_http
from tests.support.browser import chromium, shot
from tests.support.seals import CITY_MARKET, MARKET, create_seal, seal_png, swap_sealed_image

pytestmark = [pytest.mark.browser, pytest.mark.anvil, pytest.mark.xdist_group("verifier_seal")]

PHONE = {"width": 412, "height": 915}
GREEN, RED = "rgb(19, 115, 51)", "rgb(179, 38, 30)"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("seal-page"), batch_max_age=0.2) as s:
        yield s


def _issue(stack: LocalStack, agency: str, n: int, seed: int, seal: str | None) -> list[dict[str, Any]]:
    ct = stack.node.seeds.certificate_types[0]
    body: dict[str, Any] = {"type": ct.code, "documents": sample_values(ct, n, issuer=stack.node.seeds.member(agency),
                                                                       seed=seed)}
    if seal:
        body["seal"] = seal
    r = plain_http.post(f"{stack.url}/api/v1/certificates/batch?wait=true", json=body, headers=stack.auth(agency), timeout=60)
    assert r.status_code == 201, r.text
    return list(r.json()["certificates"])


@pytest.fixture(scope="module")
def world(stack: LocalStack) -> dict[str, Any]:
    """Seals of two agencies, and certificates sealed (one to be shown, one swapped, one printed), sealed under a
    seal revoked afterwards, and unsealed."""
    red, blue, green = seal_png("red"), seal_png("blue"), seal_png("green")
    ours = create_seal(stack.url, stack.auth(MARKET), red)
    theirs = create_seal(stack.url, stack.auth(CITY_MARKET), blue, name="哈尔滨市市场监督管理局行政许可专用章")
    later = create_seal(stack.url, stack.auth(MARKET), green, name="黑龙江省市场监督管理局证照专用章", category="certificate")
    sealed, swapped, printed = _issue(stack, MARKET, 3, 61, ours["id"])
    [revoked_later] = _issue(stack, MARKET, 1, 62, later["id"])
    [unsealed] = _issue(stack, MARKET, 1, 63, None)
    r = plain_http.post(f"{stack.url}/api/v1/seals/{later['id']}/revoke", json={"reason": "机构更名"},
                        headers=stack.auth(MARKET), timeout=60)
    assert r.status_code == 200 and r.json()["status"] == "revoked", r.text
    swap_sealed_image(stack.node, swapped["identifier"], blue)
    return {"ours": ours, "theirs": theirs, "later": later, "red": red, "blue": blue, "later_png": green, "sealed": sealed,
            "swapped": swapped, "printed": printed, "revoked_later": revoked_later, "unsealed": unsealed}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, locale="zh-CN")
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert errors == [], errors


def _open(page: Any, cert: dict[str, Any]) -> str:
    page.goto(cert["qr_url"])
    page.wait_for_selector("#result[data-verdict]", timeout=30_000)
    return str(page.get_attribute("#result", "data-verdict"))


def _colour(page: Any) -> str:
    return str(page.eval_on_selector("#verdict", "e => getComputedStyle(e).backgroundColor"))


def _shown_pixels(page: Any) -> tuple[int, int, list[int]]:
    """What #seal-image shows: its natural size and the RGBA of its centre pixel, read back from a canvas."""
    w, h, centre = page.evaluate("""() => {
        const img = document.getElementById('seal-image');
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d');
        ctx.drawImage(img, 0, 0);
        return [c.width, c.height, Array.from(ctx.getImageData(c.width >> 1, c.height >> 1, 1, 1).data)];
    }""")
    return int(w), int(h), [int(v) for v in centre]


def _expected_pixels(png: bytes) -> tuple[int, int, list[int]]:
    with Image.open(io.BytesIO(png)) as im:
        rgba = im.convert("RGBA")
        return rgba.width, rgba.height, list(rgba.getpixel((rgba.width // 2, rgba.height // 2)))


def test_a_sealed_certificate_shows_its_seal_image_over_the_agency_name_and_seal_verified(
        page: Any, stack: LocalStack, world: dict[str, Any], tmp_path: Path) -> None:
    assert _open(page, world["sealed"]) == "valid" and _colour(page) == GREEN
    page.wait_for_selector("#seal[data-seal-image]", timeout=20_000)
    assert page.get_attribute("#seal", "data-seal") == "valid"
    assert page.get_attribute("#seal", "data-seal-image") == "verified"
    loaded = page.eval_on_selector("#seal-image", "i => i.complete && i.naturalWidth > 0 && !i.hidden")
    assert loaded and page.is_visible("#seal-image")
    # the pixels shown are the registered image's (a red star at the centre), and so are the bytes served
    assert _shown_pixels(page) == _expected_pixels(world["red"]) and _expected_pixels(world["red"])[2] == [255, 0, 0, 255]
    served = plain_http.get(f"{stack.url}/api/v1/certificates/{world['sealed']['identifier']}/seal/image", timeout=30)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert hashlib.sha256(served.content).hexdigest() == world["ours"]["image_sha256"] == served.headers[
        "x-seal-image-sha256"] == hashlib.sha256(world["red"]).hexdigest()
    card = page.inner_text("#seal")
    assert "印章有效" in card and "黑龙江省市场监督管理局" in card and world["ours"]["id"] in card
    assert "Seal verified" not in card  # Chinese first
    # the seal stands over the agency's name: the image's box covers the name's centre
    over = page.evaluate("""() => {
        const a = document.querySelector('#seal .seal-agency').getBoundingClientRect();
        const i = document.getElementById('seal-image').getBoundingClientRect();
        const x = a.left + a.width / 2, y = a.top + a.height / 2;
        return i.left <= x && x <= i.right && i.top <= y && y <= i.bottom;
    }""")
    assert over
    checks = dict(page.eval_on_selector_all("#checks li", "els => els.map(e => [e.dataset.check, e.dataset.status])"))
    assert checks["seal"] == "VALID" and "电子印章" in page.inner_text("#checks li[data-check=seal]")
    shot(page, tmp_path, "verifier_seal_valid")
    page.click("#lang-toggle")
    assert "Seal verified" in page.inner_text("#seal")
    page.click("#lang-toggle")


def test_a_seal_image_swapped_for_another_agencys_is_called_out_in_words(
        page: Any, world: dict[str, Any], tmp_path: Path) -> None:
    assert _open(page, world["swapped"]) == "tampered" and _colour(page) == RED
    assert page.get_attribute("#seal", "data-seal") == "image_mismatch"
    card = page.inner_text("#seal")
    assert "印章未通过核验" in card and "另一枚印章的图像" in card and "哈尔滨市市场监督管理局" in card, card
    assert "印章有效" not in card and page.locator("#seal-image").count() == 0  # no image, no mark
    assert "电子印章未通过核验" in page.inner_text("#verdict")  # the banner says it is the seal, not the content
    shot(page, tmp_path, "verifier_seal_swapped")
    page.click("#lang-toggle")
    assert "image of another seal" in page.inner_text("#seal")


def test_a_served_image_that_is_not_the_registered_one_is_not_shown(page: Any, world: dict[str, Any]) -> None:
    served: list[str] = []

    def other_image(route: Any) -> None:  # the seal check passed on the server; the picture sent is another one
        served.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=world["blue"])

    page.route("**/api/v1/certificates/*/seal/image", other_image)
    assert _open(page, world["sealed"]) == "valid"
    page.wait_for_selector("#seal[data-seal-image]", timeout=20_000)
    assert served and page.get_attribute("#seal", "data-seal-image") == "mismatch"
    assert page.is_hidden("#seal-image") and page.get_attribute("#seal-image", "src") is None
    card = page.inner_text("#seal")
    assert "与链上登记的摘要不符，未予显示" in card and "印章有效" not in card, card


def test_a_seal_revoked_after_sealing_still_verifies_and_says_it_was_valid_when_sealed(
        page: Any, world: dict[str, Any], tmp_path: Path) -> None:
    assert _open(page, world["revoked_later"]) == "valid" and _colour(page) == GREEN
    page.wait_for_selector("#seal[data-seal-image=verified]", timeout=20_000)
    later = page.inner_text("#seal-later")
    assert "盖章时印章有效" in later and "其后" in later and "已撤销" in later and "仍然有效" in later, later
    assert "印章有效" in page.inner_text("#seal-mark")
    assert _shown_pixels(page) == _expected_pixels(world["later_png"])
    shot(page, tmp_path, "verifier_seal_revoked_later")


def test_an_unsealed_certificate_has_no_seal_card_and_stays_green(page: Any, world: dict[str, Any]) -> None:
    assert _open(page, world["unsealed"]) == "valid" and _colour(page) == GREEN
    assert page.locator("#seal").count() == 0
    assert page.locator("#checks li[data-check=seal]").count() == 0


def test_the_printable_certificate_shows_the_checked_seal_over_the_issuer_on_one_page(
        browser: Any, stack: LocalStack, world: dict[str, Any], tmp_path: Path) -> None:
    cert = world["printed"]
    ctx = browser.new_context(extra_http_headers={**stack.auth(MARKET), "X-Document-Key": cert["qr_url"].split("#")[1]})
    try:
        page = ctx.new_page()
        r = page.goto(f"{stack.url}/api/v1/certificates/{cert['identifier']}/print")
        assert r.status == 200
        page.wait_for_selector("img.seal-img")
        assert page.eval_on_selector("img.seal-img", "i => i.complete && i.naturalWidth > 0")
        src = str(page.get_attribute("img.seal-img", "src"))
        media, data = re.fullmatch(r"data:(image/png);base64,(.+)", src).groups()  # type: ignore[union-attr]
        digest = hashlib.sha256(base64.b64decode(data)).hexdigest()
        assert digest == world["ours"]["image_sha256"] == page.get_attribute("img.seal-img", "data-seal-sha256")
        line = page.inner_text(".issuer-line")
        assert "✓ 印章有效 / seal verified" in line and "黑龙江省市场监督管理局" in line, line
        over = page.evaluate("""() => {
            const line = document.querySelector('.issuer-line').getBoundingClientRect();
            const i = document.querySelector('img.seal-img').getBoundingClientRect();
            const y = line.top + 8;  // the middle of the line with the issuer's Chinese name
            return i.top < y && y < i.bottom && i.left > line.left && i.right < line.right;
        }""")
        assert over  # the stamp overlaps the issuer line
        shot(page, tmp_path, "print_sealed")
        pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
        (tmp_path / "print_sealed.pdf").write_bytes(pdf)
        assert len(re.findall(rb"/Type\s*/Page(?!s)", pdf)) == 1
        # an unsealed certificate prints as before: no seal, no mark
        other = world["unsealed"]
        r = plain_http.get(f"{stack.url}/api/v1/certificates/{other['identifier']}/print", timeout=60,
                           headers={**stack.auth(MARKET), "X-Document-Key": other["qr_url"].split("#")[1]})
        assert r.status_code == 200 and 'class="seal' not in r.text and "印章有效" not in r.text
    finally:
        ctx.close()
