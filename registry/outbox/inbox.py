"""The outbox's counterpart: a follower of the ledgers that mirrors into this node's database what the
agencies of *other* nodes did on chain (issue 11: nodes share nothing but the chain).

A node hosts the agencies whose signing keys its key store holds. Its own steps reach the chain through the
outbox (registry/outbox/steps.py) and are mirrored by `_apply_mirror`; a step signed on another node can only
be learnt from its event. `ChainInbox` pulls the new events of each lane's contract (one eth_getLogs per
pass, like registry/certificates/index.py) and hands them to the lane, which stores what concerns this
node's agencies as *mirrored* rows: step rows whose actor is not hosted here, already done, with the
transaction, block and signing account the chain shows; and records or exchanges created from the chain
alone, whose identifier is not on chain (only its SHA-256 is), so their id is the key's hex (`mirrored_id`).
Only what the chain holds is stored: no personal data, no purpose text.

Rules every lane keeps:
* **idempotent**: a step row is keyed by its transaction; an event already stored changes nothing, so a pass
  can be replayed (after a restart the follower starts again from the deployment block);
* **chain resets**: a chain that went backwards or reorganised (the synced block's hash changed) is
  rescanned from the deployment block after each lane dropped its mirrored steps whose block is gone and
  recomputed the rows they touched (`forget_lost`); the outbox's reconciler drops them the same way
  (`drop_lost_step`), never sends them (no key here could).

    >>> inbox = ChainInbox(node, [EvidenceInbox(node), ExchangeInbox(node)])   # doctest: +SKIP
    >>> inbox.run_once()            # events applied this pass                  # doctest: +SKIP
    3
    >>> mirrored_id("0x" + "ab" * 32) == "ab" * 32
    True
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from chain.artifacts import load_artifact
from chain.errors import ChainError
from chain.ledgers import decode_raw_transaction
from chain.logs import Event, LogReader
from registry.background import PollingLoop
from registry.crypto.hashing import hex0x, sha256_key
from registry.errors import ChainUnavailableError
from registry.node import Node
from registry.store.db import AgencyKey, utcnow
from registry.store.states import StepState

__all__ = ["ChainFacts", "ChainInbox", "InboxLane", "hosted_agencies", "is_mirrored_id", "key_of", "mirrored_id"]

log = structlog.get_logger(__name__)

_HEX64 = re.compile(r"[0-9a-f]{64}")


def mirrored_id(key: str) -> str:
    """The id of a row known from the chain only: its on-chain key (0x + 64 hex) without the prefix. It fits
    the id columns (64 characters) and the API's path, and cannot collide with an identifier (EV-, EX-)."""
    return key.lower().removeprefix("0x")


def is_mirrored_id(identifier: str | None) -> bool:
    return identifier is not None and _HEX64.fullmatch(identifier) is not None


def key_of(identifier: str | None) -> str:
    """The on-chain key of an identifier: SHA-256 of it, or, for a mirrored row's id, the key it spells
    ("" for None)."""
    if not identifier:
        return ""
    return "0x" + identifier if is_mirrored_id(identifier) else hex0x(sha256_key(identifier))


def hosted_agencies(node: Node, s: Session | None = None) -> frozenset[str]:
    """The agencies this node hosts: those whose signing keys its key store holds (read in `s` when given,
    so a unit of work that already writes sees the same database)."""
    if s is not None:
        return frozenset(s.scalars(select(AgencyKey.uscc).distinct()))
    return frozenset(k.uscc for k in node.keys.held_keys())


@dataclass(frozen=True)
class ChainFacts:
    """What a mirrored step row records besides its event: the signing account and signed bytes of each
    transaction, the hash and time of each block (read in batch before the unit of work)."""

    senders: dict[str, tuple[str | None, bytes | None]]
    blocks: dict[int, tuple[str, int]]

    @classmethod
    def read(cls, node: Node, events: Iterable[Event]) -> ChainFacts:
        events = list(events)
        senders: dict[str, tuple[str | None, bytes | None]] = {}
        for tx in sorted({e.tx_hash for e in events}):
            raw = node.blocks.raw_transaction(tx)
            senders[tx] = (decode_raw_transaction(raw).sender if raw is not None else None, raw)
        headers = node.blocks.headers(sorted({e.block_number for e in events}))
        missing = {e.block_number for e in events} - set(headers)
        if missing:  # gone between the log read and now: the next pass rescans
            raise ChainError(f"blocks {sorted(missing)} vanished while mirroring their events")
        return cls(senders, {n: (h.hash, h.timestamp) for n, h in headers.items()})

    def anchor(self, event: Event) -> dict[str, Any]:
        """The outbox columns of a step row that is on chain in `event`'s transaction."""
        account, raw = self.senders.get(event.tx_hash, (None, None))
        block_hash, ts = self.blocks[event.block_number]
        return {"state": StepState.DONE.value, "tx_hash": event.tx_hash, "block_number": event.block_number,
                "block_hash": block_hash, "block_timestamp": ts, "account": account, "raw_tx": raw,
                "attempts": 0, "done_at": utcnow()}


