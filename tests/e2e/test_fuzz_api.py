"""schemathesis over the whole OpenAPI of a live system (LocalStack: a real anvil, a bootstrapped node and
uvicorn serving real HTTP), with an issuing agency's API key as bearer auth.

Every operation gets the examples, coverage (boundary values of every constraint), fuzzing (positive and
negative data) and stateful phases (following the OpenAPI links from a created certificate, evidence
record or exchange to the operations that take it). The run must end with no server error, every status
code and body as declared (errors as `{"error": {code, message, details}}`), every content type as
declared, and every request that breaks the schema refused with a 4xx.

Bounded by `--max-examples` so that it takes about two minutes on a 2-core machine. The seed is random
unless LIANZHENG_FUZZ_SEED is set; a failing run prints it, and the same seed replays the same cases.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from api.stack import LocalStack
from tests.support import plain_http

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "negative_data_rejection")
PHASES = ("examples", "coverage", "fuzzing", "stateful")
MAX_EXAMPLES = 6
REJECTION_STATUSES = (400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429)
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def _operations(url: str) -> int:
    spec = plain_http.get(f"{url}/openapi.json", timeout=30).json()
    return sum(1 for item in spec["paths"].values() for method in item if method in {"get", "post", "put", "delete"})


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    seed = os.environ.get("LIANZHENG_FUZZ_SEED")
    with LocalStack(tmp_path / "stack", batch_max_age=0.2) as stack:
        issuer = stack.node.seeds.member(stack.node.seeds.certificate_types[0].issuers[0])
        operations = _operations(stack.url)
        config = tmp_path / "schemathesis.toml"
        # too many items in a list (a batch, a status query) is 413 batch_too_large, like an oversized body
        statuses = ", ".join(f'"{code}"' for code in REJECTION_STATUSES)
        config.write_text(f"[checks.negative_data_rejection]\nexpected-statuses = [{statuses}]\n", encoding="utf-8")
        command = [
            str(SCHEMATHESIS), "--config-file", str(config), "run", f"{stack.url}/openapi.json",
            "--header", f"Authorization: Bearer {stack.api_keys[issuer.uscc]}",
            "--checks", ",".join(CHECKS), "--phases", ",".join(PHASES),
            "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--request-timeout", "60",
            "--suppress-health-check", "all", "--report", "junit", "--report-dir", str(tmp_path / "report"),
            "--no-color", *(["--seed", seed] if seed else []),
        ]
        started = time.monotonic()
        run = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
        seconds = time.monotonic() - started
    output = run.stdout + run.stderr
    found_seed = re.search(r"Seed: (\d+)", output)
    assert run.returncode == 0, (f"schemathesis failed (replay with LIANZHENG_FUZZ_SEED="
                                 f"{found_seed.group(1) if found_seed else '?'}):\n{output[-12_000:]}")
    suites = ET.parse(next((tmp_path / "report").glob("*.xml"))).getroot()
    cases = suites.findall(".//testcase")
    failed = [c.get("name") for c in cases if c.find("failure") is not None or c.find("error") is not None]
    assert failed == [], output[-12_000:]
    assert len(cases) >= operations, f"{len(cases)} scenarios for {operations} operations"  # + the stateful one
    generated = re.search(r"(\d+) generated, (\d+) passed", output)
    assert generated is not None and int(generated.group(1)) == int(generated.group(2)) > 10 * operations, output[-4000:]
    print(f"schemathesis: {generated.group(0)} over {operations} operations in {seconds:.0f} s")
