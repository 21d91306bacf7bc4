"""Row-level helpers every ledger's unit of work uses: reserving the next serial of an identifier prefix
(any counter row: `bump`), and taking the write lock on the row a request is about to change before checking it.

    >>> with node.db.session() as s:                                   # doctest: +SKIP
    ...     lock_row(s, EvidenceRecord.status, EvidenceRecord.id, record_id)
    ...     serial = next_serial(s, "EV-XZZF-20260315")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from registry.store.ledger_models import LedgerSerial

__all__ = ["bump", "lock_row", "next_serial"]


def next_serial(s: Session, prefix: str) -> int:
    """Reserve the next serial for `prefix` inside the caller's transaction. The UPDATE takes the write lock
    first, so concurrent requests never share a serial, and a rolled-back request consumes none."""
    return bump(s, LedgerSerial.last, {"prefix": prefix})


def bump(s: Session, column: Any, key: Mapping[str, Any], n: int = 1) -> int:
    """Add ``n`` to the counter ``column`` of the row whose primary key is ``key`` (a row made at 0 when there is
    none) inside the caller's transaction, and return its new value.

    The UPDATE comes first: it takes the write lock (SQLite) or the row's lock (PostgreSQL). Without a row to
    update, ``INSERT ... ON CONFLICT DO NOTHING`` makes it: a concurrent transaction's insert of the same row,
    not yet committed and so invisible to the UPDATE, makes this insert wait for it and then do nothing, where a
    plain INSERT would fail on the primary key (PostgreSQL; SQLite's single writer never interleaves them).
    The second UPDATE then counts on whichever row was committed."""
    model = column.class_
    where = [getattr(model, name) == value for name, value in key.items()]
    bumping = update(model).where(*where).values({column.key: column + n})
    if not cast(CursorResult[Any], s.execute(bumping)).rowcount:
        dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
        s.execute(dialect.insert(model).values({**key, column.key: 0}).on_conflict_do_nothing())
        s.execute(bumping)
    value = s.scalar(select(column).where(*where))
    assert value is not None  # made above in this transaction, or by the one it waited for
    return int(value)


def lock_row(s: Session, column: Any, key: Any, value: Any) -> None:
    """Open the unit of work with a write on the row it is about to change (`UPDATE t SET column = column
    WHERE key = value`): SQLite takes its write lock there, PostgreSQL locks the row. The checks that
    follow and the step they allow are then atomic; a concurrent request waits and sees the new state
    (pysqlite runs SELECTs before the first write outside the transaction, hence a write first)."""
    s.execute(update(column.class_).where(key == value).values({column.key: column}))
