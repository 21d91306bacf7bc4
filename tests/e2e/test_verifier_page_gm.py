"""The verifier page's 国密 (issue 13): SM3 digests computed in the browser and SM4 (version 2) envelopes opened
there, in a real headless Chromium against real LocalStacks (uvicorn + anvil) of both crypto profiles.

- the page's SM3, HMAC-SM3, SM3 RFC 6962 roots and SM4-CTR (vendored sm-crypto, api/static/verifier/gm.js) give
  Python's values (registry.crypto, `cryptography`), and envelopes cross both ways (Python seals, the page opens;
  the page seals, Python's `open_` opens);
- a gm certificate's link shows ``valid`` with the SM3 check VALID, from the SM3 digest the browser computed: the
  request to /verify/digest carries ``sm3`` and never a field value, a salt or the key;
- one changed byte of the blob (iv, ciphertext or tag) is refused before anything is decrypted or shown;
- a document re-sealed with the right key but edited content is ``tampered``, also when only an SM3 value moved;
- an SM3 batch root flipped in the database is ``tampered`` (the server's SM3 check); a record without an SM3
  path verifies with the SM3 check SKIPPED;
- an intl certificate (version-1 AES-GCM blob) still verifies, with the SM3 check VALID too;
- a page that cannot load sm-crypto says cannot_verify, never valid.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from api.devtools.samples import sample_values
from api.stack import LocalStack
from registry.certificates.documents import Document
from registry.certificates.fields import HiddenField
from registry.crypto import merkle
from registry.crypto.hashing import sm3
from registry.errors import ProofError
from registry.formats.envelope import EnvelopeAlgorithm, aad_for, decode_key, open_, seal
from registry.store.db import Batch, Certificate
from tests.support import plain_http
from tests.support.browser import RequestLog, chromium, shot

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

PHONE = {"width": 412, "height": 915}
GREEN, RED, GREY = "rgb(19, 115, 51)", "rgb(179, 38, 30)", "rgb(74, 85, 104)"
CHAIN_CHECKS = ["anchoring", "issuer", "status", "validity"]


@pytest.fixture(scope="module")
def gm_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("gm"), batch_max_age=0.2, crypto_profile="gm") as s:
        yield s


@pytest.fixture(scope="module")
def gm_certs(gm_stack: LocalStack) -> dict[str, dict[str, Any]]:
    """Three certificates in one batch, then two more each in a batch of its own (their SM3 data gets edited)."""
    certs = dict(zip(("valid", "privacy", "tamper"), _issue(gm_stack, 3, seed=31), strict=True))
    certs["sm3_root"] = _issue(gm_stack, 1, seed=32)[0]
    certs["no_sm3_path"] = _issue(gm_stack, 1, seed=33)[0]
    gm_stack.services.index.refresh(force=True)
    return certs


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # no service worker: requests it would make are invisible to page.route (the missing-library test blocks one)
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, locale="zh-CN", service_workers="block")
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert errors == [], errors  # no script error on any page


def _issue(stack: LocalStack, n: int, *, seed: int) -> list[dict[str, Any]]:
    ct = stack.node.seeds.certificate_types[0]
    issuer = stack.node.seeds.member(ct.issuers[0])
    with httpx.Client(base_url=stack.url, headers=stack.auth(issuer.uscc), timeout=60) as http:
        r = http.post("/api/v1/certificates/batch?wait=true",
                      json={"type": ct.code, "documents": sample_values(ct, n, issuer=issuer, seed=seed)})
        assert r.status_code == 201, r.text
        return list(r.json()["certificates"])


def _blob(stack: LocalStack, identifier: str) -> bytes:
    r = plain_http.get(f"{stack.url}/api/v1/certificates/{identifier}/blob", timeout=30)
    assert r.status_code == 200, r.text
    return r.content


def _key(cert: dict[str, Any]) -> bytes:
    return decode_key(cert["qr_url"].split("#", 1)[1])


def _verdict(page: Any) -> str:
    page.wait_for_selector("#result[data-verdict]", timeout=30_000)
    return str(page.get_attribute("#result", "data-verdict"))


def _checks(page: Any) -> list[list[str]]:
    return [list(c) for c in page.eval_on_selector_all("#checks li", "els => els.map(e => [e.dataset.check, e.dataset.status])")]


def _colour(page: Any) -> str:
    return str(page.eval_on_selector("#verdict", "e => getComputedStyle(e).backgroundColor"))


def _serve(page: Any, identifier: str, blob: bytes) -> None:
    """Answer the page's request for ``identifier``'s blob with ``blob`` (a tampered store or network)."""
    page.route(f"**/api/v1/certificates/{identifier}/blob",
               lambda route: route.fulfill(status=200, body=blob, content_type="application/octet-stream"))


def _digest_posts(log: RequestLog, stack: LocalStack) -> list[dict[str, Any]]:
    return [json.loads(s.body) for s in log.sent if s.method == "POST" and s.url == f"{stack.url}/api/v1/verify/digest"]


# ---- the page's primitives against Python's -------------------------------------------------------------------

_PRIMITIVES_JS = """async (cases) => {
  const { gm } = await import("/static/verifier/gm.js");
  const g = await gm();
  const h = (s) => Uint8Array.from(s.match(/../g) || [], (p) => parseInt(p, 16));
  const x = (b) => Array.from(b, (v) => v.toString(16).padStart(2, "0")).join("");
  return {
    sm3: cases.sm3.map((m) => x(g.sm3(h(m)))),
    hmac: cases.hmac.map(([k, m]) => x(g.hmacSm3(h(k), h(m)))),
    roots: cases.roots.map((leaves) => x(g.merkleRoot(leaves.map(h)))),
    ctr: cases.ctr.map(([k, iv, m]) => x(g.sm4Ctr(h(k), h(iv), h(m)))),
    opened: cases.open.map(([blob, key, aad]) => { const p = g.openSm4(h(blob), h(key), h(aad)); return p && x(p); }),
    sealed: cases.seal.map(([m, key, aad, iv]) => x(g.sealSm4(h(m), h(key), h(aad), h(iv)))),
  };
}"""


def test_the_pages_sm3_hmac_sm3_roots_and_sm4_ctr_equal_pythons(page: Any, gm_stack: LocalStack) -> None:
    rng = random.Random(1305)
    messages = [b"", b"abc", b"abcd" * 16, *(rng.randbytes(n) for n in (1, 55, 56, 63, 64, 65, 119, 1000, 4099))]
    hmac_cases = [(rng.randbytes(k), rng.randbytes(m)) for k, m in ((16, 0), (32, 20), (64, 64), (100, 333))]
    trees = [[rng.randbytes(32) for _ in range(n)] for n in (0, 1, 2, 3, 5, 8, 13, 33)]
    ivs = [rng.randbytes(16), b"\xff" * 16, b"\x00" * 8 + b"\xff" * 8]  # the counter carries across bytes and wraps
    ctr_cases = [(rng.randbytes(16), iv, rng.randbytes(n)) for iv in ivs for n in (0, 1, 16, 47, 1000)]
    identifier = "1.2.156.3005.2.X.Y.1.001.A"
    sealed_here = [seal(m, aad=aad_for(identifier), algorithm=EnvelopeAlgorithm.SM4_CTR_HMAC_SM3)
                   for m in (b"", "证照 {\"a\":1}".encode(), rng.randbytes(777))]
    to_seal = [(rng.randbytes(n), rng.randbytes(32), aad_for(identifier), rng.randbytes(16)) for n in (0, 5, 300)]
    page.goto(gm_stack.url + "/verify")
    page.wait_for_selector("body[data-ready=true]")
    out = page.evaluate(_PRIMITIVES_JS, {
        "sm3": [m.hex() for m in messages],
        "hmac": [[k.hex(), m.hex()] for k, m in hmac_cases],
        "roots": [[leaf.hex() for leaf in t] for t in trees],
        "ctr": [[k.hex(), iv.hex(), m.hex()] for k, iv, m in ctr_cases],
        "open": [[blob.hex(), key.hex(), aad_for(identifier).hex()] for key, blob in sealed_here],
        "seal": [[m.hex(), k.hex(), aad.hex(), iv.hex()] for m, k, aad, iv in to_seal],
    })
    assert out["sm3"] == [sm3(m).hex() for m in messages]
    assert out["sm3"][1] == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"  # GB/T 32905 A.1
    assert out["hmac"] == [_hmac_sm3(k, m).hex() for k, m in hmac_cases]
    assert out["roots"] == [merkle.root_from_leaf_hashes(t, algorithm="sm3").hex() for t in trees]
    assert out["ctr"] == [_sm4_ctr(k, iv, m).hex() for k, iv, m in ctr_cases]
    assert out["opened"] == [open_(blob, key, aad=aad_for(identifier)).hex() for key, blob in sealed_here]
    for (m, k, aad, _), blob in zip(to_seal, out["sealed"], strict=True):
        assert bytes.fromhex(blob)[0] == 2 and open_(bytes.fromhex(blob), k, aad=aad) == m


def _hmac_sm3(key: bytes, message: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key, hashes.SM3())
    mac.update(message)
    return mac.finalize()


def _sm4_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.SM4(key), modes.CTR(iv)).encryptor()
    return enc.update(data) + enc.finalize()


# ---- a gm certificate ------------------------------------------------------------------------------------------

def test_a_gm_link_is_valid_with_the_sm3_check_computed_in_the_browser(
        page: Any, gm_stack: LocalStack, gm_certs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    cert = gm_certs["valid"]
    assert _blob(gm_stack, cert["identifier"])[0] == EnvelopeAlgorithm.SM4_CTR_HMAC_SM3  # a version-2 envelope
    log = RequestLog(page)
    page.goto(cert["qr_url"])
    assert _verdict(page) == "valid" and _colour(page) == GREEN
    assert _checks(page) == [["integrity", "VALID"], ["sm3", "VALID"], *([c, "VALID"] for c in CHAIN_CHECKS)]
    [body] = _digest_posts(log, gm_stack)
    digest = cert["document"]["digest"]
    assert body == {"identifier": cert["identifier"], "digest": digest["sha256"], "sm3": digest["sm3"]}
    checks = page.inner_text("#checks")
    assert "SHA-256 与 SM3 摘要一致" in checks and "经默克尔证明得出链上的 SM3 批次根" in checks
    assert cert["document"]["fields"]["持证主体"]["value"] in page.inner_text("#verdict")
    shot(page, tmp_path, "verifier_gm_valid_zh")
    page.click("#lang-toggle")
    checks = page.inner_text("#checks")
    assert "SM3 digest" in checks and "leads to the SM3 batch root on chain" in checks and "批次根" not in checks
    shot(page, tmp_path, "verifier_gm_valid_en")


def test_the_server_gets_the_sm3_digest_but_no_field_salt_or_key(
        page: Any, gm_stack: LocalStack, gm_certs: dict[str, dict[str, Any]]) -> None:
    cert = gm_certs["privacy"]
    fields = cert["document"]["fields"]
    public = ("证照标识", "证照类型代码", "颁发机构代码", "颁发机构", "证照名称", "持证主体代码类型", "属地编码")
    holder = [f["value"] for name, f in fields.items() if name not in public and isinstance(f["value"], str)
              and len(f["value"]) > 3]
    key = cert["qr_url"].split("#", 1)[1]
    secrets = [key, _key(cert).hex(), *holder, *(f["salt"] for f in fields.values())]
    log = RequestLog(page)
    page.goto(cert["qr_url"])
    assert _verdict(page) == "valid"
    page.wait_for_selector("body[data-ready=true]")
    assert log.sent
    for secret in secrets:
        assert log.carrying(secret) == [], secret
    posts = [s for s in log.sent if s.method == "POST"]
    assert [s.url for s in posts] == [f"{gm_stack.url}/api/v1/verify/digest"]
    assert set(json.loads(posts[0].body)) == {"identifier", "digest", "sm3"}
    static = {s.url.split(gm_stack.url, 1)[1] for s in log.sent if "/static/" in s.url}
    assert {"/static/verifier/gm.js", "/static/vendor/sm-crypto/sm3.js", "/static/vendor/sm-crypto/sm4.js"} <= static


@pytest.mark.parametrize("where", ["iv", "ciphertext", "tag"])
def test_one_changed_byte_of_an_sm4_envelope_is_refused_before_anything_is_shown(
        where: str, page: Any, gm_stack: LocalStack, gm_certs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    cert = gm_certs["tamper"]
    blob = bytearray(_blob(gm_stack, cert["identifier"]))
    at = {"iv": 5, "ciphertext": 1 + 16 + (len(blob) - 49) // 2, "tag": len(blob) - 3}[where]
    blob[at] ^= 0x01
    with pytest.raises(ProofError, match="decryption failed"):  # Python refuses it too
        open_(bytes(blob), _key(cert), aad=aad_for(cert["identifier"]))
    _serve(page, cert["identifier"], bytes(blob))
    log = RequestLog(page)
    page.goto(cert["qr_url"])
    assert _verdict(page) == "wrong_key" and _colour(page) == GREY
    assert _checks(page)[0] == ["decrypt", "INVALID"]
    assert "密文已被改动" in page.inner_text("#checks")
    assert page.is_hidden("#fields") and cert["document"]["fields"]["持证主体"]["value"] not in page.inner_text("body")
    assert _digest_posts(log, gm_stack) == []  # nothing decrypted, nothing to check on chain
    if where == "ciphertext":
        shot(page, tmp_path, "verifier_gm_changed_byte")


def _reseal(stack: LocalStack, cert: dict[str, Any], edit: Any) -> bytes:
    """The certificate's document, changed by ``edit(obj)``, sealed again (version 2) under its own key."""
    key, aad = _key(cert), aad_for(cert["identifier"])
    obj = json.loads(open_(_blob(stack, cert["identifier"]), key, aad=aad))
    edit(obj)
    _, blob = seal(json.dumps(obj, ensure_ascii=False).encode(), aad=aad, key=key,
                   algorithm=EnvelopeAlgorithm.SM4_CTR_HMAC_SM3)
    return blob


