"""E-seals end to end on a real anvil through the HTTP API: a seal's lifecycle with a sealed batch of 1,000
and the seal verdict before and after each change; another agency refused by the API and by the contract;
a swapped seal image reported in words; the gm structures read back and their SM2 signatures checked by
OpenSSL; bad input refused with clear 4xx and nothing stored."""

from __future__ import annotations

import base64
import datetime as dt
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from api.devtools.samples import sample_values
from chain.errors import ContractRevertError
from chain.seals import SealRegistryClient, SealStatus
from registry.crypto.hashing import sha256_key
from registry.node import Node
from registry.seals.asn1 import SESeal, SESSignature, bits_of, signed_seal_bytes, signed_signature_bytes
from registry.seals.structures import parse_seseal
from registry.store.db import Certificate
from registry.store.seal_models import SealedSignature, SealRow
from tests.conftest import Api, make_api
from tests.unit.crypto._openssl import SM2_ID, needs_openssl, openssl, write

pytestmark = pytest.mark.anvil

MARKET = "11230000MB1A00028M"  # 省市场监管局: issues 营业执照 (type 0)
CITY_MARKET = "11230100MB1B000456"  # 哈尔滨市市场监管局: also issues 营业执照
UNTIL = (dt.datetime.now(dt.UTC) + dt.timedelta(days=365)).isoformat()


@pytest.fixture
def gm_api(anvil_node: Node, tmp_path: Path) -> Iterator[Api]:
    yield from make_api(anvil_node, tmp_path / "gm", crypto_profile="gm")


@pytest.fixture
def intl_api(anvil_node: Node, tmp_path: Path) -> Iterator[Api]:
    yield from make_api(anvil_node, tmp_path / "intl", crypto_profile="intl")


