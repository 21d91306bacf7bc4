"""A contract's events, as the chain shows them, copied into this node's database: the index the seal and grant
registries each keep (registry/seals/index.py, registry/holders/index.py), so every node knows every seal's and
every grant's status whoever sent the transaction.

Fed two ways, both idempotent (one row per transaction and log index) and serialised by one lock: `refresh()`
pulls the events since its last pass (routes call it to see the chain as it is now), and the `ChainInbox` lane
interface (`apply`, `forget_lost`) that the inbox thread drives. A chain that went backwards or reorganised is
rescanned after the rows of lost blocks are dropped. A subclass names its contract, its row model (columns
``id``, ``tx_hash``, ``log_index``, ``block_number``, ``block_hash``) and how an event becomes a row.

    >>> index = SealIndex(node); index.refresh()                         # doctest: +SKIP
    3
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import delete, select

from chain.artifacts import load_artifact
from chain.blocks import Header
from chain.errors import ChainError
from chain.logs import Event, EventDecoder
from registry.crypto.hashing import hex0x
from registry.errors import chain_boundary
from registry.node import Node
from registry.outbox.inbox import lost_steps

__all__ = ["ChainEventIndex", "plain_arg"]


def plain_arg(value: Any) -> Any:
    """An event argument as a JSON value (bytes as 0x-hex)."""
    return hex0x(bytes(value)) if isinstance(value, (bytes, bytearray)) else value


@functools.cache
def _decoder(contract: str, address: str) -> EventDecoder:
    return EventDecoder({address: load_artifact(contract).abi})


class ChainEventIndex:
    contract_name: ClassVar[str]
    row_model: ClassVar[Any]
    #: the events kept (None: every event of the contract)
    event_names: ClassVar[frozenset[str] | None] = None

    def __init__(self, node: Node) -> None:
        self.node = node
        self.synced_block = -1
        self.synced_hash = ""
        # one writer at a time: `refresh` (request threads) and `apply` (the inbox thread) would otherwise both
        # see an event as new and insert it twice (the unique (tx_hash, log_index) then fails the request)
        self._lock = threading.RLock()

    def row(self, event: Event, header: Header) -> Any:
        """The row (an instance of `row_model`) of one event mined in the block of `header`."""
        raise NotImplementedError

    def refresh(self) -> int:
        """Pull the events since the last pass; returns how many rows were added. ChainUnavailableError when
        the chain cannot be read."""
        with chain_boundary(f"reading the {self.contract_name} events"), self._lock:
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
            decoder = _decoder(self.contract_name, address)
            events = [e for e in map(decoder.decode, raw) if e is not None and e.block_number <= head]
            added = self.apply(events, frozenset())
            self.synced_block, self.synced_hash = head, top.hash if top is not None else ""
            return added

    def apply(self, events: Sequence[Event], hosted: frozenset[str]) -> int:
        """Store the events not stored yet (InboxLane)."""
        if self.event_names is not None:
            events = [e for e in events if e.name in self.event_names]
        if not events:
            return 0
        headers = self.node.blocks.headers(sorted({e.block_number for e in events}))
        missing = {e.block_number for e in events} - set(headers)
        if missing:
            raise ChainError(f"blocks {sorted(missing)} vanished while indexing {self.contract_name} events")
        model, added = self.row_model, 0
        with self._lock, self.node.db.session() as s:
            have = {(t.lower(), i) for t, i in s.execute(select(model.tx_hash, model.log_index).where(
                model.tx_hash.in_(sorted({e.tx_hash for e in events}))))}
            for e in sorted(events, key=lambda e: e.position):
                if (e.tx_hash.lower(), e.log_index) in have:
                    continue
                s.add(self.row(e, headers[e.block_number]))
                have.add((e.tx_hash.lower(), e.log_index))
                added += 1
        return added

    def forget_lost(self, hosted: frozenset[str]) -> int:
        """Drop the rows whose block the chain no longer has (InboxLane)."""
        model = self.row_model
        with self._lock:
            with self.node.db.session() as s:
                rows = [(i, n, h) for i, n, h in s.execute(select(model.id, model.block_number, model.block_hash))]
            lost = lost_steps(self.node, rows) if rows else []
            if lost:
                with self.node.db.session() as s:
                    s.execute(delete(model).where(model.id.in_(lost)))
        return len(lost)
