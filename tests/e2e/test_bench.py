"""The benchmarks run and report what they promise (small sizes: numbers here are not asserted against
targets — machines are shared and noisy — only that they are measured and consistent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LZ = str(Path(sys.executable).parent / "lianzheng")


def _bench(*args: str) -> dict:  # type: ignore[type-arg]
    p = subprocess.run([LZ, "bench", *args, "--json"], capture_output=True, text=True, timeout=300,
                       env={**os.environ})
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout)  # type: ignore[no-any-return]


def test_bench_issue_measures_the_batched_run_and_a_one_per_transaction_baseline() -> None:
    result = _bench("issue", "--count", "400", "--request-size", "200", "--batch-size", "200", "--baseline", "20")
    batched, baseline = result["results"]
    assert batched["documents"] == 400 and batched["batches"] == 2
    assert baseline["documents"] == 20 and baseline["batches"] == 20
    assert batched["docs_per_s"] > 0 and baseline["docs_per_s"] > 0
    # gas per document is deterministic: one ~60k anchor per batch vs one per document
    # one ~60k anchor per batch (the first by a new account ~145k) vs one anchor per document
    assert batched["gas_per_doc"] < 1_000 < 40_000 < baseline["gas_per_doc"]
    assert batched["request_p50_ms"] <= batched["request_p99_ms"]


def test_bench_verify_reports_http_and_offline_rates() -> None:
    result = _bench("verify", "--documents", "20", "--requests", "40", "--clients", "1", "--offline", "200",
                    "--processes", "1")
    text = json.dumps(result)
    for key in ("p50", "p99"):
        assert key in text
    assert "offline" in text
