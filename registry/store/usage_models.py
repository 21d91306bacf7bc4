"""SQLAlchemy model of the usage ledger (用证记录, registry/usage/): one row per usage of a certificate by an
agency. The row is its own outbox step (its `UsageLedger.recordUsage` transaction): committed before the
transaction is sent, done once it is on chain (DESIGN.md, Durability). Usages recorded on other nodes of a
certificate issued here, or of one bound to a holder this node serves, are mirrored from UsageRecorded events
(registry/usage/inbox.py): their `ref` is the usage key's hex and the matter text is not here.

Nothing personal is stored in plaintext beyond what the agency itself typed as the matter (申请事由): the
holder-signed grant carries digests, the holder's public key and the document key wrapped for the grantee.

    >>> from registry.store.usage_models import UsageRecord
    >>> UsageRecord.__tablename__
    'usages'
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.store.db import AnchoredStep, Base

__all__ = ["UsageRecord"]


class UsageRecord(Base, AnchoredStep):
    """A usage (用证记录): which agency used which certificate, for what, with which consent."""

    __tablename__ = "usages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)  # UR-<yyyymmdd>-<serial>, or the key's hex (mirrored)
    key: Mapped[str] = mapped_column(String(66), unique=True)  # 0x sha256(ref): the on-chain usage id
    agency_uscc: Mapped[str] = mapped_column(String(18), index=True)  # the using agency (the actor)
    certificate_doc: Mapped[str] = mapped_column(String(66), index=True)  # 0x document digest (CertificateLedger doc)
    certificate_id: Mapped[str | None] = mapped_column(String(120), nullable=True)  # GB/T 36904 id, when known here
    channel: Mapped[str] = mapped_column(String(12))  # grant | presentation | fetch (免证办)
    grant_digest: Mapped[str | None] = mapped_column(String(66), nullable=True, index=True)
    grant: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # the holder-signed grant
    presentation_digest: Mapped[str | None] = mapped_column(String(66), nullable=True)
    presentation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # signed presentation
    holder_key_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    purpose: Mapped[str] = mapped_column(Text)  # the matter (申请事由); empty when mirrored
    operator_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    salt: Mapped[str] = mapped_column(String(32))  # empty when mirrored
    purpose_digest: Mapped[str] = mapped_column(String(66))  # 0x salted RFC 8785 digest, on chain
    # pending (not on chain yet) / recorded / failed (the contract refused a resend)
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)

    __table_args__ = (Index("ix_usages_open", "state", "id"),)
