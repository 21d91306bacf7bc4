"""`lianzheng audit ...`: replay the chain and audit it, submit checkpoints, show the backbone, verify a report.

    $ lianzheng audit replay --html report.html          # exit 0: no findings; 1: findings; 2: could not audit
    $ lianzheng audit replay --resume --json | jq .counts
    $ lianzheng audit checkpoint                         # the gateway submits what is new now; witnesses cosign
    $ lianzheng audit backbone                           # 省级超级节点 -> 骨干节点 -> 子链, latest checkpoints
    $ lianzheng audit verify-report report.json

The auditor replays the chain itself (its own node's RPC and this data dir's database), not through the API.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.cli._common import State, console, err_console, print_json, state
from api.cli.options import JsonOpt
from registry.errors import SignatureError, ValidationError

# registry.audit, registry.logs and chain.* load inside the commands: they pull in web3, eth-account and the
# database models, which `lianzheng --help` and every other command do without (tests/unit/test_cli_startup.py)

audit_app = typer.Typer(no_args_is_help=True, help="Audit replay, checkpoints and the 星火·链网 backbone.")

MainRpc = Annotated[str | None, typer.Option("--main-rpc-url", envvar="LIANZHENG_MAIN_RPC_URLS",
                                             help="the main chain holding the Backbone (default: the business chain)")]


def register(app: typer.Typer) -> None:
    audit_app.command("replay")(replay)
    audit_app.command("checkpoint")(checkpoint)
    audit_app.command("backbone")(backbone)
    audit_app.command("verify-report")(verify_report)
    app.add_typer(audit_app, name="audit")


def _main(st: State, main_rpc_url: str | None) -> Any:
    from api.runtime import main_backend

    settings = st.settings if main_rpc_url is None else st.settings.model_copy(update={"main_rpc_urls": main_rpc_url})
    return main_backend(settings, st.node())


class _Bars:
    """One progress bar per audit phase; the event phase reports events/s."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.tasks: dict[str, TaskID] = {}
        self.start = time.perf_counter()

    def __call__(self, phase: str, done: int, total: int, events: int) -> None:
        label = {"events": "reading blocks", "headers": "block headers", "checkpoints": "checkpoints",
                 "database": "database"}.get(phase, phase)
        task = self.tasks.get(phase)
        if task is None:
            task = self.tasks[phase] = self.bar.add_task(label, total=max(total, 1), rate="")
        rate = f"{events:,} events, {events / max(time.perf_counter() - self.start, 1e-9):,.0f} events/s" if events else ""
        self.bar.update(task, completed=done, total=max(total, 1), rate=rate)


def replay(
    ctx: typer.Context,
    from_block: Annotated[int | None, typer.Option(
        "--from-block", min=0, help="start here (default: the deployment block); later = window audit")] = None,
    as_json: JsonOpt = False,
    html: Annotated[Path | None, typer.Option("--html", help="also write the readable HTML report here")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue from the saved cursor (new blocks only)")] = False,
    deadline: Annotated[float | None, typer.Option("--deadline", min=1, envvar="LIANZHENG_CHECKPOINT_DEADLINE",
                                                   help="seconds an event may wait for a checkpoint")] = None,
    auditor: Annotated[str | None, typer.Option("--auditor", envvar="LIANZHENG_AUDITOR",
                                                help="auditor member USCC that signs (default: 省司法厅)")] = None,
    sign: Annotated[bool, typer.Option("--sign/--no-sign", help="sign the report with the auditor's key")] = True,
    anchor: Annotated[bool, typer.Option("--anchor", help="anchor the signed report's digest on the Backbone")] = False,
    main_rpc_url: MainRpc = None,
) -> None:
    """Replay every event from the deployment block, check it, and compare with the database and checkpoints."""
    from registry.audit.replay import Auditor, audit_link
    from registry.audit.report import anchor_report, default_auditor, render_html, sign_report
    from registry.logs.checkpoints import connect_backbone

    st = state(ctx)
    node = st.node()
    main = _main(st, main_rpc_url)
    link = audit_link(node, None if main is node.backend else main)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=err_console) as bar:
        report = Auditor(node, link=link, progress=_Bars(bar), witness_quorum=st.settings.witness_quorum).run(
            from_block=from_block, resume=resume, deadline=deadline or st.settings.checkpoint_deadline)
    if sign or anchor:
        report = sign_report(node, report, auditor or default_auditor(node))
    if anchor:
        report = report.with_fields(anchor=anchor_report(node, connect_backbone(node, main), report))
    if html is not None:
        html.write_text(render_html(report), encoding="utf-8")
    if as_json:
        print_json(report.to_json())
    else:
        _print_report(report.to_json(), html)
    raise typer.Exit(0 if report.ok else 1)


