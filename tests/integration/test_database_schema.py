"""Alembic migrations build, on PostgreSQL and on SQLite, exactly the schema the models declare.

`alembic upgrade heads` runs on an empty database of a real PostgreSQL server (tests/support/postgres.py)
and on an empty SQLite file; alembic's `compare_metadata` (what `revision --autogenerate` would write) must
then find nothing: no missing table, column, index or constraint, no type, nullability or server default that
differs. Then a round of the dialect-sensitive operations the registry relies on runs on both.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, insert, inspect, select, text

# Every models module: each puts its tables on Base.metadata (the logs keep theirs beside their code).
from registry.logs import cosigning, note_keys  # noqa: F401
from registry.store import audit_models, idempotency_models, ledger_models, seal_models  # noqa: F401
from registry.store.db import Base, Certificate, CertificateBlob, Database, KeyValue, Serial, StatusChange
from registry.store.ledger_models import LedgerSerial
from registry.store.migrations import HEADS, config, current_revisions
from registry.store.rows import bump, next_serial
from registry.store.states import CertificateStatus
from registry.store.tables import insert_rows, table_of, update_rows


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = request.getfixturevalue("postgres_db") if request.param == "postgresql" else \
        f"sqlite:///{tmp_path / 'empty.db'}"
    db = Database(url)
    yield db
    db.engine.dispose()


def _diff(db: Database) -> list[object]:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(ctx, Base.metadata))


def test_upgrade_heads_on_an_empty_database_builds_the_models_schema(empty_db: Database) -> None:
    assert not inspect(empty_db.engine).get_table_names()
    empty_db.migrate()
    heads = _heads()
    with empty_db.engine.connect() as conn:
        applied = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
    assert applied == heads
    assert _diff(empty_db) == []
    assert set(inspect(empty_db.engine).get_table_names()) >= set(Base.metadata.tables)


def test_migrating_twice_changes_nothing(empty_db: Database) -> None:
    empty_db.migrate()
    empty_db.migrate()  # every API process migrates at start: the second must be a no-op
    assert _diff(empty_db) == []


def test_heads_names_every_head_of_the_scripts() -> None:
    """`upgrade` skips a database that records exactly HEADS: a new revision missing from it would be skipped."""
    assert _heads() == HEADS


def test_a_database_at_every_head_is_opened_without_loading_alembic(empty_db: Database, tmp_path: Path) -> None:
    assert current_revisions(Database(f"sqlite:///{tmp_path / 'new.db'}").engine) == frozenset()
    empty_db.migrate()
    assert current_revisions(empty_db.engine) == HEADS
    code = ("import json, sys; from registry.store.db import Database; db = Database(sys.argv[1]); db.migrate(); "
            "print(json.dumps(sorted(m for m in sys.modules if m == 'alembic' or m.startswith('alembic.'))))")
    p = subprocess.run([sys.executable, "-c", code, empty_db.url], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == []
    assert _diff(empty_db) == []


def test_a_table_the_models_lack_is_reported(empty_db: Database) -> None:
    """The comparison itself can fail: a stray table is a difference."""
    empty_db.migrate()
    with empty_db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE stray (id INTEGER PRIMARY KEY)"))
    assert [d[0] for d in _diff(empty_db)] == ["remove_table"]


def test_binary_json_bigint_boolean_and_defaults_round_trip(empty_db: Database) -> None:
    empty_db.migrate()
    with empty_db.session() as s:
        s.add(KeyValue(key="cursor", value="x" * 5000))
        # a witness's state key (registry/logs/witness.py): PostgreSQL enforces VARCHAR lengths, SQLite never did
        s.add(KeyValue(key=f"witness:0x{'ab' * 20}@0x{'cd' * 32}:11230000MB1A00036G:certificates", value="{}"))
        assert next_serial(s, "EV-1") == 1
        assert next_serial(s, "EV-1") == 2
    with empty_db.session() as s:
        assert s.scalar(select(LedgerSerial.last).where(LedgerSerial.prefix == "EV-1")) == 2
        assert len(s.scalar(select(KeyValue.value)) or "") == 5000
    with empty_db.engine.begin() as conn:  # the 0004 server default fills a row inserted without the column
        conn.execute(text("INSERT INTO batches (ledger, issuer_uscc, root, size, state, attempts, created_at) "
                          "VALUES ('certificates', 'u', :root, 2, 'prepared', 0, CURRENT_TIMESTAMP)"),
                     {"root": "0x" + "ab" * 32})
        conn.execute(text("INSERT INTO certificates (identifier, type_code, issuer_uscc, serial, version, "
                          "digest_sha256, digest_sm3, status, created_at) VALUES ('id1', 't', 'u', '1', 1, "
                          "'d', 'd', 'issued', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO certificate_blobs (identifier, blob) VALUES ('id1', :blob)"),
                     {"blob": b"\x00\xff" * 100})
        conn.execute(text("INSERT INTO status_changes (identifier, action, actor_uscc, state, created_at) "
                          "VALUES ('id1', 'revoke', 'u', 'pending', CURRENT_TIMESTAMP)"))
    with empty_db.session() as s:
        change = s.scalars(select(StatusChange)).one()
        assert change.attempts == 0


def test_rows_written_by_the_driver_read_back_as_the_orm_writes_them(empty_db: Database) -> None:
    """insert_rows and update_rows (registry/store/tables.py) hand tuples to the driver with each value through
    its column's bind processor: what they write reads back through the models exactly as an ORM write does
    (a datetime's microseconds, a date, an enum's value, bytes, NULL), and in the session's transaction."""
    empty_db.migrate()
    created = dt.datetime(2026, 3, 25, 8, 30, 1, 250_001)
    on_the_second = dt.datetime(2026, 3, 25, 8, 30, 2)  # SQLite's text of a datetime without microseconds
    columns = ("identifier", "type_code", "issuer_uscc", "serial", "version", "digest_sha256", "digest_sm3",
               "valid_from", "valid_until", "status", "created_at")
    # values repeat down a column (each distinct one is converted once) beside NULLs and values seen once
    until = [None, dt.date(2031, 3, 24), dt.date(2031, 3, 24)]
    rows = [(f"rows-{i}", "t", "u", f"{i:012d}", 1, f"{i:064x}", "d", dt.date(2026, 3, 25), until[i],
             CertificateStatus.PENDING, created if i else on_the_second) for i in range(3)]
    with empty_db.session() as s:
        insert_rows(s, table_of(Certificate), columns, rows)
        insert_rows(s, table_of(CertificateBlob), ("identifier", "blob"), [("rows-1", b"\x00\xff" * 100)])
        update_rows(s, table_of(Certificate), "identifier", ("leaf_index", "proof"), [(7, b"\x01" * 64, "rows-2")])
    with empty_db.session() as s:
        certs = {c.identifier: c for c in s.scalars(select(Certificate).where(Certificate.identifier.like("rows-%")))}
        assert [certs[f"rows-{i}"].created_at for i in range(3)] == [on_the_second, created, created]
        assert certs["rows-0"].valid_from == dt.date(2026, 3, 25) and certs["rows-0"].valid_until is None
        assert [certs[f"rows-{i}"].valid_until for i in range(3)] == until
        assert certs["rows-0"].status == "pending" and certs["rows-0"].batch_id is None
        assert (certs["rows-2"].leaf_index, certs["rows-2"].proof) == (7, b"\x01" * 64)
        assert s.scalar(select(CertificateBlob.blob).where(CertificateBlob.identifier == "rows-1")) == b"\x00\xff" * 100
        # a row of the wrong length is refused before anything is written; the session's writes roll back
        with pytest.raises(ValueError, match="a row of 2 values for 3 columns"):
            insert_rows(s, table_of(Certificate), columns[:3], [("rows-9", "t", "u"), ("rows-10", "t")])
        with pytest.raises(ValueError, match="a row of 2 values for 3 columns"):
            insert_rows(s, table_of(Certificate), columns[:3], [("rows-9", "t"), ("rows-10", "t")])
    with empty_db.session() as s:
        assert s.scalar(select(func.count()).select_from(Certificate).where(Certificate.identifier.like("rows-%"))) == 3


