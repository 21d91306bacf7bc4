"""The consortium seal CA (电子印章 CA) and the PAdES certificates it issues for seals.

The platform operator's node (the genesis member, also the seal maker 制章方) holds one P-256 ECDSA root key
and its self-signed X.509 root, stored like the seal maker's key (`KeyStore.seal_secret`: AES-256-GCM under the
master key, the associated data naming what the key is). The root is published in the signed trust list
(``seal_ca``: PEM and SHA-256 fingerprint of the DER), so a verifier that trusts the list trusts the root.

Each seal gets a *PAdES twin*: its own P-256 key and an X.509 certificate from this CA that names the agency
(``O`` = the agency's name, ``organizationIdentifier`` = ``NTRCN-<USCC>``, the ETSI EN 319 412-1 §5.1.4 form
"national trade register, China") and the seal (``CN`` = the seal's name, a SAN URI
``urn:lianzheng:seal:<esID>``), valid exactly as long as the seal, keyUsage digitalSignature + nonRepudiation
(critical). It signs the seal's printable PDFs (registry/seals/pdf.py). Why a second key: PDF readers
(poppler/NSS, Adobe) verify ECDSA on the NIST curves, not SM2 nor secp256k1; the seal's own key (SM2 in the gm
profile) keeps signing the GB/T 38540 SES_Signature of every sealed document (docs/SEALS.md).

The certificate is issued when the seal is made (SealService.create, in the same unit of work: a seal and its
certificate exist together, with the same validity), and on first print for a seal made before this CA existed.

    >>> from registry.seals.ca import new_root, issue_certificate, SealSubject
    >>> import datetime as dt
    >>> root = new_root("11230000MB1A0001XX", "黑龙江省政务服务管理局", now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    >>> subject = SealSubject("ES11230000MB1A00028M0001", "行政许可专用章", "11230000MB1A00028M", "黑龙江省市场监督管理局",
    ...                       dt.datetime(2026, 1, 1), dt.datetime(2027, 1, 1))
    >>> cert, key = issue_certificate(root, subject)
    >>> cert.subject.rfc4514_string()
    'CN=行政许可专用章,2.5.4.97=NTRCN-11230000MB1A00028M,O=黑龙江省市场监督管理局,C=CN'
    >>> cert.issuer == root.certificate.subject
    True
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.consortium.roles import agency_json
from registry.errors import ConflictError, NotFoundError
from registry.node import Node
from registry.store.seal_models import SealCaKey, SealPdfCert, SealRow

__all__ = ["CaRoot", "SealPdfIdentity", "SealSubject", "ca_root", "ensure_root", "issue_certificate",
           "issue_for_seal", "new_root", "pdf_identity", "seal_uri", "trust_entry"]

_ORG_ID = x509.ObjectIdentifier("2.5.4.97")  # organizationIdentifier (X.520, ETSI EN 319 412-1)
_ROOT_YEARS = 40  # a seal may be valid up to 30 years from a later start
_BACKDATE = dt.timedelta(minutes=5)  # clock skew between this node and a verifier


def seal_uri(seal_id: str) -> str:
    return f"urn:lianzheng:seal:{seal_id}"


@dataclass(frozen=True)
class CaRoot:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate, lower-case hex (what the trust list names the root by)."""
        return hashlib.sha256(self.der).hexdigest()


@dataclass(frozen=True)
class SealSubject:
    seal_id: str
    seal_name: str
    agency_uscc: str
    agency_name: str
    valid_from: dt.datetime  # UTC (naive = UTC)
    valid_until: dt.datetime


@dataclass(frozen=True)
class SealPdfIdentity:
    """What signs a seal's PDFs: its P-256 key, its certificate and the chain up to the root."""

    seal_id: str
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    root: x509.Certificate


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_key(der: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("a seal CA or PAdES key must be a P-256 ECDSA key")
    return key


def _org(name: str, uscc: str, common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, name[:64]),
                      x509.NameAttribute(_ORG_ID, f"NTRCN-{uscc}"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])


def _usage(*, sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=sign, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=not sign, crl_sign=not sign,
                         encipher_only=False, decipher_only=False)


