"""SQLAlchemy models of the holders' features (registry/holders/): verifier challenges (single-use nonces),
the replay cache of holder-signed requests, the grants this node relayed (and their outbox steps), the
GrantRegistry events every node follows (the grant index), and each hosted agency's exchange key.

No holder plaintext: a grant row holds the holder-signed grant JSON (digests, the holder's public key, the
purpose, the wrapped document key), never a name or an ID number.

    >>> from registry.store.holder_models import GrantRow, HolderChallenge
    >>> GrantRow.__tablename__, HolderChallenge.__tablename__
    ('grants', 'holder_challenges')
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry.store.db import AnchoredStep, Base, utcnow

__all__ = ["AgencyExchangeKey", "GrantChainEvent", "GrantRow", "GrantStep", "HolderChallenge", "HolderRequestSeen"]


class HolderChallenge(Base):
    """A presentation challenge issued by this node: single use, short-lived (registry/holders/presentation.py)."""

    __tablename__ = "holder_challenges"
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)  # 16 random bytes, base64url
    verifier: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    consumed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # SHA-256 of the presentation that consumed it (hex): evidence of what was accepted, no holder data
    consumed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class HolderRequestSeen(Base):
    """A holder-signed request already accepted (api/holder_auth.py): refused if replayed within its window."""

    __tablename__ = "holder_requests_seen"
    signature_digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the signature
    key_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class GrantRow(Base):
    """A holder-signed grant this node relayed to GrantRegistry (registry/holders/service.py)."""

    __tablename__ = "grants"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the canonical signed grant
    grant_id: Mapped[str] = mapped_column(String(32), unique=True)
    certificate_digest: Mapped[str] = mapped_column(String(64), index=True)
    identifier: Mapped[str] = mapped_column(String(120))
    issuer_uscc: Mapped[str] = mapped_column(String(18))
    holder_key_digest: Mapped[str] = mapped_column(String(64), index=True)
    grantee_kind: Mapped[str] = mapped_column(String(8))
    grantee_digest: Mapped[str] = mapped_column(String(64), index=True)
    not_before: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    relay_uscc: Mapped[str] = mapped_column(String(18))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)  # the signed grant
    revocation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # the signed statement
    status: Mapped[str] = mapped_column(String(10))  # pending, active, revoked, failed
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class GrantStep(Base, AnchoredStep):
    """One GrantRegistry write (anchor, revoke): outbox row and history."""

    __tablename__ = "grant_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    grant_digest: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    actor_uscc: Mapped[str] = mapped_column(String(18))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_grant_steps_open", "state", "id"),)


class GrantChainEvent(Base):
    """One GrantRegistry event as the chain shows it (grants relayed by any node): the grant index."""

    __tablename__ = "grant_chain_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(24))
    grant_digest: Mapped[str] = mapped_column(String(64), index=True)
    relay_uscc: Mapped[str] = mapped_column(String(18))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    block_timestamp: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("tx_hash", "log_index", name="uq_grant_chain_events_log"),)


class AgencyExchangeKey(Base):
    """A hosted agency's P-256 exchange key (免证办): grants wrap document keys to it (registry/holders/
    wrapping.py); the private key is sealed under the node's master key like the agencies' other keys."""

    __tablename__ = "agency_exchange_keys"
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # DER SPKI
    key_id: Mapped[str] = mapped_column(String(64))  # SHA-256 of the SPKI, hex
    key_blob: Mapped[bytes] = mapped_column(LargeBinary)  # PKCS#8, AES-GCM under the master key
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
