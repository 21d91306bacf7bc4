"""A throw-away PostgreSQL server of its own: a cluster in a temporary directory, on a free port, for the
tests (tests/support/postgres.py) and for `lianzheng bench issue --database postgresql`.

`PostgresCluster` runs Debian's server binaries (initdb, pg_ctl; package `postgresql`, which `make test`
installs): `initdb` in a fresh directory, then `postgres -k <dir> -p <port> -c listen_addresses=127.0.0.1`
through `pg_ctl start -w`, and a connect loop with a deadline before anyone uses it. initdb and the server
refuse to run as root, and CI runs as root: then both run as the `postgres` system user (created by the Debian
package) in a directory that user owns. A test cluster runs without fsync (it never outlives a power cut and
the suite writes a lot); a benchmark's is ``durable``: a commit is on disk when it returns, as SQLite's
``synchronous=FULL`` is, so the two compare.

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

from chain.devnet import free_port
from registry.errors import RegistryError

__all__ = ["SUPERUSER", "PostgresCluster", "PostgresMissing", "server_bindir"]

SUPERUSER = "postgres"
_names = itertools.count(1)


class PostgresMissing(RegistryError, RuntimeError):
    """The server binaries are not installed (the CLI reports it in one line, as any domain error)."""

    default_code = "postgresql_missing"


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

    def __init__(self, *, port: int | None = None, durable: bool = False) -> None:
        self.bindir = server_bindir()
        self.durable = durable
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
    def started(cls, *, durable: bool = False) -> Iterator[PostgresCluster]:
        cluster = cls(durable=durable)
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
        # trust on 127.0.0.1 and the socket only: the cluster lives as long as its user, in a 0700 dir
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                  "--no-sync")
        options = f"-k {self.base} -p {self.port} -c listen_addresses=127.0.0.1 -c max_connections=400"
        if not self.durable:  # a test cluster never survives a power cut, and the suite writes a lot
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
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

    @property
    def pid(self) -> int | None:
        """The postmaster's process id (its backends are its children), None when it does not run."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

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
