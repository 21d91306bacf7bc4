"""SQLAlchemy models of the evidence ledger (存证公正链) and the data-exchange ledger (数据共享交换链).

Each ledger keeps two kinds of rows: the *things* (an evidence record, a case, an exchange), which mirror
the chain, and the *steps* (register, transfer, accept, reject, seal; request, authorise, deliver,
acknowledge), which are the outbox: a step row is committed before its transaction is sent and carries the
transaction's hash, signed bytes, block and time once it is on chain (DESIGN.md, Durability). A thing's
mirror columns change only when a step is done.

Holder/personal data never goes on chain: the chain gets SHA-256 keys of identifiers and case numbers and a
salted digest of the metadata (see registry/evidence/service.py).

    >>> from registry.store.ledger_models import EvidenceRecord, StepState
    >>> EvidenceRecord.__tablename__, StepState.DONE.value
    ('evidence_records', 'done')
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.store.db import AnchoredStep, Base, utcnow
from registry.store.states import StepState

__all__ = [
    "AnchoredStep",
    "EvidenceCase",
    "EvidenceEvent",
    "EvidenceRecord",
    "Exchange",
    "ExchangeStepRow",
    "LedgerSerial",
    "StepState",
]


class LedgerSerial(Base):
    """The last serial handed out per identifier prefix (e.g. ``EV-XZZF-20260101``)."""

    __tablename__ = "ledger_serials"
    prefix: Mapped[str] = mapped_column(String(40), primary_key=True)
    last: Mapped[int] = mapped_column(BigInteger, default=0)


class EvidenceCase(Base):
    """A case (案件/执法编号). Its owner is the collector of its first record (the contract's rule)."""

    __tablename__ = "evidence_cases"
    case_key: Mapped[str] = mapped_column(String(66), primary_key=True)  # 0x sha256(case_no): the on-chain caseId
    case_no: Mapped[str] = mapped_column(String(200), unique=True)
    scenario: Mapped[str] = mapped_column(String(10))
    owner_uscc: Mapped[str] = mapped_column(String(18), index=True)
    sealed: Mapped[bool] = mapped_column(Boolean, default=False)
    sealed_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    sealed_timestamp: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class EvidenceRecord(Base):
    """One evidence record: the off-chain metadata (the source of metaDigest) and the custody mirror."""

    __tablename__ = "evidence_records"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # EV-<scenario>-<yyyymmdd>-<serial>
    key: Mapped[str] = mapped_column(String(66), unique=True)  # 0x sha256(id): the on-chain record id
    case_key: Mapped[str] = mapped_column(ForeignKey("evidence_cases.case_key"), index=True)
    scenario: Mapped[str] = mapped_column(String(10))
    type_code: Mapped[str] = mapped_column(String(16))
    authority: Mapped[str] = mapped_column(String(200))
    legal_basis: Mapped[str] = mapped_column(Text)
    collector_uscc: Mapped[str] = mapped_column(String(18), index=True)
    collector_bid: Mapped[str] = mapped_column(String(80))
    operator_id: Mapped[str] = mapped_column(String(64))  # real-name operator: never on chain
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    sm3: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    acquisition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timestamp_token: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # RFC 3161 TimeStampToken (DER)
    supersedes: Mapped[str | None] = mapped_column(String(64), nullable=True)
    correction_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    salt: Mapped[str] = mapped_column(String(32))
    meta_digest: Mapped[str] = mapped_column(String(66))
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)  # pending / registered / failed
    custodian_uscc: Mapped[str] = mapped_column(String(18), index=True)
    pending_to: Mapped[str | None] = mapped_column(String(18), nullable=True)
    superseded_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class EvidenceEvent(Base, AnchoredStep):
    """One custody step (register, transfer, accept, reject, seal): the outbox row and the custody log."""

    __tablename__ = "evidence_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))
    record_id: Mapped[str | None] = mapped_column(ForeignKey("evidence_records.id"), nullable=True, index=True)
    case_key: Mapped[str] = mapped_column(String(66), index=True)
    actor_uscc: Mapped[str] = mapped_column(String(18))
    to_uscc: Mapped[str | None] = mapped_column(String(18), nullable=True)
    purpose: Mapped[str | None] = mapped_column(Text, nullable=True)
    purpose_digest: Mapped[str | None] = mapped_column(String(66), nullable=True)
    digest_rechecked: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_evidence_events_open", "state", "id"),)


class Exchange(Base):
    """One data exchange between a consumer and a provider agency (the mirror of ExchangeLedger)."""

    __tablename__ = "exchanges"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # EX-<item>-<yyyymmdd>-<serial>
    key: Mapped[str] = mapped_column(String(66), unique=True)  # 0x sha256(id)
    consumer_uscc: Mapped[str] = mapped_column(String(18), index=True)
    provider_uscc: Mapped[str] = mapped_column(String(18), index=True)
    item_code: Mapped[str] = mapped_column(String(20), index=True)
    purpose: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    operator_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    salt: Mapped[str] = mapped_column(String(32))
    purpose_digest: Mapped[str] = mapped_column(String(66))
    # pending (request not on chain yet) / requested / authorised / refused / delivered / acknowledged / disputed / failed
    status: Mapped[str] = mapped_column(String(14), default="pending", index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    payload_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    payload_sm3: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    records: Mapped[int | None] = mapped_column(Integer, nullable=True)
    received_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class ExchangeStepRow(Base, AnchoredStep):
    """One exchange step (request, authorise, refuse, deliver, acknowledge): outbox row and history."""

    __tablename__ = "exchange_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exchange_id: Mapped[str] = mapped_column(ForeignKey("exchanges.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    actor_uscc: Mapped[str] = mapped_column(String(18))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_exchange_steps_open", "state", "id"),)
