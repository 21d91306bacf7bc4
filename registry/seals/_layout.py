"""The sealed certificate's page: one A4 page drawn with fpdf2 (registry/seals/pdf.py signs it).

Layout (millimetres from the top-left corner, A4 = 210 x 297 mm = 595.28 x 841.89 pt)::

    18..39   title (the certificate type), its English name, a dark red rule
    43..182  the fields (label in Chinese with the English name under it | value), font 10 pt, shrunk to 6.5 pt
             when the values are long; refused (413 ``print_too_long``) when even that does not fit
    196..214 the issuer's name, right-aligned, the print date under it, and the seal image centred on the name
             (a stamp pressed over the printed name and date, 38 mm)
    228..276 left: issuer, USCC, identifier, digest, anchoring, print date, the seal; right: the QR code (QR_BOX)

The CJK font is WenQuanYi Micro Hei (Debian fonts-wqy-microhei), embedded as a subset. PNG seals are placed
as images (their alpha channel kept); SVG seals are drawn as vector paths by fpdf2's SVG support, under its
default resource limits; an SVG fpdf2 cannot draw is refused (422 ``seal_image_not_printable``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos
from fpdf.errors import FPDFException

from registry.certificates.print_sheet import PrintSheet
from registry.errors import PayloadTooLargeError, RegistryError, ValidationError
from registry.formats.images import qr_png
from registry.seals._font import document_font

__all__ = ["CJK_FONT", "ISSUER_BOX", "PAGE_MM", "QR_BOX", "SEAL_MM", "PageSeal", "draw_page"]

CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
PAGE_MM = (210.0, 297.0)
MARGIN = 18.0
_FIELDS_TOP, _FIELDS_BOTTOM = 43.0, 182.0
ISSUER_BOX = (96.0, 196.0, 192.0, 214.0)  # x0, y0, x1, y1 of the issuer's name and the date under it (mm)
SEAL_MM = 38.0
QR_MM = 44.0
QR_BOX = (PAGE_MM[0] - MARGIN - QR_MM, 228.0, PAGE_MM[0] - MARGIN, 228.0 + QR_MM)
_FOOTER_TOP = 230.0
_RED = (139, 26, 26)
_FONT_SIZES = (10.0, 9.0, 8.0, 7.0, 6.5)
_LABEL_MM = 50.0
_PT = 0.3528  # mm per point


@dataclass(frozen=True)
class PageSeal:
    seal_id: str
    name: str
    image_type: str  # PNG or SVG
    image: bytes


def _pdf(font: Path) -> FPDF:
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.add_font("cjk", fname=str(font))
    pdf.set_text_shaping(False)
    return pdf


def _height(pdf: FPDF, width: float, line: float, text: str) -> float:
    """How tall ``text`` wraps in a column ``width`` mm wide (fpdf2's dry run)."""
    found = pdf.multi_cell(width, line, text, dry_run=True, output=MethodReturnValue.HEIGHT)
    assert isinstance(found, (int, float))
    return float(found)


def _row_heights(pdf: FPDF, sheet: PrintSheet, size: float) -> list[float]:
    width = PAGE_MM[0] - 2 * MARGIN - _LABEL_MM
    line = size * _PT * 1.35
    heights = []
    for row in sheet.rows:
        pdf.set_font("cjk", size=size)
        value_h = _height(pdf, width, line, row.text)
        pdf.set_font("cjk", size=size * 0.75)
        label_h = line + _height(pdf, _LABEL_MM, size * 0.75 * _PT * 1.3, row.name_en)
        heights.append(max(value_h, label_h) + 1.2)
    return heights


def _fields(pdf: FPDF, sheet: PrintSheet) -> None:
    for size in _FONT_SIZES:
        heights = _row_heights(pdf, sheet, size)
        if sum(heights) <= _FIELDS_BOTTOM - _FIELDS_TOP:
            break
    else:
        raise PayloadTooLargeError("the certificate's fields do not fit on one A4 page even in 6.5 pt type",
                                   code="print_too_long")
    line = size * _PT * 1.35
    width = PAGE_MM[0] - 2 * MARGIN - _LABEL_MM
    y = _FIELDS_TOP
    for row, h in zip(sheet.rows, heights, strict=True):
        pdf.set_text_color(40, 40, 40)
        pdf.set_font("cjk", size=size)
        pdf.set_xy(MARGIN, y + 0.6)
        pdf.cell(_LABEL_MM, line, row.name)
        pdf.set_text_color(120, 120, 120)
        pdf.set_font("cjk", size=size * 0.75)
        pdf.set_xy(MARGIN, y + 0.6 + line)
        pdf.multi_cell(_LABEL_MM, size * 0.75 * _PT * 1.3, row.name_en, align="L")
        pdf.set_text_color(17, 17, 17)
        pdf.set_font("cjk", size=size)
        pdf.set_xy(MARGIN + _LABEL_MM, y + 0.6)
        pdf.multi_cell(width, line, row.text, align="L")
        y += h
        pdf.set_draw_color(204, 204, 204)
        pdf.set_line_width(0.2)
        pdf.line(MARGIN, y, PAGE_MM[0] - MARGIN, y)


def _seal(pdf: FPDF, seal: PageSeal, centre: tuple[float, float]) -> None:
    x, y = centre[0] - SEAL_MM / 2, centre[1] - SEAL_MM / 2
    try:
        pdf.image(io.BytesIO(seal.image), x=x, y=y, w=SEAL_MM, h=SEAL_MM, keep_aspect_ratio=True)
    except (FPDFException, ValueError, TypeError, KeyError, AttributeError, NotImplementedError, OSError) as exc:
        raise ValidationError(f"the {seal.image_type} image of seal {seal.seal_id} cannot be drawn in a PDF ({exc})",
                              code="seal_image_not_printable") from exc


def draw_page(sheet: PrintSheet, qr_text: str, caption: str, seal: PageSeal, *, font: Path = CJK_FONT) -> bytes:
    """The unsigned one-page PDF."""
    if not font.is_file():
        raise RegistryError(f"the CJK font {font} is missing (Debian package fonts-wqy-microhei)",
                            code="pdf_font_missing")
    date = sheet.printed.strftime("%Y年%m月%d日")
    lines = (f"颁发机构 / Issuer: {sheet.issuer}（{sheet.issuer_uscc}）", sheet.issuer_en,
             "证照标识 / Identifier:", sheet.identifier, f"摘要 SHA-256 / Digest: {sheet.digest}",
             f"上链 / Anchored: {sheet.anchored}", f"电子印章 / Seal: {seal.name}（{seal.seal_id}）· PAdES 签名",
             f"打印日期 / Printed: {sheet.printed.isoformat()} · 链证 Lianzheng")
    texts = [sheet.title, sheet.title_en, sheet.issuer, date, caption, *lines,
             *(t for row in sheet.rows for t in (row.name, row.name_en, row.text))]
    with document_font(font, texts) as subset:  # every string drawn below is in `texts`
        pdf = _pdf(subset)
        _draw(pdf, sheet, qr_text, caption, seal, date, lines)
        if pdf.pages_count != 1 or pdf.get_y() > PAGE_MM[1] - 8:
            raise PayloadTooLargeError("the certificate does not fit on one A4 page", code="print_too_long")
        return bytes(pdf.output())


def _draw(pdf: FPDF, sheet: PrintSheet, qr_text: str, caption: str, seal: PageSeal, date: str,
          lines: tuple[str, ...]) -> None:
    pdf.set_title(f"{sheet.title} {sheet.identifier}")
    pdf.set_author(sheet.issuer)
    pdf.set_creator("链证 Lianzheng")
    pdf.set_lang("zh-CN")
    pdf.add_page()
    width = PAGE_MM[0] - 2 * MARGIN
    pdf.set_text_color(*_RED)
    pdf.set_font("cjk", size=24)
    pdf.set_xy(MARGIN, 18)
    pdf.cell(width, 12, sheet.title, align="C")
    pdf.set_text_color(85, 85, 85)
    pdf.set_font("cjk", size=10)
    pdf.set_xy(MARGIN, 31)
    pdf.cell(width, 6, sheet.title_en, align="C")
    pdf.set_draw_color(*_RED)
    pdf.set_line_width(0.6)
    pdf.line(MARGIN, 39, PAGE_MM[0] - MARGIN, 39)
    _fields(pdf, sheet)

    x0, y0, x1, y1 = ISSUER_BOX
    pdf.set_text_color(17, 17, 17)
    pdf.set_font("cjk", size=15)
    pdf.set_xy(x0, y0)
    pdf.cell(x1 - x0, (y1 - y0) / 2, sheet.issuer, align="R")
    name_w = min(pdf.get_string_width(sheet.issuer), x1 - x0)
    pdf.set_font("cjk", size=10)
    pdf.set_xy(x0, y0 + (y1 - y0) / 2)
    pdf.cell(x1 - x0, (y1 - y0) / 2, date, align="R")
    _seal(pdf, seal, (x1 - name_w / 2, (y0 + y1) / 2))  # over the name and the date, as a stamp is pressed

    qx0, qy0, qx1, qy1 = QR_BOX
    pdf.image(io.BytesIO(qr_png(qr_text, scale=10, border=2)), x=qx0, y=qy0, w=qx1 - qx0, h=qy1 - qy0)
    pdf.set_font("cjk", size=7)
    pdf.set_text_color(51, 51, 51)
    pdf.set_xy(qx0 - 6, qy1)
    pdf.cell(qx1 - qx0 + 6, 4, caption, align="C")

    pdf.set_xy(MARGIN, _FOOTER_TOP)
    pdf.set_font("cjk", size=8)
    for text in lines:
        pdf.multi_cell(qx0 - MARGIN - 4, 8 * _PT * 1.35, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
