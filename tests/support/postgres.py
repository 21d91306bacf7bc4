"""A real PostgreSQL server for the tests: a cluster of its own in a temporary directory, on a free port.

`PostgresCluster` (api/devtools/postgres.py, which `lianzheng bench issue --database postgresql` uses too) runs
Debian's server binaries in a directory of its own. Each test (or test module) gets a fresh database
(`CREATE DATABASE ... TEMPLATE template0`, or a copy of a prepared template database).

The suite's database is chosen by `--db=postgresql` (or `LIANZHENG_TEST_DB=postgresql`); `database_url(where)`
then returns a fresh PostgreSQL database for each call, otherwise a SQLite file in `where`.

    with PostgresCluster.started() as cluster:
        url = cluster.create_database()          # postgresql+psycopg://postgres@127.0.0.1:<port>/t1
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sqlalchemy.engine import Engine

from api.devtools.postgres import SUPERUSER, PostgresCluster, PostgresMissing, server_bindir

__all__ = ["SUPERUSER", "PostgresCluster", "PostgresMissing", "copy_database", "database_url", "selected_database",
           "server_bindir", "session_cluster", "stop_session_cluster", "stored_bytes", "template_name"]


def selected_database() -> str:
    """`sqlite` or `postgresql`: `--db` (tests/conftest.py sets LIANZHENG_TEST_DB from it) or the variable."""
    db = os.environ.get("LIANZHENG_TEST_DB", "sqlite").strip().lower() or "sqlite"
    if db not in ("sqlite", "postgresql"):
        raise ValueError(f"LIANZHENG_TEST_DB must be sqlite or postgresql, got {db!r}")
    return db


_session_cluster: PostgresCluster | None = None


def session_cluster() -> PostgresCluster:
    """The test session's cluster, started on first use (stopped by `stop_session_cluster`)."""
    global _session_cluster
    if _session_cluster is None:
        cluster = PostgresCluster()
        try:
            cluster.start()
        except BaseException:
            cluster.stop()
            raise
        _session_cluster = cluster
    return _session_cluster


def stop_session_cluster() -> None:
    global _session_cluster
    if _session_cluster is not None:
        _session_cluster.stop()
        _session_cluster = None


def database_url(where: Path, *, template: str | None = None) -> str:
    """A fresh database for one node: a SQLite file in `where`, or a new database of the session's
    PostgreSQL cluster when the suite runs on PostgreSQL (`template`: a prepared database to copy)."""
    if selected_database() == "postgresql":
        return session_cluster().create_database(template=template or "template0")
    where.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{where / 'lianzheng.db'}"


def template_name(url: str) -> str:
    """The database name of a PostgreSQL URL made here (to copy it with `database_url(..., template=...)`)."""
    return url.rsplit("/", 1)[1]


def copy_database(url: str, where: Path) -> str:
    """A private copy of a prepared database nobody is connected to: a file copy into `where` (SQLite), or
    `CREATE DATABASE ... TEMPLATE` (PostgreSQL). Returns the copy's URL."""
    if url.startswith("sqlite:///"):
        where.mkdir(parents=True, exist_ok=True)
        shutil.copy(url.removeprefix("sqlite:///"), where / "lianzheng.db")
        return f"sqlite:///{where / 'lianzheng.db'}"
    return session_cluster().create_database(template=template_name(url))


def stored_bytes(engine: Engine) -> bytes:
    """Every byte the database holds at rest, to look for what must never be stored in plaintext: the SQLite
    file with its WAL checkpointed, or the data files of the PostgreSQL database after a CHECKPOINT (only
    this database's: other tests' rows live in the same cluster)."""
    if engine.dialect.name == "sqlite":
        path = Path(engine.url.database or "")
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))
    with engine.connect() as conn:
        conn.exec_driver_sql("CHECKPOINT")
        oid = conn.exec_driver_sql("SELECT oid FROM pg_database WHERE datname = current_database()").scalar()
        data_dir = conn.exec_driver_sql("SHOW data_directory").scalar()
    return b"".join(p.read_bytes() for p in sorted(Path(str(data_dir), "base", str(oid)).iterdir()) if p.is_file())
