"""Storing the documents an issuing request built (registry/certificates/parallel.py): each certificate's row
and, beside it, its blob (`CertificateBlob`: written once, never in the row that batch assignment, anchoring and
status changes rewrite), one ``executemany`` each -- the ORM's unit of work per row, and Core's parameter dict per
row, cost more than the inserts (registry/store/tables.py). The caller's session commits both or neither."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from registry.certificates.anchoring import LEAF_COLUMNS, Leaf
from registry.certificates.parallel import BuiltDocument
from registry.store.db import Certificate, CertificateBlob, utcnow
from registry.store.states import CertificateStatus
from registry.store.tables import insert_rows, table_of

__all__ = ["insert_certificates"]


def insert_certificates(s: Session, agency: str, type_code: str, built: Sequence[BuiltDocument],
                        supersedes: str | None = None, leaves: Sequence[Leaf] = ()) -> None:
    """Insert ``built`` as pending certificates of ``agency`` (``supersedes``: the identifier a correction
    replaces); the first ``len(leaves)`` in the batches `BatchAnchoring.form_at_store` prepared, the rest in
    none yet."""
    now = utcnow()
    places = [*leaves, *[_NO_LEAF] * (len(built) - len(leaves))]
    insert_rows(s, table_of(Certificate), _COLUMNS, [
        (b.identifier, type_code, agency, b.serial, b.version, b.digest_sha256, b.digest_sm3, b.valid_from,
         b.valid_until, CertificateStatus.PENDING, now, supersedes, b.holder_key_digest, *place)
        for b, place in zip(built, places, strict=True)])
    insert_rows(s, table_of(CertificateBlob), ("identifier", "blob"), [(b.identifier, b.blob) for b in built])


_COLUMNS = ("identifier", "type_code", "issuer_uscc", "serial", "version", "digest_sha256", "digest_sm3", "valid_from",
            "valid_until", "status", "created_at", "supersedes", "holder_key_digest", *LEAF_COLUMNS)
_NO_LEAF = (None, None, None, None)
