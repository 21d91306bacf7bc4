"""The registry's facts about a certificate it issued that verification needs (digests, issuer, type, validity
window, batch anchor and audit paths), read with one query and, once the batch is anchored, kept in memory:
after anchoring none of them changes (a status change is a chain event, read from the status index), so a
verification by identifier asks the database nothing. Pending certificates are read again every time.

    >>> records = AnchoredRecords(node.db)                      # doctest: +SKIP
    >>> records.get("1.2.156.3005.2....").anchor()["index"]     # doctest: +SKIP
    7

The cache is bounded (least recently used out) and dropped whole by `clear()`; the verifier clears it when
its status index rebuilt from genesis (a devnet reset), when the registry re-anchors what the chain lost.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from registry.store.db import Batch, Certificate, Database
from registry.validation import hex_or_empty

__all__ = ["AnchoredRecords", "CertificateRecord"]


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    identifier: str
    digest_sha256: bytes
    digest_sm3: bytes
    issuer_uscc: str
    type_code: str
    valid_from: dt.date | None
    valid_until: dt.date | None
    # None while the batch is not anchored; then root, index, size, the SHA-256 path and, when the batch has an
    # SM3 root and the row its SM3 path, those too
    batch_root: bytes | None
    leaf_index: int | None
    size: int | None
    path: tuple[bytes, ...]
    sm3_root: bytes | None
    sm3_path: tuple[bytes, ...] | None

    @property
    def anchored(self) -> bool:
        return self.batch_root is not None

    def anchor(self) -> dict[str, Any]:
        """The anchor as registry/certificates/verification.py checks it (a fresh dict: callers may add keys);
        ``{"pending": True}`` before anchoring."""
        if self.batch_root is None:
            return {"pending": True}
        sm3: dict[str, Any] = {}
        if self.sm3_root is not None and self.sm3_path is not None:
            sm3 = {"sm3_root": self.sm3_root, "sm3_digest": self.digest_sm3, "sm3_path": list(self.sm3_path)}
        return {"batch_root": self.batch_root, "index": self.leaf_index, "size": self.size, "path": list(self.path),
                "source": "registry", **sm3}


def _split(blob: bytes) -> tuple[bytes, ...]:
    return tuple(blob[i:i + 32] for i in range(0, len(blob), 32))


def record_of(row: Certificate, batch: Batch | None) -> CertificateRecord:
    anchored = batch is not None and batch.state == "anchored" and row.proof is not None
    with_sm3 = anchored and batch is not None and batch.root_sm3 is not None and row.proof_sm3 is not None
    return CertificateRecord(
        identifier=row.identifier, digest_sha256=bytes.fromhex(row.digest_sha256),
        digest_sm3=hex_or_empty(row.digest_sm3), issuer_uscc=row.issuer_uscc, type_code=row.type_code,
        valid_from=row.valid_from, valid_until=row.valid_until,
        batch_root=bytes.fromhex(batch.root[2:]) if anchored and batch is not None else None,
        leaf_index=row.leaf_index if anchored else None, size=batch.size if anchored and batch is not None else None,
        path=_split(row.proof) if anchored and row.proof is not None else (),
        sm3_root=hex_or_empty(batch.root_sm3) if with_sm3 and batch is not None else None,
        sm3_path=_split(row.proof_sm3) if with_sm3 and row.proof_sm3 is not None else None)


class AnchoredRecords:
    def __init__(self, db: Database, *, capacity: int = 200_000) -> None:
        self.db = db
        self.capacity = capacity
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, CertificateRecord] = OrderedDict()

    def get(self, identifier: str) -> CertificateRecord | None:
        """The record of a certificate issued here (`identifier` in its canonical form), None when this
        registry never issued it."""
        with self._lock:
            hit = self._cache.get(identifier)
            if hit is not None:
                self._cache.move_to_end(identifier)
                return hit
        with self.db.session() as s:
            found = s.execute(select(Certificate, Batch).outerjoin(Batch, Batch.id == Certificate.batch_id)
                              .where(Certificate.identifier == identifier)).first()
            if found is None:
                return None
            record = record_of(found[0], found[1])
        if record.anchored:
            with self._lock:
                self._cache[identifier] = record
                while len(self._cache) > self.capacity:
                    self._cache.popitem(last=False)
        return record

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)
