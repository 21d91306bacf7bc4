"""compile, devnet, deploy, seed, serve, up, agency keys, members."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli._common import console, err_console, print_json, state
from api.cli.options import JsonOpt
from api.private_files import write_private
from registry.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from api.settings import Settings
    from api.supervisor import Child

# the compiler, the devnet, the node's parts, the supervisor and the server load inside the commands that use
# them: `lianzheng --help` and the other commands do without them (tests/unit/test_cli_startup.py)

devnet_app = typer.Typer(no_args_is_help=True, help="The local anvil devnet (persistent state in the data dir).")
agency_app = typer.Typer(no_args_is_help=True, help="Agencies: API keys and signing keys.")
agency_key_app = typer.Typer(no_args_is_help=True, help="Agency API keys (stored hashed).")


def register(app: typer.Typer) -> None:
    app.command("compile")(compile_cmd)
    app.add_typer(devnet_app, name="devnet")
    app.command("deploy")(deploy)
    app.command("seed")(seed)
    app.command("serve")(serve)
    app.command("up")(up)
    app.command("members")(members)
    app.command("resolve")(resolve_cmd)
    agency_app.add_typer(agency_key_app, name="key")
    app.add_typer(agency_app, name="agency")


def compile_cmd(check: Annotated[bool, typer.Option("--check", help="fail if contracts/build differs")] = False) -> None:
    """Compile contracts/*.sol with the offline npm solc into contracts/build/."""
    from chain.compile import BUILD_DIR, compile_contracts, render_artifact, write_artifacts

    artifacts = compile_contracts()
    if check:
        stale = [n for n, a in artifacts.items()
                 if not (BUILD_DIR / f"{n}.json").exists() or (BUILD_DIR / f"{n}.json").read_text() != render_artifact(a)]
        if stale:
            err_console.print(f"contracts/build is stale for: {', '.join(sorted(stale))}; run `lianzheng compile`")
            raise typer.Exit(1)
        console.print(f"contracts/build is up to date ({len(artifacts)} contracts)")
        return
    for path in write_artifacts(artifacts):
        console.print(f"wrote {path.name}")


@devnet_app.command("start")
def devnet_start(ctx: typer.Context,
                 port: Annotated[int | None, typer.Option("--port", envvar="LIANZHENG_DEVNET_PORT")] = None) -> None:
    """Start anvil in the background with persistent state (no-op if it is already running)."""
    from api.runtime import devnet

    st = state(ctx)
    if port is not None:
        st.overrides["devnet_port"] = port
    net = devnet(st.settings)
    if net.start():
        console.print(f"devnet started at {net.url} (state in {net.status().state_file})")
    else:
        console.print(f"devnet already running at {net.url}: nothing to do")


@devnet_app.command("stop")
def devnet_stop(ctx: typer.Context,
                port: Annotated[int | None, typer.Option("--port", envvar="LIANZHENG_DEVNET_PORT")] = None) -> None:
    """Stop the devnet cleanly (SIGTERM: anvil writes its state)."""
    from api.runtime import devnet

    st = state(ctx)
    if port is not None:
        st.overrides["devnet_port"] = port
    console.print("devnet stopped" if devnet(st.settings).stop() else "devnet was not running")


@devnet_app.command("status")
def devnet_status(ctx: typer.Context,
                  port: Annotated[int | None, typer.Option("--port", envvar="LIANZHENG_DEVNET_PORT")] = None,
                  as_json: JsonOpt = False) -> None:
    """Is the devnet running; its chain id and block height."""
    from api.runtime import devnet

    st = state(ctx)
    if port is not None:
        st.overrides["devnet_port"] = port
    status = devnet(st.settings).status()
    if as_json:
        print_json(asdict(status))
    elif status.running:
        console.print(f"running  pid {status.pid}  {status.url}  chain id {status.chain_id}  block {status.block_number}")
    else:
        console.print("not running")
    if not status.running:
        raise typer.Exit(1)


def deploy(ctx: typer.Context) -> None:
    """Deploy all contracts once (reuses deployment.json when it is live on this chain)."""
    from registry.consortium.members import ensure_deployment

    node = state(ctx).node()
    before = node.deployment
    deployment = ensure_deployment(node, on_step=lambda m: err_console.print(m))
    verb = "reused" if before is not None and before == deployment else "deployed"
    for c in deployment.contracts.values():
        console.print(f"{verb} {c.name:<20} {c.address}  block {c.block}")


def seed(ctx: typer.Context) -> None:
    """Admit the seed agencies (M-of-N approvals) and mirror members; safe to run again."""
    from api.nodes import prepare_node

    st = state(ctx)
    node = st.node()
    prepare_node(st.settings, node, on_step=lambda m: err_console.print(m))
    console.print(f"{len(node.consortium.members())} members on chain")


def _serve(ctx: typer.Context, fd: int | None = None) -> None:
    # lazy import: the HTTP server: only `serve`/`up` load it
    import uvicorn

    # lazy import: the FastAPI app and every route: only `serve`/`up` load it
    from api.app import create_app
    from api.logging import configure_logging

    st = state(ctx)
    configure_logging(st.settings.log_level)  # JSON lines, redacted; uvicorn's loggers go through it too
    app = create_app(st.node(), st.settings, start_build_pool=True, freeze_heap=True)
    if fd is None:
        uvicorn.run(app, host=st.settings.host, port=st.settings.port, log_config=None, access_log=False,
                    log_level=st.settings.log_level)
        return
    # one of `up --workers N`: accept on the socket `up` bound and handed down, in turns with the other processes
    # (api/accept_turns.py: the kernel alone often gives one process every connection of a burst)
    from api.accept_turns import TurnTakingServer

    config = uvicorn.Config(app, log_config=None, access_log=False, log_level=st.settings.log_level)
    TurnTakingServer(config, socket.socket(fileno=fd), st.settings.data_dir / "accept.lock").run()


PortOpt = Annotated[int | None, typer.Option("--port", help="the API's port (default 8000 or LIANZHENG_PORT)")]


WorkersOpt = Annotated[int, typer.Option("--workers", min=1, max=64, envvar="LIANZHENG_WORKERS",
                                          help="API processes on the one port (more than 1 needs PostgreSQL)")]


def serve(ctx: typer.Context, port: PortOpt = None,
          fd: Annotated[int | None, typer.Option("--fd", hidden=True, help="serve on this inherited listening "
                                                 "socket (`up --workers N` passes it)")] = None) -> None:
    """Serve the API and the verifier page (chain and deployment must exist)."""
    if port is not None:
        state(ctx).overrides["port"] = port
    _serve(ctx, fd)


def _api_children(settings: Settings, env: dict[str, str], workers: int) -> tuple[list[Child], socket.socket | None]:
    """The API processes (`api_commands`): the supervisor restarts any that dies on the same socket, so the port
    never closes and no connection is refused meanwhile. The socket must stay open while `up` runs."""
    from api.supervisor import Child, api_commands

    commands, listener = api_commands(settings.host, settings.port, workers)
    if listener is None:
        return [Child("api", commands[0], env)], None
    return [Child("api", command, env, {"worker": i}, pass_fds=(listener.fileno(),))
            for i, command in enumerate(commands)], listener


def up(ctx: typer.Context, port: PortOpt = None, workers: WorkersOpt = 1) -> None:
    """Everything `make run` does: start the devnet, deploy once, load seeds, start the witnesses, serve. The
    API and the seed consortium's three witness processes (each with its own keys and data dir under
    <data dir>/witnesses/, its account registered on the Backbone; the gateway asks them with quorum 2) run
    as child processes, each restarted if it dies; Ctrl-C (or SIGTERM) stops them and the devnet, and a devnet
    started here is stopped even if `up` itself is killed (api/supervisor.py). On an agency node (`lianzheng
    node init`) it neither deploys, admits anybody nor runs witnesses (api/nodes.py)."""
    from api.logging import configure_logging
    from api.nodes import prepare_node
    from api.runtime import devnet, secure_data_dir
    from api.supervisor import Child, DevnetWatchdog, Supervisor
    from api.witnesses import seed_witnesses

    st = state(ctx)
    if port is not None:
        st.overrides["port"] = port
    if workers > 1 and not st.settings.database.startswith("postgresql"):  # before starting anything
        raise ValidationError(f"--workers {workers} needs a PostgreSQL database (LIANZHENG_DATABASE_URL="
                              f"postgresql+psycopg://...): SQLite allows one writing process", code="workers_need_postgresql")
    configure_logging(st.settings.log_level)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    secure_data_dir(st.settings)
    net = devnet(st.settings) if st.settings.uses_devnet else None
    started = bool(net and net.start())
    watchdog = DevnetWatchdog(net) if net and started else None
    if net:
        console.print(f"devnet {'started' if started else 'already running'} at {net.url}")
    try:
        node = st.node()
        prepare_node(st.settings, node, on_step=lambda m: err_console.print(m))
        ensure_demo_keys(st)
        env = {**os.environ, "LIANZHENG_DATA_DIR": str(st.settings.data_dir.resolve()),
               "LIANZHENG_PORT": str(st.settings.port)}
        if st.settings.rpc_urls:
            env["LIANZHENG_RPC_URLS"] = st.settings.rpc_urls
        children: list[Child] = []
        witnesses = seed_witnesses(st.settings, node) if st.settings.is_platform and \
            st.settings.checkpoint_interval > 0 and not st.settings.witness_urls else []
        if witnesses:
            children += [Child("witness", w.command(), w.env(), {"agency": w.agency, "url": w.url}) for w in witnesses]
            env["LIANZHENG_WITNESS_URLS"] = ",".join(w.url for w in witnesses)
            env.setdefault("LIANZHENG_WITNESS_QUORUM", str(min(2, len(witnesses))))
            for w in witnesses:
                console.print(f"witness {w.agency} on {w.url}  (data dir {w.data_dir})", highlight=False)
        api_children, listener = _api_children(st.settings, env, workers)
        children = api_children + children
        node.db.engine.dispose()  # the API process opens its own connections
        console.print(f"API and verifier page on {st.settings.public_base}"
                      f"{f' ({workers} processes)' if workers > 1 else ''}  (Ctrl-C stops API, witnesses and devnet)")
        Supervisor(children=children).run()
        if listener is not None:
            listener.close()
    except KeyboardInterrupt:
        pass
    finally:
        if net and started:
            net.stop()
            err_console.print("devnet stopped")
        if watchdog is not None:
            watchdog.close()


def ensure_demo_keys(st) -> None:  # type: ignore[no-untyped-def]
    """In dev, write one API key per agency to <data dir>/api-keys.json the first time (for the CLI/demos)."""
    from api.nodes import hosted_agencies

    if st.settings.env == "prod":
        return
    path = st.settings.data_dir / "api-keys.json"
    if path.exists():
        return
    node = st.node()
    keys = {uscc: node.keys.create_api_key(uscc, label="dev") for uscc in hosted_agencies(st.settings, node)}
    write_private(path, json.dumps(keys, indent=2))
    err_console.print(f"dev API keys written to {path}")


@agency_key_app.command("create")
def agency_key_create(ctx: typer.Context, uscc: str,
                      label: Annotated[str, typer.Option("--label")] = "") -> None:
    """Create an API key for an agency (printed once; only its hash is stored)."""
    from api.nodes import hosted_agencies
    from registry.identifiers import validate_uscc

    st = state(ctx)
    node = st.node()
    uscc = validate_uscc(uscc)
    if uscc not in hosted_agencies(st.settings, node):  # an agency hosted elsewhere gets its keys from its node
        raise NotFoundError(f"{uscc} is not an agency hosted on this node", code="agency_not_hosted")
    typer.echo(node.keys.create_api_key(uscc, label=label))


def members(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List consortium members (as the chain has them now)."""
    from registry.consortium.members import list_members, sync_members

    node = state(ctx).node()
    sync_members(node)  # the chain is authoritative: members admitted from other nodes show at once
    views = list_members(node)
    if as_json:
        print_json([asdict(v) for v in views])
        return
    for v in views:
        console.print(f"{v.uscc}  {v.name:<16} {v.status:<9} {','.join(v.roles):<40} {v.bid}")


def resolve_cmd(ctx: typer.Context, identifier: str) -> None:
    """Resolve a BID, USCC or account to the member (多标识融合)."""
    from registry.consortium.members import resolve

    kind, view = resolve(state(ctx).node(), identifier)
    print_json({"kind": kind, "member": asdict(view)})


_ = time