def lost_steps(node: Node, rows: Sequence[tuple[int, int | None, str | None]]) -> list[int]:
    """The ids among (id, block number, block hash) whose block the chain no longer has."""
    hashes = node.blocks.block_hashes(sorted({n for _, n, _ in rows if n is not None}))
    return [i for i, n, h in rows if n is not None and hashes.get(n) != h]


class InboxLane(Protocol):
    """One ledger's mirroring of foreign events (registry/evidence/inbox.py, registry/exchanges/inbox.py)."""

    contract_name: str

    def apply(self, events: Sequence[Event], hosted: frozenset[str]) -> int:
        """Store what concerns this node among the contract's new events; returns the step rows added."""

    def forget_lost(self, hosted: frozenset[str]) -> int:
        """Drop the mirrored steps whose block the chain no longer has; returns how many."""


class ChainInbox(PollingLoop):
    """Pulls the new events of every lane's contract and applies them, pass after pass (a thread, or
    `run_once()` synchronously for tests and the CLI). A chain outage is retried; a reset is rescanned."""

    thread_name = "chain-inbox"
    outages = (ChainError, OSError, ChainUnavailableError)
    idle_max = 1.0  # no new block: up to 1 s between passes (each costs two RPCs and a query)

    def __init__(self, node: Node, lanes: Sequence[InboxLane], *, poll: float = 0.5, max_backoff: float = 5.0) -> None:
        super().__init__(poll=poll, max_backoff=max_backoff)
        self.node = node
        self.lanes = list(lanes)
        self.synced_block = -1
        self.synced_hash = ""
        self._reader: LogReader | None = None
        self._addresses: dict[str, InboxLane] = {}
        self._lock = threading.Lock()

    # -- one pass ------------------------------------------------------------------------------------
    def _ensure_reader(self) -> LogReader:
        deployment = self.node.require_deployment()
        addresses = {deployment.address(lane.contract_name).lower(): lane for lane in self.lanes}
        if self._reader is None or addresses.keys() != self._addresses.keys():
            self._reader = LogReader(self.node.backend, {
                a: load_artifact(lane.contract_name).abi for a, lane in addresses.items()})
            self._addresses = addresses
            self.synced_block = -1  # a new deployment: start over
        return self._reader

    def _hash(self, number: int) -> str:
        header = self.node.blocks.header(number)
        return header.hash if header is not None else ""

    def run_once(self) -> int:
        """Apply the events since the last pass (all of them after a start or a chain reset). Returns how
        many step rows were added. A chain outage propagates (ChainError / OSError)."""
        with self._lock:
            reader = self._ensure_reader()
            head = reader.head()
            if self.synced_block >= 0 and (head < self.synced_block or self._hash(self.synced_block) != self.synced_hash):
                log.warning("chain went backwards or reorganised; the inbox rescans", synced=self.synced_block,
                            head=head)
                self.synced_block = -1
            hosted = hosted_agencies(self.node) if self.synced_block < 0 or head > self.synced_block else frozenset()
            if self.synced_block < 0:  # a full pass: first drop what a reset took away
                lost = sum(lane.forget_lost(hosted) for lane in self.lanes)
                if lost:
                    log.warning("mirrored steps lost with their blocks", count=lost)
                start = self.node.require_deployment().first_block
            else:
                start = self.synced_block + 1
            if start > head:
                if self.synced_block < 0:  # nothing to read up to the head yet: later passes start after it
                    self.synced_block, self.synced_hash = head, self._hash(head)
                return 0
            head_hash = self._hash(head)  # before reading: a reorganisation meanwhile shows at the next pass
            by_lane: dict[int, list[Event]] = {id(lane): [] for lane in self.lanes}
            for event in reader.events(from_block=start, to_block=head):
                lane = self._addresses.get(event.address.lower())
                if lane is not None:
                    by_lane[id(lane)].append(event)
            added = sum(lane.apply(by_lane[id(lane)], hosted) for lane in self.lanes if by_lane[id(lane)])
            self.synced_block, self.synced_hash = head, head_hash
            if added:
                log.info("mirrored foreign ledger steps", count=added, blocks=f"{start}-{head}")
            return added

    def run_pass(self) -> bool:
        """True when new blocks were read (the next pass follows at once, then the idle waits grow again)."""
        before = self.synced_block
        self.run_once()
        return self.synced_block != before
