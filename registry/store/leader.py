"""One leader among the API processes of a node: the process that runs the background writers (the outbox
worker, the chain inbox and the checkpoint gateway). Every other process only answers requests.

On PostgreSQL the leader holds a session-level advisory lock (`pg_try_advisory_lock`) on a dedicated
connection it keeps open: the lock lives exactly as long as that connection, so when the leader dies in any
way (even `kill -9`) the server drops the connection and the lock with it. The other processes try to take it
every `retry` seconds (<= 1 s), so one of them leads again within about a second of the leader's death. A
leader that loses its connection (server restart, network) stops its writers at once and campaigns again.
The leader names itself in its connection's `application_name`, so any process can tell who leads by asking
the server (`pg_locks` joined to `pg_stat_activity`): no row to go stale when a leader dies.

SQLite allows one writing process: there the only process leads from the start, without a lock.

    >>> election = LeaderElection(db, on_elected=start_writers, on_deposed=stop_writers)   # doctest: +SKIP
    >>> election.start(); election.is_leader                                             # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from registry.store.db import Database

__all__ = ["LOCK_CLASS", "LOCK_ID", "LeaderElection", "LeaderInfo", "current_leader"]

log = structlog.get_logger(__name__)

# pg_try_advisory_lock(int, int): shows in pg_locks as classid = LOCK_CLASS, objid = LOCK_ID, objsubid = 2.
# Advisory locks are per database, so nodes sharing a server never compete.
LOCK_CLASS = 0x4C5A  # "LZ"
LOCK_ID = 1  # the background writers
_APP_PREFIX = "lianzheng-leader"


@dataclass(frozen=True)
class LeaderInfo:
    """Who leads: the OS process id and host of the leading API process (None: nobody right now)."""

    pid: int | None
    host: str | None


def _me() -> str:
    return f"{_APP_PREFIX} pid={os.getpid()} host={socket.gethostname()}"[:63]  # NAMEDATALEN - 1


def _parse(application_name: str) -> LeaderInfo:
    fields = dict(part.split("=", 1) for part in application_name.split()[1:] if "=" in part)
    pid = fields.get("pid", "")
    return LeaderInfo(int(pid) if pid.isdigit() else None, fields.get("host"))


def current_leader(db: Database) -> LeaderInfo:
    """The process holding the lock, as the server sees it (SQLite: this process, the only one)."""
    if db.engine.dialect.name != "postgresql":
        return LeaderInfo(os.getpid(), socket.gethostname())
    with db.engine.connect() as conn:
        name = conn.execute(text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :c AND l.objid = :o AND l.objsubid = 2 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
            {"c": LOCK_CLASS, "o": LOCK_ID}).scalar()
    return _parse(name) if name else LeaderInfo(None, None)


class LeaderElection:
    """Campaigns for the lock in a thread; calls `on_elected` when this process becomes the leader and
    `on_deposed` when it stops being one (lost connection, or `stop()`)."""

    def __init__(self, db: Database, *, on_elected: Callable[[], None], on_deposed: Callable[[], None],
                 retry: float = 0.5) -> None:
        if not 0 < retry <= 1.0:
            raise ValueError(f"retry must be in (0, 1] seconds, got {retry}")
        self.db = db
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self.retry = retry
        self.is_leader = False
        self.elected_times = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None
        self._engine = None if db.engine.dialect.name != "postgresql" else create_engine(
            db.engine.url, poolclass=NullPool, connect_args={"application_name": _me(), "connect_timeout": 5},
            isolation_level="AUTOCOMMIT")

    def start(self) -> LeaderElection:
        if self._engine is None:  # SQLite: one process, the leader
            self._elected()
            return self
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.is_leader:
            self._deposed()
        self._close()

    # -- campaign ------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.is_leader:
                    self._check_held()
                elif self._try_lock():
                    self._elected()
            except DBAPIError as exc:  # the server or the connection is gone: whatever we held is gone too
                if self.is_leader:
                    log.error("leader lost its database connection; stopping the background writers",
                              error=str(exc)[:200])
                    self._deposed()
                self._close()
            except Exception as exc:  # never let the campaign die: a process that cannot lead still serves
                log.exception("leader election error", error=repr(exc))
            self._stop.wait(self.retry)

    def _try_lock(self) -> bool:
        assert self._engine is not None
        if self._conn is None:
            self._conn = self._engine.connect()
        got = self._conn.execute(text("SELECT pg_try_advisory_lock(:c, :o)"), {"c": LOCK_CLASS, "o": LOCK_ID}).scalar()
        return bool(got)

    def _check_held(self) -> None:
        assert self._conn is not None
        self._conn.execute(text("SELECT 1")).scalar()

    def _elected(self) -> None:
        self.is_leader = True
        self.elected_times += 1
        log.info("elected leader: running the background writers", pid=os.getpid())
        self.on_elected()

    def _deposed(self) -> None:
        self.is_leader = False
        try:
            self.on_deposed()
        except Exception as exc:
            log.exception("stopping the background writers failed", error=repr(exc))

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()  # closing the session releases the lock
            except Exception as exc:
                log.warning("closing the leader connection failed", error=repr(exc))
            self._conn = None