def _forged_hidden_sm3(obj: dict[str, Any]) -> None:
    """Hide one field, keep its SHA-256 leaf but change its SM3 leaf, and restate digest.sm3 to match: the SHA-256
    digest stays the registered one, the SM3 digest does not."""
    doc = Document.from_json(obj).disclose(["住所"])
    hidden = dict(doc.hidden)
    hidden["住所"] = HiddenField(sha256=hidden["住所"].sha256, sm3=os.urandom(32))
    forged = Document(identifier=doc.identifier, type_code=doc.type_code, fields=doc.fields, hidden=hidden,
                      digest_sha256=doc.digest_sha256, digest_sm3=b"")
    d256, dsm3 = forged.compute_digests()
    assert d256 == doc.digest_sha256 and dsm3 != doc.digest_sm3
    obj.clear()
    obj.update(forged.to_json())
    obj["digest"]["sm3"] = dsm3.hex()


@pytest.mark.parametrize(("case", "integrity", "sm3_status", "posted"), [
    ("field", "本机核验失败", "INVALID", False),  # a field value edited, digests left: both roots differ
    ("sm3_digest", "字段内容与 SM3 摘要不符", "INVALID", False),  # only the stated SM3 digest edited
    ("hidden_sm3", "SM3", "INVALID", True),  # consistent here, but not the registered SM3 digest: the server says so
])
def test_a_resealed_document_with_edited_content_is_tampered(
        case: str, integrity: str, sm3_status: str, posted: bool, page: Any, gm_stack: LocalStack,
        gm_certs: dict[str, dict[str, Any]]) -> None:
    cert = gm_certs["tamper"]
    edits = {
        "field": lambda o: o["fields"]["住所"].update(value=o["fields"]["住所"]["value"] + "1号"),
        "sm3_digest": lambda o: o["digest"].update(sm3=sm3(b"forged").hex()),
        "hidden_sm3": _forged_hidden_sm3,
    }
    _serve(page, cert["identifier"], _reseal(gm_stack, cert, edits[case]))
    log = RequestLog(page)
    page.goto(cert["qr_url"])
    assert _verdict(page) == "tampered" and _colour(page) == RED
    checks = dict((c, s) for c, s in _checks(page))
    assert checks["integrity"] == "INVALID" and checks["sm3"] == sm3_status
    assert integrity in page.inner_text("#checks li[data-check=integrity]")
    posts = _digest_posts(log, gm_stack)
    assert bool(posts) == posted
    if posted:  # the browser's own SM3 digest went to the server, which refused it as not the registered one
        assert posts[0]["digest"] == cert["document"]["digest"]["sha256"]
        assert posts[0]["sm3"] != cert["document"]["digest"]["sm3"]
        assert "SM3 摘要与该证照登记的 SM3 摘要不符" in page.inner_text("#checks li[data-check=sm3]")


