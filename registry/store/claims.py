"""Claims on outbox steps that hold across the API processes sharing one PostgreSQL database.

    >>> claims = StepClaims(engine.url)                                  # doctest: +SKIP
    >>> claims.claim(StepClaims.kind("status_changes"), [7, 8])          # [7, 8], or those nobody else holds
    ... # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Sequence

import structlog
from sqlalchemy import URL, create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

__all__ = ["StepClaims"]

log = structlog.get_logger(__name__)


class StepClaims:
    """Claims on outbox steps that hold across the API processes of one PostgreSQL database: a request sending
    the step it just stored, and the leader's worker resending steps left behind, never send the same step
    at once. Session-level advisory locks `(kind, step id)` on one connection of this process, taken with
    `pg_try_advisory_lock` and given back with `pg_advisory_unlock`; a process that dies drops them with its
    connection. Advisory locks rather than `SELECT ... FOR UPDATE SKIP LOCKED`: a row lock held while a step
    is on its way would block the claimant's own updates of that row (marking it sent, then done), which it
    writes in other sessions."""

    def __init__(self, url: URL) -> None:
        self._engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                                     connect_args={"application_name": f"lianzheng-claims pid={os.getpid()}"[:63],
                                                   "connect_timeout": 5})
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    @staticmethod
    def kind(name: str) -> int:
        """The lock class of one kind of step: a stable 31-bit number of its table's name."""
        return zlib.crc32(name.encode()) & 0x7FFFFFFF

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self._engine.connect()
        return self._conn

    def claim(self, kind: int, ids: Sequence[int]) -> list[int]:
        """The ids no other process holds, now held here."""
        if not ids:
            return []
        with self._lock:
            try:
                rows = self._connection().execute(text(
                    "SELECT i FROM unnest(CAST(:ids AS integer[])) AS i WHERE pg_try_advisory_lock(:k, i)"),
                    {"ids": list(ids), "k": kind}).scalars().all()
            except DBAPIError:
                self._drop()
                raise
        return [int(i) for i in rows]

    def release(self, kind: int, ids: Sequence[int]) -> None:
        if not ids:
            return
        with self._lock:
            if self._conn is None:
                return  # the connection, and every lock on it, is gone already
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k, i) FROM unnest(CAST(:ids AS integer[])) AS i"),
                                   {"ids": list(ids), "k": kind})
            except DBAPIError as exc:
                log.warning("releasing step claims failed; dropping the connection (and its locks)", error=str(exc)[:200])
                self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception as exc:
                log.warning("closing the claims connection failed", error=repr(exc))
        self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()
        self._engine.dispose()
