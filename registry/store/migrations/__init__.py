"""Alembic migrations, run programmatically (`Database.migrate()`, `lianzheng db upgrade`).

New tables get a new revision: `alembic -c registry/store/alembic.ini revision --autogenerate -m "..."`, and its
id goes into `HEADS` (tests/integration/test_database_schema.py fails until it does). Ledgers add their tables in
revisions of their own that all branch from 0001 (so they can be written independently); `upgrade` goes to every
head.

A database that records exactly `HEADS` is not migrated again: every process opens its node's database (each
command, API and witness process, each node the tests make), and alembic would import itself and load every
revision script only to find nothing to do (~0.2 s of CPU in a new process, ~40 ms in one that has done it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).resolve().parent
#: every head revision: the scripts' own heads (test_database_schema.py keeps them equal)
HEADS = frozenset({"0002", "0003", "0004", "0005", "0006", "0007g", "0007s", "0008e", "0009g", "0009h", "0009p",
                   "0009u", "0010b", "0011i"})


def config(engine: Engine | None = None) -> Config:
    from alembic.config import Config  # alembic: only when there is something to migrate

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def current_revisions(engine: Engine) -> frozenset[str]:
    """The revisions the database records (none for a database alembic never touched)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return frozenset()
        return frozenset(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())


def upgrade(engine: Engine, revision: str = "heads") -> None:
    if revision == "heads" and current_revisions(engine) == HEADS:
        return
    from alembic import command

    cfg = config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
