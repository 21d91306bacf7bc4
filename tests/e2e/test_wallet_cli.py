"""`lianzheng holder export` and `lianzheng verify bundle.json` as a holder and a verifier would use them, against a
real API server and anvil (LocalStack): a wallet holding a bound certificate (issued JSON) and an unbound one (its
QR link) exports W3C VC 2.0 credentials (schema-valid, file 0600) that re-import into `lianzheng verify`: valid,
revoked after the issuer revokes, tampered when a claim is edited; bad input ends with one line and exit 2."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.devtools.samples import sample_values
from api.stack import LocalStack
from tests.support import plain_http
from tests.support.cli import FirstCallReal
from tests.unit.registry.test_vc import schema_errors

pytestmark = [pytest.mark.anvil, pytest.mark.xdist_group("wallet_cli")]

CLI = FirstCallReal()  # each command family's first call is a real process, later ones run in this process
PASSPHRASE = "电子卡包 export"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("wallet-cli"), batch_max_age=0.2) as s:
        yield s


def run(stack: LocalStack, *args: str, code: int = 0, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIANZHENG_DATA_DIR": str(stack.data_dir), "LIANZHENG_API_URL": stack.url,
           "LIANZHENG_HOLDER_PASSPHRASE": PASSPHRASE}
    p = CLI(args, env=env, cwd=cwd)
    assert p.returncode == code, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    return p


def _issue(stack: LocalStack, seed: int, holder_key: str | None = None) -> dict[str, Any]:
    ct = stack.node.seeds.certificate_types[0]
    issuer = ct.issuers[0]
    [values] = sample_values(ct, 1, issuer=stack.node.seeds.member(issuer), seed=seed)
    body: dict[str, Any] = {"type": ct.code, "fields": values}
    if holder_key:
        body["holder_key"] = holder_key
    r = plain_http.post(f"{stack.url}/api/v1/certificates?wait=true", json=body, headers=stack.auth(issuer), timeout=60)
    assert r.status_code == 201, r.text
    stack.services.index.refresh(force=True)
    return dict(r.json())


def _verify(stack: LocalStack, target: Path, code: int) -> dict[str, Any]:
    return dict(json.loads(run(stack, "verify", str(target), "--json", code=code).stdout))


def test_a_wallet_exports_credentials_that_lianzheng_verify_re_imports(stack: LocalStack, tmp_path: Path) -> None:
    wallet = tmp_path / "wallet"
    made = json.loads(run(stack, "holder", "init", "--wallet", str(wallet), "--json").stdout)
    bound = _issue(stack, 71, made["public_key"])
    unbound = _issue(stack, 72)
    (tmp_path / "bound.json").write_text(json.dumps(bound, ensure_ascii=False), encoding="utf-8")
    run(stack, "holder", "add", str(tmp_path / "bound.json"), "--wallet", str(wallet))
    run(stack, "holder", "add", unbound["qr_url"], "--wallet", str(wallet))  # a link only: the blob, no anchor

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    out = shared / "kabao.json"
    summary = json.loads(run(stack, "holder", "export", "--wallet", str(wallet), "-o", str(out), "--json").stdout)
    assert summary == {"credentials": 2, "valid": 2, "offline_qr": 0, "not_valid": {}, "file": str(out)}
    # the bundle holds holder data: 0600; the user's folder keeps its own mode
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and stat.S_IMODE(shared.stat().st_mode) == 0o755
    exported = json.loads(out.read_text(encoding="utf-8"))
    assert exported["format"] == "lianzheng/wallet-export/1" and exported["holderKeyId"] == made["key_id"]
    by_id = {vc["id"].rsplit(":", 1)[1]: vc for vc in exported["verifiableCredential"]}
    assert set(by_id) == {bound["identifier"], unbound["identifier"]}
    for vc in by_id.values():
        assert schema_errors(vc) == []
        assert vc["proof"]["document"]["anchor"] is not None  # completed from the node for the link-only one
    assert by_id[bound["identifier"]]["credentialSubject"]["id"] == f"urn:lianzheng:holder-key:{made['key_id']}"
    assert "id" not in by_id[unbound["identifier"]]["credentialSubject"]
    context = plain_http.get(by_id[bound["identifier"]]["@context"][1])
    assert context.status_code == 200 and "LianzhengCertificate" in context.json()["@context"]

    result = _verify(stack, out, 0)
    assert result["verdict"] == "valid" and [c["verdict"] for c in result["credentials"]] == ["valid", "valid"]
    assert all(c["checks"][0]["name"] == "credential" for c in result["credentials"])
    single = tmp_path / "vc.json"
    single.write_text(json.dumps(by_id[bound["identifier"]], ensure_ascii=False), encoding="utf-8")
    lone = _verify(stack, single, 0)
    assert lone["verdict"] == "valid" and lone["identifier"] == bound["identifier"]
    human = run(stack, "verify", str(single)).stdout
    assert "有效 / valid" in human and "credential" in human

    edited = json.loads(json.dumps(by_id[unbound["identifier"]]))
    edited["credentialSubject"]["fields"]["法定代表人"] = "冒名者"
    single.write_text(json.dumps(edited, ensure_ascii=False), encoding="utf-8")
    tampered = _verify(stack, single, 1)
    assert tampered["verdict"] == "tampered" and "credentialSubject" in tampered["checks"][0]["reason_en"]

    r = plain_http.post(f"{stack.url}/api/v1/certificates/{unbound['identifier']}/revoke", json={"reason": 4},
                        headers=stack.auth(unbound["identifier"].split(".")[6]))
    assert r.status_code == 200, r.text
    stack.services.index.refresh(force=True)
    again = tmp_path / "again.json"
    summary = json.loads(run(stack, "holder", "export", "--wallet", str(wallet), "-o", str(again), "--json").stdout)
    assert summary["valid"] == 1 and summary["not_valid"] == {unbound["identifier"]: "revoked"}
    result = _verify(stack, again, 1)
    assert result["verdict"] == "revoked"


def test_bad_input_ends_with_one_line_and_exit_2(stack: LocalStack, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"format": "lianzheng/wallet-export/1", "verifiableCredential": []}), encoding="utf-8")
    p = run(stack, "verify", str(broken), code=2)
    assert "[invalid_bundle]" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    not_ours = tmp_path / "not-ours.json"
    not_ours.write_text(json.dumps({"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiableCredential"],
                                    "issuer": "did:example:1", "credentialSubject": {"a": 1}}), encoding="utf-8")
    p = run(stack, "verify", str(not_ours), code=2)
    assert "[invalid_credential]" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    wallet = tmp_path / "empty"
    run(stack, "holder", "init", "--wallet", str(wallet))
    p = run(stack, "holder", "export", "--wallet", str(wallet), "-o", str(tmp_path / "x.json"), code=2)
    assert "[empty_wallet]" in p.stderr and not (tmp_path / "x.json").exists()
    p = run(stack, "holder", "export", "--wallet", str(tmp_path / "nowhere"), code=2)
    assert "[no_wallet]" in p.stderr
