"""What every ledger comparison shares: the replayed state, the findings so far, the window and deadline of
this run, receipts fetched once, and the check of one outbox row against the event its transaction holds.

An outbox row (a batch, a status change, a custody step, an exchange step) claims a transaction: the
transaction must hold the ledger event the row describes, about the row's record (``step_mismatch`` when it
holds another event or another record; ``anchor_mismatch`` when it holds none, or when the row's block,
block hash, block time, signing account or signed bytes differ from the chain's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from eth_utils.crypto import keccak

from registry.audit.report import Finding
from registry.audit.state import ReplayState, TxEvent
from registry.node import Node
from registry.store.ledger_models import StepState

DONE = StepState.DONE.value
OPEN = (StepState.PENDING.value, StepState.SENT.value)


@dataclass(frozen=True, slots=True)
class Anchor:
    """The anchor columns an outbox row holds (None where its table has no such column)."""

    state: str
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None = None
    block_timestamp: int | None = None
    account: str | None = None
    raw_tx: bytes | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    """What the receipt of a transaction adds to its events: who sent it and the gas it used."""

    sender: str  # lower-case
    gas_used: int


@dataclass
class CompareContext:
    node: Node
    state: ReplayState
    findings: list[Finding]
    window_start: int | None  # a window audit compares only rows anchored from this block on
    deadline: float
    now: float
    head: int | None = None  # the last block replayed (None: unknown)
    _sent: dict[str, Sent] = field(default_factory=dict)
    _hosted: frozenset[str] | None = None

    def hosts(self, *usccs: str) -> bool:
        """True if any of these agencies is hosted on this node (its key store holds a key of theirs, active or
        not). A node's database holds the records of its own agencies only (nodes share nothing but the chain):
        a record on chain that involves none of them is not missing from this database."""
        if self._hosted is None:
            self._hosted = frozenset(k.uscc for k in self.node.keys.held_keys())
        return any(u in self._hosted for u in usccs)

    def add(self, kind: str, ledger: str, ref: str, detail: str) -> None:
        self.findings.append(Finding(kind, ledger, str(ref), detail))

    def before_window(self, block: int | None) -> bool:
        return self.window_start is not None and (block or 0) < self.window_start

    @property
    def deadline_at(self) -> dt.datetime:
        """Rows created before this (naive UTC, like the database's) are past the deadline."""
        return dt.datetime.fromtimestamp(self.now - self.deadline, dt.UTC).replace(tzinfo=None)

    def receipts(self, tx_hashes: Sequence[str | None]) -> Mapping[str, Sent]:
        """Sender and gas of the given mined transactions (batched, each fetched once per run), by lower-case
        hash. Read raw: only two fields are needed and checksumming every sender costs more than the call."""
        wanted = sorted({h.lower() for h in tx_hashes if h and h.lower() not in self._sent})
        if wanted:
            answers = self.node.blocks.batch([("eth_getTransactionReceipt", [h]) for h in wanted])
            for h, r in zip(wanted, answers, strict=True):
                if r:
                    self._sent[h] = Sent(str(r["from"]).lower(), int(str(r["gasUsed"]), 16))
        return self._sent

    def check_step(self, ledger: str, ref: str, what: str, anchor: Anchor, names: Collection[str], key: str,
                   *, tx_optional: bool = False) -> TxEvent | None:
        """The event of `names` about `key` in the row's transaction, after comparing the anchor columns.
        None when the row is not done (an open row is in flight; a failed one must not be on chain)."""
        events = [e for e in self.state.events_in(anchor.tx_hash) if e.ledger == ledger]
        event = next((e for e in events if e.name in names and e.key == key), None)
        if anchor.state != DONE:
            if event is not None and (anchor.state not in OPEN or self._old(event.block)):
                self.add("step_mismatch", ledger, ref, f"the database says {what} is {anchor.state}; the chain has it "
                                                       f"in block {event.block} (tx {anchor.tx_hash})")
            return None
        if anchor.tx_hash is None:
            if not tx_optional:
                self.add("anchor_mismatch", ledger, ref, f"the database says {what} is done but names no transaction")
            return None
        if self.before_window(anchor.block_number):
            return None
        if not events:
            self.add("anchor_mismatch", ledger, ref, f"the database says {what} was done in tx {anchor.tx_hash}; "
                                                     f"that transaction holds no {ledger} event")
            return None
        if event is None:
            held = ", ".join(f"{e.name} about {e.key}" for e in events)
            self.add("step_mismatch", ledger, ref, f"the database says {what} ({'/'.join(sorted(names))} about {key}) "
                                                   f"was done in tx {anchor.tx_hash}; that transaction holds {held}")
            return None
        self._compare_anchor(ledger, ref, what, anchor, event)
        return event

    def _old(self, block: int) -> bool:
        t = self.state.block_time(block)
        return t is not None and self.now - t > self.deadline

    def _compare_anchor(self, ledger: str, ref: str, what: str, anchor: Anchor, event: TxEvent) -> None:
        tx = (anchor.tx_hash or "").lower()
        diffs = []
        if anchor.block_number != event.block:
            diffs.append(f"block {anchor.block_number} (chain: {event.block})")
        if anchor.block_hash is not None and anchor.block_hash.lower() != event.block_hash:
            diffs.append(f"block hash {anchor.block_hash} (chain: {event.block_hash})")
        chain_time = self.state.block_time(event.block)
        if anchor.block_timestamp is not None and chain_time and anchor.block_timestamp != chain_time:
            diffs.append(f"block time {anchor.block_timestamp} (chain: {chain_time})")
        if anchor.raw_tx is not None and "0x" + keccak(anchor.raw_tx).hex() != tx:
            diffs.append("signed transaction bytes that do not hash to the transaction")
        if anchor.account is not None:
            receipt = self.receipts([tx]).get(tx)
            if receipt is not None and receipt.sender != anchor.account.lower():
                diffs.append(f"account {anchor.account} (chain: {receipt.sender})")
        if diffs:
            self.add("anchor_mismatch", ledger, ref, f"the database's anchor of {what} (tx {tx}) differs from the chain "
                                                     f"in: {'; '.join(diffs)}")

    def differs(self, kind: str, ledger: str, ref: str, what: str,
                pairs: Sequence[tuple[str, object, object]]) -> bool:
        """One finding naming every (field, database value, chain value) pair that differs."""
        diffs = [f"{name} {mine!r} (chain: {theirs!r})" for name, mine, theirs in pairs if mine != theirs]
        if diffs:
            self.add(kind, ledger, ref, f"the database's {what} differs from the chain in: {', '.join(diffs)}")
        return bool(diffs)


def opt_hex(value: str | None) -> str:
    """A 64-hex column as the chain's 0x form ("" for None), so both sides compare as strings."""
    if not value:
        return ""
    text = value.lower()
    return text if text.startswith("0x") else "0x" + text


__all__ = ["DONE", "OPEN", "Anchor", "CompareContext", "Sent", "opt_hex"]
