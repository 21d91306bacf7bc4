"""`lianzheng` — one command, many subcommands. Every flag can also be set with a LIANZHENG_*
environment variable; errors end with one line of diagnosis and a non-zero exit status."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.markup import escape

from api.cli import (
    audit_cmds,
    bench_cmds,
    cert_cmds,
    chain_cmds,
    consortium_cmds,
    evidence_cmds,
    exchange_cmds,
    holder_cmds,
    node_cmds,
    qr_cmds,
    seal_cmds,
    usage_cmds,
    witness_cmds,
)
from api.cli._common import State, console, err_console
from api.interpreter import pin_recursion_limit
from chain.errors import ChainError
from registry.errors import RegistryError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="链证 Lianzheng: e-certificates, evidence custody and data exchanges on a permissioned chain.")


@app.callback()
def _root(
    ctx: typer.Context,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", envvar="LIANZHENG_DATA_DIR",
                                                  help="runtime state: devnet, database, keys, deployment.json")] = None,
    rpc_urls: Annotated[str | None, typer.Option("--rpc-url", envvar="LIANZHENG_RPC_URLS",
                                                 help="JSON-RPC URLs, comma-separated (default: the devnet)")] = None,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="more logs (-vv for debug)")] = 0,
) -> None:
    import structlog  # lazy: with rich's tracebacks and asyncio, not needed for `lianzheng --help`

    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level),
                        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if rpc_urls is not None:
        overrides["rpc_urls"] = rpc_urls
    ctx.obj = State(overrides)


# Every command module, listed once; each adds its commands in `register(app)`.
COMMAND_MODULES = (chain_cmds, cert_cmds, qr_cmds, evidence_cmds, exchange_cmds, audit_cmds, consortium_cmds, node_cmds,
                   seal_cmds, usage_cmds, witness_cmds, holder_cmds, bench_cmds)
for _module in COMMAND_MODULES:
    _module.register(app)


def main() -> None:
    pin_recursion_limit()  # after every import above: py_ecc and py-evm raise it (api/interpreter.py)
    try:
        rv = app(standalone_mode=False)
        if isinstance(rv, int) and rv:  # click returns the code of ctx.exit()/typer.Exit without standalone mode
            sys.exit(rv)
    except (RegistryError, ChainError) as exc:
        code = getattr(exc, "code", type(exc).__name__)
        message = " ".join(str(exc).split())  # one line of diagnosis
        err_console.print(f"[bold red]error[/] {escape(f'[{code}]')}: {escape(message)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        message = " ".join(str(exc).split())
        err_console.print(f"[bold red]error[/]: {escape(type(exc).__name__)}: {escape(message)}", highlight=False,
                          soft_wrap=True)
        sys.exit(1)


__all__ = ["app", "main", "console"]
