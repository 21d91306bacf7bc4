"""SQLAlchemy 2 models and the session factory. The database is the outbox: every record to anchor is
committed here before any transaction is sent (DESIGN.md, Durability).

Holder data is never stored in plaintext: a certificate row keeps its public metadata (identifier,
type, issuer, digests, validity window, status, anchor), and beside it (`CertificateBlob`) the by-reference
blob encrypted with a per-document key that the server does not keep.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker, synonym

from registry.store.claims import StepClaims
from registry.store.states import BatchState, CertificateStatus, StepState


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class AnchoredStep:
    """Outbox columns shared by every step row (registry/outbox/steps.py reads and writes them)."""

    state: Mapped[str] = mapped_column(String(8), default=StepState.PENDING)  # indexed with id by each table
    account: Mapped[str | None] = mapped_column(String(42), nullable=True)  # the signing account
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # the signed transaction
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    block_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_timestamp: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    def anchor_json(self) -> dict[str, Any] | None:
        if self.state != StepState.DONE:
            return None
        return {"tx_hash": self.tx_hash, "block_number": self.block_number, "block_hash": self.block_hash,
                "block_timestamp": self.block_timestamp, "account": self.account}


class Member(Base):
    """Mirror of a ConsortiumRegistry member (the chain is authoritative)."""

    __tablename__ = "members"
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    short_name: Mapped[str] = mapped_column(String(100), default="")
    region: Mapped[str] = mapped_column(String(6), default="")
    bid: Mapped[str] = mapped_column(String(80), unique=True)
    roles: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[int] = mapped_column(Integer, default=1)
    accounts: Mapped[list[str]] = mapped_column(JSON, default=list)
    admitted_block: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class AgencyKey(Base):
    """An agency's signing key, AES-GCM encrypted under the master key (keys at rest are encrypted)."""

    __tablename__ = "agency_keys"
    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AgencySm2Key(Base):
    """An agency's SM2 application-signature key, sealed under the master key like `AgencyKey` (SoftHSM2 and
    most PKCS#11 tokens have no SM2 mechanism, so these live in the file backend: docs/CRYPTO.md)."""

    __tablename__ = "agency_sm2_keys"
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # hex SM3 of the 64-byte public key
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(64))  # x || y
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ApiKey(Base):
    """An agency API key; only its SHA-256 is stored (the key is 256 random bits, so no slow hash is needed)."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Batch(Base):
    """One anchored Merkle root: a step of the outbox. States (`BatchState`): prepared (root fixed,
    committed) -> sent (tx hash known) -> anchored, or failed (refused by the contract)."""

    __tablename__ = "batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ledger: Mapped[str] = mapped_column(String(20), default="certificates")
    issuer_uscc: Mapped[str] = mapped_column(String(18), index=True)
    root: Mapped[str] = mapped_column(String(66), unique=True)
    # the RFC 6962 root over the documents' SM3 digests, anchored beside `root` (0007s; NULL: anchored before)
    root_sm3: Mapped[str | None] = mapped_column(String(66), nullable=True)
    size: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12), default=BatchState.PREPARED, index=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    block_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_timestamp: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    issuer_account: Mapped[str | None] = mapped_column(String(42), nullable=True)
    gas_used: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    anchored_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # the signed anchorBatch (0004)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why the contract refused it (0004)
    # the outbox's names for the columns a batch has always had under its own names
    account = synonym("issuer_account")
    done_at = synonym("anchored_at")


class Certificate(Base):
    __tablename__ = "certificates"
    identifier: Mapped[str] = mapped_column(String(120), primary_key=True)
    # looked up through the leading columns of uq_certificate_serial and ix_certificates_pending (0011i)
    type_code: Mapped[str] = mapped_column(String(21))
    issuer_uscc: Mapped[str] = mapped_column(String(18))
    serial: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer, default=1)
    digest_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    digest_sm3: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[dt.date | None] = mapped_column(nullable=True)
    valid_until: Mapped[dt.date | None] = mapped_column(nullable=True)
    status: Mapped[str] = mapped_column(String(12), default=CertificateStatus.PENDING, index=True)
    reason: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the status change `status` reflects: a change writes the status only if it is later on chain (0004)
    status_change_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    superseded_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    supersedes: Mapped[str | None] = mapped_column(String(120), nullable=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True, index=True)
    leaf_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    proof: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # concatenated 32-byte hashes
    proof_sm3: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # the same in the SM3 tree (0007s)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    issued_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # a bound certificate's holder key id (SHA-256 of the holder's SPKI, hex; 0009h): no holder plaintext
    holder_key_digest: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)

    __table_args__ = (
        UniqueConstraint("type_code", "issuer_uscc", "serial", "version", name="uq_certificate_serial"),
        Index("ix_certificates_pending", "issuer_uscc", "status", "created_at"),
    )


class CertificateBlob(Base):
    """A certificate's by-reference blob: its document encrypted under a key the server does not keep
    (registry/formats/envelope.py). Written once with the certificate and never changed, it lives beside the
    certificate's row (0010b), not in it: a certificate row is rewritten when its batch is assigned, when it
    is anchored and at every status change, and a row that carried its ~3 KB blob was rewritten whole each time
    (SQLite: two thirds of an anchoring's updates)."""

    __tablename__ = "certificate_blobs"
    identifier: Mapped[str] = mapped_column(ForeignKey("certificates.identifier", ondelete="CASCADE"), primary_key=True)
    blob: Mapped[bytes] = mapped_column(LargeBinary)


class StatusChange(Base, AnchoredStep):
    """Outbox for lifecycle transactions (suspend, reinstate, revoke, supersede) and their history.
    States (`StepState`): pending -> sent -> done (a refused change is deleted: nothing happened)."""

    __tablename__ = "status_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identifier: Mapped[str] = mapped_column(ForeignKey("certificates.identifier"), index=True)
    action: Mapped[str] = mapped_column(String(12))
    reason: Mapped[int | None] = mapped_column(Integer, nullable=True)
    new_identifier: Mapped[str | None] = mapped_column(String(120), nullable=True)
    actor_uscc: Mapped[str] = mapped_column(String(18))
    state: Mapped[str] = mapped_column(String(12), default=StepState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # added by 0004 to filled tables

    __table_args__ = (Index("ix_status_changes_open", "state", "id"),)  # 0004: the outbox's scan


class Serial(Base):
    """Per agency and type, the last 流水号 handed out."""

    __tablename__ = "serials"
    issuer_uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    type_code: Mapped[str] = mapped_column(String(21), primary_key=True)
    last: Mapped[int] = mapped_column(BigInteger, default=0)


class KeyValue(Base):
    """Small persistent state: replay cursors, last sync block, trust-list cache."""

    __tablename__ = "kv"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)  # 0009g: witness keys run to ~150
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            _private_sqlite_file(Path(path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # type: ignore[no-untyped-def]
            cur = conn.cursor()
            # WAL lets the API read while the anchoring worker writes; FULL sync keeps committed
            # outbox rows across a power cut (the durability promise).
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def _private_sqlite_file(path: Path) -> None:
    """The database holds encrypted agency keys, API key hashes and document ciphertexts: owner-only. Created
    here with mode 0600 before SQLite opens it, because SQLite gives its -wal, -shm and -journal files the
    database file's mode; existing files (and a folder SQLite would create) are narrowed to 0600/0700.

    An existing file is never opened here: closing any descriptor of a file drops every POSIX lock this process
    holds on it (fcntl(2)), so a process that already serves the database through SQLite would lose its locks
    (a second node object on the same file in the same process: 'database disk image is malformed')."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.chmod(f"{path}{suffix}", 0o600)


class Database:
    """Engine + session factory. Repositories and services own transactions via `session()`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._step_claims: StepClaims | None = None

    @property
    def step_claims(self) -> StepClaims | None:
        """Claims on outbox steps across processes (`registry.store.leader.StepClaims`) on PostgreSQL; None on
        SQLite, where one process writes and the outbox's in-process claims suffice."""
        if self._step_claims is None and self.engine.dialect.name == "postgresql":
            self._step_claims = StepClaims(self.engine.url)
        return self._step_claims

    def close(self) -> None:
        """Close every connection, the step claims' too (a PostgreSQL database is copied only when nobody is
        connected to it)."""
        if self._step_claims is not None:
            self._step_claims.close()
            self._step_claims = None
        self.engine.dispose()

    def migrate(self) -> None:
        from registry.store.migrations import upgrade

        upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error (no partial writes)."""
        with self.sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise
