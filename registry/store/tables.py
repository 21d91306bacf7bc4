"""The Core table of an ORM model, typed as a `Table`, and the two statements the hot paths run over thousands
of rows: `insert_rows` and `update_rows`, one DBAPI ``executemany`` each.

An issuing request inserts a certificate, its blob and its number per document, and anchoring writes each
certificate's leaf and audit paths: a Core ``executemany`` builds a parameter dict per row through the
statement's compiler (~10 µs a row), more than SQLite then takes to write it. These take tuples in a fixed
column order, pass each value through its column type's bind processor for the session's dialect (what
SQLAlchemy would send: SQLite's date and datetime texts; nothing for PostgreSQL, whose driver adapts them) and
hand the rows to the driver in the session's transaction.

    >>> from registry.store.db import Certificate
    >>> table_of(Certificate).name
    'certificates'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from typing import Any, cast

from sqlalchemy import LargeBinary, Table
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session

__all__ = ["insert_rows", "table_of", "update_rows"]

_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}  # positional markers of the drivers we run on


def table_of(model: type) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def insert_rows(s: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``INSERT INTO table (columns) VALUES (...)`` once per row (each a tuple in ``columns`` order)."""
    conn = s.connection()
    q = conn.dialect.identifier_preparer.quote
    mark = _mark(conn.dialect)
    sql = (f"INSERT INTO {q(table.name)} ({', '.join(q(c) for c in columns)}) "
           f"VALUES ({', '.join(mark for _ in columns)})")
    _executemany(conn, sql, _processed(conn.dialect, table, columns, rows))


def update_rows(s: Session, table: Table, key: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``UPDATE table SET columns = ... WHERE key = ...`` once per row (each a tuple of the ``columns``' values,
    then the key's)."""
    conn = s.connection()
    q = conn.dialect.identifier_preparer.quote
    mark = _mark(conn.dialect)
    sql = f"UPDATE {q(table.name)} SET {', '.join(f'{q(c)} = {mark}' for c in columns)} WHERE {q(key)} = {mark}"
    _executemany(conn, sql, _processed(conn.dialect, table, (*columns, key), rows))


def _mark(dialect: Dialect) -> str:
    try:
        return _MARKS[dialect.paramstyle]
    except KeyError:  # pragma: no cover - a driver with named parameters only
        raise NotImplementedError(f"paramstyle {dialect.paramstyle} is not supported") from None


def _processed(dialect: Dialect, table: Table, columns: Sequence[str],
               rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """The rows as the driver takes them, worked column by column: a request's rows share most of their dates,
    their creation time and their status, so each distinct value goes through its column's bind processor once
    (SQLite's date and datetime processors format text in Python, ~1-2 µs a call), and the rows are taken apart
    and put together again by `zip` in C. A row per value in Python cost ~9.5 µs a certificate row."""
    rows = list(rows)
    if not rows:
        return []
    wrong = next((row for row in rows if len(row) != len(columns)), None)
    if wrong is not None:
        raise ValueError(f"a row of {len(wrong)} values for {len(columns)} columns")
    cols: list[Sequence[Any]] = list(zip(*rows, strict=True))  # lengths checked above
    for i, name in enumerate(columns):
        col = cols[i]
        if any(issubclass(t, Enum) for t in set(map(type, col))):  # a StrEnum is stored as its value
            col = [v.value if isinstance(v, Enum) else v for v in col]
        column_type = table.c[name].type
        process = cast(Callable[[Any], Any] | None, column_type.dialect_impl(dialect).bind_processor(dialect))
        if process is not None and isinstance(column_type, LargeBinary):  # blobs and paths: each its own, no sharing
            col = [None if v is None else process(v) for v in col]  # (hashing kilobytes to find none costs more)
        elif process is not None:
            try:
                done = {v: process(v) for v in set(col) if v is not None}
            except TypeError:  # an unhashable value (a JSON column): one call per value
                col = [None if v is None else process(v) for v in col]
            else:
                col = [None if v is None else done[v] for v in col]
        cols[i] = col
    return list(zip(*cols, strict=True))


def _executemany(conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        conn.exec_driver_sql(sql, rows)