def _print_report(data: dict[str, Any], html: Path | None) -> None:
    from registry.audit.report import KIND_TEXT

    counts = data["counts"]
    timing = data.get("timing", {})
    sub = data.get("subchain", {})
    console.print(f"sub-chain {sub.get('chain_id')} blocks {sub.get('from_block')}..{sub.get('to_block')}: "
                  f"{counts['events']:,} events ({counts['events_read']:,} read now, "
                  f"{timing.get('events_per_second') or 0:,.0f} events/s), {counts['batches']:,} batches of "
                  f"{counts['certificates_anchored']:,} certificates, {counts['evidence_records']:,} evidence records, "
                  f"{counts['exchanges']:,} exchanges, {counts.get('seals', 0):,} seals, {counts['checkpoints']} "
                  f"checkpoints with "
                  f"{counts['cosignatures']} cosignatures, {counts['db_records']:,} database rows; "
                  f"{timing.get('seconds', 0):.2f} s")
    findings = data["findings"]
    if findings:
        table = Table(title=f"{len(findings)} findings")
        for col in ("kind", "ledger", "ref", "detail"):
            table.add_column(col, overflow="fold")
        for f in findings:
            table.add_row(f["kind"], f["ledger"], f["ref"], f["detail"])
        console.print(table)
        for kind in sorted({f["kind"] for f in findings}):  # what each kind means, in words
            zh, en = KIND_TEXT.get(kind, (kind, kind))
            console.print(f"  {kind}: {zh} / {en}", highlight=False)
    else:
        console.print("[bold green]no findings[/]: the chain, the checkpoints and the database agree")
    sig = data.get("signature")
    if sig:
        console.print(f"signed by {sig['name']} ({sig['uscc']}, {sig['signer']}); digest {sig['digest']}")
    if data.get("anchor"):
        a = data["anchor"]
        console.print(f"anchored: {a['ledger']} #{a['log_index']}, checkpoint {a['checkpoint']}, tx {a['tx_hash']}")
    if html is not None:
        console.print(f"HTML report: {html}")


def checkpoint(ctx: typer.Context, as_json: JsonOpt = False, main_rpc_url: MainRpc = None) -> None:
    """Submit a checkpoint of every ledger with new events now (the gateway's key), then let witnesses cosign."""
    from registry.logs.checkpoints import CheckpointGateway, CheckpointService, connect_backbone, read_checkpoints
    from registry.logs.log import LedgerLogs

    st = state(ctx)
    node = st.node()
    link = connect_backbone(node, _main(st, main_rpc_url))
    gateway = CheckpointGateway(node, LedgerLogs(node.backend, node.require_deployment()), link_provider=lambda: link)
    done = CheckpointService(gateway).run_once(force=True)
    cosigs = {cp.hash: len(cp.cosigners) for cps in read_checkpoints(link).values() for cp in cps}
    rows: list[dict[str, Any]] = [
        {"ledger": d.ledger, "index": d.index, "tree_size": d.fields.tree_size, "root": "0x" + d.fields.root.hex(),
         "from_block": d.fields.from_block, "to_block": d.fields.to_block, "hash": "0x" + d.fields.hash.hex(),
         "tx_hash": d.tx_hash, "cosignatures": cosigs.get(d.fields.hash, 0)} for d in done]
    if as_json:
        print_json({"main_chain_id": link.chain_id, "backbone": link.contract.address, "checkpoints": rows})
        return
    if not rows:
        console.print("nothing new to checkpoint")
        return
    table = Table(title=f"checkpoints submitted to the Backbone {link.contract.address} (chain {link.chain_id})")
    for col in ("ledger", "#", "size", "blocks", "root", "cosignatures"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["ledger"], str(r["index"]), f"{r['tree_size']:,}", f"{r['from_block']}..{r['to_block']}",
                      r["root"][:18] + "…", str(r["cosignatures"]))
    console.print(table)


