"""`lianzheng holder …` as a holder would use it, against a real API server and anvil: a wallet (key encrypted at
rest, files 0600), a certificate issued bound to its key (`issue --holder-key`), a presentation, a grant with the
document key wrapped for the grantee agency (免证办), the holder's own listing, revocation, one-line errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.stack import LocalStack
from registry.formats import envelope
from registry.holders.exchange import ExchangeKeys
from registry.holders.grants import Grant
from registry.holders.wrapping import unwrap_key
from tests.support.cli import FirstCallReal

# each command family's first call is a real process, later ones run in this process; `holder grant` opens a node on
# the stack's database, which the API serving in this process has open: always a real process
CLI = FirstCallReal(always_real=[("holder", "grant")])
PASSPHRASE = "长城长 correct horse"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("holder-cli"), batch_max_age=0.2) as s:
        yield s


def run(stack: LocalStack, *args: str, ok: bool = True, passphrase: str = PASSPHRASE) -> subprocess.CompletedProcess[str]:
    # the chain: the wallet checks an agency's exchange-key statement against the member's accounts on chain
    env = {**os.environ, "LIANZHENG_DATA_DIR": str(stack.data_dir), "LIANZHENG_API_URL": stack.url,
           "LIANZHENG_HOLDER_PASSPHRASE": passphrase, "LIANZHENG_RPC_URLS": f"http://127.0.0.1:{stack.devnet_port}"}
    p = CLI(args, env=env)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def test_a_holder_wallet_receives_presents_grants_and_revokes(stack: LocalStack, tmp_path: Path) -> None:
    wallet = tmp_path / "wallet"
    made = json.loads(run(stack, "holder", "init", "--wallet", str(wallet), "--json").stdout)
    assert stat.S_IMODE(wallet.stat().st_mode) == 0o700
    assert stat.S_IMODE((wallet / "key.json").stat().st_mode) == 0o600
    assert "PRIVATE" not in (wallet / "key.json").read_text()

    ct = next(t for t in stack.node.seeds.certificate_types if t.name == "营业执照")
    src = tmp_path / "docs.json"
    src.write_text(run(stack, "sample", "--type", ct.code, "--count", "1", "--seed", "9").stdout, encoding="utf-8")
    issued = json.loads(run(stack, "issue", "--agency", ct.issuers[0], "--type", ct.code, str(src), "--json",
                            "--holder-key", str(wallet)).stdout)
    ident = issued["id"]
    issued_file = stack.data_dir / "issued" / f"{ident}.json"
    assert json.loads(issued_file.read_text())["document"]["fields"]["holderKeyDigest"]["value"] == made["key_id"]
    run(stack, "holder", "add", str(issued_file), "--wallet", str(wallet))

    shown = json.loads(run(stack, "holder", "present", ident, "--wallet", str(wallet), "--json").stdout)
    assert shown["verdict"] == "valid" and shown["presentation"]["verdict"] == "presented_by_holder"

    grantee = next(m.uscc for m in stack.node.seeds.members if m.uscc != ct.issuers[0])
    granted = json.loads(run(stack, "holder", "grant", ident, "--to-agency", grantee, "--purpose", "免证办：企业开户",
                             "--days", "1", "--fields", "持证主体,住所", "--wallet", str(wallet), "--json").stdout)
    assert granted["status"] == "active" and granted["qr"].startswith("lianzheng:grant:")
    grant, _ = Grant.from_qr(granted["qr"])
    assert grant.wrapped_key is not None and grant.fields == ("持证主体", "住所")
    _, document_key = envelope.parse_ref_url(json.loads(issued_file.read_text())["qr_url"])
    assert unwrap_key(grant.wrapped_key, ExchangeKeys(stack.node).private(grantee), grant_id=grant.id) == document_key

    mine = json.loads(run(stack, "holder", "grants", "--wallet", str(wallet), "--json").stdout)
    assert [g["digest"] for g in mine["grants"]] == [granted["digest"]]
    certs = json.loads(run(stack, "holder", "certificates", "--wallet", str(wallet), "--json").stdout)
    assert [c["identifier"] for c in certs["certificates"]] == [ident]

    revoked = json.loads(run(stack, "holder", "revoke-grant", granted["digest"], "--wallet", str(wallet),
                             "--json").stdout)
    assert revoked["status"] == "revoked"
    assert json.loads((wallet / "grants" / f"{granted['digest']}.json").read_text())["status"] == "revoked"
    again = run(stack, "holder", "revoke-grant", granted["digest"], "--wallet", str(wallet), ok=False)
    assert again.returncode != 0 and "grant_revoked" in again.stderr and len(again.stderr.strip().splitlines()) == 1


def test_holder_errors_are_one_line(stack: LocalStack, tmp_path: Path) -> None:
    wallet = tmp_path / "w"
    run(stack, "holder", "init", "--wallet", str(wallet))
    again = run(stack, "holder", "init", "--wallet", str(wallet), ok=False)
    assert again.returncode != 0 and "wallet_exists" in again.stderr
    wrong = run(stack, "holder", "present", "1.2.156", "--wallet", str(wallet), ok=False)
    assert wrong.returncode != 0 and "unknown_certificate" in wrong.stderr
    bad = run(stack, "holder", "grants", "--wallet", str(wallet), ok=False, passphrase="not it")
    assert bad.returncode != 0 and "wrong_passphrase" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    none = run(stack, "holder", "show", "--wallet", str(tmp_path / "nowhere"), ok=False)
    assert none.returncode != 0 and "no_wallet" in none.stderr
