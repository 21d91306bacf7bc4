"""The seal index: every SealRegistry event of every agency, as the chain shows it, in this node's database
(`seal_chain_events`) — how a node knows the seals of agencies hosted elsewhere (nodes share only the chain).

It is fed two ways, both idempotent (one row per transaction and log index): `refresh()` pulls the events
since its last pass (the issuing and verifying paths call it, so they see the chain as it is now), and the
`ChainInbox` lane interface (`apply`, `forget_lost`) that the inbox thread drives. A chain that went
backwards or reorganised is rescanned after the rows of lost blocks are dropped.

A seal's state at a block is replayed from its events: created (Active), suspended, reinstated, revoked.

    >>> index = SealIndex(node)                                # doctest: +SKIP
    >>> index.refresh(); index.seal("0x9f…").status_at(1234)    # doctest: +SKIP
    'active'
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from chain.artifacts import load_artifact
from chain.contracts import unpad
from chain.errors import ChainError
from chain.logs import Event, EventDecoder
from registry.crypto.hashing import hex0x
from registry.errors import chain_boundary
from registry.node import Node
from registry.outbox.inbox import lost_steps
from registry.store.seal_models import SealChainEvent

__all__ = ["SealHistory", "SealIndex"]

_STATUS_AFTER = {"SealCreated": "active", "SealSuspended": "suspended", "SealReinstated": "active",
                 "SealRevoked": "revoked"}


@functools.cache
def _decoder(address: str) -> EventDecoder:
    return EventDecoder({address: load_artifact("SealRegistry").abi})


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return hex0x(bytes(value))
    return value


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


class SealIndex:
    contract_name = "SealRegistry"

    def __init__(self, node: Node) -> None:
        self.node = node
        self.synced_block = -1
        self.synced_hash = ""
        # one writer at a time: `refresh` (request threads) and `apply` (the inbox thread) would otherwise both
        # see an event as new and insert it twice (the unique (tx_hash, log_index) then fails the request)
        self._lock = threading.RLock()

    # -- feeding -------------------------------------------------------------------------------------
    def refresh(self) -> int:
        """Pull the events since the last pass; returns how many rows were added. ChainUnavailableError when
        the chain cannot be read."""
        with chain_boundary("reading the seal registry"), self._lock:
            deployment = self.node.require_deployment()
            address = deployment.address(self.contract_name)
            head = self.node.blocks.head()
            if self.synced_block >= 0:
                header = self.node.blocks.header(self.synced_block)
                if head < self.synced_block or header is None or header.hash != self.synced_hash:
                    self.synced_block = -1
            if self.synced_block < 0:
                self.forget_lost(frozenset())
                start = deployment.first_block
            else:
                start = self.synced_block + 1
            if start > head:
                return 0
            top = self.node.blocks.header(head)
            raw = self.node.blocks.logs(address, topics=[], from_block=start)
            decoder = _decoder(address)
            events = [e for e in map(decoder.decode, raw) if e is not None and e.block_number <= head]
            added = self.apply(events, frozenset())
            self.synced_block, self.synced_hash = head, top.hash if top is not None else ""
            return added

    def apply(self, events: Sequence[Event], hosted: frozenset[str]) -> int:
        """Store the events not stored yet (InboxLane)."""
        if not events:
            return 0
        headers = self.node.blocks.headers(sorted({e.block_number for e in events}))
        missing = {e.block_number for e in events} - set(headers)
        if missing:
            raise ChainError(f"blocks {sorted(missing)} vanished while indexing seal events")
        added = 0
        with self._lock, self.node.db.session() as s:
            have = {(t.lower(), i) for t, i in s.execute(select(SealChainEvent.tx_hash, SealChainEvent.log_index).where(
                SealChainEvent.tx_hash.in_(sorted({e.tx_hash for e in events}))))}
            for e in sorted(events, key=lambda e: e.position):
                if (e.tx_hash.lower(), e.log_index) in have:
                    continue
                args = {k: _plain(v) for k, v in e.args.items()}
                key = args["keyDigest"] if e.name == "MakerKeyPublished" else args["id"]
                agency = unpad(e.args["makerUscc"] if e.name == "MakerKeyPublished" else e.args["agencyUscc"])
                h = headers[e.block_number]
                s.add(SealChainEvent(tx_hash=e.tx_hash, log_index=e.log_index, name=e.name, seal_key=str(key).lower(),
                                     agency_uscc=agency, args=args, block_number=e.block_number,
                                     block_hash=h.hash, block_timestamp=h.timestamp))
                have.add((e.tx_hash.lower(), e.log_index))
                added += 1
        return added

    def forget_lost(self, hosted: frozenset[str]) -> int:
        """Drop the rows whose block the chain no longer has (InboxLane)."""
        with self.node.db.session() as s:
            rows = [(i, n, h) for i, n, h in s.execute(
                select(SealChainEvent.id, SealChainEvent.block_number, SealChainEvent.block_hash))]
        lost = lost_steps(self.node, rows) if rows else []
        if lost:
            with self.node.db.session() as s:
                s.execute(delete(SealChainEvent).where(SealChainEvent.id.in_(lost)))
        return len(lost)

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
