"""`lianzheng bench ...`: each benchmark lives in api/cli/bench_<name>.py and is listed here."""

from __future__ import annotations

import typer

from api.cli import bench_crypto, bench_evidence, bench_issue, bench_offline, bench_replay, bench_verify

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks on a private devnet; each prints a table.")

BENCHMARKS = (bench_crypto, bench_evidence, bench_issue, bench_offline, bench_replay, bench_verify)


def register(app: typer.Typer) -> None:
    for module in BENCHMARKS:
        module.register(bench_app)
    app.add_typer(bench_app, name="bench")
