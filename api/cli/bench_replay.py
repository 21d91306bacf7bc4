"""`lianzheng bench replay`: time the audit replay of a large history on a private devnet.

The history (default: 1,000 batches of 1,000 certificates = 1,000,000 certificates, plus evidence with custody
transfers and sealed cases, and data exchanges through all four steps) is built once and cached (`--cache`,
default `<data dir>/bench-replay`): the devnet's state file, the database, keys and a manifest. Certificates
are synthetic but real: each digest is a SHA-256, each batch root the RFC 6962 root of its 1,000 digests,
anchored by pipelined transactions (automine off, ~100 per block); the rows are bulk-inserted with SQLAlchemy
core. Evidence and exchanges go through their services (database first, then chain), so the audit compares
them too. Checkpoints of every ledger are submitted at the end.

Then it measures, on the same history: reading and decoding every event with web3's standard path
(`eth.get_logs` + `contract.events.X().process_log`, the baseline) and with chain/logs.py (raw `eth_getLogs`,
eth_abi decoding), and a full audit (replay, checkpoints, database comparison of every row). Targets on this
machine: >= 20,000 events/s read and decoded; the full audit of 1,000,000 certificates in < 2 minutes.

    $ lianzheng bench replay                                  # the full size, cached after the first run
    $ lianzheng bench replay --batches 20 --per-batch 50      # a quick one
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli._common import console, err_console, print_json, progress, state
from api.cli.options import JsonOpt
from registry.errors import ConflictError

MANIFEST = "history.json"


def register(app: typer.Typer) -> None:
    app.command("replay")(bench_replay)


@dataclass(frozen=True)
class HistorySpec:
    batches: int
    per_batch: int
    evidence: int
    exchanges: int
    version: int = 1  # bump when the way the history is built changes


# 2: batches anchored with their SM3 root (CertificateLedger.anchorBatch(root, sm3Root, count)); a history built
# for another version (another contract) is built again
HISTORY_VERSION = 2


def _node(cache: Path, devnet: Any, seeds_dir: Path) -> Any:
    """A node of its own on the bench devnet: database, keys and deployment all live in the cache."""
    from chain.backends import RpcBackend
    from registry.node import Node
    from registry.store.db import Database

    key_file = cache / "master.key"
    if not key_file.exists():
        key_file.write_text(os.urandom(32).hex())
    return Node.open(db=Database(f"sqlite:///{cache / 'lianzheng.db'}"), master_key=bytes.fromhex(key_file.read_text()),
                     seeds_dir=seeds_dir, backend=RpcBackend(devnet.url, timeout=120),
                     deployment_file=cache / "deployment.json")


def _devnet(cache: Path) -> Any:
    from chain.devnet import Devnet, free_port

    # a large block gas limit and no block-time surprises: the history is built in few, full blocks
    return Devnet(data_dir=cache, port=free_port(), state_interval=30)


# -- building the history ---------------------------------------------------------------------------------------


def build_history(cache: Path, spec: HistorySpec, seeds_dir: Path) -> dict[str, Any]:
    """Build the history into `cache` (replacing an earlier history there); returns the manifest."""
    from registry.consortium.members import bootstrap
    from registry.logs.checkpoints import CheckpointGateway, CheckpointService, connect_backbone
    from registry.logs.log import LedgerLogs

    if cache.exists() and any(cache.iterdir()):
        if not (cache / MANIFEST).exists() and not (cache / "devnet").exists():
            raise ConflictError(f"{cache} is not empty and holds no bench history; choose another --cache",
                                code="cache_not_empty")
        shutil.rmtree(cache)
    cache.mkdir(parents=True, exist_ok=True)
    devnet = _devnet(cache)
    devnet.start()
    started = time.perf_counter()
    try:
        node = _node(cache, devnet, seeds_dir)
        bootstrap(node)
        with progress() as bar:
            _certificates(node, spec, bar)
            _evidence(node, spec, bar)
            _exchanges(node, spec, bar)
        link = connect_backbone(node)
        CheckpointService(CheckpointGateway(node, LedgerLogs(node.backend, node.require_deployment()),
                                            link_provider=lambda: link)).run_once(force=True)
        head = node.blocks.head()
        node.db.engine.dispose()
    finally:
        devnet.stop(timeout=120)  # SIGTERM: anvil writes its state file
    manifest = {"spec": asdict(spec), "history_version": HISTORY_VERSION,
                "certificates": spec.batches * spec.per_batch, "head": head,
                "build_seconds": round(time.perf_counter() - started, 1),
                "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    (cache / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def _mine_all(node: Any) -> None:
    while int(node.backend.raw("txpool_status", [])["pending"], 16):
        node.backend.raw("evm_mine", [])


def _certificates(node: Any, spec: HistorySpec, bar: Any) -> None:
    """Anchor `batches` batches of `per_batch` real SHA-256 and SM3 digests (both RFC 6962 roots), pipelined,
    and bulk-insert their rows."""
    from sqlalchemy import insert

    from registry.crypto.hashing import sm3
    from registry.crypto.merkle import leaf_hash, root_from_leaf_hashes
    from registry.identifiers import CertificateId
    from registry.store.db import Batch, Certificate, utcnow

    seeds = node.seeds
    types = [(ct.code, ct.issuers[0]) for ct in seeds.certificate_types]
    ledger = node.certificate_ledger
    task = bar.add_task("anchoring batches", total=spec.batches, rate="")
    inserting = bar.add_task("inserting rows", total=spec.batches * spec.per_batch, rate="")
    node.backend.raw("evm_setAutomine", [False])
    t0 = time.perf_counter()
    roots: list[tuple[int, str, str, str]] = []  # (batch, root, issuer, type)
    sm3_roots: dict[str, str] = {}  # root -> SM3 root
    try:
        for b in range(spec.batches):
            type_code, issuer = types[b % len(types)]
            digests = [hashlib.sha256(_bench_doc(b, i)).digest() for i in range(spec.per_batch)]
            # RFC 6962 §2.1: leaf = SHA-256(0x00 || digest); the SM3 tree the same over the SM3 digests
            root = root_from_leaf_hashes([hashlib.sha256(b"\x00" + d).digest() for d in digests])
            sm3_root = root_from_leaf_hashes([leaf_hash(sm3(_bench_doc(b, i)), algorithm="sm3")
                                              for i in range(spec.per_batch)], algorithm="sm3")
            node.sender_for(issuer).send(ledger.anchor_batch_fn(root, sm3_root, spec.per_batch), gas=ledger.ANCHOR_GAS)
            sm3_roots["0x" + root.hex()] = "0x" + sm3_root.hex()
            roots.append((b, "0x" + root.hex(), issuer, type_code))
            if b % 100 == 99:
                node.backend.raw("evm_mine", [])
            bar.update(task, advance=1, rate=f"{(b + 1) / (time.perf_counter() - t0):,.0f} batches/s")
        _mine_all(node)
    finally:
        node.backend.raw("evm_setAutomine", [True])
    anchored = _batch_events(node)
    now = utcnow()
    t1 = time.perf_counter()
    done = 0
    with node.db.engine.begin() as conn:
        conn.execute(insert(Batch), [
            {"id": b + 1, "ledger": "certificates", "issuer_uscc": issuer, "root": root, "root_sm3": sm3_roots[root],
             "size": spec.per_batch,
             "state": "anchored", "tx_hash": anchored[root][1], "block_number": anchored[root][0],
             "block_hash": anchored[root][2], "block_timestamp": anchored[root][3],
             "issuer_account": node.sender_for(issuer).address, "attempts": 1, "created_at": now, "anchored_at": now}
            for b, root, issuer, _ in roots])
    per_commit = max(1, 50_000 // spec.per_batch)  # few, large transactions: one fsync per 50,000 rows
    for lo in range(0, len(roots), per_commit):
        with node.db.engine.begin() as conn:
            for b, _root, issuer, type_code in roots[lo:lo + per_commit]:
                rows = []
                for i in range(spec.per_batch):
                    serial = b * spec.per_batch + i + 1
                    doc = _bench_doc(b, i)
                    digest = hashlib.sha256(doc).hexdigest()
                    rows.append({"identifier": str(CertificateId.build(type_code, issuer, serial, 1)),
                                 "type_code": type_code, "issuer_uscc": issuer, "serial": f"{serial:012d}", "version": 1,
                                 "digest_sha256": digest, "digest_sm3": sm3(doc).hex(),
                                 "status": "issued", "batch_id": b + 1, "leaf_index": i, "created_at": now,
                                 "issued_at": now})
                conn.execute(insert(Certificate), rows)
                done += len(rows)
                bar.update(inserting, advance=len(rows), rate=f"{done / (time.perf_counter() - t1):,.0f} rows/s")


def _bench_doc(batch: int, i: int) -> bytes:
    """The stand-in document of leaf `i` of batch `batch`: its SHA-256 and SM3 digests are the row's digests."""
    return f"lianzheng-bench:{batch}:{i}".encode()


