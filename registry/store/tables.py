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

from sqlalchemy import Table
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
    processors = [(i, p) for i, c in enumerate(columns)
                  if (p := table.c[c].type.dialect_impl(dialect).bind_processor(dialect)) is not None]
    out = []
    for row in rows:
        values = [v.value if isinstance(v, Enum) else v for v in row]  # a StrEnum is stored as its value
        if len(values) != len(columns):
            raise ValueError(f"a row of {len(values)} values for {len(columns)} columns")
        for i, process in processors:
            if values[i] is not None:
                values[i] = cast(Callable[[Any], Any], process)(values[i])
        out.append(tuple(values))
    return out


def _executemany(conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        conn.exec_driver_sql(sql, rows)
