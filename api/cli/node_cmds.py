"""`lianzheng node init` prepares the data dir of a node hosting some agencies: its config (node.toml,
read by api/settings.py) and each agency's signing key, generated here in the chosen key backend, so no
other node ever sees it. It prints what the consortium must admit (account and BID per agency).
`lianzheng keys list` shows which agencies' keys this node holds and where.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from api.cli._common import console, print_json, state
from api.cli.options import JsonOpt
from api.private_files import private_dir
from api.runtime import key_store
from api.settings import NODE_CONFIG, Settings
from registry.consortium.bid import bid_from_secp256k1_public_key
from registry.consortium.key_backends import KeyBackendKind
from registry.consortium.keys import KeyStore
from registry.errors import ConflictError
from registry.identifiers import validate_uscc
from registry.store.db import Database

node_app = typer.Typer(no_args_is_help=True, help="A node of its own: prepare its data dir and agency keys.")
keys_app = typer.Typer(no_args_is_help=True, help="The agency keys this node holds.")


def register(app: typer.Typer) -> None:
    app.add_typer(node_app, name="node")
    app.add_typer(keys_app, name="keys")


@dataclass(frozen=True)
class NodeConfig:
    """What node.toml records (every key is a Settings field)."""

    agencies: tuple[str, ...]
    rpc_urls: tuple[str, ...]
    key_backend: KeyBackendKind
    pkcs11_module: Path | None
    pkcs11_token: str
    pkcs11_pin_env: str

    def toml(self) -> str:
        # TOML basic strings take JSON's escapes, so json.dumps writes each value safely
        lines = [f"agencies = [{', '.join(json.dumps(a) for a in self.agencies)}]",
                 f"key_backend = {json.dumps(self.key_backend.value)}"]
        if self.rpc_urls:
            lines.append(f"rpc_urls = {json.dumps(','.join(self.rpc_urls))}")
        if self.key_backend is KeyBackendKind.PKCS11:
            lines += [f"pkcs11_token = {json.dumps(self.pkcs11_token)}",
                      f"pkcs11_pin_env = {json.dumps(self.pkcs11_pin_env)}"]
            if self.pkcs11_module is not None:
                lines.append(f"pkcs11_module = {json.dumps(str(self.pkcs11_module))}")
        return "# written by `lianzheng node init`; LIANZHENG_* variables and flags override it\n" + \
            "\n".join(lines) + "\n"


def _store(settings: Settings) -> KeyStore:
    db = Database(settings.database)
    db.migrate()
    return key_store(settings, db)


@node_app.command("init")
def init(
    ctx: typer.Context,
    agencies: Annotated[list[str], typer.Option("--agency", help="an agency (USCC) hosted here; repeatable")],
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
    st = state(ctx)
    data_dir = Path(st.overrides.get("data_dir") or st.settings.data_dir)
    config = NodeConfig(agencies=tuple(validate_uscc(a) for a in agencies), rpc_urls=tuple(rpc_urls or ()),
                        key_backend=key_backend, pkcs11_module=pkcs11_module, pkcs11_token=pkcs11_token,
                        pkcs11_pin_env=pkcs11_pin_env)
    if (data_dir / NODE_CONFIG).exists():
        raise ConflictError(f"{data_dir / NODE_CONFIG} exists: this data dir is already a node's",
                            code="node_exists")
    private_dir(data_dir)
    (data_dir / NODE_CONFIG).write_text(config.toml())
    if deployment is not None:
        shutil.copyfile(deployment, data_dir / "deployment.json")
    settings = Settings(data_dir=data_dir)  # now reading the node.toml just written
    store = _store(settings)
    admitted = []
    for uscc in config.agencies:
        account = store.signing_account(uscc) if store.has_signing_key(uscc) else store.create_signing_key(uscc)
        admitted.append({"uscc": uscc, "account": account.address, "bid": store.bid(uscc),
                         "backend": key_backend.value})
    if as_json:
        print_json({"data_dir": str(data_dir), "agencies": admitted})
        return
    console.print(f"node prepared in {data_dir}; the consortium must admit:")
    for a in admitted:
        console.print(f"  {a['uscc']}  account {a['account']}  {a['bid']}  ({a['backend']})")


@keys_app.command("list")
def list_keys(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The agencies and accounts whose keys this node holds, and in which backend."""
    settings = state(ctx).settings
    store = _store(settings)
    rows = [{"uscc": k.uscc, "account": k.address, "backend": k.backend.value, "active": k.active,
             "bid": bid_from_secp256k1_public_key(store.backend(k.backend).public_key(k.address))}
            for k in store.held_keys()]
    if as_json:
        print_json({"key_backend": settings.key_backend, "keys": rows})
        return
    for r in rows:
        console.print(f"{r['uscc']}  {r['account']}  {r['backend']}{'' if r['active'] else '  (inactive)'}")
