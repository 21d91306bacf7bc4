"""What a printed certificate shows, once: the HTML print view (api/routes/pages.py) and the sealed PDF
(registry/seals/pdf.py) both lay out this sheet, so the two never disagree on a label or a value.

    >>> sheet = PrintSheet.of(node.seeds, document, view)                   # doctest: +SKIP
    >>> [(r.name, r.text) for r in sheet.rows][:1]                           # doctest: +SKIP
    [('证照名称', '营业执照')]

Values are text as printed: ``None`` is "—", booleans 是/否, anything else ``str(value)``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from registry.certificates.documents import COMMON_FIELDS, Document
from registry.certificates.service import CertificateView
from registry.seeds import Seeds

__all__ = ["PrintRow", "PrintSheet", "printed_text"]


def printed_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


@dataclass(frozen=True, slots=True)
class PrintRow:
    name: str  # the field's Chinese name
    name_en: str  # its English name, words separated by spaces
    text: str


@dataclass(frozen=True, slots=True)
class PrintSheet:
    title: str  # the certificate type's name (营业执照)
    title_en: str
    rows: tuple[PrintRow, ...]
    issuer_uscc: str
    issuer: str
    issuer_en: str
    identifier: str
    digest: str  # SHA-256 root, hex
    anchor_block: int | None
    anchor_tx: str | None
    printed: dt.date

    @classmethod
    def of(cls, seeds: Seeds, document: Document, view: CertificateView) -> PrintSheet:
        cert_type = seeds.certificate_type(document.type_code)
        rows = tuple(PrintRow(f.name, f.name_en.replace("_", " "), printed_text(document.fields[f.name].value))
                     for f in (*COMMON_FIELDS, *cert_type.fields) if f.name in document.fields)
        issuer = seeds.member(view.issuer_uscc)
        anchor = view.anchor or {}
        return cls(title=cert_type.name, title_en=cert_type.name_en, rows=rows, issuer_uscc=view.issuer_uscc,
                   issuer=issuer.name, issuer_en=issuer.name_en, identifier=document.identifier,
                   digest=view.digest_sha256, anchor_block=anchor.get("block_number"), anchor_tx=anchor.get("tx_hash"),
                   printed=dt.date.today())

    @property
    def anchored(self) -> str:
        if self.anchor_block is None:
            return "等待上链 / pending anchoring"
        return f"区块 {self.anchor_block} · 交易 {self.anchor_tx}"
