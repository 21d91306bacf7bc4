"""The benchmarks run and report what they promise (small sizes: numbers here are not asserted against
targets — machines are shared and noisy — only that they are measured and consistent)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from api.cli.bench_issue import rss_mb, stage_breakdown
from registry.certificates.timing import STAGES

LZ = str(Path(sys.executable).parent / "lianzheng")


def _bench(*args: str) -> dict:  # type: ignore[type-arg]
    p = subprocess.run([LZ, "bench", *args, "--json"], capture_output=True, text=True, timeout=300,
                       env={**os.environ})
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout)  # type: ignore[no-any-return]


def test_bench_issue_measures_postgresql_with_two_api_processes_beside_sqlite_and_a_one_per_transaction_baseline(
) -> None:
    result = _bench("issue", "--count", "400", "--request-size", "200", "--batch-size", "200", "--baseline", "20",
                    "--database", "postgresql", "--api-processes", "2")
    postgresql, batched, baseline = result["results"]
    assert [(r["database"], r["api_processes"]) for r in result["results"]] == [
        ("postgresql", 2), ("sqlite", 1), ("sqlite", 1)]
    for run in (postgresql, batched):
        assert run["documents"] == 400 and run["batches"] == 2 and run["docs_per_s"] > 0
        # one ~60k anchor per batch (the first by a new account ~145k) vs one anchor per document
        assert run["gas_per_doc"] < 1_000 < 40_000 < baseline["gas_per_doc"]
        assert run["request_p50_ms"] <= run["request_p99_ms"]
        # 200-document requests are built in the server's worker processes, the baseline's 20 in the API process
        assert run["build_processes"] >= 1
    assert baseline["documents"] == 20 and baseline["batches"] == 20 and baseline["docs_per_s"] > 0
    # the server's time per stage, from its log lines (both API processes write to one): every stage took some
    for run in (postgresql, batched, baseline):
        assert set(run["stages"]) == set(STAGES)
        assert all(run["stages"][stage]["ms_per_doc"] > 0 for stage in STAGES), run["stages"]
        assert abs(sum(st["share"] for st in run["stages"].values()) - 1) < 0.01
    # CPU of both API processes and of the database server counts on PostgreSQL; SQLite is in the API process
    assert postgresql["cpu_ms_per_doc"]["postgresql"] > 0 and postgresql["cpu_ms_per_doc"]["server"] > 0
    assert "postgresql" not in batched["cpu_ms_per_doc"]
    # one transaction per document: anchoring costs the baseline far more per document than batching
    assert baseline["stages"]["anchor"]["ms_per_doc"] > batched["stages"]["anchor"]["ms_per_doc"]
    assert batched["sizes"] == [] and postgresql["sizes"] == []  # the table by size starts at 10,000 documents
    assert baseline["build_processes"] == 0


def test_bench_issue_fails_with_a_non_zero_exit_when_the_run_fails() -> None:
    p = subprocess.run([LZ, "bench", "issue", "--count", "10", "--baseline", "0", "--type", "99999999999999999X999",
                        "--json"], capture_output=True, text=True, timeout=300, env={**os.environ})
    assert p.returncode != 0 and p.stdout == ""
    assert "99999999999999999X999" in p.stderr
    # several API processes need PostgreSQL: refused in one line before anything starts
    p = subprocess.run([LZ, "bench", "issue", "--count", "10", "--api-processes", "2"], capture_output=True, text=True,
                       timeout=300, env={**os.environ})
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().splitlines() == [
        "error [workers_need_postgresql]: --api-processes 2 needs --database postgresql: SQLite allows one writing "
        "process"]


def test_stage_breakdown_sums_the_servers_log_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    lines = [{"event": "certificates issued", "count": 100, "parse_ms": 10.0, "validate_ms": 20.0, "build_ms": 30.0,
              "seal_ms": 20.0, "store_ms": 10.0, "respond_ms": 5.0},
             {"event": "request", "path": "/api/v1/certificates/batch", "duration_ms": 999.0},
             {"event": "certificates anchored", "count": 100, "anchor_ms": 5.0}]
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    stages = stage_breakdown(log, 100)
    assert stages["build"] == {"ms_per_doc": 0.3, "share": 0.3}
    assert stages["anchor"] == {"ms_per_doc": 0.05, "share": 0.05}
    assert rss_mb(os.getpid()) is not None and rss_mb(os.getpid()) > 1  # type: ignore[operator]
    assert rss_mb(None) is None


def _bench_anvils(under: Path) -> dict[int, str]:
    """The anvil processes a benchmark started with its temporary directory under ``under`` (their state lives
    there): this test's own bench, not one another run on the machine started meanwhile."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and argv and argv[0].endswith(b"anvil") and \
                any(b"lianzheng-bench-" in a and a.startswith(bytes(under)) for a in argv):
            found[int(proc.name)] = b" ".join(argv).decode(errors="replace")
    return found


def test_a_benchmark_ended_by_sigterm_stops_the_devnet_it_started(tmp_path: Path) -> None:
    p = subprocess.Popen([LZ, "bench", "issue", "--count", "200000", "--baseline", "0"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        deadline = time.monotonic() + 120
        while not (started := set(_bench_anvils(tmp_path))):  # wait for the bench's own devnet
            assert p.poll() is None and time.monotonic() < deadline, "the bench did not start a devnet"
            time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=120) == 128 + signal.SIGTERM
    finally:
        if p.poll() is None:
            p.kill()
    assert not started & set(_bench_anvils(tmp_path))  # stopped with the bench, not left running detached


def test_bench_verify_reports_http_and_offline_rates_and_two_api_processes_beside_one() -> None:
    result = _bench("verify", "--documents", "20", "--requests", "40", "--clients", "2", "--offline", "200",
                    "--processes", "1", "--api-processes", "2")
    text = json.dumps(result)
    for key in ("p50", "p99"):
        assert key in text
    assert "offline" in text
    http = [r for r in result["results"] if not r["label"].startswith("offline")]
    assert len(http) == 5 and all(r["failures"] == 0 and r["server_cpu_ms"] > 0 for r in http)  # CPU per request
    scaled = [r["label"] for r in http if "2 API processes (PostgreSQL)" in r["label"]]
    assert [label.split(" (")[1].split(")")[0] for label in scaled] == ["document", "identifier"]
    assert "http_throughput_2_api_processes" in result["met"]
    offline = next(r for r in result["results"] if r["label"].startswith("offline LZ2 payload ("))
    assert offline["distinct"] == 20 and offline["requests"] == 200 and offline["cpu_us"] > 0
    index = result["status_index"]  # measured, for 10,000,000 certificates
    assert index["certificates"] == 10_000_000 and 0 < index["bytes_per_certificate"] < 100


def test_bench_offline_verifies_distinct_payloads_of_both_profiles_without_a_devnet() -> None:
    result = _bench("offline", "--count", "40", "--batch-size", "16")
    rows = {r["profile"]: r for r in result["results"]}
    assert set(rows) == {"intl", "gm", "intl-body"}  # intl-body: the first intl form, a signature per payload
    for row in rows.values():
        assert row["payloads"] == 40 and row["cpu_us"] > 0 and row["cpu_per_s"] > 0 and row["wall_per_s"] > 0
        assert row["compiled"] and row["python_cpu_us"] > 0  # beside the baseline: the fields' work in Python
