"""`lianzheng bench evidence`: evidence records registered per second end to end (HTTP request -> on chain ->
database marked done) and custody transfers per second (transfer + accept, both on chain), on a private
devnet in a temporary directory.

Two ways, measured in the same run on the same chain: the baseline sends one request per record and per
custody step, each waiting for its receipt (what a naive client does); the pipelined way uses the batch
and whole-case routes, which send every transaction before waiting for the receipts (one nonce counter per
account, explicit gas).

    lianzheng bench evidence --count 300 --batch 100
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from api.cli._common import console, print_json, progress
from api.cli.options import JsonOpt

if TYPE_CHECKING:
    import httpx

COLLECTOR = "11230000MB1A00044B"  # 省公安厅 (evidence role)
RECIPIENT = "11230100MB1B00037B"  # 哈尔滨中院 (evidence role)


def register(app: typer.Typer) -> None:
    app.command("evidence")(bench_evidence)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _body(case_no: str, i: int, label: str) -> dict[str, Any]:
    from registry.crypto.hashing import sm3

    content = f"{label} photo {i}".encode()
    return {"case_no": case_no, "scenario": "行政执法", "sha256": hashlib.sha256(content).hexdigest(),
            "sm3": sm3(content).hex(), "size": len(content), "media_type": "image/jpeg", "authority": "黑龙江省公安厅",
            "legal_basis": "《行政处罚法》第四十七条", "operator_id": "bench-0001",
            "acquisition": {"device": "bench", "acquired_at": "2026-03-15T09:30:00+08:00"}}


def _check(r: httpx.Response) -> Any:
    if r.status_code >= 300:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: HTTP {r.status_code} {r.text[:300]}")
    return r.json()


def _gas(stack: Any, tx_hashes: list[str]) -> float:
    sample = tx_hashes[:: max(1, len(tx_hashes) // 20)]
    receipts = stack.node.blocks.receipts(sample)
    return sum(r.gas_used for r in receipts.values()) / max(len(receipts), 1)


def run_sequential(stack: Any, count: int, bar: Any) -> dict[str, Any]:
    """Baseline: one record per request, one custody step per request, each waiting for its receipt."""
    import httpx

    case_no = "BENCH-SEQ-0001"
    latencies: list[float] = []
    ids: list[str] = []
    reg_task = bar.add_task("sequential: register", total=count, rate="")
    with httpx.Client(base_url=stack.url, timeout=120) as http:
        start = time.perf_counter()
        for i in range(count):
            t0 = time.perf_counter()
            view = _check(http.post("/api/v1/evidence", json=_body(case_no, i, "seq"), headers=stack.auth(COLLECTOR)))
            latencies.append(time.perf_counter() - t0)
            ids.append(view["id"])
            bar.update(reg_task, advance=1, rate=f"{(i + 1) / (time.perf_counter() - start):,.0f} rec/s")
        reg_seconds = time.perf_counter() - start
        tx_task = bar.add_task("sequential: custody", total=count, rate="")
        start = time.perf_counter()
        transfer_tx: list[str] = []
        for i, rid in enumerate(ids):
            _check(http.post(f"/api/v1/evidence/{rid}/transfer", json={"to": RECIPIENT, "purpose": "移送"},
                             headers=stack.auth(COLLECTOR)))
            view = _check(http.post(f"/api/v1/evidence/{rid}/accept", json={}, headers=stack.auth(RECIPIENT)))
            transfer_tx += [e["tx_hash"] for e in view["custody_log"][-2:]]
            bar.update(tx_task, advance=1, rate=f"{(i + 1) / (time.perf_counter() - start):,.0f} transfers/s")
        custody_seconds = time.perf_counter() - start
        register_tx = [_check(http.get(f"/api/v1/evidence/{rid}", headers=stack.auth(RECIPIENT)))["registered"]["tx_hash"]
                       for rid in ids[:: max(1, count // 20)]]
    return _row("baseline: 1 request per step", count, reg_seconds, custody_seconds, latencies,
                _gas(stack, register_tx), _gas(stack, transfer_tx) * 2)


def run_pipelined(stack: Any, count: int, batch: int, bar: Any) -> dict[str, Any]:
    """Batch registration and whole-case custody routes: transactions sent back to back, then awaited."""
    import httpx

    case_no = "BENCH-PIPE-0001"
    latencies: list[float] = []
    ids: list[str] = []
    reg_task = bar.add_task("pipelined: register", total=count, rate="")
    with httpx.Client(base_url=stack.url, timeout=300) as http:
        start = time.perf_counter()
        for lo in range(0, count, batch):
            body = {"records": [_body(case_no, i, "pipe") for i in range(lo, min(lo + batch, count))]}
            t0 = time.perf_counter()
            result = _check(http.post("/api/v1/evidence/batch", json=body, headers=stack.auth(COLLECTOR)))
            latencies.append(time.perf_counter() - t0)
            if result["refused"] or any(r["status"] != "registered" for r in result["records"]):
                raise RuntimeError(f"batch not fully registered: {result['refused'][:3]}")
            ids += [r["id"] for r in result["records"]]
            bar.update(reg_task, advance=len(result["records"]),
                       rate=f"{len(ids) / (time.perf_counter() - start):,.0f} rec/s")
        reg_seconds = time.perf_counter() - start
        tx_task = bar.add_task("pipelined: custody", total=count, rate="")
        start = time.perf_counter()
        _check(http.post("/api/v1/evidence/cases/transfer", json={"case_no": case_no, "to": RECIPIENT,
                                                                  "purpose": "整案移送"}, headers=stack.auth(COLLECTOR)))
        view = _check(http.post("/api/v1/evidence/cases/accept", json={"case_no": case_no},
                                headers=stack.auth(RECIPIENT)))
        custody_seconds = time.perf_counter() - start
        held = sum(1 for r in view["records"] if r["custodian"]["uscc"] == RECIPIENT)
        if held != count:
            raise RuntimeError(f"only {held} of {count} records changed custody")
        bar.update(tx_task, completed=count, rate=f"{count / custody_seconds:,.0f} transfers/s")
        register_tx = [r["registered"]["tx_hash"] for r in view["records"][:: max(1, count // 20)]]
        transfer_tx = [e["tx_hash"] for r in view["records"][:: max(1, count // 20)] for e in r["custody_log"][-2:]]
    return _row(f"pipelined: batch of {batch}, whole-case custody", count, reg_seconds, custody_seconds, latencies,
                _gas(stack, register_tx), _gas(stack, transfer_tx) * 2)


def _row(label: str, count: int, reg_seconds: float, custody_seconds: float, latencies: list[float],
         gas_register: float, gas_transfer: float) -> dict[str, Any]:
    return {"label": label, "records": count, "register_seconds": round(reg_seconds, 3),
            "records_per_s": round(count / reg_seconds, 1), "custody_seconds": round(custody_seconds, 3),
            "transfers_per_s": round(count / custody_seconds, 1),
            "request_p50_ms": round(_pct(latencies, 0.5) * 1000, 1), "request_p99_ms": round(_pct(latencies, 0.99) * 1000, 1),
            "gas_per_record": round(gas_register), "gas_per_transfer": round(gas_transfer)}


def bench_evidence(
    count: Annotated[int, typer.Option("--count", min=1, max=20_000, help="records per run")] = 300,
    batch: Annotated[int, typer.Option("--batch", min=1, max=1000, help="records per batch request")] = 100,
    baseline: Annotated[int, typer.Option("--baseline", min=0, help="records for the sequential baseline")] = 200,
    as_json: JsonOpt = False,
) -> None:
    """Register COUNT evidence records and hand each to another agency, sequentially and pipelined."""
    # lazy import: the whole server stack (FastAPI app, uvicorn, devnet): only the commands that start one load it
    from api.stack import LocalStack

    rows = []
    with tempfile.TemporaryDirectory(prefix="lianzheng-bench-evidence-") as tmp:
        with LocalStack(Path(tmp)) as stack, progress() as bar:
            if baseline:
                rows.append(run_sequential(stack, baseline, bar))
            rows.append(run_pipelined(stack, count, batch, bar))
    if as_json:
        print_json({"benchmark": "evidence", "results": rows})
        return
    table = Table(title="lianzheng bench evidence (HTTP API, devnet, end to end until on chain)")
    for col in ("run", "records", "register s", "records/s", "custody s", "transfers/s", "request p50 ms",
                "request p99 ms", "gas/record", "gas/transfer"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["label"], f"{r['records']:,}", f"{r['register_seconds']:.2f}", f"{r['records_per_s']:,.0f}",
                      f"{r['custody_seconds']:.2f}", f"{r['transfers_per_s']:,.0f}", f"{r['request_p50_ms']:.0f}",
                      f"{r['request_p99_ms']:.0f}", f"{r['gas_per_record']:,}", f"{r['gas_per_transfer']:,}")
    console.print(table)
    if len(rows) == 2:
        console.print(f"pipelined vs baseline: {rows[1]['records_per_s'] / rows[0]['records_per_s']:.1f}x records/s, "
                      f"{rows[1]['transfers_per_s'] / rows[0]['transfers_per_s']:.1f}x custody transfers/s "
                      "(a transfer = the sender's transfer + the recipient's accept, both on chain)")
