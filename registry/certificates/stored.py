"""Storing the documents an issuing request built (registry/certificates/parallel.py): each certificate's row
and, beside it, its blob (`CertificateBlob`: written once, never in the row that batch assignment, anchoring and
status changes rewrite), one Core ``executemany`` each -- the ORM's unit of work per row cost more than the
inserts. The caller's session commits both or neither."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.orm import Session

from registry.certificates.parallel import BuiltDocument
from registry.store.db import Certificate, CertificateBlob, utcnow
from registry.store.states import CertificateStatus
from registry.store.tables import table_of

__all__ = ["insert_certificates"]


def insert_certificates(s: Session, agency: str, type_code: str, built: Sequence[BuiltDocument],
                        supersedes: str | None = None) -> None:
    """Insert ``built`` as pending certificates of ``agency`` (``supersedes``: the identifier a correction
    replaces)."""
    now = utcnow()
    s.execute(insert(table_of(Certificate)), [
        {"identifier": b.identifier, "type_code": type_code, "issuer_uscc": agency, "serial": b.serial,
         "version": b.version, "digest_sha256": b.digest_sha256, "digest_sm3": b.digest_sm3,
         "valid_from": b.valid_from, "valid_until": b.valid_until, "status": CertificateStatus.PENDING,
         "created_at": now, "supersedes": supersedes, "holder_key_digest": b.holder_key_digest}
        for b in built])
    s.execute(insert(table_of(CertificateBlob)), [{"identifier": b.identifier, "blob": b.blob} for b in built])
