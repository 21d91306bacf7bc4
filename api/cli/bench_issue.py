"""`lianzheng bench issue`: end-to-end issuance through the HTTP batch route on a private devnet.

Prints, for the batched run and — as a baseline measured in the same run — for anchoring one document per
transaction (what a naive design does):

- documents/s until every document is anchored, gas per document (each batch anchors its SHA-256 and SM3
  roots), request latency and per-document time-to-anchor percentiles;
- where the server's time goes, per document and as a share: parse, validate, build, seal, store, respond
  (summed from the server's ``certificates issued`` log lines) and anchor (``certificates anchored``), see
  registry/certificates/timing.py;
- with ``--count`` of 10,000 or more, a table by size (1,000, 10,000, 100,000, 1,000,000 documents
  anchored): the time and documents/s of each slice and the resident memory of each process (API server,
  anvil, this client), so that a cost per document that grows with the database shows.

The API runs in its own process, as deployed: the client here does not share its interpreter lock. With
``--database postgresql`` the batched run goes to a PostgreSQL server started for the run (a durable cluster of
its own in a temporary directory: api/devtools/postgres.py) with ``--api-processes N`` API processes, as
`lianzheng up --workers N` runs them, and the same run on SQLite in one process is measured beside it.
Request bodies are made before the clock starts (beyond 100,000 documents they are made while sending, in
the client's threads). A run that fails (an HTTP error, documents not anchored in time) exits non-zero; a
missed target does not.

    $ lianzheng bench issue --count 10000
    $ lianzheng bench issue --count 1000000 --baseline 0
    $ lianzheng bench issue --count 10000 --database postgresql --api-processes 2
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli._common import console, print_json, progress
from api.cli.options import JsonOpt
from registry.certificates.timing import STAGES
from registry.errors import ValidationError

SIZES = (1_000, 10_000, 100_000, 1_000_000)
PREPARED_UP_TO = 100_000  # request bodies made before timing up to this many documents, while sending beyond


class Database(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


def register(app: typer.Typer) -> None:
    app.command("issue")(bench_issue)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _rss_sum(pids: list[int]) -> float | None:
    sizes = [rss_mb(p) for p in pids]
    return None if None in sizes else round(sum(s or 0.0 for s in sizes), 1)


def rss_mb(pid: int | None) -> float | None:
    """Resident set size of a process in MiB (Linux /proc), None when unknown."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        return None
    return None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds a process has used (Linux /proc), None when unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def descendants(pid: int | None) -> list[int]:
    """The process's children, their children and so on (the server's build workers and their forkserver)."""
    found: list[int] = []
    todo = [pid] if pid is not None else []
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except (OSError, ValueError):
                continue
            found += kids
            todo += kids
    return found


