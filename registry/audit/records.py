"""What each ledger tells the auditor about its own database rows, so the audit can compare the registry with
the chain both ways by key and digest without knowing each ledger's tables.

A ledger module provides ``audit_records(session) -> Iterable[LedgerRecord]``: one entry per thing it anchored
or should have anchored (registry/evidence/service.py, registry/exchanges/service.py). registry/audit/sources.py
lists them.

    >>> LedgerRecord("evidence", "EV-1", "0x01", "0x02", "registered", True, 7, None).anchored
    True
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    ledger: str  # "certificates" | "evidence" | "exchanges"
    ref: str  # the record's identifier as the database knows it
    key: str  # 0x-hex of the on-chain key (batch root, evidence id, exchange id)
    digest: str  # 0x-hex of what the chain should hold for it, recomputed from the row's content
    state: str  # the row's own status (pending / issued / revoked / ...)
    anchored: bool  # the row claims to be on chain
    block_number: int | None
    tx_hash: str | None


__all__ = ["LedgerRecord"]
