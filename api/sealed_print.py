"""``GET /api/v1/certificates/{id}/print?format=pdf``: the sealed, PAdES-signed A4 PDF (registry/seals/pdf.py),
with the same authentication, document key and QR text as the HTML print view (api/routes/pages.py).

    $ curl -s -H "Authorization: Bearer $KEY" -H "X-Document-Key: $DOCKEY" \\
        "localhost:8000/api/v1/certificates/$ID/print?format=pdf" -o licence.pdf
"""

from __future__ import annotations

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.certificate_qr import open_document, qr_text
from registry.certificates.service import CertificateService
from registry.node import Node
from registry.seals.sealing import Sealer
from registry.seals.service import SealService

__all__ = ["sealed_pdf"]


async def sealed_pdf(node: Node, certificates: CertificateService, seals: SealService, agency: str, identifier: str,
                     key: str | None, mode: str, headers: dict[str, str]) -> Response:
    # lazy import: the PDF stack (pyhanko, fpdf2, fontTools: ~0.4 s of CPU) loads with the first sealed PDF, not in
    # every API process that never prints one
    from registry.seals.pdf import SealedPdfPrinter

    def render() -> bytes:
        opened = open_document(certificates, agency, identifier, key)
        printer = SealedPdfPrinter(node, Sealer(node, seals.index))
        ready = printer.prepare(agency, opened.view)  # revoked, not sealed, seal suspended ...: before the QR
        text, _ = qr_text(node, certificates, opened, mode, hide=[], max_version=40 if mode == "ref" else 25)
        return printer.render(ready, opened.document, opened.view, text, mode=mode)

    data = await run_in_threadpool(render)
    return Response(data, media_type="application/pdf", headers={
        **headers, "Cache-Control": "no-store", "Content-Disposition": f'inline; filename="{identifier}.pdf"'})