def _batch_events(node: Any) -> dict[str, tuple[int, str, str, int]]:
    from chain.artifacts import load_artifact
    from chain.logs import LogReader

    ledger = node.certificate_ledger
    reader = LogReader(node.backend, {ledger.address: load_artifact("CertificateLedger").abi})
    events = [e for e in reader.events(from_block=node.require_deployment().first_block) if e.name == "BatchAnchored"]
    blocks = sorted({e.block_number for e in events})
    headers = node.blocks.header_range(blocks[0], blocks[-1]) if blocks else {}
    return {"0x" + e.args["root"].hex(): (e.block_number, e.tx_hash, e.block_hash, headers[e.block_number].timestamp)
            for e in events}


def _evidence(node: Any, spec: HistorySpec, bar: Any) -> None:
    """Evidence records in cases of 20 through the evidence service; every other case is transferred to the
    省司法厅 and accepted, every third is sealed."""
    from registry.crypto.hashing import sm3
    from registry.evidence.service import MAX_BATCH, EvidenceService, EvidenceSubmission

    if not spec.evidence:
        return
    police, justice = "11230000MB1A00044B", "11230000MB1A00036G"
    service = EvidenceService(node)
    task = bar.add_task("evidence", total=spec.evidence, rate="")
    t0 = time.perf_counter()
    subs = []
    for i in range(spec.evidence):
        content = f"lianzheng-bench-evidence:{i}".encode()
        subs.append(EvidenceSubmission(
            case_no=f"黑公(哈)行罚决字〔2026〕{i // 20:05d}号", scenario="行政执法", sha256=hashlib.sha256(content).hexdigest(),
            sm3=sm3(content).hex(), size=len(content), media_type="image/jpeg",
            authority="黑龙江省公安厅", legal_basis="《行政处罚法》第四十七条", operator_id=f"HLJ-{i % 50:04d}"))
    for lo in range(0, len(subs), MAX_BATCH):
        service.register_many(police, subs[lo:lo + MAX_BATCH])
        bar.update(task, completed=min(lo + MAX_BATCH, len(subs)),
                   rate=f"{min(lo + MAX_BATCH, len(subs)) / (time.perf_counter() - t0):,.0f} records/s")
    cases = sorted({s.case_no for s in subs if s.case_no})
    for n, case_no in enumerate(cases):
        if n % 2 == 0:
            service.transfer_case(police, case_no, justice, "移送法制审核")
            service.accept_case(justice, case_no)
        if n % 3 == 0:
            service.seal(police, case_no)


