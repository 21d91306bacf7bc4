"""The sealed printable certificate (issue 14 item 4): one A4 page, the seal image over the issuer's name and
the verification QR, signed as PAdES B-B by the seal's PAdES twin key under the consortium seal CA.

1. The certificate must have been sealed (用章) at issue time: its sealed signature names the seal; a
   certificate issued without a seal is refused (409 ``not_sealed``), never signed with some other key.
2. The certificate must be in force (issued, or pending anchoring): a revoked, suspended or superseded one is
   refused (409 ``certificate_revoked`` …), since a newly signed PDF would vouch for it today.
   The seal must be usable now, exactly as for sealing (registry/seals/sealing.py ``Sealer.prepare``): the
   issuing agency's own, on chain, Active, inside its validity. A suspended or revoked seal signs no new PDF
   (409 ``seal_suspended`` / ``seal_revoked``; ``seal_expired``); PDFs signed before stay valid.
3. The page is the same sheet as the HTML print view (registry/certificates/print_sheet.py) with the same QR
   text, drawn by fpdf2 (registry/seals/_layout.py: CJK font embedded as a subset).
4. pyHanko signs it: CMS SignedData with the PAdES signed attributes (``ETSI.CAdES.detached``, SHA-256, ECDSA
   P-256), the seal's certificate and the CA root embedded, an invisible signature field ``LianzhengSeal``
   (the seal is already drawn in the page content; a widget would print it twice). A verifier checks it with
   the root from the signed trust list (``seal_ca``).

    >>> printer = SealedPdfPrinter(node, sealer)                                           # doctest: +SKIP
    >>> ready = printer.prepare(agency, view)   # refusals come here, before any QR is drawn   # doctest: +SKIP
    >>> data = printer.render(ready, document, view, qr_text, mode="ref")                   # doctest: +SKIP
    >>> data[:5]                                                                           # doctest: +SKIP
    b'%PDF-'
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore
from sqlalchemy import select

from registry.certificates.documents import Document
from registry.certificates.print_sheet import PrintSheet
from registry.certificates.service import CertificateView
from registry.errors import ConflictError, ValidationError
from registry.node import Node
from registry.seals._layout import PageSeal, draw_page
from registry.seals.ca import SealPdfIdentity, pdf_identity
from registry.seals.sealing import Sealer
from registry.store.seal_models import SealedSignature, SealRow
from registry.store.states import CertificateStatus

__all__ = ["CAPTIONS", "FIELD_NAME", "ReadyPrint", "SealedPdfPrinter", "sign_pdf"]

FIELD_NAME = "LianzhengSeal"
_PRINTABLE = (CertificateStatus.ISSUED.value, CertificateStatus.PENDING.value)
CAPTIONS = {"ref": "扫码核验（联网）/ scan to verify online",
            "offline": "离线核验码（含签名）/ offline verification code (signed)"}


def _der(identity: SealPdfIdentity) -> tuple[asn1_x509.Certificate, asn1_keys.PrivateKeyInfo, asn1_x509.Certificate]:
    cert = asn1_x509.Certificate.load(identity.certificate.public_bytes(serialization.Encoding.DER))
    key = asn1_keys.PrivateKeyInfo.load(identity.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    root = asn1_x509.Certificate.load(identity.root.public_bytes(serialization.Encoding.DER))
    return cert, key, root


def sign_pdf(unsigned: bytes, identity: SealPdfIdentity, *, reason: str, name: str) -> bytes:
    """``unsigned`` with a PAdES B-B signature by ``identity`` appended as an incremental update."""
    cert, key, root = _der(identity)
    store = SimpleCertificateStore()  # type: ignore[no-untyped-call]
    store.register(root)
    signer = signers.SimpleSigner(signing_cert=cert, signing_key=key, cert_registry=store)
    meta = signers.PdfSignatureMetadata(field_name=FIELD_NAME, subfilter=fields.SigSeedSubFilter.PADES,
                                        md_algorithm="sha256", reason=reason, name=name)
    out = signers.PdfSigner(meta, signer).sign_pdf(IncrementalPdfFileWriter(io.BytesIO(unsigned)))
    return bytes(out.getvalue())


@dataclass(frozen=True)
class ReadyPrint:
    identifier: str
    seal: PageSeal
    identity: SealPdfIdentity


class SealedPdfPrinter:
    def __init__(self, node: Node, sealer: Sealer) -> None:
        self.node = node
        self.sealer = sealer

    def seal_of(self, identifier: str) -> str:
        """The seal a certificate was sealed with; 409 ``not_sealed`` for a certificate issued without one."""
        with self.node.db.session() as s:
            seal_id = s.scalar(select(SealedSignature.seal_id).where(SealedSignature.record_kind == "certificate",
                                                                    SealedSignature.record_id == identifier))
        if seal_id is None:
            raise ConflictError(f"certificate {identifier} was issued without a seal: a sealed PDF needs a certificate "
                                "issued under one of the agency's seals (\"seal\" at issue time); print the HTML view "
                                "instead", code="not_sealed")
        return str(seal_id)

    def prepare(self, agency: str, view: CertificateView) -> ReadyPrint:
        """Everything checked before a page is drawn: the certificate in force (or still being anchored), sealed,
        the seal usable now, its signing identity."""
        identifier = view.identifier
        if view.status not in _PRINTABLE:
            raise ConflictError(f"certificate {identifier} is {view.status}: a newly sealed PDF of it would "
                                "vouch for it today; verify it instead", code=f"certificate_{view.status}",
                                details={"status": view.status})
        seal_id = self.seal_of(identifier)
        self.sealer.prepare(agency, seal_id)  # the agency's own, on chain, active, inside its validity
        identity = pdf_identity(self.node, seal_id)
        with self.node.db.session() as s:
            row = s.get(SealRow, seal_id)
            assert row is not None  # Sealer.prepare found it
            seal = PageSeal(row.id, row.name, row.image_type, row.image)
        return ReadyPrint(identifier, seal, identity)

    def render(self, ready: ReadyPrint, document: Document, view: CertificateView, qr_text: str, *,
               mode: str) -> bytes:
        """The signed PDF of the certificate ``ready`` was prepared for (its plaintext ``document``)."""
        if mode not in CAPTIONS:
            raise ValidationError(f"mode must be one of {', '.join(CAPTIONS)}, got {mode!r}", code="invalid_mode")
        if view.identifier != ready.identifier or document.identifier != ready.identifier:
            raise ValidationError("the document is not the one prepared for printing", code="invalid_input")
        sheet = PrintSheet.of(self.node.seeds, document, view)
        unsigned = draw_page(sheet, qr_text, CAPTIONS[mode], ready.seal)
        seal = ready.seal
        return sign_pdf(unsigned, ready.identity, name=seal.name,
                        reason=f"{seal.name}（{seal.seal_id}）用章：{sheet.title} {sheet.identifier}")
