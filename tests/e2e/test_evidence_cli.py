"""The `lianzheng evidence` and `lianzheng exchange` CLIs as officers, notaries, courts and agencies use them,
against a real API server and anvil: each scenario of the seeds, custody across three agencies, a sealed
case refusing changes, refusals as one-line errors, a package verified offline after the devnet stopped,
the outbox across the outage, and a 1 GB file streamed in constant memory."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.stack import LocalStack
from chain.ledgers import EvidenceLedgerClient
from registry.crypto.hashing import sha256_key
from tests.support import plain_http
from tests.support.anvil import make_devnet
from tests.support.audit import seal_image
from tests.support.cli import LZ, lz
from tests.support.evidence import COURT, HRSS, JUSTICE, MARKET, NOTARY, POLICE, PRISON, rewrite_zip

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    data_dir = tmp_path_factory.mktemp("evidence-cli")
    # the devnet lives in the stack's data dir, so the CLI finds it (online package checks) like `make run`
    devnet = make_devnet(data_dir, data_dir=data_dir)
    devnet.start()
    try:
        with LocalStack(data_dir, devnet=devnet, batch_max_age=0.2) as s:
            yield s
    finally:
        devnet.stop()


def env(stack: LocalStack) -> dict[str, str]:
    return {**os.environ, "LIANZHENG_DATA_DIR": str(stack.data_dir), "LIANZHENG_API_URL": stack.url,
            "LIANZHENG_OPERATOR": "230100-0042", "COLUMNS": "200"}


def run(stack: LocalStack, *args: str, ok: bool = True, real: bool = False) -> subprocess.CompletedProcess[str]:
    """In this process (tests/support/cli.py), or as the installed entry point with `real`."""
    p = lz(args, env=env(stack), real=real)
    if ok:
        assert p.returncode == 0, p.stderr + p.stdout
    return p


def run_json(stack: LocalStack, *args: str, real: bool = False) -> Any:
    return json.loads(run(stack, *args, "--json", real=real).stdout)


def refused(stack: LocalStack, *args: str, code: str, real: bool = False) -> str:
    """The command fails with a one-line diagnosis naming `code`."""
    p = run(stack, *args, ok=False, real=real)
    assert p.returncode != 0, p.stdout
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and f"[{code}]" in lines[0], p.stderr
    return lines[0]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_enforcement_record_through_the_cli_custody_across_three_agencies_and_a_sealed_case(
        stack: LocalStack, tmp_path: Path) -> None:
    case = "哈公（道里）行罚决字〔2026〕0318号"
    photo = write(tmp_path / "IMG_0001.jpg", b"\xff\xd8\xff\xe0 on-site photo " * 50)
    decision = write(tmp_path / "处罚决定书.pdf", b"%PDF-1.7 administrative penalty decision")
    rec = run_json(stack, "evidence", "add", str(photo), "--case", case, "--scenario", "行政执法", "--agency", POLICE,
                   "--device", "执法记录仪 DSJ-V9", "--place", "哈尔滨市道里区", real=True)  # the installed entry point
    assert rec["status"] == "registered" and rec["type_code"] == "XZZF-001" and rec["id"].startswith("EV-XZZF-")
    assert rec["legal_basis"].startswith("《行政处罚法》第四十七条") and rec["authority"] == "黑龙江省公安厅"
    doc = run_json(stack, "evidence", "add", str(decision), "--case", case, "--scenario", "行政执法", "--agency", POLICE)
    assert doc["type_code"] == "XZZF-003" and doc["content"]["media_type"] == "application/pdf"

    # the acting agency is found for each step: the custodian transfers, the recipient accepts
    run(stack, "evidence", "transfer", rec["id"], "--to", JUSTICE, "--purpose", "移送法制审核")
    run(stack, "evidence", "accept", rec["id"], "--file", str(photo))  # re-checks the digest first
    run(stack, "evidence", "transfer", rec["id"], "--to", COURT, "--purpose", "移送法院审理")
    run(stack, "evidence", "accept", rec["id"])
    p = run(stack, "evidence", "seal", case)
    assert "sealed" in p.stdout
    view = run_json(stack, "evidence", "show", rec["id"])
    assert [c["uscc"] for c in view["custody_chain"]] == [POLICE, JUSTICE, COURT] and view["case_sealed"]
    assert view["custody_log"][2]["digest_rechecked"] is True

    refused(stack, "evidence", "add", str(write(tmp_path / "late.jpg", b"late")), "--case", case, "--scenario", "行政执法",
            "--agency", POLICE, code="case_sealed")
    refused(stack, "evidence", "transfer", rec["id"], "--to", POLICE, code="case_sealed")


def test_penalty_execution_check_ins_are_appended_through_the_cli(stack: LocalStack, tmp_path: Path) -> None:
    case = "黑司矫字〔2026〕第0099号"
    ids = []
    for week in range(2):
        f = write(tmp_path / f"checkin-{week}.json",
                  json.dumps({"对象编号": "JZ-0099", "周次": week, "报到方式": "现场"}, ensure_ascii=False).encode())
        ids.append(run_json(stack, "evidence", "add", str(f), "--case", case, "--scenario", "刑罚执行",
                            "--agency", PRISON)["id"])
    fixed = write(tmp_path / "checkin-1-fixed.json", b'{"week": 1, "mode": "video"}')
    correction = run_json(stack, "evidence", "add", str(fixed), "--case", case, "--scenario", "刑罚执行", "--agency",
                          PRISON, "--supersedes", ids[1], "--reason", "报到方式登记错误")
    view = run_json(stack, "evidence", "case", case)
    assert [r["id"] for r in view["records"]] == [*ids, correction["id"]]
    assert {r["type_code"] for r in view["records"]} == {"XFZX-001"}
    assert next(r for r in view["records"] if r["id"] == ids[1])["superseded_by"] == correction["id"]


def test_a_notary_anchors_a_copy_and_the_holder_verifies_it_later_through_the_cli(stack: LocalStack, tmp_path: Path) -> None:
    copy = write(tmp_path / "公证书.pdf", b"%PDF-1.7 notarised copy " * 200)
    rec = run_json(stack, "evidence", "add", str(copy), "--case", "(2026)黑哈证字第2048号", "--scenario", "公证",
                   "--agency", NOTARY)
    assert rec["type_code"] == "GZ-001"
    result = run_json(stack, "evidence", "verify", str(copy))  # the holder: no id, found by digest
    assert result["verdict"] == "unaltered" and result["record"]["id"] == rec["id"]
    assert "哈尔滨公证处" in result["summary"]
    data = bytearray(copy.read_bytes())
    data[100] ^= 0x20
    altered = write(tmp_path / "altered.pdf", bytes(data))
    p = run(stack, "evidence", "verify", str(altered), "--json", ok=False)
    assert p.returncode == 1 and json.loads(p.stdout)["verdict"] == "unknown"
    p = run(stack, "evidence", "verify", str(altered), "--id", rec["id"], ok=False)
    assert p.returncode == 1 and "altered" in p.stdout and "SHA-256 differs" in p.stdout and "SM3 differs" in p.stdout


def test_evidence_added_under_a_seal_through_the_cli_shows_the_seal_check(stack: LocalStack, tmp_path: Path) -> None:
    image = write(tmp_path / "seal.png", seal_image((200, 0, 0)))
    seal = run_json(stack, "seal", "create", "--name", "黑龙江省公安厅执法专用章", "--image", str(image), "--category",
                    "business", "--valid-until", "2030-12-31", "--agency", POLICE, real=True)
    photo = write(tmp_path / "sealed.jpg", b"sealed enforcement photo " * 40)
    rec = run_json(stack, "evidence", "add", str(photo), "--case", "C-cli-seal", "--scenario", "行政执法", "--agency",
                   POLICE, "--seal", seal["id"])
    assert rec["seal"] == seal["id"] and rec["status"] == "registered"
    result = run_json(stack, "evidence", "verify", str(photo), "--id", rec["id"])
    [check] = [c for c in result["checks"] if c["check"] == "seal"]
    assert result["verdict"] == "unaltered" and check["status"] == "VALID", result
    p = run(stack, "evidence", "verify", str(photo), "--id", rec["id"])
    assert f"e-seal {seal['id']} verified" in " ".join(p.stdout.split())
    run(stack, "seal", "suspend", seal["id"], "--reason", "印章送检", "--agency", POLICE)
    refused(stack, "evidence", "add", str(write(tmp_path / "later.jpg", b"later")), "--case", "C-cli-seal", "--scenario",
            "行政执法", "--agency", POLICE, "--seal", seal["id"], code="seal_suspended")


def test_refusals_are_one_line_errors_with_a_code(stack: LocalStack, tmp_path: Path) -> None:
    f = write(tmp_path / "photo.jpg", b"refusal photo")
    refused(stack, "evidence", "add", str(f), "--case", "C-cli-refusals", "--scenario", "行政执法", "--agency", POLICE,
            "--legal-basis", "", code="missing_legal_basis", real=True)  # a real process's stderr: one line
    refused(stack, "evidence", "add", str(f), "--case", "C-cli-refusals", "--scenario", "行政执法", "--agency", MARKET,
            code="missing_evidence_role")
    rec = run_json(stack, "evidence", "add", str(f), "--case", "C-cli-refusals", "--scenario", "行政执法", "--agency", POLICE)
    refused(stack, "evidence", "transfer", rec["id"], "--to", COURT, "--agency", JUSTICE, code="not_custodian")
    refused(stack, "exchange", "request", "--agency", POLICE, "--item", "NOPE-001", "--purpose", "x", "--legal-basis", "y",
            code="unknown_catalogue_item")
    refused(stack, "evidence", "add", str(tmp_path / "missing.jpg"), "--case", "C", "--scenario", "公证", "--agency", NOTARY,
            code="file_not_found")


def test_an_exchange_through_the_cli(stack: LocalStack, tmp_path: Path) -> None:
    ex = run_json(stack, "exchange", "request", "--agency", POLICE, "--item", "SCJG-001", "--purpose", "核查涉案企业登记信息",
                  "--legal-basis", "《政务数据共享管理办法》第十条", real=True)
    assert ex["status"] == "requested" and ex["provider"]["uscc"] == MARKET
    run(stack, "exchange", "authorise", ex["id"])  # as the item's provider
    payload = write(tmp_path / "payload.jsonl", b'{"enterprise": 1}\n' * 40)
    delivered = run_json(stack, "exchange", "deliver", ex["id"], str(payload), "--records", "40")
    assert delivered["status"] == "delivered"
    listed = run_json(stack, "exchange", "list", "--agency", POLICE, "--status", "unacknowledged")
    assert [e["id"] for e in listed["exchanges"]] == [ex["id"]]
    refused(stack, "exchange", "acknowledge", ex["id"], str(payload), "--agency", HRSS, code="not_a_party")
    p = run(stack, "exchange", "acknowledge", ex["id"], str(payload), "--agency", POLICE)
    assert "acknowledged" in p.stdout


def test_a_package_verifies_offline_after_the_devnet_stops_and_an_edited_record_fails(
        stack: LocalStack, tmp_path: Path) -> None:
    case = "哈公行罚〔2026〕0600号"
    a = run_json(stack, "evidence", "add", str(write(tmp_path / "a.jpg", b"package photo a")), "--case", case,
                 "--scenario", "行政执法", "--agency", POLICE)
    run(stack, "evidence", "transfer", a["id"], "--to", COURT, "--purpose", "移送法院")
    run(stack, "evidence", "accept", a["id"])
    run(stack, "evidence", "seal", case)
    package = tmp_path / "case.zip"
    run(stack, "evidence", "export", case, "--out", str(package))
    with zipfile.ZipFile(package) as z:
        assert {"manifest.json", "signature.json", "custody.json", "trust-list.json", f"records/{a['id']}.json"} <= set(
            z.namelist())
        as_of = json.loads(z.read("manifest.json"))["chain"]["as_of_block"]
    online = run(stack, "evidence", "verify-package", str(package))
    assert "package OK" in online.stdout and "still on chain" in online.stdout

    edited = tmp_path / "edited.zip"
    rewrite_zip(package, edited, lambda name, data: data.replace(b'"a.jpg"', b'"a-renamed.jpg"')
                if name == f"records/{a['id']}.json" else data)
    stack.devnet.stop()
    try:
        offline = run(stack, "evidence", "verify-package", str(package), "--offline", real=True)
        assert f"as of block {as_of}" in offline.stdout and "package OK" in offline.stdout
        refused(stack, "evidence", "verify-package", str(package), code="chain_unavailable")  # online needs the chain
        p = run(stack, "evidence", "verify-package", str(edited), "--offline", ok=False)
        assert p.returncode == 1 and "package INVALID" in p.stdout
        assert f"record {a['id']}" in p.stderr and len(p.stderr.strip().splitlines()) == 1
        assert "metadata_mismatch" in p.stdout and "file_modified" in p.stdout

        # the API keeps accepting while the chain is down: the record waits in the outbox
        pending = run_json(stack, "evidence", "add", str(write(tmp_path / "c.jpg", b"during the outage")), "--case",
                           "C-outage-cli", "--scenario", "行政执法", "--agency", POLICE)
        assert pending["status"] == "pending"
    finally:
        stack.devnet.start()
    deadline = time.monotonic() + 30
    while plain_http.get(f"{stack.url}/api/v1/evidence/{pending['id']}/status").json()["status"] != "registered":
        assert time.monotonic() < deadline, "the outbox did not anchor the record after the restart"
        time.sleep(0.2)
    ledger = stack.node.client(EvidenceLedgerClient)
    assert [e.name for e in ledger.events_for(sha256_key(pending["id"]))] == ["EvidenceRegistered"]


@pytest.mark.slow
def test_a_1gb_file_streams_through_the_cli_in_constant_memory(stack: LocalStack, tmp_path: Path) -> None:
    big = tmp_path / "bodycam.mp4"
    size = 1 << 30
    block = hashlib.sha256(b"lianzheng").digest() * 2048  # 64 KiB pattern
    with big.open("wb") as f:  # sparse with a pattern every 64 MiB: fast to make, 1 GiB to read
        f.truncate(size)
        for offset in range(0, size, 64 << 20):
            f.seek(offset)
            f.write(block)

    def measured(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
        probe = ("import json, resource, subprocess, sys\n"
                 "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
                 "print(json.dumps({'rc': p.returncode, 'out': p.stdout, 'err': p.stderr,\n"
                 "                  'rss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")
        p = subprocess.run([sys.executable, "-c", probe, LZ, *args], capture_output=True, text=True, env=env(stack),
                           timeout=120)
        out = json.loads(p.stdout)
        return subprocess.CompletedProcess(args, out["rc"], out["out"], out["err"]), out["rss_kb"] / 1024

    p, rss = measured("evidence", "add", str(big), "--case", "C-bodycam", "--scenario", "行政执法", "--agency", POLICE,
                      "--json")
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout)
    assert rec["content"]["size"] == size and rec["type_code"] == "XZZF-002" and rss < 200, rss
    with big.open("rb") as f:  # what was registered is the file's digest, computed in one streaming pass
        assert rec["content"]["sha256"] == hashlib.file_digest(f, "sha256").hexdigest()
    with big.open("r+b") as f:  # one byte altered after registration
        f.seek(size // 2 + 12345)
        f.write(b"\x01")
    p, rss = measured("evidence", "verify", str(big), "--id", rec["id"], "--json")
    result = json.loads(p.stdout)
    assert p.returncode == 1 and result["verdict"] == "altered" and rss < 200, rss
    assert result["differences"] == ["sha256", "sm3"] and result["record"]["id"] == rec["id"]
