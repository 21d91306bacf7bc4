"""`lianzheng witness serve`: one witness as its own process (C2SP tlog-witness, api/witness_app.py).

It has its own data dir (its Ed25519 cosignature key, encrypted under that dir's master key; its state file
``witness-state.json``, 0600: the last checkpoint it cosigned per log), its own chain connection (``--rpc-url``)
from which it rebuilds every ledger log before cosigning, and trusts the log keys given with ``--log-key``
(C2SP vkeys, as ``GET /logs/<ledger>/keys`` lists them; the vkey's name is the log's origin).

    $ lianzheng witness serve --agency 11230000MB1A00036G --port 9101 --data-dir var/w1 \\
        --rpc-url http://127.0.0.1:8545 --deployment var/deployment.json --log-key 'lianzheng.hl.gov.cn/...'
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli._common import console, state
from chain.deploy import Deployment
from registry.errors import ValidationError
from registry.identifiers import validate_uscc
from registry.logs.cosigning import LogRoots, log_origin, witness_name
from registry.logs.log import LEDGERS, LedgerLogs
from registry.logs.note import SignatureType, Verifier
from registry.logs.note_keys import NoteKeys
from registry.logs.witness_protocol import JsonWitnessState, LogTrust, TlogWitness

witness_app = typer.Typer(no_args_is_help=True, help="Witnesses of the ledger logs (C2SP tlog-witness).")

STATE_FILE = "witness-state.json"


def register(app: typer.Typer) -> None:
    app.add_typer(witness_app, name="witness")


def _trust(chain_id: int, vkeys: list[str]) -> dict[str, LogTrust]:
    """The logs this witness follows, from the log vkeys: each names its origin, whose last part is the ledger."""
    keys: dict[str, list[Verifier]] = {}
    for text in vkeys:
        v = Verifier.from_vkey(text)
        if v.sig_type is not SignatureType.ED25519:
            raise ValidationError(f"log key {v.name} is not an Ed25519 note key", code="invalid_vkey")
        keys.setdefault(v.name, []).append(v)
    trust = {}
    for ledger in LEDGERS:
        origin = log_origin(chain_id, ledger)
        if origin in keys:
            trust[origin] = LogTrust(ledger, tuple(keys.pop(origin)))
    if keys:
        raise ValidationError(f"no ledger log of chain {chain_id} has origin {sorted(keys)}", code="unknown_origin")
    return trust


@witness_app.command("serve")
def serve(
    ctx: typer.Context,
    agency: Annotated[str, typer.Option("--agency", help="the witness agency (USCC)")],
    port: Annotated[int, typer.Option("--port")],
    log_key: Annotated[list[str], typer.Option("--log-key", help="a log's C2SP vkey (repeat per ledger)")],
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    deployment: Annotated[Path | None, typer.Option("--deployment", help="deployment.json of the sub-chain "
                                                    "(default: the data dir's)")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="this witness's own data dir")] = None,
    rpc_url: Annotated[str | None, typer.Option("--rpc-url", help="this witness's own chain connection")] = None,
) -> None:
    """Serve the C2SP tlog-witness protocol for one witness agency."""
    # lazy import: the HTTP server: only `serve` loads it (the CLI starts faster for every other command)
    import uvicorn

    from api.witness_app import create_witness_app  # lazy import: FastAPI, for the same reason

    st = state(ctx)
    if data_dir is not None:
        st.overrides["data_dir"] = data_dir
    if rpc_url is not None:
        st.overrides["rpc_urls"] = rpc_url
    uscc = validate_uscc(agency)
    node = st.node()
    dep = Deployment.load(deployment or st.settings.deployment_file)
    logs = LedgerLogs(node.backend, dep)
    key = NoteKeys(node).key(uscc, SignatureType.COSIGNATURE_V1, witness_name(uscc))
    witness = TlogWitness(key, _trust(dep.chain_id, log_key), JsonWitnessState(st.settings.data_dir / STATE_FILE),
                          LogRoots(logs))
    console.print(f"witness {key.name} on http://{host}:{port}\n{key.verifier.vkey()}", highlight=False)
    uvicorn.run(create_witness_app(witness, agency=uscc), host=host, port=port, log_level="warning",
                access_log=False)
