"""Opening one of an agency's stored documents with the key its caller holds, and the text of its QR code
(by reference: the URL with the key in its fragment; offline: the signed payload). Shared by the QR image
and the printable certificate routes.

    >>> opened = open_document(certificates, agency, identifier, key_text)            # doctest: +SKIP
    >>> text, headers = qr_text(node, certificates, opened, "offline", hide=[], max_version=25)   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from registry.certificates.documents import AnchorProof, Document
from registry.certificates.offline import make_offline_qr
from registry.certificates.service import CertificateService, CertificateView
from registry.crypto import sm2
from registry.crypto.profiles import CryptoProfile
from registry.crypto.signing import Signer
from registry.errors import ConflictError, ValidationError
from registry.formats import envelope
from registry.node import Node


@dataclass(frozen=True)
class OpenedDocument:
    document: Document
    view: CertificateView
    key: bytes


def open_document(certificates: CertificateService, agency: str, identifier: str, key_text: str | None) -> OpenedDocument:
    """Decrypt one of ``agency``'s documents with the key its caller holds (kept in memory only)."""
    view = certificates.get(agency, identifier)  # 404 / 403 before anything is decrypted
    if not key_text:
        raise ValidationError("需要证照密钥 / the document key is required in the X-Document-Key header "
                              "(the fragment of the by-reference QR URL); the server does not keep it",
                              code="missing_key")
    key = envelope.decode_key(key_text.strip())
    plaintext = envelope.open_(certificates.blob(identifier), key, aad=envelope.aad_for(identifier))
    return OpenedDocument(Document.from_json(plaintext), view, key)


def anchor_of(view: CertificateView) -> AnchorProof:
    if view.anchor is None:
        raise ConflictError(f"certificate {view.identifier} is not anchored yet; an offline QR needs its anchor proof",
                            code="not_anchored_yet")
    return AnchorProof.from_json(view.anchor)


def offline_key(node: Node, uscc: str) -> Signer | sm2.SM2Signer:
    """What signs ``uscc``'s batch statements for its offline payloads: its SM2 key in the gm profile, its
    secp256k1 account key in intl (which may stay in its HSM)."""
    if node.keys.profile is CryptoProfile.GM:
        return node.keys.sm2_signer(uscc)
    return node.keys.signer(uscc)


def qr_text(node: Node, certificates: CertificateService, opened: OpenedDocument, mode: str, *, hide: list[str],
            max_version: int) -> tuple[str, dict[str, str]]:
    """The text to encode and headers describing it."""
    if mode == "ref":
        return envelope.build_ref_url(certificates.public_base, opened.view.identifier, opened.key), {
            "X-QR-Mode": "ref"}
    anchor = anchor_of(opened.view)
    qr = make_offline_qr(opened.document, anchor, offline_key(node, opened.view.issuer_uscc), hide=hide,
                         max_version=max_version)
    return qr.text, {"X-QR-Mode": "offline", "X-QR-Version": str(qr.version),
                     "X-QR-Hidden-Fields": ",".join(quote(h, safe="") for h in qr.hidden)}
