"""A smoke run of `lianzheng bench crypto`: the table is produced and the chosen library passes its checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.unit.crypto._openssl import needs_openssl

ROOT = Path(__file__).resolve().parents[3]


@needs_openssl
def test_bench_crypto_smoke() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "api.cli", "bench", "crypto", "--seconds", "0.05", "--json"],
                         capture_output=True, check=True, timeout=120, cwd=ROOT, env=env)
    rows = {r["name"]: r for r in json.loads(out.stdout)["results"]}
    chosen = rows["tongsuopy 1.0 (chosen)"]
    assert (chosen["standard_example"], chosen["openssl_to_lib"], chosen["lib_to_openssl"]) == ("ok", "ok", "ok")
    assert chosen["sign_per_s"] > 0 and chosen["verify_per_s"] > 0
    assert rows["sign_json/verify_json SM2-SM3"]["verify_per_s"] > 0
