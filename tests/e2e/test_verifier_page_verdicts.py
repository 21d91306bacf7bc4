"""Every verdict of the verifier page is its own: wording, colour and what was checked, in Chinese and English,
in a real Chromium against a real API and anvil (one stack and one browser for the module).

Each case opens a link the way a citizen would (valid, without its key, with a wrong or cut key, revoked,
suspended, superseded, not yet valid, expired, unknown, malformed) on a 390x844 phone screen and checks the
verdict attribute, the computed colour of the banner, the words, WCAG AA contrast of the banner and of every
check badge (computed from the styles), the screen-reader announcement (role="status"), and for revoked,
suspended and superseded certificates that the date (and reason, and successor) are in the first screen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from api.stack import LocalStack
from registry.identifiers import CertificateId
from tests.support.browser import chromium, shot
from tests.support.verifier import issue_roles

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

PHONE = {"width": 390, "height": 844}
COLOURS = {"green": "rgb(19, 115, 51)", "red": "rgb(179, 38, 30)", "amber": "rgb(232, 161, 0)",
           "grey": "rgb(74, 85, 104)"}


@dataclass(frozen=True)
class Case:
    name: str  # how the link is made (see _link)
    verdict: str
    colour: str
    zh: tuple[str, ...]  # texts that must be visible in the verdict banner, in Chinese ...
    en: tuple[str, ...]  # ... and in English


CASES = (
    Case("valid", "valid", "green", ("有效", "均已核验"), ("Valid", "were all checked")),
    Case("no_key", "status_only", "amber", ("仅核验状态", "未核验证照内容"),
         ("Status only — the content was not checked", "the content was not")),
    Case("wrong_key", "wrong_key", "grey", ("链接不完整或密钥错误", "并不表示证照被篡改"),
         ("Incomplete link or wrong key", "does not mean the certificate was tampered")),
    Case("truncated", "truncated_link", "grey", ("链接不完整或密钥错误", "43 个字符"),
         ("Incomplete link or wrong key", "must be 43 characters")),
    Case("revoked", "revoked", "red", ("已撤销", "撤销时间", "撤销原因", "违法违规", "(UTC+8)"),
         ("Revoked", "Revoked on", "Reason", "violation", "(UTC+8)")),
    Case("suspended", "suspended", "amber", ("已暂停", "暂停时间"), ("Suspended", "Suspended on")),
    Case("superseded", "superseded", "red", ("已被更正证照替代", "替代时间", "查看新证照状态"),
         ("Superseded", "Superseded on", "status of the new certificate")),
    Case("not_yet_valid", "not_yet_valid", "amber", ("尚未生效",), ("Not yet valid",)),
    Case("expired", "expired", "amber", ("已过期",), ("Expired",)),
    Case("unknown", "unknown", "grey", ("查无此证照", "重试不会改变结果"),
         ("No such certificate", "retrying will not change it")),
    Case("garbage", "malformed", "grey", ("无法识别的证照标识", "重试不会改变结果"),
         ("Not a valid certificate identifier", "Retrying will not change it")),
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("verdicts"), batch_max_age=0.2) as s:
        yield s


@pytest.fixture(scope="module")
def certs(stack: LocalStack) -> dict[str, dict[str, Any]]:
    return issue_roles(stack, roles=("valid", "revoked", "suspended", "superseded"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _link(case: str, stack: LocalStack, certs: dict[str, dict[str, Any]]) -> str:
    valid = str(certs["valid"]["qr_url"])
    base, key = valid.split("#", 1)
    if case == "no_key":
        return base
    if case == "wrong_key":  # 43 characters, the right alphabet, another key
        return f"{base}#{key[:-4]}{'AAAA' if not key.endswith('AAAA') else 'BBBA'}"
    if case == "truncated":  # the link cut short, as a bad copy-paste does
        return valid[:-9]
    if case == "unknown":  # a well-formed identifier with a correct check character that nobody issued
        parts = certs["valid"]["identifier"].split(".")
        return f"{stack.url}/v/{CertificateId.build(parts[5], parts[6], 424242)}#{key}"
    if case == "garbage":
        return f"{stack.url}/v/not-a-certificate-1.2.3"
    return str(certs[case]["qr_url"])


def _luminance(rgb: str) -> float:
    r, g, b = (int(x) / 255 for x in re.findall(r"\d+", rgb)[:3])
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(fg: str, bg: str) -> float:
    """WCAG 2.1 contrast ratio of two computed CSS colours (opaque rgb/rgba)."""
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _pairs(page: Any) -> list[tuple[str, str, str]]:
    """(what, text colour, background colour) of the banner and of every check badge."""
    found = page.eval_on_selector_all(
        "#verdict, #verdict .verdict-text, #verdict dd, #checks .badge",
        "els => els.map(e => [e.id || e.className, getComputedStyle(e).color, "
        "getComputedStyle(e.closest('.badge') || e.closest('#verdict')).backgroundColor])")
    return [(str(what), str(fg), str(bg)) for what, fg, bg in found]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_verdict_has_its_own_words_colour_and_contrast_in_both_languages(
        case: Case, browser: Any, stack: LocalStack, certs: dict[str, dict[str, Any]], tmp_path: Any) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(_link(case.name, stack, certs))
        page.wait_for_selector("#result[data-verdict]", timeout=20_000)
        assert page.get_attribute("#result", "data-verdict") == case.verdict
        assert page.get_attribute("#verdict", "role") == "status"  # announced by screen readers
        assert page.eval_on_selector("#verdict", "e => getComputedStyle(e).backgroundColor") == COLOURS[case.colour]
        for what, fg, bg in _pairs(page):
            assert contrast(fg, bg) >= 4.5, (what, fg, bg, round(contrast(fg, bg), 2))
        if case.verdict in ("revoked", "suspended", "superseded"):
            # the date (and reason, and successor) without scrolling, on a phone
            for selector in [".event-when", ".event-reason" if case.verdict == "revoked" else None,
                             "#successor" if case.verdict == "superseded" else None]:
                if selector:
                    box = page.eval_on_selector(selector, "e => e.getBoundingClientRect().toJSON()")
                    assert 0 <= box["top"] and box["bottom"] <= PHONE["height"], (selector, box)
        if case.verdict == "superseded":
            replacement = certs["superseded"]["replacement"]["identifier"]
            assert page.get_attribute("#successor", "href") == f"/v/{replacement}"
        for lang in ("zh", "en"):
            if lang == "en":
                page.click("#lang-toggle")
            banner = page.inner_text("#verdict")
            for text in case.zh if lang == "zh" else case.en:
                assert text in banner, (lang, text, banner)
            other = CASES[0].en[0] if lang == "zh" else CASES[0].zh[0]
            assert other not in banner, banner  # one language at a time
            assert "重试" not in banner.replace("重试不会改变结果", "") and "please retry" not in banner.lower()
            if case.verdict in ("valid", "revoked"):  # the holder, and field labels in the page's language
                holder = certs[case.name]["document"]["fields"]["持证主体"]["value"]
                assert holder in banner
                fields = page.inner_text("#fields")
                assert ("Legal representative" in fields) == (lang == "en") and ("法定代表人" in fields) == (lang == "zh")
            shot(page, tmp_path, f"verdict_{case.name}_{lang}")
        if case.verdict in ("valid", "revoked"):
            assert page.is_hidden("#technical dl")  # the chain details are folded ...
            page.click("#technical summary")  # ... and one tap away
            assert certs[case.name]["document"]["anchor"]["tx_hash"] in page.inner_text("#technical")
    finally:
        context.close()
    assert errors == [], errors