def test_a_counter_first_made_by_two_transactions_at_once_counts_both(empty_db: Database) -> None:
    """`bump` (registry/store/rows.py): the first issue of a type by an agency, answered by two API processes at
    once, must count both. A's insert of the serial row is not committed yet when B bumps it: on PostgreSQL B's
    UPDATE does not see it and B's insert of the same row must wait for A and then add nothing (a plain INSERT
    failed there on the primary key: a 500 in `bench issue --database postgresql`); on SQLite B waits for A's
    write lock. B counts on A's row either way."""
    empty_db.migrate()
    key = {"issuer_uscc": "11230000MB1A00028M", "type_code": "race-" + empty_db.engine.dialect.name}
    answers: list[int] = []
    with empty_db.engine.connect() as a:
        a.begin()
        a.execute(insert(Serial).values(**key, last=5))

        def b() -> None:
            with empty_db.session() as s:
                answers.append(bump(s, Serial.last, key, 10))

        thread = threading.Thread(target=b)
        thread.start()
        if empty_db.engine.dialect.name == "postgresql":  # B waits on A's row before A commits: the race itself
            deadline = time.monotonic() + 30
            with empty_db.engine.connect() as watcher:
                while not watcher.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")):
                    assert time.monotonic() < deadline and thread.is_alive(), "B never waited for A"
                    time.sleep(0.01)
        a.commit()
    thread.join(60)
    assert answers == [15]
    with empty_db.session() as s:
        assert bump(s, Serial.last, key) == 16
        assert bump(s, Serial.last, {**key, "type_code": key["type_code"] + "-new"}, 3) == 3  # a row made at 0


def _heads() -> set[str]:
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(config()).get_heads())
