"""`lianzheng bench verify`: verification throughput and latency on a private devnet.

Three measurements in one run, each on warm caches (every document verified once before timing):

- ``POST /api/v1/verify`` with full documents (integrity in SHA-256 and SM3, anchoring, issuer, status,
  validity) from ``--clients`` client processes, each with one keep-alive HTTP connection, timing every
  request: verifications/s and p50/p99 latency;
- the same with ``{"identifier": ...}`` (status only), the cheapest verification;
- the ceiling: a static document (the JSON-LD context) from the same server through the same middleware and
  router, so that each verification rate is read beside what the HTTP stack itself serves on this machine;
- with ``--api-processes N``, documents and identifiers again through N API processes on one port, as
  `lianzheng up --workers N` runs them (PostgreSQL), beside the one-process rows (the baseline);
- offline verification of signed ``LZ2:`` payloads against a trust list (no network), in this process and
  in ``--processes`` processes (a verifier's device checks one code at a time; a gateway may use every core).

The clients run in their own processes so that their HTTP work does not share the server's interpreter lock
(a real verifier's phone is not inside the server either); they share the machine's cores with it, so they
use the standard library's http.client (cheap per request). Targets on a 2-core machine (issue 16): >= 1,500/s
over HTTP with 2 clients, p99 <= 50 ms with 32 clients; >= 10,000/s offline.

    $ lianzheng bench verify --documents 200 --requests 4000 --clients 2
    $ lianzheng bench verify --api-processes 2      # also 2 API processes on PostgreSQL, beside one
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli._common import console, print_json, progress
from api.cli.options import JsonOpt
from api.devtools.bench_client import http_client

# issue 16: >= 1,500/s over HTTP with 2 clients, p99 <= 50 ms with 32 clients (each judged on every run)
TARGETS = {"p50_ms": 5.0, "p99_ms": 50.0, "http_per_s": 1500.0, "offline_per_s": 10_000.0}
CEILING = "GET {path} (static: the HTTP stack's ceiling)"


def register(app: typer.Typer) -> None:
    app.command("verify")(bench_verify)


def _ms(value: float) -> str:
    return "-" if value != value else f"{value:.2f}"  # NaN: not measured per request


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _http_run(url: str, path: str, bodies: list[Any] | None, requests: int, clients: int,
              label: str, server_pids: list[int] | None = None) -> dict[str, Any]:
    """``requests`` requests from ``clients`` client processes (spawned: the server runs threads, never fork this
    process; the client's module imports only the standard library, so that 32 of them start quickly on a loaded
    machine); the rate is over the span from the first client's start to the last one's end. ``server_cpu_ms``:
    the CPU time of this process (the server's threads; the clients and the pool's manager are processes of
    their own) per request while the clients ran, a figure a busy machine inflates far less than a rate; with
    ``server_pids`` (API processes of their own), theirs."""
    from api.cli.bench_issue import cpu_seconds

    def server_cpu() -> float:
        if server_pids is None:
            return time.process_time()
        return sum(cpu_seconds(pid) or 0.0 for pid in server_pids)

    ctx = multiprocessing.get_context("spawn")
    per = max(1, requests // clients)
    port = int(url.rsplit(":", 1)[1])
    with ctx.Manager() as manager, ctx.Pool(clients) as pool:
        barrier = manager.Barrier(clients)
        cpu0 = server_cpu()
        jobs = [pool.apply_async(http_client, (port, path, bodies, per, i * 7919, barrier)) for i in range(clients)]
        results = [j.get(timeout=600) for j in jobs]
        cpu = server_cpu() - cpu0
    elapsed = max(r[1] for r in results) - min(r[0] for r in results)
    latencies = [x for r in results for x in r[2]]
    failures = sum(r[3] for r in results)
    return {"label": label, "requests": len(latencies), "clients": clients, "seconds": round(elapsed, 2),
            "per_s": round(len(latencies) / elapsed, 1), "p50_ms": round(_pct(latencies, 0.5) * 1000, 2),
            "p99_ms": round(_pct(latencies, 0.99) * 1000, 2), "failures": failures,
            "server_cpu_ms": round(1000 * cpu / max(len(latencies), 1), 3)}


_WORKER: Any = None


def _offline_init(signed: dict[str, Any]) -> None:
    from registry.certificates.offline import OfflineVerifier
    from registry.consortium.trust_list import TrustList

    global _WORKER
    _WORKER = OfflineVerifier(TrustList.from_json(signed))


def _offline_worker(texts: list[str], count: int, offset: int) -> int:
    for i in range(count):
        _WORKER.verify_text(texts[(offset + i) % len(texts)])
    return count


def _offline_parallel(signed: dict[str, Any], texts: list[str], count: int, processes: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes, initializer=_offline_init, initargs=(signed,)) as pool:
        pool.starmap(_offline_worker, [(texts, 50, i) for i in range(processes)])  # warm up every process
        start = time.perf_counter()
        done = sum(pool.starmap(_offline_worker, [(texts, count // processes, i * 97) for i in range(processes)]))
        elapsed = time.perf_counter() - start
    return {"label": f"offline LZ2 payload, {processes} processes", "requests": done, "clients": processes,
            "seconds": round(elapsed, 2), "per_s": round(done / elapsed, 1), "p50_ms": float("nan"),
            "p99_ms": float("nan"), "failures": 0}


def _offline_payloads(stack: Any, certificates: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """The signed trust list and one signed offline payload per certificate."""
    from api.certificate_qr import offline_key
    from registry.certificates.documents import AnchorProof, Document
    from registry.certificates.offline import make_offline_qr
    from registry.consortium.trust_list import build_trust_list

    index = stack.services.index
    index.refresh(force=True)
    signed = build_trust_list(stack.node, index)
    texts = []
    for cert in certificates:
        doc = Document.from_json(cert["document"])
        key = offline_key(stack.node, doc.issuer_uscc)
        texts.append(make_offline_qr(doc, AnchorProof.from_json(cert["document"]["anchor"]), key).text)
    return signed, texts


def _offline_run(signed: dict[str, Any], texts: list[str], count: int, processes: int) -> list[dict[str, Any]]:
    """Offline verifications of distinct payloads, after the server, the chain and the anchoring worker have
    stopped (nothing else runs in this process): passes over the payloads in order, so every verification meets
    a payload it has not seen since the last pass (the verifier caches per trust list, key and batch, never per
    payload). Wall-clock rate and per-verification latency, and the CPU time of this process (``cpu_us``: on a
    loaded machine the rate the process could reach on a core of its own)."""
    from registry.certificates.offline import OfflineVerifier
    from registry.consortium.trust_list import TrustList

    verifier = OfflineVerifier(TrustList.from_json(signed))
    for text in texts:  # warm up, and every payload must be valid
        verdict = verifier.verify_text(text).verdict
        if verdict != "valid":
            raise RuntimeError(f"offline payload verified as {verdict}")
    latencies = []
    cpu0, start = time.process_time(), time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        verifier.verify_text(texts[i % len(texts)])
        latencies.append(time.perf_counter() - t0)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu0
    single = {"label": "offline LZ2 payload (trust list, no network)", "requests": count, "clients": 1,
              "seconds": round(elapsed, 2), "per_s": round(count / elapsed, 1),
              "p50_ms": round(_pct(latencies, 0.5) * 1000, 3), "p99_ms": round(_pct(latencies, 0.99) * 1000, 3),
              "failures": 0, "characters": round(sum(map(len, texts)) / len(texts)), "distinct": len(set(texts)),
              "cpu_us": round(1e6 * cpu / count, 1), "cpu_per_s": round(count / cpu, 1) if cpu else None}
    return [single, _offline_parallel(signed, texts, count, processes)] if processes > 1 else [single]


def index_footprint(index: Any, *, certificates: int = 10_000_000, batch_size: int = 1000,
                    changed: float = 0.01) -> dict[str, Any]:
    """Memory of the status index (registry.certificates.index) for ``certificates`` documents anchored in batches
    of ``batch_size`` with a share ``changed`` revoked, suspended or superseded, measured with tracemalloc over
    synthetic ledger events applied as a refresh applies them. An issued document costs nothing of its own (its
    batch says it is anchored); a batch and a changed document cost one record each."""
    import os
    import tracemalloc

    from chain.logs import Event

    batches, docs = -(-certificates // batch_size), int(certificates * changed)

    def events() -> Any:
        for i in range(batches):
            yield Event("BatchAnchored", "0x" + "00" * 20, i + 1, "0x" + os.urandom(32).hex(),
                        "0x" + os.urandom(32).hex(), 0,
                        {"root": os.urandom(32), "issuer": "0x" + "ab" * 20, "count": batch_size,
                         "issuerUscc": b"11230000MB1A00028M".ljust(32, b"\0"), "sm3Root": os.urandom(32)})
        for i in range(docs):
            yield Event("DocumentRevoked", "0x" + "00" * 20, batches + i, "0x" + os.urandom(32).hex(),
                        "0x" + os.urandom(32).hex(), 0, {"doc": os.urandom(32), "root": os.urandom(32), "reason": 1})

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        index.apply_events(events())
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return {"certificates": certificates, "batch_size": batch_size, "changed_share": changed, "batches": batches,
            "changed_documents": docs, "bytes": used, "bytes_per_certificate": round(used / certificates, 2),
            "bytes_per_changed_document": round(used / max(docs, 1), 1)}


def _issue_samples(stack: Any, documents: int, type_code: str | None) -> list[dict[str, Any]]:
    """``documents`` sample certificates of ``type_code`` (default: the first type) issued by its first issuer
    through the batch route and anchored (``wait=true``): the certificates of the answer."""
    import httpx

    from api.devtools.samples import sample_values

    seeds = stack.node.seeds
    ct = seeds.certificate_type(type_code) if type_code else seeds.certificate_types[0]
    issuer = seeds.member(ct.issuers[0])
    with httpx.Client(base_url=stack.url, headers=stack.auth(issuer.uscc), timeout=300) as http:
        r = http.post("/api/v1/certificates/batch?wait=true",
                      json={"type": ct.code, "documents": sample_values(ct, documents, issuer=issuer, seed=7)})
        r.raise_for_status()
        certificates: list[dict[str, Any]] = r.json()["certificates"]
        return certificates


def run_verify(documents: int, requests: int, clients: int, offline: int, type_code: str | None,
               data_dir: Path, processes: int = 2) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    import httpx

    # lazy import: the whole server stack (FastAPI app, uvicorn, devnet): only the commands that start one load it
    from api.stack import LocalStack
    from registry.formats.vc import CONTEXT_PATH

    with LocalStack(data_dir, batch_max_age=0.2) as stack, progress(transient=True) as bar:
        task = bar.add_task("issuing and anchoring", total=documents, rate="")
        certificates = _issue_samples(stack, documents, type_code)
        bar.update(task, completed=documents)
        with httpx.Client(base_url=stack.url, timeout=300) as http:
            docs = [c["document"] for c in certificates]
            ids = [{"identifier": c["identifier"]} for c in certificates]
            warm = bar.add_task("warming caches", total=2 * documents, rate="")
            for body in (*docs, *ids):
                assert http.post("/api/v1/verify", json=body).json()["verdict"] == "valid"
                bar.advance(warm)
        bar.add_task(f"HTTP: {requests} requests x 2 forms, {clients} clients", total=None, rate="")
        rows = [_http_run(stack.url, "/api/v1/verify", docs, requests, clients, "POST /api/v1/verify (document)"),
                _http_run(stack.url, "/api/v1/verify", ids, requests, clients, "POST /api/v1/verify (identifier)"),
                # the ceiling: a static document through the same server, middleware and router, no verification
                _http_run(stack.url, CONTEXT_PATH, None, requests, clients, CEILING.format(path=CONTEXT_PATH))]
        signed, texts = _offline_payloads(stack, certificates)
        from registry.certificates.index import ChainIndex
        footprint = index_footprint(ChainIndex(stack.node))
    rows.extend(_offline_run(signed, texts, offline, processes))  # the stack is down: no network, no server threads
    return rows, footprint


def run_verify_processes(documents: int, requests: int, clients: int, type_code: str | None, data_dir: Path,
                         api_processes: int) -> list[dict[str, Any]]:
    """Documents and identifiers through ``api_processes`` API processes on one port (`up --workers N`: a
    PostgreSQL server of the run's own, connections accepted in turns, api/accept_turns.py), each process
    warmed by a first pass of the clients that is not timed (every process keeps its own caches)."""
    from api.devtools.postgres import PostgresCluster
    from api.stack import LocalStack

    with PostgresCluster.started(durable=True) as cluster, LocalStack(
            data_dir, batch_max_age=0.2, server_process=True, api_processes=api_processes,
            database_url=cluster.create_database()) as stack, progress(transient=True) as bar:
        certificates = _issue_samples(stack, documents, type_code)
        docs = [c["document"] for c in certificates]
        ids = [{"identifier": c["identifier"]} for c in certificates]
        bar.add_task(f"HTTP: {api_processes} API processes, {requests} requests x 2 forms", total=None, rate="")
        rows = []
        for bodies, form in ((docs, "document"), (ids, "identifier")):
            _http_run(stack.url, "/api/v1/verify", bodies, 2 * documents * api_processes, clients, "warm-up")
            rows.append(_http_run(stack.url, "/api/v1/verify", bodies, requests, clients,
                                  f"POST /api/v1/verify ({form}), {api_processes} API processes (PostgreSQL)",
                                  server_pids=stack.server_pids))
        return rows


def bench_verify(
    documents: Annotated[int, typer.Option("--documents", min=1, max=10_000, help="distinct certificates")] = 400,
    requests: Annotated[int, typer.Option("--requests", min=10, help="HTTP requests per form")] = 4000,
    clients: Annotated[int, typer.Option("--clients", min=1, max=32, help="client processes (keep-alive)")] = 2,
    offline: Annotated[int, typer.Option("--offline", min=10, help="offline verifications")] = 20_000,
    processes: Annotated[int, typer.Option("--processes", min=1, max=32, help="offline: also measure N processes")] = 2,
    api_processes: Annotated[int, typer.Option(
        "--api-processes", min=1, max=16,
        help="HTTP: also measure N API processes on PostgreSQL (`up --workers N`), beside one process")] = 1,
    type_code: Annotated[str | None, typer.Option("--type")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verifications/s and p50/p99 latency through POST /api/v1/verify, and offline verifications/s."""
    with tempfile.TemporaryDirectory(prefix="lianzheng-bench-") as tmp:
        rows, footprint = run_verify(documents, requests, clients, offline, type_code, Path(tmp) / "verify",
                                     processes)
        scaled = (run_verify_processes(documents, requests, clients, type_code, Path(tmp) / "processes",
                                       api_processes) if api_processes > 1 else [])
    http_rows, ceiling, offline_rows = rows[:2], rows[2], rows[3:]
    rows[3:3] = scaled  # after the one-process rows they are measured beside
    failures = sum(int(r["failures"]) for r in rows)
    met = {
        "p50": all(r["p50_ms"] <= TARGETS["p50_ms"] for r in http_rows + scaled),
        "p99": all(r["p99_ms"] <= TARGETS["p99_ms"] for r in http_rows + scaled),
        "http_throughput": all(r["per_s"] >= TARGETS["http_per_s"] for r in http_rows),
        **({f"http_throughput_{api_processes}_api_processes": all(r["per_s"] >= TARGETS["http_per_s"] for r in scaled)}
           if scaled else {}),
        "offline_throughput_1_process": offline_rows[0]["per_s"] >= TARGETS["offline_per_s"],
        "offline_throughput_all_processes": max(r["per_s"] for r in offline_rows) >= TARGETS["offline_per_s"],
    }
    if as_json:
        print_json({"benchmark": "verify", "results": rows, "targets": TARGETS, "met": met,
                    "status_index": footprint})
        if failures:
            raise typer.Exit(1)
        return
    table = Table(title="lianzheng bench verify (devnet, warm caches, per-request timing)")
    for col in ("form", "requests", "clients", "verifications/s", "p50 ms", "p99 ms", "server CPU ms", "failures"):
        table.add_column(col, justify="right")
    table.add_column("vs baseline", justify="right")
    base = offline_rows[0]["per_s"]  # the one-process offline run is the baseline of the N-process one
    for r in rows:
        vs = f"{r['per_s'] / base:.1f}x 1 process" if r in offline_rows[1:] else "-"
        if r in http_rows:
            vs = f"{r['per_s'] / ceiling['per_s']:.0%} of the ceiling"
        if r in scaled:  # beside the same form in one process
            vs = f"{r['per_s'] / http_rows[scaled.index(r)]['per_s']:.1f}x 1 process"
        cpu = f"{r['server_cpu_ms']:.3f}" if "server_cpu_ms" in r else "-"  # offline rows: cpu_us below
        table.add_row(r["label"], f"{r['requests']:,}", str(r["clients"]), f"{r['per_s']:,.0f}", _ms(r["p50_ms"]),
                      _ms(r["p99_ms"]), cpu, str(r["failures"]), vs)
    console.print(table)
    one = offline_rows[0]
    console.print(f"offline: {one['distinct']:,} distinct payloads of ~{one['characters']:,} characters; one process "
                  f"spent {one['cpu_us']:.0f} µs of CPU per verification ({one['cpu_per_s'] or 0:,.0f}/s CPU-bound)")
    console.print(f"status index: {footprint['bytes_per_certificate']:.2f} bytes per certificate for "
                  f"{footprint['certificates']:,} certificates in batches of {footprint['batch_size']:,} with "
                  f"{100 * footprint['changed_share']:.0f}% revoked ({footprint['bytes'] / 2**20:,.1f} MiB; "
                  f"{footprint['bytes_per_changed_document']:.0f} bytes per changed document, measured)")
    console.print("targets: p50 <= 5 ms, p99 <= 50 ms, >= 1,500/s over HTTP; >= 10,000/s offline -> "
                  + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in met.items()))
    if failures:  # a run that failed (not a missed target): non-zero
        console.print(f"[bold red]{failures} verifications failed[/]")
        raise typer.Exit(1)
