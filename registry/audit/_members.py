"""The consortium's members table against the ConsortiumRegistry's events, both ways (``member_mismatch``,
``chain_record_not_in_db``, ``db_record_not_on_chain``)."""

from __future__ import annotations

from sqlalchemy import select

from registry.audit._context import CompareContext
from registry.store.db import Member

LEDGER = "consortium"


def compare_members(ctx: CompareContext) -> int:
    """Returns how many members the chain has."""
    with ctx.node.db.session() as s:
        rows = {r.uscc: r for r in s.scalars(select(Member))}
    for uscc, m in ctx.state.members.items():
        row = rows.pop(uscc, None)
        if row is None:
            ctx.add("chain_record_not_in_db", LEDGER, uscc, f"member {m.name} is not in the database")
            continue
        ctx.differs("member_mismatch", LEDGER, uscc, f"copy of {m.name}", [
            ("roles", row.roles, int(m.roles)), ("status", row.status, int(m.status)), ("bid", row.bid, m.bid),
            ("name", row.name, m.name), ("admitted in block", row.admitted_block, m.admitted_block),
            ("accounts", sorted(x.lower() for x in row.accounts), sorted(x.lower() for x in m.accounts))])
    for uscc, row in rows.items():
        ctx.add("db_record_not_on_chain", LEDGER, uscc, f"member {row.name} is not on chain")
    return len(ctx.state.members)


__all__ = ["compare_members"]
