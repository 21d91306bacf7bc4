"""`lianzheng witness init|register|list|serve`: witnesses as processes of their own (C2SP tlog-witness,
api/witness_app.py, and cosignatures on the Backbone).

A witness has its own data dir holding its two keys, encrypted under that dir's master key: an Ed25519
cosignature key (C2SP ``cosignature/v1``) and a secp256k1 account that cosigns checkpoints on the Backbone
(both generated on first start, or by ``witness init``); its state file ``witness-state.json`` (0600: the last
checkpoint it cosigned per log); its own chain connections (``--rpc-url`` for the sub-chain it rebuilds every
ledger log from, ``--main-rpc-url`` for the Backbone's chain). It trusts the log keys given with ``--log-key``
(C2SP vkeys, as ``GET /logs/<ledger>/keys`` lists them; the vkey's name is the log's origin). The Backbone
owner's node registers its account (``witness register``) so that the Backbone accepts its cosignatures.

    $ lianzheng witness init --agency 11230000MB1A00036G --data-dir var/w1 --json
    $ lianzheng witness register --agency 11230000MB1A00036G --account 0x...        # on the owner's node
    $ lianzheng witness serve --agency 11230000MB1A00036G --port 9101 --data-dir var/w1 \\
        --rpc-url http://127.0.0.1:8545 --deployment var/deployment.json --log-key 'lianzheng.hl.gov.cn/...'
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli._common import console, print_json, state
from api.cli.options import JsonOpt
from registry.errors import ValidationError

if TYPE_CHECKING:
    from chain.backends import ChainBackend
    from registry.logs.witness_protocol import LogTrust

# registry.logs and chain.* (web3, the database) load inside the commands: `lianzheng --help` and the other
# commands do without them (tests/unit/test_cli_startup.py)

witness_app = typer.Typer(no_args_is_help=True, help="Witnesses of the ledger logs (C2SP tlog-witness).")

STATE_FILE = "witness-state.json"


def register(app: typer.Typer) -> None:
    app.add_typer(witness_app, name="witness")


def _trust(chain_id: int, vkeys: list[str]) -> dict[str, LogTrust]:
    """The logs this witness follows, from the log vkeys: each names its origin, whose last part is the ledger."""
    from registry.logs.cosigning import log_origin
    from registry.logs.log import LEDGERS
    from registry.logs.note import SignatureType, Verifier
    from registry.logs.witness_protocol import LogTrust

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


DataDir = Annotated[Path | None, typer.Option("--data-dir", help="this witness's own data dir")]
MainRpcUrl = Annotated[str | None, typer.Option("--main-rpc-url", envvar="LIANZHENG_MAIN_RPC_URLS",
                                                help="the Backbone's chain (default: the sub-chain)")]


@witness_app.command("init")
def init(
    ctx: typer.Context,
    agency: Annotated[str, typer.Option("--agency", help="the witness agency (USCC)")],
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Create this witness's keys in its data dir (once) and print its Backbone account and C2SP vkey."""
    from registry.identifiers import validate_uscc
    from registry.logs.witness import witness_identity

    st = state(ctx)
    if data_dir is not None:
        st.overrides["data_dir"] = data_dir
    identity = witness_identity(st.node(), validate_uscc(agency))
    if as_json:
        print_json(identity.to_json())
    else:
        console.print(f"account {identity.account}\nvkey    {identity.vkey}", highlight=False)


@witness_app.command("register")
def register_cmd(
    ctx: typer.Context,
    agency: Annotated[str, typer.Option("--agency", help="the witness agency (USCC)")],
    account: Annotated[str, typer.Option("--account", help="the witness process's account (`witness init`)")],
    main_rpc_url: MainRpcUrl = None,
    as_json: JsonOpt = False,
) -> None:
    """On the Backbone owner's node: let a witness process's account cosign checkpoints for its agency
    (replacing that agency's earlier witness account)."""
    from api.runtime import main_backend
    from registry.identifiers import validate_uscc
    from registry.logs.backbone import connect_backbone, register_witness

    st = state(ctx)
    if main_rpc_url is not None:
        st.overrides["main_rpc_urls"] = main_rpc_url
    node = st.node()
    uscc = validate_uscc(agency)
    link = connect_backbone(node, main_backend(st.settings, node))
    changed = register_witness(link, uscc, account)
    if as_json:
        print_json({"agency": uscc, "account": account, "changed": changed, "backbone": link.contract.address})
    else:
        console.print(f"{'registered' if changed else 'already registered'}: {account} cosigns for {uscc} on the "
                      f"Backbone {link.contract.address}", highlight=False)


