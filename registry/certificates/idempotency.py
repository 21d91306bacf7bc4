"""Idempotent issuing, two ways.

1. **By 证照编号.** A certificate number is unique per certificate type and issuer. Issuing a number again
   with the same values returns the certificate already issued (no new row, `replayed`); with different
   values it is refused with `duplicate_certificate_number`, naming the certificate that holds the number
   (a correction is a supersede, which keeps the number and links both versions).
2. **By `Idempotency-Key`** (a header of the issuing routes, 16-128 printable ASCII characters; use a
   random UUID). The same key with the same request replays the first answer, identifiers, document keys
   and QR URLs included; with a different request it is refused with `idempotency_key_reused`.

Nothing here is stored in clear: numbers and request bodies are keyed MACs (`KeyStore.mac`), so a copy of
the database cannot test guesses; the first answer, which holds the document keys, is sealed with AES-GCM
under a key derived from the Idempotency-Key itself, which is never stored (only a hash of it, to find
the row). Only the client that holds the key can have the answer replayed.

    >>> key = IdempotencyKey.parse("3f1c9a0e-8d4b-4c2a-9f57-0b7e6d5c4a31")
    >>> key.open(key.seal(b"first answer"))
    b'first answer'
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.certificates.number_macs import NUMBER_FIELD, stable_json
from registry.errors import ConflictError, ValidationError
from registry.store.db import utcnow
from registry.store.idempotency_models import CertificateNumber, IdempotencyRecord
from registry.store.tables import insert_rows, table_of

if TYPE_CHECKING:  # the build processes import this module without the node and chain stack
    from registry.node import Node

__all__ = ["IdempotencyKey", "NumberCheck", "check_numbers", "record_numbers", "request_mac",
           "replay_answer", "store_answer"]

KEY_PATTERN = r"^[\x21-\x7e]{16,128}$"
_KEY = re.compile(KEY_PATTERN)
_CHUNK = 500  # bound parameters per IN (...) query


@dataclass(frozen=True)
class IdempotencyKey:
    value: str

    @classmethod
    def parse(cls, text: str) -> IdempotencyKey:
        if not isinstance(text, str) or not _KEY.fullmatch(text):
            raise ValidationError("Idempotency-Key must be 16-128 printable ASCII characters without spaces "
                                  "(a random UUID is a good key)", code="invalid_idempotency_key")
        return cls(text)

    @property
    def key_hash(self) -> str:
        return hashlib.sha256(b"lianzheng/idempotency/id/1\x00" + self.value.encode()).hexdigest()

    def _aead(self) -> AESGCM:
        # HMAC with the key as the secret: independent of `key_hash`, so the stored hash does not open the answer
        return AESGCM(hmac.digest(self.value.encode(), b"lianzheng/idempotency/seal/1", "sha256"))

    def seal(self, data: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead().encrypt(nonce, data, self.key_hash.encode())

    def open(self, blob: bytes) -> bytes:
        try:
            return self._aead().decrypt(blob[:12], blob[12:], self.key_hash.encode())
        except InvalidTag:
            raise ConflictError("the stored answer for this Idempotency-Key cannot be opened",
                                code="idempotency_key_reused") from None


def request_mac(node: Node, agency: str, route: str, type_code: str, documents: Sequence[Any]) -> str:
    return node.keys.mac("idempotency-request", stable_json([agency, route, type_code, list(documents)]))


def replay_answer(s: Session, agency: str, key: IdempotencyKey, mac: str) -> list[dict[str, Any]] | None:
    """The first answer to this key, or None if the key is new; ConflictError for a different request."""
    row = s.get(IdempotencyRecord, (agency, key.key_hash))
    if row is None:
        return None
    if not hmac.compare_digest(row.request_mac, mac):
        raise ConflictError("this Idempotency-Key was used for a different request; use a new key for a new "
                            "request", code="idempotency_key_reused")
    answer: list[dict[str, Any]] = json.loads(key.open(row.response))
    return answer


def store_answer(s: Session, agency: str, key: IdempotencyKey, mac: str, answer: list[dict[str, Any]]) -> None:
    s.add(IdempotencyRecord(agency_uscc=agency, key_hash=key.key_hash, request_mac=mac,
                            response=key.seal(json.dumps(answer, ensure_ascii=False).encode())))


@dataclass(frozen=True)
class NumberCheck:
    """Per document: the MACs to store, and the certificate already issued under its number (a replay)."""

    number_macs: list[str]
    values_macs: list[str]
    replay_of: dict[int, str]  # document index -> identifier of the identical certificate issued before


def check_numbers(s: Session, agency: str, type_code: str, macs: Sequence[tuple[str, str]]) -> NumberCheck:
    """Find each document's 证照编号 among those issued (``macs``: each document's `document_macs`);
    ConflictError listing every number held by a different certificate (or given twice in this request)."""
    number_macs = [m[0] for m in macs]
    values_macs = [m[1] for m in macs]
    held: dict[str, CertificateNumber] = {}
    for i in range(0, len(number_macs), _CHUNK):
        for found in s.scalars(select(CertificateNumber).where(
                CertificateNumber.type_code == type_code, CertificateNumber.issuer_uscc == agency,
                CertificateNumber.number_mac.in_(number_macs[i:i + _CHUNK]))):
            held[found.number_mac] = found
    conflicts: list[dict[str, Any]] = []
    replay_of: dict[int, str] = {}
    first_index: dict[str, int] = {}
    for i, (nmac, vmac) in enumerate(zip(number_macs, values_macs, strict=True)):
        row = held.get(nmac)
        if nmac in first_index:
            conflicts.append({"index": i, "field": NUMBER_FIELD, "duplicate_of_index": first_index[nmac],
                              "message": f"document {i}: {NUMBER_FIELD} is also given to document {first_index[nmac]}"})
        elif row is not None and hmac.compare_digest(row.values_mac, vmac):
            replay_of[i] = row.identifier
        elif row is not None:
            conflicts.append({"index": i, "field": NUMBER_FIELD, "existing": row.identifier,
                              "message": f"document {i}: {NUMBER_FIELD} is already held by {row.identifier} with "
                                         f"different values (supersede it to correct it)"})
        first_index.setdefault(nmac, i)
    if conflicts:
        first = conflicts[0]
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise ConflictError(first["message"] + more, code="duplicate_certificate_number",
                            details={"index": first["index"], "field": NUMBER_FIELD,
                                     "existing": first.get("existing"), "conflicts": conflicts})
    return NumberCheck(number_macs, values_macs, replay_of)


def record_numbers(s: Session, agency: str, type_code: str, check: NumberCheck, identifiers: Mapping[int, str]) -> None:
    """Store the numbers of the documents issued now (`identifiers`: document index -> identifier)."""
    if identifiers:
        now = utcnow()  # one executemany (registry/store/tables.py), no ORM bookkeeping per row
        insert_rows(s, table_of(CertificateNumber), _NUMBER_COLUMNS, [
            (type_code, agency, check.number_macs[i], ident, check.values_macs[i], now)
            for i, ident in identifiers.items()])


_NUMBER_COLUMNS = ("type_code", "issuer_uscc", "number_mac", "identifier", "values_mac", "created_at")
