"""The sealed PDF's page and signature without a chain: one A4 page whatever the field lengths (shrinking the
type), refused when even 6.5 pt does not fit, SVG seals fpdf2 cannot draw refused, the per-document font
subset holding every printed character, and a PAdES signature that pyHanko accepts under the root only."""

from __future__ import annotations

import base64
import datetime as dt
import io
import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from fontTools.ttLib import TTFont
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from registry.certificates.print_sheet import PrintRow, PrintSheet
from registry.errors import PayloadTooLargeError, ValidationError
from registry.seals._font import document_font
from registry.seals._layout import CJK_FONT, PageSeal, draw_page
from registry.seals.ca import SealPdfIdentity, SealSubject, issue_certificate, new_root
from registry.seals.pdf import sign_pdf

pytestmark = pytest.mark.skipif(not CJK_FONT.is_file(), reason="fonts-wqy-microhei is installed by `make test`")

# a 1x1 red PNG
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")
SEAL = PageSeal("ES11230000MB1A00028M0001", "黑龙江省市场监督管理局行政许可专用章", "PNG", PNG)


def _sheet(long: str, rows: int = 12) -> PrintSheet:
    """Like a 营业执照: short fields and one long one (经营范围)."""
    fields = (PrintRow("经营范围", "business scope", long),
              *(PrintRow(f"字段{i}", f"field {i}", "哈尔滨市南岗区某某科技有限公司") for i in range(rows)))
    return PrintSheet("营业执照", "Business licence", fields, "11230000MB1A00028M",
                      "黑龙江省市场监督管理局", "Heilongjiang AMR", "1.2.156.3005.2.X", "ab" * 32, 7, "0x" + "cd" * 32,
                      dt.date(2026, 12, 2))


def _pages(data: bytes) -> int:
    return int(PdfFileReader(io.BytesIO(data)).root["/Pages"]["/Count"])


def test_long_values_shrink_onto_one_page_and_too_long_is_refused() -> None:
    assert _pages(draw_page(_sheet("软件开发；信息技术咨询服务；" * 60), "https://x/v/1#k", "scan", SEAL)) == 1
    with pytest.raises(PayloadTooLargeError) as info:
        draw_page(_sheet("软件开发；信息技术咨询服务；" * 400), "https://x/v/1#k", "scan", SEAL)
    assert info.value.code == "print_too_long"


def test_an_svg_seal_fpdf2_cannot_draw_is_refused_in_words() -> None:
    broken = PageSeal("ES1", "章", "SVG", b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
                                          b'<circle r="oops"/></svg>')
    with pytest.raises(ValidationError) as info:
        draw_page(_sheet("值"), "https://x/v/1#k", "scan", broken)
    assert info.value.code == "seal_image_not_printable" and "SVG" in info.value.message


def test_the_document_font_holds_every_printed_character_and_little_else() -> None:
    with document_font(CJK_FONT, ["黑龙江省市场监督管理局", "䶮堃喆"]) as path:
        font = TTFont(str(path))
        cmap = font.getBestCmap()
        assert all(ord(c) in cmap for c in "黑龙江省市场监督管理局堃喆ABCxyz0189")
        assert len(font.getGlyphOrder()) < 250
    assert not path.exists()


@pytest.mark.skipif(shutil.which("pdfsig") is None, reason="poppler-utils is installed by `make test`")
def test_a_signed_page_validates_under_its_root_only(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    root, other = new_root("11230000MB1A0001XX", "运营方", now=now), new_root("11230000MB1A0001XX", "另一个", now=now)
    subject = SealSubject(SEAL.seal_id, SEAL.name, "11230000MB1A00028M", "黑龙江省市场监督管理局",
                          now - dt.timedelta(minutes=1), now + dt.timedelta(days=30))
    cert, key = issue_certificate(root, subject)
    data = sign_pdf(draw_page(_sheet("值"), "https://x/v/1#k", "scan", SEAL),
                    SealPdfIdentity(SEAL.seal_id, cert, key, root.certificate), reason="用章", name=SEAL.name)

    def status(trusted: bytes) -> bool:
        [sig] = PdfFileReader(io.BytesIO(data)).embedded_signatures
        result = validate_pdf_signature(sig, ValidationContext(trust_roots=[asn1_x509.Certificate.load(trusted)]))
        return bool(result.intact and result.valid and result.trusted)

    assert status(root.der) and not status(other.der)
    path = tmp_path / "p.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, check=False).stdout
    assert "Signature is Valid." in out and "Total document signed" in out
    assert root.certificate.public_bytes(serialization.Encoding.DER) == root.der
