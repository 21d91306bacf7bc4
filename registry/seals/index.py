"""The seal index: every SealRegistry event of every agency, as the chain shows it, in this node's database
(`seal_chain_events`) — how a node knows the seals of agencies hosted elsewhere (nodes share only the chain).

It is fed as every contract event index is (registry/outbox/event_index.py): `refresh()` from the issuing and
verifying paths, so they see the chain as it is now, and the inbox thread's `apply`; a reset is rescanned.

A seal's state at a block is replayed from its events: created (Active), suspended, reinstated, revoked.

    >>> index = SealIndex(node)                                # doctest: +SKIP
    >>> index.refresh(); index.seal("0x9f…").status_at(1234)    # doctest: +SKIP
    'active'
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from chain.blocks import Header
from chain.contracts import unpad
from chain.logs import Event
from registry.outbox.event_index import ChainEventIndex, plain_arg
from registry.store.seal_models import SealChainEvent

__all__ = ["SealHistory", "SealIndex"]

_STATUS_AFTER = {"SealCreated": "active", "SealSuspended": "suspended", "SealReinstated": "active",
                 "SealRevoked": "revoked"}


@dataclass(frozen=True)
class SealChange:
    name: str
    status: str
    block_number: int
    block_timestamp: int
    tx_hash: str


@dataclass(frozen=True)
class SealHistory:
    """One seal as the chain shows it: its registration and every status change, in chain order."""

    key: str
    agency_uscc: str
    image_digest: str
    key_digest: str
    seal_info_digest: str
    valid_from: int
    valid_until: int
    changes: tuple[SealChange, ...]

    @property
    def status(self) -> str:
        return self.changes[-1].status

    def status_at(self, block: int) -> str | None:
        """The status after every event up to and including ``block`` (None: not registered yet)."""
        status = None
        for c in self.changes:
            if c.block_number > block:
                break
            status = c.status
        return status

    def changes_after(self, block: int) -> list[SealChange]:
        return [c for c in self.changes if c.block_number > block]


class SealIndex(ChainEventIndex):
    contract_name = "SealRegistry"
    row_model = SealChainEvent

    def row(self, event: Event, header: Header) -> SealChainEvent:
        args = {k: plain_arg(v) for k, v in event.args.items()}
        maker = event.name == "MakerKeyPublished"
        key = args["keyDigest"] if maker else args["id"]
        agency = unpad(event.args["makerUscc"] if maker else event.args["agencyUscc"])
        return SealChainEvent(tx_hash=event.tx_hash, log_index=event.log_index, name=event.name,
                              seal_key=str(key).lower(), agency_uscc=agency, args=args,
                              block_number=event.block_number, block_hash=header.hash,
                              block_timestamp=header.timestamp)

    # -- reading -------------------------------------------------------------------------------------
    def seal(self, key: str) -> SealHistory | None:
        """A seal by its on-chain id (0x + 64 hex), or None if the chain never registered it."""
        with self.node.db.session() as s:
            rows = s.scalars(select(SealChainEvent).where(SealChainEvent.seal_key == key.lower())
                             .order_by(SealChainEvent.block_number, SealChainEvent.log_index)).all()
        created = next((r for r in rows if r.name == "SealCreated"), None)
        if created is None:
            return None
        a = created.args
        changes = tuple(SealChange(r.name, _STATUS_AFTER[r.name], r.block_number, r.block_timestamp, r.tx_hash)
                        for r in rows if r.name in _STATUS_AFTER)
        return SealHistory(key.lower(), created.agency_uscc, a["imageDigest"], a["keyDigest"], a["sealInfoDigest"],
                           int(a["validFrom"]), int(a["validUntil"]), changes)

    def seals_with_image(self, image_digest: str) -> list[SealHistory]:
        """Every registered seal whose image has this digest (to name whose image a swapped one is)."""
        with self.node.db.session() as s:
            keys = [r.seal_key for r in s.scalars(select(SealChainEvent).where(SealChainEvent.name == "SealCreated"))
                    if str(r.args.get("imageDigest", "")).lower() == image_digest.lower()]
        return [h for h in (self.seal(k) for k in keys) if h is not None]

    def maker_key_block(self, key_digest: str) -> int | None:
        """The block in which the seal maker published this key digest, or None."""
        with self.node.db.session() as s:
            row = s.scalars(select(SealChainEvent).where(SealChainEvent.name == "MakerKeyPublished",
                                                         SealChainEvent.seal_key == key_digest.lower())).first()
            return None if row is None else int(row.block_number)
