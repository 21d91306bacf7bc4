"""Comparing the database with the replayed chain, both ways, ledger by ledger (registry/audit/sources.py).

Besides each ledger's own comparison of every chain-derived column, a ledger whose module provides
`audit_records` is matched by key: rows that claim an anchor the chain lacks (``db_record_not_on_chain``),
rows whose recomputed digest is none the chain holds (``digest_mismatch``), and records on chain the database
does not know (``chain_record_not_in_db``).

    >>> ctx = CompareContext(node, state, findings, window_start=None, deadline=600, now=time.time())  # doctest: +SKIP
    >>> compare_database(ctx)                                                                          # doctest: +SKIP
    50373
"""

from __future__ import annotations

from collections.abc import Mapping

from registry.audit._context import CompareContext
from registry.audit.records import LedgerRecord
from registry.audit.sources import SOURCES, KeyedRecords


def compare_database(ctx: CompareContext) -> int:
    """Every source's comparison; returns how many database rows were compared."""
    n = 0
    for src in SOURCES:
        n += src.compare(ctx)
        if src.keyed is not None:
            n += _compare_keyed(ctx, src.ledger, src.keyed)
    return n


def _compare_keyed(ctx: CompareContext, ledger: str, keyed: KeyedRecords) -> int:
    chain = keyed.chain(ctx.state)
    seen: set[str] = set()
    n = 0
    with ctx.node.db.session() as s:
        for rec in keyed.records(s):
            n += 1
            _compare_record(ctx, rec, ledger, chain, seen)
    if ctx.window_start is None:
        for key in chain:
            if key not in seen and ctx.hosts(*keyed.parties(ctx.state, key)):  # other nodes hold their own records
                ctx.add("chain_record_not_in_db", ledger, key, f"the {ledger} record {key} is on chain but not in the "
                                                               f"database")
    return n


def _compare_record(ctx: CompareContext, rec: LedgerRecord, ledger: str, chain: Mapping[str, tuple[str, ...]],
                    seen: set[str]) -> None:
    key = _norm(rec.key)
    if not rec.anchored:
        return
    if ctx.before_window(rec.block_number):
        seen.add(key)
        return
    digests = chain.get(key)
    if digests is None:
        ctx.add("db_record_not_on_chain", ledger, rec.ref, f"the database says {ledger} record {rec.ref} (key {key}) is "
                                                           f"on chain since block {rec.block_number}; the chain has no "
                                                           f"such record")
        return
    seen.add(key)
    if rec.digest and _norm(rec.digest) not in digests:
        ctx.add("digest_mismatch", ledger, rec.ref, f"the database row's digest {_norm(rec.digest)} is none of the "
                                                    f"digests on chain for key {key}")


def _norm(value: str) -> str:
    text = str(value).lower()
    return text if text.startswith("0x") else "0x" + text


__all__ = ["compare_database"]