def _exchanges(node: Any, spec: HistorySpec, bar: Any) -> None:
    """Data exchanges through request, authorise, deliver and acknowledge, over the shareable catalogue items."""
    from registry.exchanges.service import ExchangeService, ExchangeSubmission

    if not spec.exchanges:
        return
    seeds = node.seeds
    items = [i for i in seeds.catalogue if i.share_condition != "不予共享"]
    consumers = [m.uscc for m in seeds.members_with_role("exchange")]
    service = ExchangeService(node)
    task = bar.add_task("exchanges", total=spec.exchanges, rate="")
    t0 = time.perf_counter()
    for n in range(spec.exchanges):
        item = items[n % len(items)]
        consumer = next(c for c in consumers[n % len(consumers):] + consumers if c != item.provider)
        x = service.request(consumer, ExchangeSubmission(item=item.code, purpose=f"业务协同核查 {n}",
                                                         legal_basis="《政务信息资源共享管理暂行办法》"))
        service.authorise(item.provider, x.id, granted=True, reason="依法予以共享")
        payload = hashlib.sha256(f"lianzheng-bench-exchange:{n}".encode()).hexdigest()
        service.deliver(item.provider, x.id, sha256=payload, size=1024, records=10)
        service.acknowledge(consumer, x.id, sha256=payload)
        bar.update(task, advance=1, rate=f"{(n + 1) / (time.perf_counter() - t0):,.1f} exchanges/s")