def _cpu_snapshot(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of the API processes, their build workers (every descendant, summed), anvil, this
    client and, on PostgreSQL, the database server (the postmaster and its backends)."""
    times = os.times()
    snap = {"server": sum(cpu_seconds(p) or 0.0 for p in pids["server"]),
            "build workers": sum(cpu_seconds(d) or 0.0 for p in pids["server"] for d in descendants(p)),
            "anvil": sum(cpu_seconds(p) or 0.0 for p in pids["anvil"]), "client": times.user + times.system}
    if pids.get("postgresql"):
        snap["postgresql"] = sum(cpu_seconds(d) or 0.0 for p in pids["postgresql"] for d in [p, *descendants(p)])
    return snap


def settle(pids: dict[str, list[int]], *, quiet: float = 0.05, window: float = 0.5, timeout: float = 60.0) -> float:
    """Wait until the server and its build workers are idle (less than ``quiet`` of a core over ``window``
    seconds): a server that just started still follows the chain from its deployment block (the chain inbox's
    first pass re-reads every member over RPC), which is start-up, not issuing. Returns the seconds waited."""
    started = time.perf_counter()

    def used() -> float:
        snap = _cpu_snapshot(pids)
        return snap["server"] + snap["build workers"]

    before = used()
    while time.perf_counter() - started < timeout:
        time.sleep(window)
        now = used()
        if now - before < quiet * window:
            break
        before = now
    return time.perf_counter() - started


def stage_breakdown(log_file: Path, documents: int) -> dict[str, Any]:
    """ms per document and share of each stage, summed from the server's JSON log lines, and the most worker
    processes that built one request's documents (``build_processes``; 0: built in the API process)."""
    totals = dict.fromkeys(STAGES, 0.0)
    processes = 0
    with open(log_file, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if '"certificates issued"' not in line and '"certificates anchored"' not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            for stage in STAGES:
                totals[stage] += float(event.get(f"{stage}_ms") or 0.0)
            processes = max(processes, int(event.get("build_processes") or 0))
    whole = sum(totals.values()) or 1.0
    return {"build_processes": processes,
            **{stage: {"ms_per_doc": round(ms / max(documents, 1), 4), "share": round(ms / whole, 3)}
               for stage, ms in totals.items()}}


class _Bodies:
    """The request bodies of a run: JSON bytes, consecutive 证照编号 across chunks."""

    def __init__(self, ct: Any, issuer: Any, count: int, request_size: int) -> None:
        self.ct, self.issuer, self.count, self.request_size = ct, issuer, count, request_size
        self.first = random.Random(2026).randrange(10**9)
        self.chunks = (count + request_size - 1) // request_size
        self.ready = [self._make(k) for k in range(self.chunks)] if count <= PREPARED_UP_TO else None

    def _make(self, k: int) -> bytes:
        from api.devtools.samples import sample_values

        n = min(self.request_size, self.count - k * self.request_size)
        docs = sample_values(self.ct, n, issuer=self.issuer, seed=2026 + k, first_number=self.first + k * self.request_size)
        return json.dumps({"type": self.ct.code, "documents": docs}, ensure_ascii=False).encode()

    def body(self, k: int) -> bytes:
        return self.ready[k] if self.ready is not None else self._make(k)


def _anchored_count(stack: Any) -> int:
    """Documents anchored so far: the sizes of the anchored batches (a batch's certificates become issued in
    the transaction that marks it anchored), read 20 times a second — a count of the issued certificates
    walked the status index each time, and the client's CPU competes with the server for the same cores."""
    from sqlalchemy import func, select

    from registry.store.db import Batch
    from registry.store.states import BatchState

    with stack.node.db.session() as s:
        return int(s.scalar(select(func.coalesce(func.sum(Batch.size), 0)).where(
            Batch.state == BatchState.ANCHORED, Batch.ledger == "certificates")) or 0)


def _watch(stack: Any, count: int, start: float, report: Callable[[int], None], sending: threading.Event,
           timeout: float) -> Iterator[tuple[int, float]]:
    """(anchored documents, seconds since start) until every document is anchored; RuntimeError when they
    are not, ``timeout`` seconds after the last answer."""
    interval = 0.05 if count <= 20_000 else 0.25 if count <= 200_000 else 1.0
    sent_at: float | None = None
    while True:
        done = _anchored_count(stack)
        report(done)
        yield done, time.perf_counter() - start
        if done >= count:
            return
        if sent_at is None and not sending.is_set():
            sent_at = time.perf_counter()
        if sent_at is not None and time.perf_counter() - sent_at > timeout:
            raise RuntimeError(f"only {done} of {count} documents anchored {timeout:.0f} s after the last request")
        time.sleep(interval)


def run_issue(count: int, *, batch_size: int, request_size: int, workers: int, type_code: str | None,
              label: str, data_dir: Path, timeout: float = 900.0, build_processes: int | None = None,
              batch_max_age: float = 0.2, database_url: str | None = None, api_processes: int = 1,
              database_pid: int | None = None) -> dict[str, Any]:
    """One run on a devnet of its own: SQLite in ``data_dir`` unless ``database_url`` (PostgreSQL, whose server
    is ``database_pid``: its CPU is reported) with ``api_processes`` API processes."""
    import httpx
    from sqlalchemy import func, select

    # lazy import: the whole server stack (FastAPI app, uvicorn, devnet): only the commands that start one load it
    from api.stack import LocalStack
    from registry.store.db import Batch, Certificate

    extra: dict[str, Any] = {} if build_processes is None else {"build_processes": build_processes}
    if database_url:
        extra["database_url"] = database_url
    with LocalStack(data_dir, batch_size=batch_size, batch_max_age=batch_max_age, server_process=True,
                    api_processes=api_processes, **extra) as stack:
        seeds = stack.node.seeds
        ct = seeds.certificate_type(type_code) if type_code else seeds.certificate_types[0]
        issuer = seeds.member(ct.issuers[0])
        bodies = _Bodies(ct, issuer, count, request_size)
        anvil_pid = int(stack.devnet.pid_file.read_text().strip()) if stack.devnet.pid_file.exists() else None
        pids = {"server": stack.server_pids, "anvil": [anvil_pid] if anvil_pid else [], "client": [os.getpid()],
                "postgresql": [database_pid] if database_pid else []}
        latencies: list[float] = []
        sent_count = 0
        sizes: list[dict[str, Any]] = []
        headers = {**stack.auth(issuer.uscc), "Content-Type": "application/json"}
        with progress() as bar, httpx.Client(base_url=stack.url, headers=headers, timeout=300) as http:
            sent = bar.add_task(f"{label}: sending", total=count, rate="")
            anchored = bar.add_task(f"{label}: anchoring", total=count, rate="")
            sending = threading.Event()
            sending.set()
            failure: list[BaseException] = []
            settled = settle(pids)
            cpu_before = _cpu_snapshot(pids)
            start = time.perf_counter()

            def post(k: int) -> int:
                body = bodies.body(k)
                t0 = time.perf_counter()
                r = http.post("/api/v1/certificates/batch", content=body)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 201:
                    raise RuntimeError(f"request {k} answered {r.status_code}: {r.text[:300]}")
                return int(r.json()["count"])

            def send_all() -> None:
                nonlocal sent_count
                try:
                    with ThreadPoolExecutor(max_workers=workers) as pool:
                        for n in pool.map(post, range(bodies.chunks)):
                            sent_count += n
                            bar.update(sent, advance=n, rate=f"{sent_count / (time.perf_counter() - start):,.0f}/s")
                except BaseException as exc:  # reported by the main thread
                    failure.append(exc)
                finally:
                    sending.clear()

            sender = threading.Thread(target=send_all, name="bench-send", daemon=True)
            sender.start()
            marks = [size for size in SIZES if size <= count] if count >= 10_000 else []
            previous = (0, 0.0)

            def report(done: int) -> None:
                bar.update(anchored, completed=done, rate=f"{done / (time.perf_counter() - start):,.0f}/s")

            for done, elapsed in _watch(stack, count, start, report, sending, timeout):
                if failure:
                    raise RuntimeError(f"{label}: {failure[0]}") from failure[0]
                while marks and done >= marks[0]:
                    size = marks.pop(0)
                    slice_docs, slice_s = done - previous[0], elapsed - previous[1]
                    sizes.append({"documents": size, "anchored": done, "seconds": round(elapsed, 2),
                                  "slice_docs_per_s": round(slice_docs / max(slice_s, 1e-9), 1),
                                  "slice_ms_per_doc": round(1000 * slice_s / max(slice_docs, 1), 4),
                                  **{f"rss_{name}_mb": _rss_sum(found) for name, found in pids.items() if found}})
                    previous = (done, elapsed)
            elapsed = time.perf_counter() - start
            cpu_after = _cpu_snapshot(pids)
            sender.join(60)
            if failure:
                raise RuntimeError(f"{label}: {failure[0]}") from failure[0]
        with stack.node.db.session() as s:
            gas = int(s.scalar(select(func.sum(Batch.gas_used))) or 0)  # PostgreSQL sums to a Decimal
            batches = s.scalar(select(func.count()).select_from(Batch)) or 0
            ages = [(a - c).total_seconds() for c, a in s.execute(
                select(Certificate.created_at, Batch.anchored_at).join(Batch, Certificate.batch_id == Batch.id)
                .limit(200_000)) if a is not None]
        stages = stage_breakdown(stack.log_file, count)
    return {
        "label": label, "database": "postgresql" if database_url else "sqlite", "api_processes": api_processes,
        "documents": count, "batch_size": batch_size, "batches": batches,
        "seconds": round(elapsed, 3), "docs_per_s": round(count / elapsed, 1),
        "gas_per_doc": round(gas / count, 1), "gas_total": gas,
        "request_p50_ms": round(_pct(latencies, 0.5) * 1000, 1), "request_p99_ms": round(_pct(latencies, 0.99) * 1000, 1),
        "anchor_p50_ms": round(_pct(ages, 0.5) * 1000, 1), "anchor_p99_ms": round(_pct(ages, 0.99) * 1000, 1),
        "request_size": request_size, "build_processes": stages.pop("build_processes"), "stages": stages,
        "cpu_ms_per_doc": {k: round(1000 * (cpu_after[k] - cpu_before[k]) / count, 4) for k in cpu_after},
        # share of one core each process used over the run (2.0 in all: both cores busy the whole time)
        "cpu_cores": {k: round((cpu_after[k] - cpu_before[k]) / elapsed, 2) for k in cpu_after},
        "settled_s": round(settled, 1),
        "sizes": sizes,
    }


def _stage_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="where the server's time goes (ms per document, share of the server's time; validate, "
                        "build and seal summed over the build processes)")
    table.add_column("stage")
    for r in rows:
        table.add_column(f"{r['label']} ms/doc", justify="right")
        table.add_column("share", justify="right")
    for stage in STAGES:
        cells = []
        for r in rows:
            st = r["stages"][stage]
            cells += [f"{st['ms_per_doc']:.3f}", f"{100 * st['share']:.0f}%"]
        table.add_row(stage, *cells)
    table.add_row("build processes", *(c for r in rows for c in (str(r["build_processes"]), "")))
    return table


def _size_table(row: dict[str, Any]) -> Table:
    table = Table(title=f"{row['label']}: cost per document by size (each slice since the previous size)")
    for col in ("anchored", "seconds", "slice docs/s", "slice ms/doc", "RSS server MiB", "RSS anvil MiB",
                "RSS client MiB"):
        table.add_column(col, justify="right")
    for s in row["sizes"]:
        table.add_row(f"{s['documents']:,}", f"{s['seconds']:.1f}", f"{s['slice_docs_per_s']:,.0f}",
                      f"{s['slice_ms_per_doc']:.3f}", *(str(s.get(k, "-")) for k in
                                                        ("rss_server_mb", "rss_anvil_mb", "rss_client_mb")))
    return table


def bench_issue(
    count: Annotated[int, typer.Option("--count", min=1, max=1_000_000)] = 10_000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=10_000)] = 1000,
    request_size: Annotated[int, typer.Option("--request-size", min=1, max=10_000)] = 1000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=16, help="concurrent HTTP clients")] = 2,
    baseline: Annotated[int, typer.Option("--baseline", min=0, help="documents for the one-per-transaction baseline")] = 300,
    type_code: Annotated[str | None, typer.Option("--type")] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=10, help="seconds allowed after the last request")] = 900,
    batch_max_age: Annotated[float, typer.Option(
        "--batch-max-age", min=0.01, help="seconds a partial batch waits for more documents (a larger --batch-size "
                                          "than --request-size needs it longer)")] = 0.2,
    build_processes: Annotated[int | None, typer.Option(
        "--build-processes", min=0, help="the server's build worker processes (default: its setting)")] = None,
    database: Annotated[Database, typer.Option(
        "--database", help="sqlite, or postgresql: a durable PostgreSQL server of the run's own, with SQLite in "
                           "one process measured beside it")] = Database.SQLITE,
    api_processes: Annotated[int, typer.Option(
        "--api-processes", min=1, max=16, help="API processes on one port, as `up --workers N` (PostgreSQL)")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Issue COUNT certificates through POST /api/v1/certificates/batch and time them until anchored."""
    if api_processes > 1 and database is not Database.POSTGRESQL:
        raise ValidationError(f"--api-processes {api_processes} needs --database postgresql: SQLite allows one "
                              "writing process", code="workers_need_postgresql")
    rows = []
    common: dict[str, Any] = {"request_size": request_size, "workers": workers, "type_code": type_code,
                              "timeout": timeout}
    batched = {**common, "batch_size": batch_size, "build_processes": build_processes, "batch_max_age": batch_max_age}
    with tempfile.TemporaryDirectory(prefix="lianzheng-bench-") as tmp:
        if database is Database.POSTGRESQL:
            # lazy import: psycopg and the cluster's programs, only for this run
            from api.devtools.postgres import PostgresCluster

            with PostgresCluster.started(durable=True) as cluster:
                rows.append(run_issue(count, label=f"PostgreSQL, {api_processes} API processes",
                                      data_dir=Path(tmp) / "postgresql", database_url=cluster.create_database(),
                                      api_processes=api_processes, database_pid=cluster.pid, **batched))
            label = "SQLite, 1 API process"
        else:
            label = "batched"
        rows.append(run_issue(count, label=label, data_dir=Path(tmp) / "batched", **batched))
        if baseline:
            rows.append(run_issue(baseline, batch_size=1, label="baseline: 1 doc/tx", data_dir=Path(tmp) / "baseline",
                                  **{**common, "request_size": min(request_size, baseline)}))
    if as_json:
        print_json({"benchmark": "issue", "results": rows})
        return
    table = Table(title="lianzheng bench issue (HTTP batch route, devnet, end to end until anchored)")
    for col in ("run", "docs", "batch", "API processes", "build processes", "seconds", "docs/s", "gas/doc",
                "request p50 ms", "request p99 ms", "anchor p50 ms", "anchor p99 ms"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["label"], f"{r['documents']:,}", str(r["batch_size"]), str(r["api_processes"]),
                      str(r["build_processes"]),
                      f"{r['seconds']:.2f}",
                      f"{r['docs_per_s']:,.0f}", f"{r['gas_per_doc']:,.1f}", f"{r['request_p50_ms']:.0f}",
                      f"{r['request_p99_ms']:.0f}", f"{r['anchor_p50_ms']:.0f}", f"{r['anchor_p99_ms']:.0f}")
    console.print(table)
    console.print(_stage_table(rows))
    for r in rows:
        console.print(f"{r['label']}: CPU ms per document (user + system, the whole run): " + ", ".join(
            f"{name} {ms:.3f}" for name, ms in r["cpu_ms_per_doc"].items()))
        console.print(f"{r['label']}: cores busy over the run (CPU seconds / seconds): " + ", ".join(
            f"{name} {cores:.2f}" for name, cores in r["cpu_cores"].items())
            + f"; sum {sum(r['cpu_cores'].values()):.2f} of {os.cpu_count()}; the server settled "
            f"{r['settled_s']} s after it started")
    if rows[0]["sizes"]:
        console.print(_size_table(rows[0]))
    if database is Database.POSTGRESQL:
        console.print(f"PostgreSQL with {api_processes} API processes vs SQLite in one: "
                      f"{rows[0]['docs_per_s'] / rows[1]['docs_per_s']:.2f}x the throughput")
    if baseline:
        console.print(f"batched vs baseline: {rows[-2]['docs_per_s'] / rows[-1]['docs_per_s']:.1f}x the throughput, "
                      f"{rows[-1]['gas_per_doc'] / max(rows[-2]['gas_per_doc'], 1e-9):.0f}x less gas per document")
