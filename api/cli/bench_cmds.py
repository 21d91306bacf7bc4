"""`lianzheng bench ...`: each benchmark lives in api/cli/bench_<name>.py and is listed here."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer

from api.cli import bench_crypto, bench_evidence, bench_issue, bench_offline, bench_replay, bench_verify

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks on a private devnet; each prints a table.")

BENCHMARKS = (bench_crypto, bench_evidence, bench_issue, bench_offline, bench_replay, bench_verify)


@bench_app.callback()
def _stop_cleanly_on_sigterm(ctx: typer.Context) -> None:
    """A benchmark ended by SIGTERM (``kill``, a CI job's timeout) stops what it started -- its devnet (a
    detached anvil that would otherwise outlive it), API process and clients -- as it does on Ctrl-C: the
    signal ends the run through its cleanup instead of around it. The previous handler is back afterwards."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        return
    previous = signal.signal(signal.SIGTERM, _exit_through_cleanup)
    ctx.call_on_close(lambda: signal.signal(signal.SIGTERM, previous))


def _exit_through_cleanup(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def register(app: typer.Typer) -> None:
    for module in BENCHMARKS:
        module.register(bench_app)
    app.add_typer(bench_app, name="bench")