def seal_png(color: str, size: int = 160) -> bytes:
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.ellipse((4, 4, size - 4, size - 4), outline=color, width=8)
    draw.regular_polygon((size // 2, size // 2, size // 6), 5, fill=color)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _post(api: Api, path: str, body: Any, agency: str, status: int) -> dict[str, Any]:
    r = api.client.post(path, json=body, headers=api.auth(agency))
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


def _create(api: Api, agency: str, color: str = "red", status: int = 201, **kw: Any) -> dict[str, Any]:
    body = {"name": "黑龙江省市场监督管理局行政许可专用章", "category": "permit",
            "image": base64.b64encode(seal_png(color)).decode(), "valid_until": UNTIL, **kw}
    return _post(api, "/api/v1/seals", body, agency, status)


def _values(api: Api, n: int, issuer: str, seed: int) -> list[dict[str, Any]]:
    ct = api.node.seeds.certificate_types[0]
    return sample_values(ct, n, issuer=api.node.seeds.member(issuer), seed=seed)


def _issue(api: Api, agency: str, seal: str | None, n: int = 1, seed: int = 1, status: int = 201) -> dict[str, Any]:
    body: dict[str, Any] = {"type": api.node.seeds.certificate_types[0].code, "documents": _values(api, n, agency, seed)}
    if seal is not None:
        body["seal"] = seal
    r = api.client.post("/api/v1/certificates/batch?wait=true", json=body, headers=api.auth(agency))
    assert r.status_code == status, r.text[:500]
    return r.json()  # type: ignore[no-any-return]


def _seal_check(api: Api, identifier: str) -> dict[str, Any]:
    """The verification's `seal` check; the verifier's chain index refreshes at most every few hundred ms, so
    a document anchored just now may read not_anchored for that long: wait for the anchoring check."""
    deadline = time.monotonic() + 10
    while True:
        r = api.client.post("/api/v1/verify", json={"identifier": identifier})
        assert r.status_code == 200, r.text
        result = r.json()
        if result["verdict"] != "not_anchored" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    found = [c for c in result["checks"] if c["name"] == "seal"]
    assert len(found) == 1, [(c["name"], c["reason_en"]) for c in result["checks"]]
    [check] = found
    return {"verdict": result["verdict"], **check}


def _count(api: Api, model: Any) -> int:
    with api.node.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_seal_lifecycle_with_a_sealed_batch_of_1000_and_verdicts_after_each_change(gm_api: Api) -> None:
    api = gm_api
    seal = _create(api, MARKET)
    assert seal["status"] == "active" and seal["key_algorithm"] == "sm2"
    chain = api.node.client(SealRegistryClient).get_seal(bytes.fromhex(seal["key"][2:]))
    assert chain is not None and chain.status is SealStatus.ACTIVE and chain.agency_uscc == MARKET
    assert chain.image_digest.hex() == seal["image_sha256"]

    batch = _issue(api, MARKET, seal["id"], n=1000, seed=11)
    ids = [c["identifier"] for c in batch["certificates"]]
    assert batch["status"] == "issued" and _count(api, SealedSignature) == 1000
    first = _seal_check(api, ids[0])
    assert (first["verdict"], first["status"]) == ("valid", "VALID"), first
    assert _seal_check(api, ids[-1])["status"] == "VALID"

    suspended = _post(api, f"/api/v1/seals/{seal['id']}/suspend", {"reason": "印章保管人变更"}, MARKET, 200)
    assert suspended["status"] == "suspended"
    before = _count(api, Certificate)
    refused = _issue(api, MARKET, seal["id"], seed=12, status=409)
    assert refused["error"]["code"] == "seal_suspended"
    assert _count(api, Certificate) == before and _count(api, SealedSignature) == 1000
    after_suspension = _seal_check(api, ids[0])
    assert after_suspension["status"] == "VALID" and after_suspension["details"]["later"] == "suspended"
    assert "stays valid" in after_suspension["reason_en"]

    assert _post(api, f"/api/v1/seals/{seal['id']}/reinstate", None, MARKET, 200)["status"] == "active"
    reissued = _issue(api, MARKET, seal["id"], seed=13)
    assert reissued["status"] == "issued", reissued
    again = reissued["certificates"][0]["identifier"]
    assert _seal_check(api, again)["status"] == "VALID"

    assert _post(api, f"/api/v1/seals/{seal['id']}/revoke", {"reason": "机构更名"}, MARKET, 200)["status"] == "revoked"
    assert _issue(api, MARKET, seal["id"], seed=14, status=409)["error"]["code"] == "seal_revoked"
    for identifier in (ids[0], again):
        check = _seal_check(api, identifier)
        assert check["verdict"] == "valid" and check["details"]["later"] == "revoked", check
    assert _post(api, f"/api/v1/seals/{seal['id']}/reinstate", None, MARKET, 409)["error"]["code"] == "seal_revoked"
    unsealed = _issue(api, MARKET, None, seed=15)["certificates"][0]["identifier"]
    with pytest.raises(AssertionError, match="'status', 'not revoked or suspended'"):
        _seal_check(api, unsealed)  # no seal check on an unsealed document (after its anchoring was seen)


def test_another_agency_cannot_touch_or_use_the_seal_neither_by_api_nor_on_chain(intl_api: Api) -> None:
    api = intl_api
    seal = _create(api, MARKET)
    for action in ("suspend", "revoke"):
        err = _post(api, f"/api/v1/seals/{seal['id']}/{action}", {}, CITY_MARKET, 403)["error"]
        assert err["code"] == "not_your_seal"
    before = _count(api, Certificate)
    assert _issue(api, CITY_MARKET, seal["id"], seed=21, status=403)["error"]["code"] == "foreign_seal"
    assert _count(api, Certificate) == before
    registry = api.node.client(SealRegistryClient)
    key = sha256_key(seal["id"])
    for fn in (registry.suspend_fn(key, bytes(32)), registry.revoke_fn(key, bytes(32))):
        with pytest.raises(ContractRevertError, match="SealRegistryNotOwner"):
            registry.transact(api.node.sender_for(CITY_MARKET), fn)
    state = registry.get_seal(key)
    assert state is not None and state.status is SealStatus.ACTIVE
    # the intl profile seals with a signed JSON proof (ES256K by the seal's key), verified the same way
    identifier = _issue(api, MARKET, seal["id"], seed=22)["certificates"][0]["identifier"]
    assert api.client.get(f"/api/v1/certificates/{identifier}/seal").json()["format"] == "json-proof"
    check = _seal_check(api, identifier)
    assert (check["verdict"], check["status"]) == ("valid", "VALID"), check


def test_a_seal_image_swapped_for_another_agencys_is_reported_in_words(gm_api: Api) -> None:
    api = gm_api
    ours = _create(api, MARKET, "red")
    theirs = _create(api, CITY_MARKET, "blue")
    identifier = _issue(api, MARKET, ours["id"], seed=31)["certificates"][0]["identifier"]
    first = _seal_check(api, identifier)
    assert first["status"] == "VALID", first
    with api.node.db.session() as s:
        row = s.scalars(select(SealedSignature).where(SealedSignature.record_id == identifier)).one()
        other = s.get(SealRow, theirs["id"])
        assert other is not None
        sig = SESSignature.load(row.signature)
        seal = SESeal.load(sig["toSign"]["eseal"].dump())
        seal["eSealInfo"]["picture"]["data"] = other.image
        tbs = sig["toSign"]
        tbs["eseal"] = seal
        row.signature = SESSignature({"toSign": tbs, "cert": sig["cert"], "signatureAlgID": sig["signatureAlgID"],
                                      "signature": sig["signature"]}).dump(force=True)
    check = _seal_check(api, identifier)
    assert check["verdict"] == "tampered" and check["status"] == "INVALID"
    assert "image of another seal, of 哈尔滨市市场监督管理局" in check["reason_en"], check
    assert "另一枚印章的图像" in check["reason_zh"]


@needs_openssl
def test_gm_seseal_and_ses_signature_parse_back_and_verify_with_openssl(gm_api: Api, tmp_path: Path) -> None:
    api = gm_api
    seal = _create(api, MARKET)
    identifier = _issue(api, MARKET, seal["id"], seed=41)["certificates"][0]["identifier"]
    r = api.client.get(f"/api/v1/certificates/{identifier}/seal")
    assert r.status_code == 200 and r.json()["format"] == "ses-signature"
    sig = SESSignature.load(base64.b64decode(r.json()["signature"]), strict=True)
    tbs = sig["toSign"]
    assert tbs["version"].native == 4 and tbs["propertyInfo"].native == identifier
    assert sig["signatureAlgID"].dotted == "1.2.156.10197.1.501"
    with api.node.db.session() as s:
        row = s.get(Certificate, identifier)
        assert row is not None and bits_of(tbs["dataHash"]).hex() == row.digest_sm3
    seseal = SESeal.load(tbs["eseal"].dump(), strict=True)
    parsed = parse_seseal(seseal.dump())
    assert parsed.es_id == seal["id"] and parsed.category == "permit" and parsed.image_type == "PNG"
    assert seseal["eSealInfo"]["header"]["ID"].native == "ES"
    image = api.client.get(f"/api/v1/seals/{seal['id']}/image")
    assert image.status_code == 200 and image.content == parsed.image
    # the seal maker's signature over the SESeal, and the seal key's over the TBS_Sign, each by OpenSSL
    cases = [(bytes(seseal["cert"].native), signed_seal_bytes(seseal["eSealInfo"], bytes(seseal["cert"].native),
                                                               seseal["signAlgID"].dotted),
              bits_of(seseal["signedValue"])),
             (bytes(sig["cert"].native), signed_signature_bytes(tbs, bytes(sig["cert"].native),
                                                                 sig["signatureAlgID"].dotted),
              bits_of(sig["signature"]))]
    for n, (spki, message, signature) in enumerate(cases):
        key = write(tmp_path / f"key{n}.der", spki)
        data = write(tmp_path / f"msg{n}.der", message)
        sig_file = write(tmp_path / f"sig{n}.der", signature)
        ok = openssl("pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt", SM2_ID, "-pubin", "-keyform",
                     "DER", "-inkey", key, "-in", data, "-sigfile", sig_file, check=False)
        assert ok.returncode == 0 and b"Signature Verified Successfully" in ok.stdout, ok.stderr
        bad = write(tmp_path / f"bad{n}.der", message[:-1] + bytes([message[-1] ^ 1]))
        assert openssl("pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt", SM2_ID, "-pubin", "-keyform",
                       "DER", "-inkey", key, "-in", bad, "-sigfile", sig_file, check=False).returncode != 0


def test_bad_seal_input_is_a_clear_4xx_and_stores_nothing(api: Api) -> None:
    seals_before, certs_before = _count(api, SealRow), _count(api, Certificate)
    text = base64.b64encode(b"GIF89a not a seal").decode()
    assert _post(api, "/api/v1/seals", {"name": "章", "category": "permit", "image": text, "valid_until": UNTIL},
                 MARKET, 422)["error"]["code"] == "invalid_seal_image"
    huge = base64.b64encode(seal_png("red", size=2100)).decode()
    assert _post(api, "/api/v1/seals", {"name": "章", "category": "permit", "image": huge, "valid_until": UNTIL},
                 MARKET, 413)["error"]["code"] == "seal_image_too_large"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><script>alert(1)</script></svg>'
    assert _post(api, "/api/v1/seals", {"name": "章", "category": "permit", "image": base64.b64encode(svg).decode(),
                                        "valid_until": UNTIL}, MARKET, 422)["error"]["code"] == "invalid_seal_image"
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    assert _create(api, MARKET, valid_until=past, status=422)["error"]["code"] == "invalid_seal_validity"
    assert _create(api, MARKET, category="poster", status=422)["error"]["code"] == "invalid_seal_category"
    assert _count(api, SealRow) == seals_before
    assert _issue(api, MARKET, "ES11230000MB1A00028M9999", status=404)["error"]["code"] == "unknown_seal"
    seal = _create(api, MARKET)
    sealer = api.services.certificates.sealer
    sealer.now = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=400)  # the seal's validity has ended
    try:
        err = _issue(api, MARKET, seal["id"], seed=51, status=409)["error"]
    finally:
        sealer.now = lambda: dt.datetime.now(dt.UTC)
    assert err["code"] == "seal_expired" and "valid_until" in err["details"]
    assert _count(api, Certificate) == certs_before and _count(api, SealedSignature) == 0
