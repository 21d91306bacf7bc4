"""Reading the sub-chain for the audit: every ledger event from the deployment block (chunked ``eth_getLogs``
through chain/logs.py) and every block header in that range (``node.blocks``, batched JSON-RPC). Each header
must link to its parent and each event's block hash must be the header's (``block_link_broken``,
``event_block_mismatch``).

Events go to a callback in chain order with their ledger and block time, one chunk at a time, so memory stays
flat however long the chain. SealRegistry's events (not a ledger: no log, no checkpoints) are read in the same
pass and go, in the same order, to their own callback with the transaction's sender (from its receipt: the
seal rules judge who sent it, which the events do not name).

    >>> history = SubchainReader(node, chunk=5000)                                     # doctest: +SKIP
    >>> result = history.read(start, head, None, on_event=rules.apply, on_finding=rules.finding)  # doctest: +SKIP
    >>> result.events, result.head_header.number                                         # doctest: +SKIP
    (1234, 980)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from chain.artifacts import load_artifact
from chain.blocks import BlockReader, Header
from chain.logs import DEFAULT_CHUNK, Event, LogReader
from registry.audit._seal_rules import CONTRACT as SEAL_CONTRACT
from registry.logs.log import LEDGER_CONTRACTS, LedgerLogs, fast_reader
from registry.node import Node

EventFn = Callable[[str, Event, int], None]  # (ledger, event, block timestamp)
SealEventFn = Callable[[Event, int, str | None], None]  # (event, block timestamp, sender or None)
FindingFn = Callable[[str, str, str, str], None]  # (kind, ledger, ref, detail)
ProgressFn = Callable[[str, int, int, int], None]  # (phase, done, total, events so far)


@dataclass(frozen=True, slots=True)
class ReadResult:
    events: int  # events read in this run
    head_header: Header | None  # the header of the last block read (None if it could not be read)


class SubchainReader:
    """Headers and ledger events of the node's deployment, chunk by chunk."""

    def __init__(self, node: Node, *, chunk: int = DEFAULT_CHUNK, progress: ProgressFn | None = None) -> None:
        deployment = node.require_deployment()
        self.node = node
        self.chunk = chunk
        self.progress = progress
        abis = {deployment.address(c): load_artifact(c).abi for c in LEDGER_CONTRACTS.values()
                if c in deployment.contracts}
        # a deployment made before e-seals has no SealRegistry
        self.seal_address = deployment.address(SEAL_CONTRACT).lower() if SEAL_CONTRACT in deployment.contracts else ""
        if self.seal_address:
            abis[deployment.address(SEAL_CONTRACT)] = load_artifact(SEAL_CONTRACT).abi
        self.reader: LogReader = fast_reader(node.backend, abis, chunk=chunk)

    @property
    def blocks(self) -> BlockReader:
        return self.node.blocks

    def head(self) -> int:
        return self.blocks.head()

    def read(self, logs: LedgerLogs, start: int, head: int, prev_hash: str | None, *, on_event: EventFn,
             on_finding: FindingFn, on_seal: SealEventFn | None = None) -> ReadResult:
        """Read blocks [start, head]: each chunk's headers (parent links checked across chunks, from
        `prev_hash`, the hash of block start - 1 when resuming), then its logs, appended to `logs`; seal
        events go to `on_seal`."""
        previous, header, events = prev_hash, None, 0
        for lo in range(start, head + 1, self.chunk):
            hi = min(lo + self.chunk - 1, head)
            headers = self.blocks.header_range(lo, hi)
            for n in range(lo, hi + 1):
                header = headers.get(n)
                if header is None:
                    on_finding("block_link_broken", "", str(n), f"block {n} could not be read")
                    previous = None
                    continue
                if previous is not None and header.parent_hash != previous:
                    on_finding("block_link_broken", "", str(n),
                               f"block {n} names parent {header.parent_hash}, but block {n - 1} is {previous}")
                previous = header.hash
            raws = self.reader.raw_logs(lo, hi)
            senders = self._senders(raws) if on_seal is not None and self.seal_address else {}
            for raw in raws:
                e = self.reader.decoder.decode(raw)
                if e is None:
                    continue
                events += 1
                h = headers.get(e.block_number)
                is_seal = e.address.lower() == self.seal_address
                if h is not None and h.hash != e.block_hash.lower():
                    on_finding("event_block_mismatch", "seals" if is_seal else logs.ledger_of(e) or "", e.tx_hash,
                               f"event {e.name} says block {e.block_number} is {e.block_hash}; the header is {h.hash}")
                if is_seal:
                    if on_seal is not None:
                        on_seal(e, h.timestamp if h else 0, senders.get(e.tx_hash.lower()))
                    continue
                ledger = logs.apply(e)
                if ledger is not None:
                    on_event(ledger, e, h.timestamp if h else 0)
            if self.progress is not None:
                self.progress("events", hi - start + 1, head - start + 1, events)
        return ReadResult(events, header if header is not None and header.number == head else None)

    def _senders(self, raws: list[dict[str, Any]]) -> dict[str, str]:
        """The sender of each SealRegistry transaction among `raws` (lower-case hash -> lower-case account),
        from their receipts in one batch (seal events are few)."""
        wanted = sorted({str(r["transactionHash"]).lower() for r in raws
                         if str(r.get("address", "")).lower() == self.seal_address})
        if not wanted:
            return {}
        answers = self.blocks.batch([("eth_getTransactionReceipt", [h]) for h in wanted])
        return {h: str(r["from"]).lower() for h, r in zip(wanted, answers, strict=True) if r}

    def consortium_events(self, first: int, last: int) -> Iterator[Event]:
        """The consortium's events before a window audit's first block (the roles it starts from)."""
        address = self.node.require_deployment().address("ConsortiumRegistry")
        reader = LogReader(self.node.backend, {address: load_artifact("ConsortiumRegistry").abi}, chunk=self.chunk)
        return reader.events(from_block=first, to_block=last)


__all__ = ["EventFn", "FindingFn", "ProgressFn", "ReadResult", "SealEventFn", "SubchainReader"]