# -- measuring ------------------------------------------------------------------------------------------------


def _read_baseline(node: Any, head: int, chunk: int) -> dict[str, Any]:
    """web3's standard path: w3.eth.get_logs (with its result formatters) + contract.events.X().process_log."""
    from chain.artifacts import load_artifact
    from chain.logs import count_with_web3
    from registry.logs.log import LEDGER_CONTRACTS

    deployment = node.require_deployment()
    abis = {deployment.address(n): load_artifact(n).abi for n in LEDGER_CONTRACTS.values()}
    t0 = time.perf_counter()
    count = count_with_web3(node.backend, abis, from_block=deployment.first_block, to_block=head, chunk=chunk)
    seconds = time.perf_counter() - t0
    return {"events": count, "seconds": round(seconds, 3), "events_per_s": round(count / seconds, 1)}


def _read_ours(node: Any, head: int, chunk: int, *, words: bool) -> dict[str, Any]:
    """chain/logs.py's LogReader (raw eth_getLogs, eth_abi), or with registry.ledger_log.WordDecoder."""
    from chain.artifacts import load_artifact
    from chain.logs import LogReader
    from registry.logs.log import LEDGER_CONTRACTS, fast_reader

    deployment = node.require_deployment()
    abis = {deployment.address(n): load_artifact(n).abi for n in LEDGER_CONTRACTS.values()}
    reader = fast_reader(node.backend, abis, chunk=chunk) if words else LogReader(node.backend, abis, chunk=chunk)
    t0 = time.perf_counter()
    count = sum(1 for _ in reader.events(from_block=deployment.first_block, to_block=head))
    seconds = time.perf_counter() - t0
    return {"events": count, "seconds": round(seconds, 3), "events_per_s": round(count / seconds, 1)}


def _best(run: Any, times: int = 3) -> dict[str, Any]:
    return min((run() for _ in range(times)), key=lambda r: r["seconds"])  # type: ignore[no-any-return]


