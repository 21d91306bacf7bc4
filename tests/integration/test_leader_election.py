"""The leader election of the API processes (registry/store/leader.py) on a real PostgreSQL server.

Two candidates share one database, each with its own engine (as two processes would): exactly one leads;
when the leader's connection dies (the server ends its backend, as it does when the process is killed) the
other leads within 5 s and the old leader stops its writers; the server names the leading process. On
SQLite the only process leads at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from registry.store.db import Database
from registry.store.leader import LOCK_CLASS, LOCK_ID, LeaderElection, current_leader
from tests.support.postgres import PostgresCluster


class Writers:
    def __init__(self) -> None:
        self.started = 0
        self.stopped = 0

    @property
    def running(self) -> bool:
        return self.started > self.stopped


def _wait(probe: Callable[[], bool], what: str, timeout: float) -> float:
    start = time.monotonic()
    while not probe():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.fixture
def shared_db(postgres_cluster: PostgresCluster) -> Iterator[Callable[[], Database]]:
    url = postgres_cluster.create_database()
    opened: list[Database] = []

    def open_db() -> Database:
        opened.append(Database(url))
        return opened[-1]

    yield open_db
    for db in opened:
        db.engine.dispose()


def _candidate(db: Database, writers: Writers) -> LeaderElection:
    return LeaderElection(db, on_elected=lambda: setattr(writers, "started", writers.started + 1),
                          on_deposed=lambda: setattr(writers, "stopped", writers.stopped + 1), retry=0.2)


def _lock_holders(db: Database) -> list[int]:
    with db.engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = :c AND objid = :o"),
            {"c": LOCK_CLASS, "o": LOCK_ID}).scalars())


def test_one_of_two_candidates_leads_and_the_other_takes_over_when_its_connection_dies(
        shared_db: Callable[[], Database]) -> None:
    db_a, db_b, observer = shared_db(), shared_db(), shared_db()
    assert current_leader(observer).pid is None  # nobody campaigns yet
    a_writers, b_writers = Writers(), Writers()
    a = _candidate(db_a, a_writers).start()
    _wait(lambda: a.is_leader, "the first candidate to lead", 5)
    b = _candidate(db_b, b_writers).start()
    try:
        time.sleep(1.0)  # b campaigns five times meanwhile, and must lose each time
        assert (a.is_leader, b.is_leader) == (True, False)
        assert (a_writers.running, b_writers.running) == (True, False)
        assert len(_lock_holders(observer)) == 1
        assert current_leader(observer).pid == os.getpid()

        # what the server does when the leading process dies: its backend, and with it the lock, goes away
        with observer.engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": _lock_holders(observer)[0]})
        took = _wait(lambda: b.is_leader, "the second candidate to lead", 5)
        assert took < 5
        _wait(lambda: not a_writers.running, "the old leader to stop its writers", 5)
        time.sleep(0.6)  # a campaigns again, and loses now
        assert (a.is_leader, b.is_leader) == (False, True)
        assert (a_writers.running, b_writers.running) == (False, True)
        assert (a_writers.started, a_writers.stopped, b_writers.started) == (1, 1, 1)
        assert len(_lock_holders(observer)) == 1
    finally:
        b.stop()
        a.stop()
    assert not b_writers.running and b_writers.stopped == 1
    # stopping closes the connection, and the lock is free again once the server's backend has exited: that
    # follows the close, it is not part of it (a full run saw the lock held just after both stopped)
    _wait(lambda: _lock_holders(observer) == [], "the lock to be free once both candidates stopped", 5)
    assert current_leader(observer).pid is None


def test_a_stopped_leader_hands_over_at_once(shared_db: Callable[[], Database]) -> None:
    first, second = Writers(), Writers()
    a = _candidate(shared_db(), first).start()
    _wait(lambda: a.is_leader, "the first candidate to lead", 5)
    b = _candidate(shared_db(), second).start()
    try:
        a.stop()  # a graceful shutdown (SIGTERM): the writers stop, then the lock is released
        assert not first.running
        assert _wait(lambda: b.is_leader, "the second candidate to lead", 5) < 2
    finally:
        b.stop()


def test_on_sqlite_the_only_process_leads_at_once(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'one.db'}")
    writers = Writers()
    election = _candidate(db, writers).start()
    assert election.is_leader and writers.running
    assert current_leader(db).pid == os.getpid()
    election.stop()
    assert not writers.running
    db.engine.dispose()


@pytest.mark.parametrize("retry", [0, 1.5])
def test_a_retry_slower_than_a_second_is_refused(tmp_path: Path, retry: float) -> None:
    db = Database(f"sqlite:///{tmp_path / 'one.db'}")
    with pytest.raises(ValueError, match="retry must be in"):
        LeaderElection(db, on_elected=lambda: None, on_deposed=lambda: None, retry=retry)
    db.engine.dispose()


def test_the_status_route_names_the_leading_process(api: Any) -> None:
    """The app of the `api` fixture (SQLite, or PostgreSQL under --db=postgresql) leads: it runs the writers."""
    def led() -> bool:  # the election runs in a thread of its own: on PostgreSQL it may still be under way
        r = api.client.get("/api/v1/system/leader")
        assert r.status_code == 200, r.text
        return bool(r.json()["leader"])

    _wait(led, "the app to lead", 5)
    body = api.client.get("/api/v1/system/leader").json()
    assert body["database"] == api.node.db.engine.dialect.name
    assert (body["pid"], body["leader"], body["writers_running"]) == (os.getpid(), True, True)
    assert body["leader_pid"] == os.getpid() and body["elected_times"] == 1


def test_step_claims_hold_across_processes_until_released_or_disconnected(shared_db: Callable[[], Database]) -> None:
    """Two processes' claims on outbox steps (registry/store/claims.py): a step one holds, the other cannot
    take, until it is released or its holder's connection dies; kinds of step never collide."""
    a, b, observer = shared_db(), shared_db(), shared_db()
    claims_a, claims_b = a.step_claims, b.step_claims
    assert claims_a is not None and claims_b is not None
    kind = claims_a.kind("status_changes")
    assert kind != claims_a.kind("evidence_events")
    assert claims_a.claim(kind, [1, 2]) == [1, 2]
    assert claims_b.claim(kind, [2, 3]) == [3]
    assert claims_b.claim(claims_b.kind("evidence_events"), [1, 2]) == [1, 2]  # another kind of step
    claims_a.release(kind, [2])
    assert claims_b.claim(kind, [1, 2]) == [2]
    with observer.engine.connect() as conn:  # a's process dies: the server ends its backend, and its locks
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE "
                          "'lianzheng-claims%' AND pid <> pg_backend_pid() AND pid IN (SELECT pid FROM pg_locks "
                          "WHERE locktype = 'advisory' AND classid = :k AND objid = 1)"), {"k": kind})
    assert _wait(lambda: claims_b.claim(kind, [1]) == [1], "the dead holder's claim to go", 5) < 5
    claims_a.release(kind, [1])  # on a dead connection: dropped quietly, a new one is opened when needed
    assert claims_a.claim(kind, [4]) == [4]
    a.close()
    b.close()
    assert Database("sqlite:///:memory:").step_claims is None  # one writing process: in-process claims suffice
