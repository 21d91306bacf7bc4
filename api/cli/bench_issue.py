"""`lianzheng bench issue`: end-to-end issuance through the HTTP batch route on a private devnet.

Prints documents/s until every document is anchored, gas per document (each batch anchors its SHA-256 and SM3
roots: 98.6 gas/doc at 1,000 per batch, 75.7 with the SHA-256 root alone), request latency and
per-document time-to-anchor percentiles — and, as a baseline measured in the same run, the same
numbers for anchoring one document per transaction (what a naive design does).
"""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table
from sqlalchemy import func, select

from api.cli._common import console, print_json, progress
from api.cli.options import JsonOpt
from api.devtools.samples import sample_values
from registry.store.db import Batch, Certificate


def register(app: typer.Typer) -> None:
    app.command("issue")(bench_issue)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run_issue(count: int, *, batch_size: int, request_size: int, workers: int, type_code: str | None,
              label: str, data_dir: Path) -> dict[str, Any]:
    # lazy import: the whole server stack (FastAPI app, uvicorn, devnet): only the commands that start one load it
    from api.stack import LocalStack
    # the API in its own process, as deployed: the client here must not share its GIL
    with LocalStack(data_dir, batch_size=batch_size, batch_max_age=0.2, server_process=True) as stack:
        seeds = stack.node.seeds
        ct = seeds.certificate_type(type_code) if type_code else seeds.certificate_types[0]
        issuer = seeds.member(ct.issuers[0])
        docs = sample_values(ct, count, issuer=issuer, seed=2026)
        chunks = [docs[i:i + request_size] for i in range(0, count, request_size)]
        latencies: list[float] = []
        identifiers: list[str] = []
        with progress() as bar, httpx.Client(base_url=stack.url, headers=stack.auth(issuer.uscc), timeout=300) as http:
            sent = bar.add_task(f"{label}: sending", total=count, rate="")
            anchored = bar.add_task(f"{label}: anchoring", total=count, rate="")
            start = time.perf_counter()

            def post(chunk: list[dict[str, Any]]) -> list[str]:
                t0 = time.perf_counter()
                r = http.post("/api/v1/certificates/batch", json={"type": ct.code, "documents": chunk})
                latencies.append(time.perf_counter() - t0)
                r.raise_for_status()
                return [c["identifier"] for c in r.json()["certificates"]]

            with ThreadPoolExecutor(max_workers=workers) as pool:
                for ids in pool.map(post, chunks):
                    identifiers.extend(ids)
                    bar.update(sent, advance=len(ids), rate=f"{len(identifiers) / (time.perf_counter() - start):,.0f}/s")
            while True:
                with stack.node.db.session() as s:
                    done = s.scalar(select(func.count()).select_from(Certificate).where(Certificate.status == "issued"))
                bar.update(anchored, completed=done, rate=f"{done / (time.perf_counter() - start):,.0f}/s")
                if done >= count:
                    break
                if time.perf_counter() - start > 900:
                    raise RuntimeError(f"only {done} of {count} anchored after 900 s")
                time.sleep(0.05)
            elapsed = time.perf_counter() - start
        with stack.node.db.session() as s:
            gas = s.scalar(select(func.sum(Batch.gas_used))) or 0
            batches = s.scalar(select(func.count()).select_from(Batch)) or 0
            ages = [(a - c).total_seconds() for c, a in s.execute(
                select(Certificate.created_at, Batch.anchored_at).join(Batch, Certificate.batch_id == Batch.id))]
    return {
        "label": label, "documents": count, "batch_size": batch_size, "batches": batches,
        "seconds": round(elapsed, 3), "docs_per_s": round(count / elapsed, 1),
        "gas_per_doc": round(gas / count, 1), "gas_total": gas,
        "request_p50_ms": round(_pct(latencies, 0.5) * 1000, 1), "request_p99_ms": round(_pct(latencies, 0.99) * 1000, 1),
        "anchor_p50_ms": round(_pct(ages, 0.5) * 1000, 1), "anchor_p99_ms": round(_pct(ages, 0.99) * 1000, 1),
        "request_size": request_size,
    }


def bench_issue(
    count: Annotated[int, typer.Option("--count", min=1, max=200_000)] = 10_000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=10_000)] = 1000,
    request_size: Annotated[int, typer.Option("--request-size", min=1, max=10_000)] = 1000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=16, help="concurrent HTTP clients")] = 2,
    baseline: Annotated[int, typer.Option("--baseline", min=0, help="documents for the one-per-transaction baseline")] = 300,
    type_code: Annotated[str | None, typer.Option("--type")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue COUNT certificates through POST /api/v1/certificates/batch and time them until anchored."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="lianzheng-bench-") as tmp:
        rows.append(run_issue(count, batch_size=batch_size, request_size=request_size, workers=workers,
                              type_code=type_code, label="batched", data_dir=Path(tmp) / "batched"))
        if baseline:
            rows.append(run_issue(baseline, batch_size=1, request_size=min(request_size, baseline), workers=workers,
                                  type_code=type_code, label="baseline: 1 doc/tx", data_dir=Path(tmp) / "baseline"))
    if as_json:
        print_json({"benchmark": "issue", "results": rows})
        return
    table = Table(title="lianzheng bench issue (HTTP batch route, devnet, end to end until anchored)")
    for col in ("run", "docs", "batch", "seconds", "docs/s", "gas/doc", "request p50 ms", "request p99 ms",
                "anchor p50 ms", "anchor p99 ms"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["label"], f"{r['documents']:,}", str(r["batch_size"]), f"{r['seconds']:.2f}",
                      f"{r['docs_per_s']:,.0f}", f"{r['gas_per_doc']:,.1f}", f"{r['request_p50_ms']:.0f}",
                      f"{r['request_p99_ms']:.0f}", f"{r['anchor_p50_ms']:.0f}", f"{r['anchor_p99_ms']:.0f}")
    console.print(table)
    if len(rows) == 2:
        console.print(f"batched vs baseline: {rows[0]['docs_per_s'] / rows[1]['docs_per_s']:.1f}x the throughput, "
                      f"{rows[1]['gas_per_doc'] / max(rows[0]['gas_per_doc'], 1e-9):.0f}x less gas per document")
    _ = json
