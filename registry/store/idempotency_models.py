"""Tables that make issuing idempotent (registry/certificates/idempotency.py): one row per 证照编号 of a
type and issuer, and one per `Idempotency-Key` an agency sent. Neither holds holder data in clear: numbers
and request bodies are kept as keyed MACs, responses sealed under a key derived from the Idempotency-Key."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.store.db import Base, utcnow


class CertificateNumber(Base):
    """证照编号 is unique per certificate type and issuer; `values_mac` tells a replay from a different document."""

    __tablename__ = "certificate_numbers"
    type_code: Mapped[str] = mapped_column(String(21), primary_key=True)
    issuer_uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    number_mac: Mapped[str] = mapped_column(String(64), primary_key=True)
    identifier: Mapped[str] = mapped_column(String(120))
    values_mac: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class IdempotencyRecord(Base):
    """The first answer to an issuing request sent with an `Idempotency-Key`."""

    __tablename__ = "idempotency_keys"
    agency_uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_mac: Mapped[str] = mapped_column(String(64))
    response: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
