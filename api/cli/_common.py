from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from api.settings import Settings

# tables stay readable when stdout is a pipe or a CI log (rich would assume 80 columns)
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


@dataclass
class State:
    overrides: dict[str, Any]
    _settings: Settings | None = None
    _node: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from api.settings import Settings  # lazy: pydantic-settings, only for commands that read settings

            self._settings = Settings(**self.overrides)
        return self._settings

    def node(self) -> Any:
        if self._node is None:
            # lazy: the database, the chain backend and the key store (web3, eth-account, SQLAlchemy) load
            # only for commands that open this node, not for `--help` or the HTTP clients (tests/unit/test_cli_startup.py)
            from api.runtime import build_node

            self._node = build_node(self.settings)
        return self._node


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


def print_json(obj: Any) -> None:
    """Machine-readable output on stdout (one JSON document)."""
    typer.echo(json.dumps(obj, ensure_ascii=False, default=str))


def progress(transient: bool = False) -> Progress:
    """A progress bar on stderr that reports its rate."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=transient,
    )
