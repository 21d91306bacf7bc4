"""The grant index: every GrantRegistry event (grants relayed by any node), as the chain shows it, in this
node's database (`grant_chain_events`) — so every node knows every grant's status, whoever relayed it.

Fed two ways, both idempotent (one row per transaction and log index): `refresh()` pulls the events since its
last pass (the grant routes call it, so they see the chain as it is now), and the `ChainInbox` lane interface
(`apply`, `forget_lost`) that the inbox thread drives. A chain that went backwards or reorganised is rescanned
after the rows of lost blocks are dropped.

    >>> index = GrantIndex(node)                                        # doctest: +SKIP
    >>> index.refresh(); index.history("ab" * 32).status                # doctest: +SKIP
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
from registry.store.holder_models import GrantChainEvent

__all__ = ["GrantHistory", "GrantIndex"]


@functools.cache
def _decoder(address: str) -> EventDecoder:
    return EventDecoder({address: load_artifact("GrantRegistry").abi})


def _plain(value: Any) -> Any:
    return hex0x(bytes(value)) if isinstance(value, (bytes, bytearray)) else value


@dataclass(frozen=True)
class GrantHistory:
    """One grant as the chain shows it."""

    digest: str
    certificate_doc: str  # hex, no 0x
    grantee_digest: str
    not_before: int
    expires_at: int
    relay_uscc: str
    anchored_block: int
    anchored_at: int
    revoked_block: int | None
    revoked_at: int | None
    revocation_digest: str | None

    @property
    def status(self) -> str:
        return "revoked" if self.revoked_block is not None else "active"

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "status": self.status}


class GrantIndex:
    contract_name = "GrantRegistry"

    def __init__(self, node: Node) -> None:
        self.node = node
        self.synced_block = -1
        self.synced_hash = ""
        self._lock = threading.Lock()

    def refresh(self) -> int:
        """Pull the events since the last pass; returns how many rows were added. ChainUnavailableError when
        the chain cannot be read."""
        with chain_boundary("reading the grant registry"), self._lock:
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
        events = [e for e in events if e.name in ("GrantAnchored", "GrantRevoked")]
        if not events:
            return 0
        headers = self.node.blocks.headers(sorted({e.block_number for e in events}))
        missing = {e.block_number for e in events} - set(headers)
        if missing:
            raise ChainError(f"blocks {sorted(missing)} vanished while indexing grant events")
        added = 0
        with self.node.db.session() as s:
            have = {(t.lower(), i) for t, i in s.execute(
                select(GrantChainEvent.tx_hash, GrantChainEvent.log_index).where(
                    GrantChainEvent.tx_hash.in_(sorted({e.tx_hash for e in events}))))}
            for e in sorted(events, key=lambda e: e.position):
                if (e.tx_hash.lower(), e.log_index) in have:
                    continue
                h = headers[e.block_number]
                s.add(GrantChainEvent(tx_hash=e.tx_hash, log_index=e.log_index, name=e.name,
                                      grant_digest=bytes(e.args["grantDigest"]).hex(),
                                      relay_uscc=unpad(e.args["relayUscc"]),
                                      args={k: _plain(v) for k, v in e.args.items()}, block_number=e.block_number,
                                      block_hash=h.hash, block_timestamp=h.timestamp))
                have.add((e.tx_hash.lower(), e.log_index))
                added += 1
        return added

    def forget_lost(self, hosted: frozenset[str]) -> int:
        """Drop the rows whose block the chain no longer has (InboxLane)."""
        with self.node.db.session() as s:
            rows = [(i, n, h) for i, n, h in s.execute(
                select(GrantChainEvent.id, GrantChainEvent.block_number, GrantChainEvent.block_hash))]
        lost = lost_steps(self.node, rows) if rows else []
        if lost:
            with self.node.db.session() as s:
                s.execute(delete(GrantChainEvent).where(GrantChainEvent.id.in_(lost)))
        return len(lost)

    def history(self, digest: str) -> GrantHistory | None:
        """A grant by its digest (hex), or None if the chain never anchored it (as far as this index knows)."""
        with self.node.db.session() as s:
            rows = s.scalars(select(GrantChainEvent).where(GrantChainEvent.grant_digest == digest.lower())
                             .order_by(GrantChainEvent.block_number, GrantChainEvent.log_index)).all()
        anchored = next((r for r in rows if r.name == "GrantAnchored"), None)
        if anchored is None:
            return None
        revoked = next((r for r in rows if r.name == "GrantRevoked"), None)
        a = anchored.args
        return GrantHistory(digest.lower(), str(a["certificateDoc"]).removeprefix("0x"),
                            str(a["granteeDigest"]).removeprefix("0x"), int(a["notBefore"]), int(a["expiresAt"]),
                            anchored.relay_uscc, anchored.block_number, anchored.block_timestamp,
                            None if revoked is None else revoked.block_number,
                            None if revoked is None else revoked.block_timestamp,
                            None if revoked is None else str(revoked.args["revocationDigest"]))
