"""The sealed printable certificate (issue 14 item 4) on a real anvil through the HTTP API: one A4 page whose
PAdES signature poppler's pdfsig and pyHanko's validator (trusting only the consortium seal CA root from the
signed trust list) accept, and reject after one byte changes; the seal image and the QR code visible in the
rendered page (pixels, zxing); the gm profile (SM2 seal, P-256 PAdES twin) and intl; refusals with nothing
stored."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import delete, func, select

from registry.consortium.trust_list import TrustList
from registry.formats.images import decode_qr_image
from registry.identifiers import CertificateId
from registry.node import Node
from registry.seals._layout import ISSUER_BOX, PAGE_MM
from registry.store.db import Certificate
from registry.store.seal_models import SealCaKey, SealedSignature, SealPdfCert
from tests.conftest import Api, make_api
from tests.integration.test_seals import CITY_MARKET, MARKET, _create, _issue, _post

pytestmark = pytest.mark.anvil

needs_poppler = pytest.mark.skipif(shutil.which("pdfsig") is None or shutil.which("pdftoppm") is None,
                                   reason="poppler-utils (pdfsig, pdftoppm) is installed by `make test`")
DPI = 100


@pytest.fixture
def gm_api(anvil_node: Node, tmp_path: Path) -> Iterator[Api]:
    yield from make_api(anvil_node, tmp_path / "gm", crypto_profile="gm")


@pytest.fixture
def intl_api(anvil_node: Node, tmp_path: Path) -> Iterator[Api]:
    yield from make_api(anvil_node, tmp_path / "intl", crypto_profile="intl")


def _key(cert: dict[str, Any]) -> str:
    return str(cert["qr_url"].split("#", 1)[1])


def _pdf(api: Api, agency: str, identifier: str, key: str | None, **params: Any) -> Any:
    headers = {**api.auth(agency), **({"X-Document-Key": key} if key else {})}
    return api.client.get(f"/api/v1/certificates/{identifier}/print", params={"format": "pdf", **params},
                          headers=headers)


def _sealed(api: Api, seed: int, **seal: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    made = _create(api, MARKET, **seal)
    [cert] = _issue(api, MARKET, made["id"], seed=seed)["certificates"]
    return made, cert


def _root(api: Api) -> asn1_x509.Certificate:
    """The seal CA root as a verifier gets it: from the signed trust list."""
    api.services.index.refresh(force=True)
    r = api.client.get("/api/v1/trust-list")
    assert r.status_code == 200, r.text
    entry = r.json()["seal_ca"]
    der = x509.load_pem_x509_certificate(entry["certificate"].encode()).public_bytes(serialization.Encoding.DER)
    assert hashlib.sha256(der).hexdigest() == entry["sha256"]
    return asn1_x509.Certificate.load(der)


def _validate(data: bytes, root: asn1_x509.Certificate) -> Any:
    reader = PdfFileReader(io.BytesIO(data))
    [sig] = reader.embedded_signatures
    return validate_pdf_signature(sig, ValidationContext(trust_roots=[root]))


def _pdfsig(path: Path, *, nss: Path | None = None) -> str:
    extra = ["-nssdir", f"sql:{nss}"] if nss is not None else []
    return subprocess.run(["pdfsig", *extra, str(path)], capture_output=True, text=True, check=False,
                          timeout=60).stdout


def _nss_trusting(root: asn1_x509.Certificate, folder: Path) -> Path | None:
    """An NSS database (what poppler's pdfsig reads) trusting the seal CA root, if certutil is installed
    (Debian libnss3-tools); None otherwise."""
    if shutil.which("certutil") is None:
        return None
    folder.mkdir()
    pem = x509.load_der_x509_certificate(root.dump()).public_bytes(serialization.Encoding.PEM)
    (folder / "root.pem").write_bytes(pem)
    subprocess.run(["certutil", "-N", "-d", f"sql:{folder}", "--empty-password"], check=True, timeout=60)
    subprocess.run(["certutil", "-A", "-d", f"sql:{folder}", "-n", "lianzheng-seal-ca", "-t", "C,C,C", "-a", "-i",
                    str(folder / "root.pem")], check=True, timeout=60)
    return folder


def _render(path: Path) -> Image.Image:
    subprocess.run(["pdftoppm", "-r", str(DPI), "-png", "-singlefile", str(path), str(path.with_suffix(""))],
                   check=True, timeout=60)
    return Image.open(path.with_suffix(".png")).convert("RGB")


def _px(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    return tuple(round(v / 25.4 * DPI) for v in box)  # type: ignore[return-value]


def _red_pixels(img: Image.Image, box: tuple[float, float, float, float]) -> int:
    region = img.crop(_px(box))
    return sum(1 for r, g, b in region.get_flattened_data() if r > 170 and g < 90 and b < 90)


def _count(api: Api, model: Any) -> int:
    with api.node.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


@needs_poppler
def test_gm_sealed_pdf_is_one_a4_page_signed_under_the_seal_ca_with_seal_and_qr_visible(gm_api: Api,
                                                                                         tmp_path: Path) -> None:
    api = gm_api
    seal, cert = _sealed(api, seed=51)
    assert seal["key_algorithm"] == "sm2"  # the seal's own key; the PDF is signed by its P-256 twin
    ident = cert["identifier"]
    r = _pdf(api, MARKET, ident, _key(cert))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf" and r.headers["cache-control"] == "no-store"
    data = r.content
    path = tmp_path / "cert.pdf"
    path.write_bytes(data)

    # exactly one A4 page
    reader = PdfFileReader(io.BytesIO(data))
    pages = reader.root["/Pages"]
    assert int(pages["/Count"]) == 1
    page = pages["/Kids"][0].get_object()
    box = page.get("/MediaBox") or pages["/MediaBox"]
    assert abs(float(box[2]) - float(box[0]) - 595) <= 1 and abs(float(box[3]) - float(box[1]) - 842) <= 1

    # pyHanko, trusting only the seal CA root published in the signed trust list
    root = _root(api)
    status = _validate(data, root)
    assert status.intact and status.valid and status.trusted and status.bottom_line, status.pretty_print_details()
    signer = x509.load_der_x509_certificate(status.signing_cert.dump())
    assert signer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == seal["name"]
    assert signer.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "黑龙江省市场监督管理局"
    assert signer.subject.get_attributes_for_oid(x509.ObjectIdentifier("2.5.4.97"))[0].value == f"NTRCN-{MARKET}"
    san = signer.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"urn:lianzheng:seal:{seal['id']}"]
    usage = signer.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert signer.not_valid_after_utc == dt.datetime.fromisoformat(seal["valid_until"].replace("Z", "+00:00")
                                                                   ).replace(tzinfo=dt.UTC)
    assert signer.not_valid_before_utc == dt.datetime.fromisoformat(seal["valid_from"].replace("Z", "+00:00")
                                                                    ).replace(tzinfo=dt.UTC)

    # poppler: the signature valid and the whole document signed. Its own trust store (NSS) does not know the
    # consortium root: given one that trusts it (certutil), the certificate is trusted; without, not.
    report = _pdfsig(path)
    assert "Signature Validation: Signature is Valid." in report, report
    assert "Total document signed" in report, report
    assert "Signing Hash Algorithm: SHA-256" in report and "ETSI.CAdES.detached" in report, report
    assert "Certificate Validation: Certificate issuer isn't Trusted." in report, report
    nss = _nss_trusting(root, tmp_path / "nss")
    if nss is not None:
        trusted = _pdfsig(path, nss=nss)
        assert "Signature is Valid." in trusted and "Certificate Validation: Certificate is Trusted." in trusted, \
            trusted

    # one byte changed inside the signed range: both refuse it
    at = data.index(b"Lianzheng")  # the document's /Creator, inside the first signed byte range
    tampered = data[:at] + b"X" + data[at + 1:]
    broken = _validate(tampered, root)
    assert not broken.intact and not broken.bottom_line
    bad_path = tmp_path / "tampered.pdf"
    bad_path.write_bytes(tampered)
    assert "Signature Validation: Signature is Invalid." in _pdfsig(bad_path) or \
        "Digest Mismatch" in _pdfsig(bad_path)

    # the page as printed: the seal's red over the issuer's name, the QR code decoding to the print view's text
    img = _render(path)
    expected = (PAGE_MM[0] / 25.4 * DPI, PAGE_MM[1] / 25.4 * DPI)
    assert all(abs(got - want) <= 1 for got, want in zip(img.size, expected, strict=True)), img.size
    assert _red_pixels(img, ISSUER_BOX) > 300, "the seal image is not visible over the issuer's name"
    assert _red_pixels(img, (18, 60, 90, 180)) == 0  # the fields carry no seal red
    assert decode_qr_image(path.with_suffix(".png")) == [cert["qr_url"]]

    # the same sheet as the HTML print view: every field value is in the PDF's text, the CJK font embedded
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    flat = re.sub(r"\s+", "", text)
    for name in ("持证主体", "经营范围"):
        assert re.sub(r"\s+", "", str(cert["document"]["fields"][name]["value"])) in flat, name
    assert "营业执照" in flat and ident in flat
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"WenQuanYi.*CID TrueType\s+Identity-H\s+yes\s+yes", fonts), fonts


@needs_poppler
def test_intl_seal_prints_a_valid_pdf_and_an_older_seal_gets_its_certificate_on_first_print(intl_api: Api,
                                                                                           tmp_path: Path) -> None:
    api = intl_api
    seal, cert = _sealed(api, seed=52)
    assert seal["key_algorithm"] == "secp256k1"
    with api.node.db.session() as s:  # a seal made before the CA existed has no PAdES certificate yet
        s.execute(delete(SealPdfCert).where(SealPdfCert.seal_id == seal["id"]))
    r = _pdf(api, MARKET, cert["identifier"], _key(cert), mode="offline")
    assert r.status_code == 200, r.text
    assert _count(api, SealPdfCert) == 1 and _count(api, SealCaKey) == 1
    status = _validate(r.content, _root(api))
    assert status.bottom_line, status.pretty_print_details()
    path = tmp_path / "offline.pdf"
    path.write_bytes(r.content)
    assert "Signature is Valid." in _pdfsig(path)
    again = _pdf(api, MARKET, cert["identifier"], _key(cert))
    assert again.status_code == 200 and _count(api, SealPdfCert) == 1  # issued once


@needs_poppler
def test_an_svg_seal_is_drawn_as_vectors_over_the_issuer_name(intl_api: Api, tmp_path: Path) -> None:
    api = intl_api
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="160" height="160" viewBox="0 0 160 160">'
           '<circle cx="80" cy="80" r="72" fill="none" stroke="#d01010" stroke-width="8"/>'
           '<polygon points="80,40 92,72 126,72 98,92 108,124 80,104 52,124 62,92 34,72 68,72" fill="#d01010"/></svg>')
    made = _post(api, "/api/v1/seals", {"name": "黑龙江省市场监督管理局证照专用章", "category": "certificate",
                                        "image": base64.b64encode(svg.encode()).decode(),
                                        "valid_until": (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()},
                 MARKET, 201)
    [cert] = _issue(api, MARKET, made["id"], seed=53)["certificates"]
    r = _pdf(api, MARKET, cert["identifier"], _key(cert))
    assert r.status_code == 200, r.text
    path = tmp_path / "svg.pdf"
    path.write_bytes(r.content)
    assert _red_pixels(_render(path), ISSUER_BOX) > 300


def test_pdf_refusals_are_clear_4xx_and_store_nothing(intl_api: Api) -> None:
    api = intl_api
    seal, cert = _sealed(api, seed=54)
    ident, key = cert["identifier"], _key(cert)
    [plain] = _issue(api, MARKET, None, seed=55)["certificates"]
    [withdrawn] = _issue(api, MARKET, seal["id"], seed=57)["certificates"]
    r = api.client.post(f"/api/v1/certificates/{withdrawn['identifier']}/revoke", json={"reason": 2},
                        headers=api.auth(MARKET))
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 20
    while api.client.get(f"/api/v1/certificates/{withdrawn['identifier']}",
                         headers=api.auth(MARKET)).json()["status"] != "revoked":
        assert time.monotonic() < deadline, "the revocation was not anchored"
        time.sleep(0.1)
    stored = {m: _count(api, m) for m in (Certificate, SealedSignature, SealPdfCert, SealCaKey)}
    revoked_cert = _pdf(api, MARKET, withdrawn["identifier"], _key(withdrawn))
    assert revoked_cert.status_code == 409 and revoked_cert.json()["error"]["code"] == "certificate_revoked"

    parsed = CertificateId.parse(ident)
    unknown = str(CertificateId.build(parsed.type_code, parsed.issuer_uscc, 999_999_999_999))
    r = _pdf(api, MARKET, unknown, key)
    assert r.status_code == 404, r.text
    no_key = _pdf(api, MARKET, ident, None)
    assert no_key.status_code == 422 and no_key.json()["error"]["code"] == "missing_key"
    unsealed = _pdf(api, MARKET, plain["identifier"], _key(plain))
    assert unsealed.status_code == 409 and unsealed.json()["error"]["code"] == "not_sealed", unsealed.text
    assert "without a seal" in unsealed.json()["error"]["message"]
    assert _pdf(api, CITY_MARKET, ident, key).status_code == 403
    assert api.client.get(f"/api/v1/certificates/{ident}/print", params={"format": "docx"},
                          headers={**api.auth(MARKET), "X-Document-Key": key}).status_code == 422

    _post(api, f"/api/v1/seals/{seal['id']}/suspend", {"reason": "印章遗失"}, MARKET, 200)
    suspended = _pdf(api, MARKET, ident, key)
    assert suspended.status_code == 409 and suspended.json()["error"]["code"] == "seal_suspended", suspended.text
    _post(api, f"/api/v1/seals/{seal['id']}/revoke", {"reason": "机构更名"}, MARKET, 200)
    revoked = _pdf(api, MARKET, ident, key)
    assert revoked.status_code == 409 and revoked.json()["error"]["code"] == "seal_revoked"
    assert {m: _count(api, m) for m in stored} == stored
    html = api.client.get(f"/api/v1/certificates/{ident}/print", headers={**api.auth(MARKET), "X-Document-Key": key})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")  # HTML is unaffected


def test_cli_print_pdf_writes_an_owner_only_file(intl_api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.cli import qr_cmds
    from api.cli.client import ApiClient

    api = intl_api
    _, cert = _sealed(api, seed=56)
    ident = cert["identifier"]
    data_dir = tmp_path / "cli"
    (data_dir / "issued").mkdir(parents=True)
    (data_dir / "issued" / f"{ident}.json").write_text(json.dumps(cert), encoding="utf-8")
    client = ApiClient("http://testserver")
    client.http = api.client
    client.http.headers.update(api.auth(MARKET))
    monkeypatch.setattr(qr_cmds, "client_for", lambda *a, **k: client)
    ctx: Any = SimpleNamespace(obj=SimpleNamespace(settings=SimpleNamespace(data_dir=data_dir)))
    monkeypatch.setattr(qr_cmds, "state", lambda c: c.obj)
    out = tmp_path / "licence.pdf"
    out.write_bytes(b"old")
    out.chmod(0o644)
    qr_cmds.print_certificate(ctx, ident, out=out, pdf=True)
    assert out.read_bytes().startswith(b"%PDF-") and out.stat().st_mode & 0o777 == 0o600
    root = _root(api)
    assert _validate(out.read_bytes(), root).bottom_line
    listed = api.client.get("/api/v1/trust-list").json()  # what `trust-list pull` saves and `show` summarises
    assert TrustList.from_json(listed).seal_ca == root.dump()
    assert qr_cmds._summary(TrustList.from_json(listed))["seal_ca_sha256"] == listed["seal_ca"]["sha256"]
