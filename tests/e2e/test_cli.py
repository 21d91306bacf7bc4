"""The `lianzheng` CLI as an agency and a verifier would use it, against a real API server and anvil."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.stack import LocalStack
from tests.support.cli import FirstCallReal

CLI = FirstCallReal()  # each command family's first call is a real process, later ones run in this process


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("cli"), batch_max_age=0.2) as s:
        yield s


def run(stack: LocalStack, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIANZHENG_DATA_DIR": str(stack.data_dir), "LIANZHENG_API_URL": stack.url}
    p = CLI(args, env=env)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def _type(stack: LocalStack, name: str = "营业执照") -> Any:
    return next(t for t in stack.node.seeds.certificate_types if t.name == name)


def test_sample_issue_json_and_lifecycle(stack: LocalStack, tmp_path: Path) -> None:
    ct = _type(stack)
    samples = run(stack, "sample", "--type", ct.code, "--count", "25", "--seed", "4").stdout
    docs = json.loads(samples)
    assert len(docs) == 25 and all(d["持证主体"] for d in docs)
    src = tmp_path / "docs.json"
    src.write_text(samples, encoding="utf-8")
    p = run(stack, "issue", "--agency", ct.issuers[0], "--type", ct.code, str(src), "--json")
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(lines) == 25 and {x["status"] for x in lines} == {"issued"}
    assert "docs/s" in p.stderr  # the progress bar reports its rate
    ident = lines[0]["id"]
    verdicts = []
    for action, extra in (("suspend", []), ("reinstate", []), ("revoke", ["--reason", "2"])):
        run(stack, action, ident, *extra)
        out = run(stack, "verify", ident, "--json", ok=False)  # at once: the node saw its own change (service.py)
        verdicts.append(json.loads(out.stdout)["verdict"])
        assert out.returncode == (0 if verdicts[-1] == "valid" else 1)
    assert verdicts == ["suspended", "valid", "revoked"]
    again = run(stack, "reinstate", ident, ok=False)
    assert again.returncode != 0 and "invalid_transition" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_issue_from_csv_disclose_and_verify_a_file(stack: LocalStack, tmp_path: Path) -> None:
    ct = _type(stack, "学位证书")
    docs = json.loads(run(stack, "sample", "--type", ct.code, "--count", "3").stdout)
    src = tmp_path / "docs.csv"
    with src.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for d in docs for k in d}))
        writer.writeheader()
        for d in docs:
            writer.writerow({k: "" if v is None else v for k, v in d.items()})
    p = run(stack, "issue", "--agency", ct.issuers[0], "--type", ct.code, str(src), "--json")
    ident = json.loads(p.stdout.splitlines()[0])["id"]
    saved = stack.data_dir / "issued" / f"{ident}.json"
    assert saved.exists()
    doc = json.loads(saved.read_text())["document"]
    full = tmp_path / "full.json"
    full.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    # at once: a batch root the node's chain index has not read yet gets one early refresh (index.py `batch`)
    assert json.loads(run(stack, "verify", str(full), "--json").stdout)["verdict"] == "valid"
    shown = tmp_path / "shown.json"
    run(stack, "disclose", str(full), "--hide", "持证主体代码", "--out", str(shown))
    result = json.loads(run(stack, "verify", str(shown), "--json").stdout)
    assert result["verdict"] == "valid" and result["hidden_fields"] == ["持证主体代码"]
    doc["fields"]["持证主体"]["value"] += "X"
    full.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    tampered = run(stack, "verify", str(full), "--json", ok=False)
    assert tampered.returncode == 1 and json.loads(tampered.stdout)["verdict"] == "tampered"


def test_bad_input_exits_non_zero_with_one_line(stack: LocalStack, tmp_path: Path) -> None:
    ct = _type(stack)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"持证主体": "某公司"}]), encoding="utf-8")
    cases = [
        ("issue", "--agency", ct.issuers[0], "--type", ct.code, str(bad)),
        ("issue", "--agency", ct.issuers[0], "--type", ct.code, str(tmp_path / "missing.json")),
        ("revoke", "1.2.156.3005.2.nonsense", "--reason", "1"),
        ("agency", "key", "create", "91230100MA1B2C3D40"),
    ]
    for args in cases:
        p = run(stack, *args, ok=False)
        assert p.returncode != 0, args
        assert len(p.stderr.strip().splitlines()) == 1, (args, p.stderr)
        assert "Traceback" not in p.stderr
    with stack.node.db.session() as s:
        from sqlalchemy import func, select

        from registry.store.db import Certificate

        assert s.scalar(select(func.count()).select_from(Certificate).where(
            Certificate.identifier.like("%nonsense%"))) == 0


def test_issue_under_a_seal_and_a_bad_seal_is_one_line_with_nothing_stored(stack: LocalStack, tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from api.devtools.samples import sample_values
    from registry.store.db import Certificate
    from registry.store.seal_models import SealedSignature
    from tests.support.seals import CITY_MARKET, MARKET, create_seal, seal_png

    ct = _type(stack)
    assert MARKET in ct.issuers and CITY_MARKET in ct.issuers
    ours = create_seal(stack.url, stack.auth(MARKET), seal_png("red"))
    theirs = create_seal(stack.url, stack.auth(CITY_MARKET), seal_png("blue"), name="哈尔滨市市场监督管理局行政许可专用章")
    market = stack.node.seeds.member(MARKET)
    src = tmp_path / "sealed.json"
    src.write_text(json.dumps(sample_values(ct, 3, issuer=market, seed=7), ensure_ascii=False), encoding="utf-8")
    p = run(stack, "issue", "--agency", MARKET, "--type", ct.code, str(src), "--seal", ours["id"], "--json")
    ids = [json.loads(line)["id"] for line in p.stdout.splitlines()]
    assert len(ids) == 3
    with stack.node.db.session() as s:  # each sealed with that seal
        assert {r.record_id: r.seal_id for r in s.scalars(select(SealedSignature).where(
            SealedSignature.record_id.in_(ids)))} == dict.fromkeys(ids, ours["id"])
    result = json.loads(run(stack, "verify", ids[-1], "--json").stdout)  # and verified by anybody's verification
    [seal] = [c for c in result["checks"] if c["name"] == "seal"]
    assert result["verdict"] == "valid" and seal["status"] == "VALID" and seal["details"]["seal"] == ours["id"]
    run(stack, "seal", "suspend", ours["id"], "--agency", MARKET, "--reason", "印章保管人变更")

    def counts() -> tuple[int, int]:
        with stack.node.db.session() as s:
            return (int(s.scalar(select(func.count()).select_from(Certificate)) or 0),
                    int(s.scalar(select(func.count()).select_from(SealedSignature)) or 0))

    before = counts()
    fresh = tmp_path / "more.json"
    fresh.write_text(json.dumps(sample_values(ct, 2, issuer=market, seed=8), ensure_ascii=False), encoding="utf-8")
    for seal, code in (("ES11230000MB1A00028M9999", "unknown_seal"), (theirs["id"], "foreign_seal"),
                       (ours["id"], "seal_suspended"), ("not a seal", "")):
        p = run(stack, "issue", "--agency", MARKET, "--type", ct.code, str(fresh), "--seal", seal, ok=False)
        assert p.returncode != 0, seal
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, (seal, p.stderr)
        assert code in p.stderr, (seal, p.stderr)
        assert counts() == before, seal  # nothing stored