def test_an_sm3_root_flipped_in_the_database_is_tampered_and_a_record_without_an_sm3_path_is_skipped(
        page: Any, gm_stack: LocalStack, gm_certs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    flipped, no_path = gm_certs["sm3_root"], gm_certs["no_sm3_path"]
    with gm_stack.node.db.session() as s:
        a, b = s.get(Certificate, flipped["identifier"]), s.get(Certificate, no_path["identifier"])
        assert a is not None and b is not None and a.batch_id != b.batch_id
        batch = s.get(Batch, a.batch_id)
        assert batch is not None and batch.root_sm3 is not None
        root = bytearray.fromhex(batch.root_sm3[2:])
        root[7] ^= 0x10  # one bit
        batch.root_sm3 = "0x" + root.hex()
        b.proof_sm3 = None  # as a record anchored before SM3 roots went on chain
        s.commit()
    page.goto(flipped["qr_url"])
    assert _verdict(page) == "tampered" and _colour(page) == RED
    assert ["sm3", "INVALID"] in _checks(page) and ["integrity", "VALID"] in _checks(page)
    assert "与链上 SM3 批次根不符" in page.inner_text("#checks li[data-check=sm3]")
    shot(page, tmp_path, "verifier_gm_sm3_root_flipped")
    page.goto("about:blank")
    page.goto(no_path["qr_url"])
    assert _verdict(page) == "valid"
    assert _checks(page) == [["integrity", "VALID"], ["sm3", "SKIPPED"], *([c, "VALID"] for c in CHAIN_CHECKS)]
    assert "没有 SM3 默克尔证明" in page.inner_text("#checks li[data-check=sm3]")


# ---- an intl certificate -----------------------------------------------------------------------------------------

def test_an_intl_certificate_still_verifies_with_its_sm3_digest_checked_too(
        page: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    with LocalStack(tmp_path_factory.mktemp("intl"), batch_max_age=0.2, crypto_profile="intl") as stack:
        [cert] = _issue(stack, 1, seed=34)
        stack.services.index.refresh(force=True)
        assert _blob(stack, cert["identifier"])[0] == EnvelopeAlgorithm.AES_256_GCM  # version 1
        log = RequestLog(page)
        page.goto(cert["qr_url"])
        assert _verdict(page) == "valid"
        assert _checks(page) == [["integrity", "VALID"], ["sm3", "VALID"], *([c, "VALID"] for c in CHAIN_CHECKS)]
        [body] = _digest_posts(log, stack)
        assert body["sm3"] == cert["document"]["digest"]["sm3"]


def test_without_the_sm_library_the_page_cannot_verify_and_never_says_valid(
        page: Any, gm_certs: dict[str, dict[str, Any]]) -> None:
    page.route("**/static/vendor/sm-crypto/sm4.js", lambda route: route.abort())
    page.goto(gm_certs["valid"]["qr_url"])
    assert _verdict(page) == "cannot_verify"
    assert "无法加载国密算法库 sm4.js" in page.inner_text("#checks")
