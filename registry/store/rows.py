"""Row-level helpers every ledger's unit of work uses: reserving the next serial of an identifier prefix,
and taking the write lock on the row a request is about to change before checking it.

    >>> with node.db.session() as s:                                   # doctest: +SKIP
    ...     lock_row(s, EvidenceRecord.status, EvidenceRecord.id, record_id)
    ...     serial = next_serial(s, "EV-XZZF-20260315")
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from registry.store.ledger_models import LedgerSerial

__all__ = ["lock_row", "next_serial"]


def next_serial(s: Session, prefix: str) -> int:
    """Reserve the next serial for `prefix` inside the caller's transaction. The UPDATE takes the write lock
    first, so concurrent requests never share a serial, and a rolled-back request consumes none."""
    result = s.execute(update(LedgerSerial).where(LedgerSerial.prefix == prefix).values(last=LedgerSerial.last + 1))
    bumped = cast(CursorResult[Any], result).rowcount
    if not bumped:
        s.add(LedgerSerial(prefix=prefix, last=1))
        s.flush()
        return 1
    return int(s.scalar(select(LedgerSerial.last).where(LedgerSerial.prefix == prefix)) or 0)


def lock_row(s: Session, column: Any, key: Any, value: Any) -> None:
    """Open the unit of work with a write on the row it is about to change (`UPDATE t SET column = column
    WHERE key = value`): SQLite takes its write lock there, PostgreSQL locks the row. The checks that
    follow and the step they allow are then atomic; a concurrent request waits and sees the new state
    (pysqlite runs SELECTs before the first write outside the transaction, hence a write first)."""
    s.execute(update(column.class_).where(key == value).values({column.key: column}))
