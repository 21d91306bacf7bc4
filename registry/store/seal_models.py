"""SQLAlchemy models of the e-seals (电子印章, registry/seals/): the seals this node made, their outbox steps,
the maker's keys, the SealRegistry events every node follows, the sealed signatures of documents, and the
consortium seal CA (registry/seals/ca.py) with the PAdES certificates it issued for seals.

    >>> from registry.store.seal_models import SealRow, SealStep
    >>> SealRow.__tablename__, SealStep.__tablename__
    ('seals', 'seal_steps')
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry.store.db import AnchoredStep, Base, utcnow

__all__ = ["SealCaKey", "SealChainEvent", "SealMakerKey", "SealPdfCert", "SealRow", "SealStep", "SealedSignature"]


class SealRow(Base):
    """A seal made on this node: its GB/T 38540 SESeal, image and (encrypted) signing key. The chain holds
    the digests of the image, the key and the SES_SealInfo, its validity and status."""

    __tablename__ = "seals"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # esID
    key: Mapped[str] = mapped_column(String(66), unique=True)  # 0x sha256(esID): the on-chain id
    agency_uscc: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(20))
    image_type: Mapped[str] = mapped_column(String(8))
    image: Mapped[bytes] = mapped_column(LargeBinary)
    image_digest: Mapped[str] = mapped_column(String(66))
    key_algorithm: Mapped[str] = mapped_column(String(12))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # DER SubjectPublicKeyInfo
    key_blob: Mapped[bytes] = mapped_column(LargeBinary)  # the private key, AES-GCM under the master key
    key_digest: Mapped[str] = mapped_column(String(66))
    seseal: Mapped[bytes] = mapped_column(LargeBinary)  # DER SESeal
    seal_info_digest: Mapped[str] = mapped_column(String(66))
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime)
    valid_until: Mapped[dt.datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(10))  # pending, active, suspended, revoked, failed
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SealStep(Base, AnchoredStep):
    """One SealRegistry write (maker_key, create, suspend, reinstate, revoke): outbox row and history."""

    __tablename__ = "seal_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seal_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(12))
    actor_uscc: Mapped[str] = mapped_column(String(18))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_seal_steps_open", "state", "id"),)


class SealMakerKey(Base):
    """A key of the seal-making authority (制章方, the platform operator) that signs SESeal structures."""

    __tablename__ = "seal_maker_keys"
    key_digest: Mapped[str] = mapped_column(String(66), primary_key=True)  # 0x sha256(DER SPKI)
    uscc: Mapped[str] = mapped_column(String(18))
    algorithm: Mapped[str] = mapped_column(String(12))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    key_blob: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SealChainEvent(Base):
    """One SealRegistry event as the chain shows it (every agency's, from every node): the seal index."""

    __tablename__ = "seal_chain_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(24))
    seal_key: Mapped[str] = mapped_column(String(66), index=True)  # the seal id, or a maker key's digest
    agency_uscc: Mapped[str] = mapped_column(String(18))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    block_timestamp: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("tx_hash", "log_index", name="uq_seal_chain_events_log"),)


class SealedSignature(Base):
    """The sealed signature (用章) of one issued record: a GB/T 38540 SES_Signature (gm) or a signed JSON
    proof (intl) over the record's digest and the seal."""

    __tablename__ = "sealed_signatures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_kind: Mapped[str] = mapped_column(String(12))
    record_id: Mapped[str] = mapped_column(String(100))
    seal_id: Mapped[str] = mapped_column(String(64), index=True)
    format: Mapped[str] = mapped_column(String(20))  # ses-signature, json-proof
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    digest_sha256: Mapped[str] = mapped_column(String(64))
    digest_sm3: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("record_kind", "record_id", name="uq_sealed_signatures_record"),)


class SealCaKey(Base):
    """The consortium seal CA (电子印章 CA) held by the platform operator's node: a P-256 key (encrypted) and its
    self-signed X.509 root, published in the signed trust list (``seal_ca``)."""

    __tablename__ = "seal_ca_keys"
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the DER certificate, hex
    uscc: Mapped[str] = mapped_column(String(18), unique=True)  # the operator (genesis member): one root each
    certificate: Mapped[bytes] = mapped_column(LargeBinary)  # DER X.509
    key_blob: Mapped[bytes] = mapped_column(LargeBinary)  # PKCS#8 DER, AES-GCM under the master key
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SealPdfCert(Base):
    """A seal's PAdES twin: a P-256 key (encrypted) and the X.509 certificate the seal CA issued for it, with
    the seal's validity; it signs the seal's printable PDFs (registry/seals/pdf.py)."""

    __tablename__ = "seal_pdf_certs"
    seal_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # esID
    ca_fingerprint: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(40))  # hex
    certificate: Mapped[bytes] = mapped_column(LargeBinary)  # DER X.509
    key_blob: Mapped[bytes] = mapped_column(LargeBinary)  # PKCS#8 DER, AES-GCM under the master key
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
