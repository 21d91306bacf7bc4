"""Alembic migrations, run programmatically (`Database.migrate()`, `lianzheng db upgrade`).

New tables get a new revision: `alembic -c registry/store/alembic.ini revision --autogenerate -m "..."`.
Ledgers add their tables in revisions of their own that all branch from 0001 (so they can be
written independently); `upgrade` goes to every head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

HERE = Path(__file__).resolve().parent


def config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    cfg = config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