def _audit(node: Any, bar: Any) -> dict[str, Any]:
    from registry.audit.replay import Auditor, audit_link

    tasks: dict[str, Any] = {}

    def on_progress(phase: str, done: int, total: int, events: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(f"audit: {phase}", total=max(total, 1), rate="")
        bar.update(tasks[phase], completed=done, total=max(total, 1), rate=f"{events:,} events" if events else "")

    t0 = time.perf_counter()
    report = Auditor(node, link=audit_link(node), progress=on_progress).run(save=False, deadline=10**9)
    seconds = time.perf_counter() - t0
    c = report.counts
    return {"seconds": round(seconds, 2), "events": c["events"], "db_records": c["db_records"],
            "findings": c["findings"], "by_kind": c["by_kind"], "checkpoints": c["checkpoints"],
            "events_per_s": report.data["timing"]["events_per_second"],
            "read_seconds": report.data["timing"]["read_seconds"]}


def bench_replay(
    ctx: typer.Context,
    batches: Annotated[int, typer.Option("--batches", min=1, max=100_000)] = 1000,
    per_batch: Annotated[int, typer.Option("--per-batch", min=1, max=10_000)] = 1000,
    evidence: Annotated[int, typer.Option("--evidence", min=0, max=1_000_000, help="evidence records")] = 2000,
    exchanges: Annotated[int, typer.Option("--exchanges", min=0, max=100_000, help="four-step exchanges")] = 300,
    cache: Annotated[Path | None, typer.Option("--cache", help="history cache (default <data dir>/bench-replay)")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="build the history again even if cached")] = False,
    chunk: Annotated[int, typer.Option("--chunk", min=1, help="blocks per eth_getLogs")] = 5000,
    as_json: JsonOpt = False,
) -> None:
    """Build (or reuse) a large history and time reading it and auditing it, with web3's path as a baseline."""
    spec = HistorySpec(batches, per_batch, evidence, exchanges)
    settings = state(ctx).settings
    cache = cache or settings.data_dir / "bench-replay"
    manifest_file = cache / MANIFEST
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else None
    cached = (not rebuild and manifest is not None and manifest.get("spec") == asdict(spec)
              and manifest.get("history_version") == HISTORY_VERSION)
    if not cached:
        err_console.print(f"building the history in {cache} (cached for later runs)")
        manifest = build_history(cache, spec, settings.seeds_dir)
    assert manifest is not None
    devnet = _devnet(cache)
    devnet.start(timeout=300)
    try:
        node = _node(cache, devnet, settings.seeds_dir)
        head = int(manifest["head"])
        # best of three: a read of a few thousand events takes a fraction of a second, so one run is noisy
        baseline = _best(lambda: _read_baseline(node, head, chunk))
        eth_abi = _best(lambda: _read_ours(node, head, chunk, words=False))
        ours = _best(lambda: _read_ours(node, head, chunk, words=True))
        with progress() as bar:
            audit = _audit(node, bar)
        node.db.engine.dispose()
    finally:
        devnet.stop(timeout=120)
    result = {"benchmark": "replay", "history": {**asdict(spec), "certificates": manifest["certificates"],
                                                 "blocks": head, "cached": cached,
                                                 "build_seconds": manifest["build_seconds"]},
              "read": {"baseline": baseline, "eth_abi": eth_abi, "ours": ours}, "audit": audit,
              "targets": {"events_per_s": 20_000, "audit_seconds": 120}}
    if as_json:
        print_json(result)
        return
    table = Table(title=f"lianzheng bench replay: {manifest['certificates']:,} certificates in {batches:,} batches, "
                        f"{evidence:,} evidence records, {exchanges:,} exchanges ({'cached' if cached else 'built'} "
                        f"history, {head:,} blocks)")
    for col in ("run", "events", "seconds", "events/s", "notes"):
        table.add_column(col, justify="right")
    table.add_row("baseline: web3 get_logs + process_log", f"{baseline['events']:,}", f"{baseline['seconds']:.2f}",
                  f"{baseline['events_per_s']:,.0f}", "")
    table.add_row("raw eth_getLogs + eth_abi (chain/logs.py)", f"{eth_abi['events']:,}", f"{eth_abi['seconds']:.2f}",
                  f"{eth_abi['events_per_s']:,.0f}", f"{eth_abi['events_per_s'] / max(baseline['events_per_s'], 1e-9):.1f}x "
                  "baseline")
    table.add_row("raw eth_getLogs + word decoder (audit)", f"{ours['events']:,}", f"{ours['seconds']:.2f}",
                  f"{ours['events_per_s']:,.0f}", f"{ours['events_per_s'] / max(baseline['events_per_s'], 1e-9):.1f}x "
                  f"baseline; target >= 20,000/s {'✓' if ours['events_per_s'] >= 20_000 else '✗'}")
    table.add_row("full audit (replay, checkpoints, database)", f"{audit['events']:,}", f"{audit['seconds']:.2f}",
                  f"{audit['events_per_s'] or 0:,.0f}",
                  f"{audit['db_records']:,} rows compared, {audit['findings']} findings; target < 120 s "
                  f"{'✓' if audit['seconds'] < 120 else '✗'}")
    console.print(table)