def new_root(uscc: str, name: str, *, now: dt.datetime) -> CaRoot:
    """A fresh root: P-256 key, self-signed, CA with path length 0 (it certifies seals, no sub-CAs)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _org(name, uscc, "链证电子印章根证书 Lianzheng Seal Root CA")
    start = _aware(now) - _BACKDATE
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=366 * _ROOT_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(sign=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return CaRoot(cert, key)


def issue_certificate(root: CaRoot, subject: SealSubject) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A seal's PAdES certificate and its fresh P-256 key; the validity is the seal's (clipped to the root's)."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = max(_aware(subject.valid_from), root.certificate.not_valid_before_utc)
    end = min(_aware(subject.valid_until), root.certificate.not_valid_after_utc)
    if end <= start:
        raise ConflictError(f"seal {subject.seal_id} has no validity left inside the seal CA's",
                            code="seal_expired")
    cert = (x509.CertificateBuilder()
            .subject_name(_org(subject.agency_name, subject.agency_uscc, subject.seal_name))
            .issuer_name(root.certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(sign=True), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(seal_uri(subject.seal_id))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root.key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(root.key, hashes.SHA256()))
    return cert, key


# --- the node's root ---------------------------------------------------------------------------------------


def _root_aad(uscc: str, fingerprint: str) -> bytes:
    return f"seal-ca:{uscc}:{fingerprint}".encode()


def ca_root(node: Node) -> CaRoot | None:
    """This node's seal CA root, if it has made one (only the platform operator's node does)."""
    with node.db.session() as s:
        row = s.scalars(select(SealCaKey).where(SealCaKey.uscc == node.seeds.genesis.uscc)).first()
        if row is None:
            return None
        cert = x509.load_der_x509_certificate(row.certificate)
        key = _load_key(node.keys.open_secret(row.key_blob, _root_aad(row.uscc, row.fingerprint)))
    return CaRoot(cert, key)


def ensure_root(node: Node) -> CaRoot:
    """The root, made the first time it is needed on the node hosting the platform operator (one per operator:
    a concurrent first use loses the insert race and reads the winner's)."""
    found = ca_root(node)
    if found is not None:
        return found
    operator = node.seeds.genesis
    if not node.keys.has_signing_key(operator.uscc):
        raise ConflictError(f"the seal CA is held by the platform operator ({operator.uscc}), which this node does "
                            "not host", code="seal_ca_not_hosted")
    root = new_root(operator.uscc, operator.name, now=dt.datetime.now(dt.UTC))
    try:
        with node.db.session() as s:
            s.add(SealCaKey(fingerprint=root.fingerprint, uscc=operator.uscc, certificate=root.der,
                            key_blob=node.keys.seal_secret(_pkcs8(root.key),
                                                           _root_aad(operator.uscc, root.fingerprint))))
    except IntegrityError:
        pass  # another request made it first
    made = ca_root(node)
    assert made is not None
    return made


def trust_entry(node: Node) -> dict[str, Any] | None:
    """The trust list's ``seal_ca`` member: {"certificate": PEM, "sha256": hex of the DER}, or None."""
    root = ca_root(node)
    if root is None:
        return None
    return {"certificate": root.certificate.public_bytes(serialization.Encoding.PEM).decode(),
            "sha256": root.fingerprint}


# --- seals' certificates -------------------------------------------------------------------------------------


def _seal_aad(seal_id: str, serial: str) -> bytes:
    return f"seal-pdf:{seal_id}:{serial}".encode()


def issue_for_seal(node: Node, s: Session, row: SealRow, root: CaRoot) -> SealPdfCert:
    """Issue and store (in the caller's session) the PAdES certificate of the seal in ``row``."""
    agency = agency_json(s, row.agency_uscc) or {}
    name = str(agency.get("name") or node.seeds.member(row.agency_uscc).name)
    cert, key = issue_certificate(root, SealSubject(row.id, row.name, row.agency_uscc, name, row.valid_from,
                                                    row.valid_until))
    serial = format(cert.serial_number, "x")
    pdf = SealPdfCert(seal_id=row.id, ca_fingerprint=root.fingerprint, serial=serial,
                      certificate=cert.public_bytes(serialization.Encoding.DER),
                      key_blob=node.keys.seal_secret(_pkcs8(key), _seal_aad(row.id, serial)))
    s.add(pdf)
    return pdf


def pdf_identity(node: Node, seal_id: str) -> SealPdfIdentity:
    """The seal's PDF signing identity; issued now for a seal made before the CA existed."""
    root = ensure_root(node)
    for _attempt in range(2):
        try:
            with node.db.session() as s:
                stored = s.get(SealPdfCert, seal_id)
                if stored is None:
                    row = s.get(SealRow, seal_id)
                    if row is None:
                        raise NotFoundError(f"no seal {seal_id} on this node", code="unknown_seal")
                    stored = issue_for_seal(node, s, row, root)
                    s.flush()
                fingerprint, der, blob, serial = stored.ca_fingerprint, stored.certificate, stored.key_blob, stored.serial
        except IntegrityError:
            continue  # issued concurrently by another request: read it again
        if fingerprint != root.fingerprint:
            raise ConflictError(f"seal {seal_id}'s PDF certificate was issued by another CA ({fingerprint[:16]}…)",
                                code="seal_ca_mismatch")
        key = _load_key(node.keys.open_secret(blob, _seal_aad(seal_id, serial)))
        return SealPdfIdentity(seal_id, x509.load_der_x509_certificate(der), key, root.certificate)
    raise ConflictError(f"the PDF certificate of seal {seal_id} is being issued; retry", code="step_in_progress")