def backbone(ctx: typer.Context, as_json: JsonOpt = False, main_rpc_url: MainRpc = None) -> None:
    """The node hierarchy on the Backbone and each ledger's latest checkpoint."""
    from registry.audit.replay import audit_link
    from registry.logs.checkpoints import read_checkpoints

    st = state(ctx)
    node = st.node()
    main = _main(st, main_rpc_url)
    link = audit_link(node, None if main is node.backend else main)
    if link is None:
        raise ValidationError("no Backbone yet: run `lianzheng audit checkpoint` first", code="no_backbone")
    client, t = link.client, link.topology
    node_info, sub = client.get_node(t.node_id), client.get_subchain(t.subchain_id)
    witnesses = sorted({(e.args["account"], e.args["uscc"].rstrip(b"\0").decode()) for e in
                        link.reader().events(from_block=link.contract.block) if e.name == "WitnessSet" and e.args["allowed"]})
    latest = {ledger: max(cps, key=lambda c: c.index).to_json() for ledger, cps in read_checkpoints(link).items() if cps}
    data: dict[str, Any] = {
        "main_chain_id": link.chain_id, "backbone": link.contract.address,
        "super_node": {"name": t.super_node_name, "bid": client.super_node_bid(), "operator": client.owner()},
        "backbone_node": None if node_info is None else {"id": "0x" + t.node_id.hex(), "name": node_info.name,
                                                         "bid": node_info.bid},
        "subchain": None if sub is None else {"id": "0x" + t.subchain_id.hex(), "name": t.subchain_name,
                                              "chain_id": sub.chain_id, "gateway": sub.gateway, "bid": sub.bid},
        "witnesses": [{"account": a, "uscc": u} for a, u in witnesses],
        "latest_checkpoints": latest,
    }
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]{t.super_node_name}[/] {data['super_node']['bid']} (Backbone {link.contract.address}, "
                  f"chain {link.chain_id})")
    if node_info is not None:
        console.print(f"└─ [bold]{node_info.name}[/] {node_info.bid}")
    if sub is not None:
        console.print(f"   └─ {t.subchain_name} (chain {sub.chain_id}) {sub.bid}, gateway {sub.gateway}")
    console.print(f"witnesses: {', '.join(u for _, u in witnesses) or 'none'}")
    for ledger, cp in latest.items():
        console.print(f"  {ledger:<14} #{cp['index']:<4} size {cp['tree_size']:<8,} blocks ..{cp['to_block']:<8} "
                      f"{cp['cosignatures']} cosignatures")


def verify_report(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="a signed report (JSON)")]) -> None:
    """Check a report's signature and that its signer is an auditor member on chain; exit 0 when it holds."""
    from chain.contracts import Role
    from registry.audit.report import AuditReport, check_report_signer, verify_report_signature

    try:
        report = AuditReport(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{file} is not a JSON report: {exc}", code="invalid_file") from exc
    sig = report.data.get("signed_by") or report.data.get("signature") or {}
    signature_ok = verify_report_signature(report)
    node = state(ctx).node()
    signer = str(sig.get("account") or sig.get("signer") or "")
    if signature_ok and "proof" in report.data:
        try:  # the proof's key (SM2 or secp256k1) must have been the auditor's, on chain, when it signed
            check_report_signer(node, report)
        except SignatureError as exc:
            console.print(f"signature key: {exc.message}")
            signature_ok = False
    auditor_ok = bool(signer) and node.consortium.has_role(signer, Role.AUDITOR)
    console.print(f"signature: {'valid' if signature_ok else 'INVALID'}; signer {signer or '-'} "
                  f"{'is' if auditor_ok else 'is NOT'} an auditor member now; findings: {len(report.findings)}")
    raise typer.Exit(0 if signature_ok and auditor_ok else 1)
