"""`lianzheng node init` prepares the data dir of a node hosting some agencies: its config (node.toml,
read by api/settings.py) and each agency's signing key, generated here in the chosen key backend, so no
other node ever sees it. It prints what the consortium must admit (account and BID per agency).
`lianzheng keys list` shows which agencies' keys this node holds and where.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli._common import console, print_json, state
from api.cli.options import JsonOpt
from registry.consortium.key_backends.base import KeyBackendKind

# api.nodes (the node's parts, the key backends) and the identifiers load inside the commands: `lianzheng --help`
# and the other commands do without them (tests/unit/test_cli_startup.py)

node_app = typer.Typer(no_args_is_help=True, help="A node of its own: prepare its data dir and agency keys.")
keys_app = typer.Typer(no_args_is_help=True, help="The agency keys this node holds.")


def register(app: typer.Typer) -> None:
    app.add_typer(node_app, name="node")
    app.add_typer(keys_app, name="keys")


@node_app.command("init")
def init(
    ctx: typer.Context,
    agencies: Annotated[list[str] | None, typer.Option("--agency", help="an agency (USCC) hosted here; repeatable; "
                                                       "none: an observer node (an auditor's) holding no ledger key")]
        = None,
    rpc_urls: Annotated[list[str] | None, typer.Option("--rpc-url", help="the chain's JSON-RPC; repeatable")] = None,
    deployment: Annotated[Path | None, typer.Option("--deployment", exists=True, dir_okay=False,
                                                    help="the consortium's deployment.json")] = None,
    key_backend: Annotated[KeyBackendKind, typer.Option("--key-backend")] = KeyBackendKind.FILE,
    pkcs11_module: Annotated[Path | None, typer.Option("--pkcs11-module", help="the token's PKCS#11 library")] = None,
    pkcs11_token: Annotated[str, typer.Option("--pkcs11-token", help="the token label")] = "",
    pkcs11_pin_env: Annotated[str, typer.Option("--pkcs11-pin-env", help="variable holding the user PIN")] =
        "LIANZHENG_PKCS11_PIN",
    as_json: JsonOpt = False,
) -> None:
    """Write node.toml and generate each agency's key in this node's key backend."""
    from api.nodes import NodeConfig, init_node
    from registry.identifiers import validate_uscc

    st = state(ctx)
    data_dir = Path(st.overrides.get("data_dir") or st.settings.data_dir)
    config = NodeConfig(agencies=tuple(validate_uscc(a) for a in agencies or ()), rpc_urls=tuple(rpc_urls or ()),
                        key_backend=key_backend, pkcs11_module=pkcs11_module, pkcs11_token=pkcs11_token,
                        pkcs11_pin_env=pkcs11_pin_env)
    admitted = init_node(data_dir, config, deployment=deployment)
    if as_json:
        print_json({"data_dir": str(data_dir), "agencies": admitted})
        return
    console.print(f"node prepared in {data_dir}; the consortium must admit:")
    for a in admitted:
        console.print(f"  {a['uscc']}  account {a['account']}  {a['bid']}  ({a['backend']})")


@keys_app.command("list")
def list_keys(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The agencies and accounts whose keys this node holds, and in which backend."""
    from api.nodes import node_key_store
    from registry.consortium.bid import bid_from_secp256k1_public_key

    settings = state(ctx).settings
    store = node_key_store(settings)
    rows = [{"uscc": k.uscc, "account": k.address, "backend": k.backend.value, "active": k.active,
             "bid": store.bid(k.uscc) if k.active else
             bid_from_secp256k1_public_key(store.backend(k.backend).public_key(k.address)),
             "sm2_key": store.sm2_public_key(k.uscc).hex() if k.active and store.has_sm2_key(k.uscc) else ""}
            for k in store.held_keys()]
    if as_json:
        print_json({"key_backend": settings.key_backend, "keys": rows})
        return
    for r in rows:
        console.print(f"{r['uscc']}  {r['account']}  {r['backend']}{'' if r['active'] else '  (inactive)'}")
