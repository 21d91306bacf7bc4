"""The audit's resume point: the replayed state and ledger logs at a block, saved in ``audit_snapshots`` with
a cursor in ``kv``, so ``audit replay --resume`` reads only the blocks after it. A snapshot of another chain,
of an older shape, or whose block is gone or changed (a reset sub-chain) is not used: the replay starts over.

    >>> saved = Snapshot(ReplayState(), block=9, block_hash="0x" + "00" * 32, partial=False)
    >>> saved.block, saved.partial
    (9, False)
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

from sqlalchemy import select

from registry.audit.report import Finding
from registry.audit.state import SNAPSHOT_VERSION, ReplayState
from registry.logs.log import LEDGERS, LedgerLog, LedgerLogs
from registry.node import Node
from registry.store.audit_models import AuditSnapshot
from registry.store.db import KeyValue

CURSOR_KEY = "audit:cursor"


@dataclass(frozen=True, slots=True)
class Snapshot:
    state: ReplayState
    block: int
    block_hash: str
    partial: bool


def save_snapshot(node: Node, snap: Snapshot, logs: LedgerLogs) -> None:
    data = {"v": SNAPSHOT_VERSION, "chain_id": logs.chain_id, "partial": snap.partial, "state": snap.state.to_json(),
            "logs": {name: logs.log(name).state() for name in LEDGERS}}
    blob = zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)
    with node.db.session() as s:
        row = AuditSnapshot(block=snap.block, block_hash=snap.block_hash, data=blob)
        s.add(row)
        s.flush()
        for old in s.scalars(select(AuditSnapshot).where(AuditSnapshot.id != row.id)):
            s.delete(old)  # one snapshot is enough to resume from
        s.merge(KeyValue(key=CURSOR_KEY, value=json.dumps({"snapshot": row.id, "block": snap.block,
                                                           "block_hash": snap.block_hash})))


def load_snapshot(node: Node, logs: LedgerLogs, notes: list[Finding]) -> Snapshot | None:
    """The saved snapshot, its ledger logs put into `logs`; None (and a note if the chain moved) to start over."""
    with node.db.session() as s:
        cursor = s.get(KeyValue, CURSOR_KEY)
        if cursor is None:
            return None
        c = json.loads(cursor.value)
        row = s.get(AuditSnapshot, c["snapshot"])
        if row is None:
            return None
        data = json.loads(zlib.decompress(row.data))
    if data.get("chain_id") != logs.chain_id or data.get("v") != SNAPSHOT_VERSION:
        return None
    block, block_hash = int(c["block"]), str(c["block_hash"])
    current = node.blocks.header(block)
    if current is None or current.hash != block_hash:
        notes.append(Finding("subchain_blocks_lost", "", str(block),
                             f"the audit cursor's block {block} ({block_hash}) is "
                             f"{'gone' if current is None else 'now ' + current.hash}: replaying from the start"))
        return None
    for name in LEDGERS:
        logs.logs[name] = LedgerLog.from_state(name, data["logs"][name])
    return Snapshot(ReplayState.from_json(data["state"]), block, block_hash, bool(data.get("partial")))


def clear_cursor(node: Node) -> None:
    with node.db.session() as s:
        row = s.get(KeyValue, CURSOR_KEY)
        if row is not None:
            s.delete(row)


__all__ = ["CURSOR_KEY", "Snapshot", "clear_cursor", "load_snapshot", "save_snapshot"]
