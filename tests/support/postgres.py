"""A real PostgreSQL server for the tests: a cluster of its own in a temporary directory, on a free port.

`PostgresCluster` runs Debian's server binaries (initdb, pg_ctl; package `postgresql`, which `make test`
installs): `initdb` in a fresh directory, then `postgres -k <dir> -p <port> -c listen_addresses=127.0.0.1`
through `pg_ctl start -w`, and a connect loop with a deadline before anyone uses it. Each test (or test module)
gets a fresh database (`CREATE DATABASE ... TEMPLATE template0`, or a copy of a prepared template database).
initdb and the server refuse to run as root, and CI runs as root: then both run as the `postgres` system user
(created by the Debian package) in a directory that user owns.

The suite's database is chosen by `--db=postgresql` (or `LIANZHENG_TEST_DB=postgresql`); `database_url(where)`
then returns a fresh PostgreSQL database for each call, otherwise a SQLite file in `where`.

    with PostgresCluster.started() as cluster:
        url = cluster.create_database()          # postgresql+psycopg://postgres@127.0.0.1:<port>/t1
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import Engine

from chain.devnet import free_port

SUPERUSER = "postgres"
_names = itertools.count(1)


class PostgresMissing(RuntimeError):
    """The server binaries are not installed."""


def server_bindir() -> Path:
    """The newest /usr/lib/postgresql/<major>/bin holding initdb and pg_ctl (or `pg_config --bindir`)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    raise PostgresMissing("PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin: "
                          "run `make test` (it installs the Debian package postgresql) or "
                          "`apt-get install -y postgresql`")


def _as_server_user() -> tuple[Callable[[], None] | None, int | None]:
    """(preexec_fn, uid) that drop root to the `postgres` user; (None, None) when not root."""
    if os.geteuid() != 0:
        return None, None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresMissing("running as root, and there is no `postgres` system user for initdb (which refuses "
                              "root): run `make test` (it installs the Debian package postgresql, which creates "
                              "it)") from None

    def drop() -> None:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return drop, user.pw_uid


class PostgresCluster:
    """One throw-away PostgreSQL cluster. `start()` returns once it accepts connections; `stop()` removes it."""

    def __init__(self, *, port: int | None = None) -> None:
        self.bindir = server_bindir()
        self.port = port or free_port()
        self._preexec, uid = _as_server_user()
        # Not under pytest's tmp_path: /tmp/pytest-of-root is 0700, so the postgres user could not reach it.
        self.base = Path(tempfile.mkdtemp(prefix="lianzheng-pg-"))
        if uid is not None:
            os.chown(self.base, uid, -1)
        self.data = self.base / "data"
        self.log = self.base / "server.log"

    @classmethod
    @contextmanager
    def started(cls) -> Iterator[PostgresCluster]:
        cluster = cls()
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()

    def _run(self, *args: str) -> None:
        result = subprocess.run([str(self.bindir / args[0]), *args[1:]], capture_output=True, text=True,
                                preexec_fn=self._preexec, cwd=self.base)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr.strip()[-1500:]}\n{log}")

    def start(self, timeout: float = 30.0) -> None:
        # trust on 127.0.0.1 and the socket only: the cluster lives as long as the test session, in a 0700 dir
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                  "--no-sync")
        # fsync off: a test cluster never survives a power cut, and the suite writes a lot
        options = (f"-k {self.base} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=400")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", str(int(timeout)),
                  "start")
        deadline = time.monotonic() + timeout
        while True:  # pg_ctl -w waited for the postmaster; this proves TCP connections work too
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except RuntimeError:
                pass
        shutil.rmtree(self.base, ignore_errors=True)

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, *, template: str = "template0", name: str | None = None) -> str:
        """A new, empty database (or a copy of `template`, which nobody may be connected to); its URL."""
        name = name or f"t{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)


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