@witness_app.command("list")
def list_cmd(ctx: typer.Context, main_rpc_url: MainRpcUrl = None, as_json: JsonOpt = False) -> None:
    """The accounts the Backbone allows to cosign, with their agencies."""
    from api.runtime import main_backend
    from registry.logs.backbone import connect_backbone, registered_witnesses

    st = state(ctx)
    if main_rpc_url is not None:
        st.overrides["main_rpc_urls"] = main_rpc_url
    node = st.node()
    witnesses = registered_witnesses(connect_backbone(node, main_backend(st.settings, node), setup=False))
    if as_json:
        print_json([{"account": a, "agency": u} for a, u in witnesses.items()])
        return
    for account, uscc in witnesses.items():
        console.print(f"{account}  {uscc}", highlight=False)


@witness_app.command("serve")
def serve(
    ctx: typer.Context,
    agency: Annotated[str, typer.Option("--agency", help="the witness agency (USCC)")],
    port: Annotated[int, typer.Option("--port")],
    log_key: Annotated[list[str], typer.Option("--log-key", help="a log's C2SP vkey (repeat per ledger)")],
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    deployment: Annotated[Path | None, typer.Option("--deployment", help="deployment.json of the sub-chain "
                                                    "(default: the data dir's)")] = None,
    data_dir: DataDir = None,
    rpc_url: Annotated[str | None, typer.Option("--rpc-url", help="this witness's own chain connection")] = None,
    main_rpc_url: MainRpcUrl = None,
    backbone: Annotated[Path | None, typer.Option("--backbone", help="backbone.json naming the Backbone "
                                                  "(default: beside the deployment file); absent: no Backbone "
                                                  "cosignatures, C2SP only")] = None,
    poll: Annotated[float, typer.Option("--poll", min=0.05, help="seconds between Backbone reads")] = 1.0,
) -> None:
    """Serve the C2SP tlog-witness protocol for one witness agency, and cosign the Backbone's checkpoints
    with this witness's own account."""
    # lazy import: the HTTP server: only `serve` loads it (the CLI starts faster for every other command)
    import uvicorn

    from api.logging import configure_logging
    from api.witness_app import create_witness_app  # lazy import: FastAPI, for the same reason
    from chain.backends import RpcBackend
    from chain.deploy import Deployment
    from chain.sender import TransactionSender
    from registry.identifiers import validate_uscc
    from registry.logs.backbone import load_backbone
    from registry.logs.cosigning import LogRoots, witness_name
    from registry.logs.log import LedgerLogs
    from registry.logs.note import SignatureType
    from registry.logs.note_keys import NoteKeys
    from registry.logs.witness import BackboneCosigner, LogProofs, Witness, witness_identity
    from registry.logs.witness_protocol import JsonWitnessState, TlogWitness

    st = state(ctx)
    if data_dir is not None:
        st.overrides["data_dir"] = data_dir
    if rpc_url is not None:
        st.overrides["rpc_urls"] = rpc_url
    configure_logging(st.settings.log_level)  # JSON lines, like the API's (both end up in `up`'s output)
    uscc = validate_uscc(agency)
    node = st.node()
    identity = witness_identity(node, uscc)  # its keys, generated on first start
    dep_file = deployment or st.settings.deployment_file
    dep = Deployment.load(dep_file)
    logs = LedgerLogs(node.backend, dep)
    key = NoteKeys(node).key(uscc, SignatureType.COSIGNATURE_V1, witness_name(uscc))
    witness = TlogWitness(key, _trust(dep.chain_id, log_key), JsonWitnessState(st.settings.data_dir / STATE_FILE),
                          LogRoots(logs))
    cosigner = None
    backbone_path = backbone or dep_file.parent / "backbone.json"
    if backbone is not None or backbone_path.exists():
        main: ChainBackend = node.backend
        if main_rpc_url and main_rpc_url.split(",") != st.settings.rpc_url_list:
            main = RpcBackend([u.strip() for u in main_rpc_url.split(",") if u.strip()], poa=st.settings.main_poa,
                              timeout=st.settings.rpc_timeout)
        link = load_backbone(node, main, backbone_path)
        sender = TransactionSender(main, node.keys.signing_account(uscc), decoder=node.decoder)
        cosigner = BackboneCosigner(Witness(db=node.db, link=link, uscc=uscc, sender=sender, proofs=LogProofs(logs)),
                                    logs, poll=poll)
    console.print(f"witness {key.name} on http://{host}:{port}\n{identity.vkey}\naccount {identity.account}"
                  + ("" if cosigner is None else f" cosigns on the Backbone {cosigner.witness.link.contract.address}"),
                  highlight=False)
    uvicorn.run(create_witness_app(witness, agency=uscc, account=identity.account, cosigner=cosigner), host=host,
                port=port, log_level="warning", access_log=False)
