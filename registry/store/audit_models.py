"""Tables of the checkpoint gateway and the audit replay (alembic revision 0003).

- ``checkpoint_records``: every checkpoint this gateway submitted, with the gateway member's signature over
  its Backbone hash (the chain holds the fields; the signature makes a checkpoint portable: anybody can
  check it offline against the gateway's account).
- ``audit_reports``: signed audit reports, their digest, and where they were anchored (their position in the
  ``audit-reports`` log and the Backbone checkpoint that commits to it).
- ``audit_snapshots``: the replayed chain state at a block, so ``audit replay --resume`` continues from the
  cursor kept in the ``kv`` table instead of re-reading the whole history.

    >>> from registry.store.audit_models import CheckpointRecord
    >>> CheckpointRecord.__tablename__
    'checkpoint_records'
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.store.db import Base, utcnow

__all__ = ["AuditReportRow", "AuditSnapshot", "CheckpointRecord"]


class CheckpointRecord(Base):
    __tablename__ = "checkpoint_records"
    hash: Mapped[str] = mapped_column(String(66), primary_key=True)  # the Backbone checkpointHash
    subchain_id: Mapped[str] = mapped_column(String(66))
    ledger: Mapped[str] = mapped_column(String(32), index=True)
    index: Mapped[int] = mapped_column(BigInteger)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[str] = mapped_column(String(66))
    prev_hash: Mapped[str] = mapped_column(String(66))
    from_block: Mapped[int] = mapped_column(BigInteger)
    to_block: Mapped[int] = mapped_column(BigInteger)
    to_block_hash: Mapped[str] = mapped_column(String(66))
    signer: Mapped[str] = mapped_column(String(42))
    signer_uscc: Mapped[str] = mapped_column(String(18))
    signature: Mapped[str] = mapped_column(String(140))  # EIP-191 over the checkpoint hash, 0x-hex r||s||v
    main_chain_id: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    main_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AuditReportRow(Base):
    __tablename__ = "audit_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(66), unique=True)  # 0x SHA-256 of the canonical unsigned report
    auditor_uscc: Mapped[str] = mapped_column(String(18), index=True)
    signer: Mapped[str] = mapped_column(String(42))
    signature: Mapped[str] = mapped_column(String(140))
    findings: Mapped[int] = mapped_column(Integer)
    from_block: Mapped[int] = mapped_column(BigInteger)
    to_block: Mapped[int] = mapped_column(BigInteger)
    to_block_hash: Mapped[str] = mapped_column(String(66))
    body: Mapped[bytes] = mapped_column(LargeBinary)  # zlib(RFC 8785 JSON of the signed report)
    log_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)  # in the audit-reports log
    checkpoint_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    anchor_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AuditSnapshot(Base):
    __tablename__ = "audit_snapshots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    block: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    data: Mapped[bytes] = mapped_column(LargeBinary)  # zlib(JSON) of the replay state, see registry/audit/replay.py
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
