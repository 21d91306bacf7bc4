"""`lianzheng bench ...`: each benchmark lives in api/cli/bench_<name>.py and registers itself here."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import typer

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks on a private devnet; each prints a table.")


def register(app: typer.Typer) -> None:
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if info.name.startswith("bench_") and info.name != "bench_cmds":
            importlib.import_module(f"api.cli.{info.name}").register(bench_app)
    app.add_typer(bench_app, name="bench")
