"""gm offline QR codes and trust list v2 on a real stack (anvil, API, CLI): the trust list is signed with the
operator's SM2 key and verifies with OpenSSL alone; a gm code carries its issuer's SM2 batch statement and an
intl code its secp256k1 one, and both verify against the v2 list; an agency rotates its SM2 key with
`lianzheng consortium propose rotate-sm2-key`, after which its old codes still verify, a code signed with the
old key after the rotation is refused, and new codes carry the new key."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import rfc8785

from api.stack import LocalStack
from registry.certificates.documents import AnchorProof, Document
from registry.certificates.offline import OfflineVerifier, make_offline_qr
from registry.consortium.trust_list import FORMAT_V2, TrustList
from registry.crypto.sm2 import raw_public_key
from registry.formats.batch_statement import key_id
from registry.formats.qr import decode_payload
from tests.support import plain_http
from tests.support.cli import FirstCallReal
from tests.support.verifier import issue_roles, offline_text
from tests.unit.crypto._openssl import SM2_ID, needs_openssl, openssl, write

pytestmark = pytest.mark.anvil
# each command family's first call is a real process, later ones run in this process; the consortium commands open
# a node on the stack's database, which the API serving in this process has open: always real processes
CLI = FirstCallReal(always_real=[("consortium",)])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("gm-offline"), batch_max_age=0.2) as s:
        yield s


def run(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIANZHENG_DATA_DIR": str(stack.data_dir), "LIANZHENG_DEVNET_PORT": str(stack.devnet_port),
           "LIANZHENG_API_URL": stack.url}
    p = CLI(args, env=env)
    assert p.returncode == 0, p.stderr
    return p


def _trust(stack: LocalStack) -> tuple[dict[str, object], TrustList]:
    signed = plain_http.get(stack.url + "/api/v1/trust-list").json()
    return signed, TrustList.from_json(signed)


@needs_openssl
def test_the_trust_list_v2_is_signed_with_sm2_and_openssl_verifies_it(stack: LocalStack, tmp_path: Path) -> None:
    signed, trust = _trust(stack)
    proof = signed["proof"]
    assert signed["format"] == FORMAT_V2 and proof["alg"] == "SM2-SM3"  # type: ignore[index]
    operator = stack.node.seeds.genesis.uscc
    assert trust.signer == stack.node.keys.sm2_public_key(operator).hex()
    assert all(m["sm2_keys"] for m in signed["members"])  # type: ignore[attr-defined]
    key = write(tmp_path / "key.pem", proof["key"].encode())  # type: ignore[index]
    sig = write(tmp_path / "sig.der", base64.b64decode(proof["signature"]))  # type: ignore[index]
    body = write(tmp_path / "list.jcs", rfc8785.dumps({k: v for k, v in signed.items() if k != "proof"}))
    args = ["pkeyutl", "-verify", "-pubin", "-inkey", key, "-rawin", "-digest", "sm3", "-pkeyopt", SM2_ID,
            "-in", body, "-sigfile", sig]
    assert b"Signature Verified Successfully" in openssl(*args).stdout
    write(tmp_path / "list.jcs", rfc8785.dumps({**{k: v for k, v in signed.items() if k != "proof"}, "chain_id": 1}))
    assert openssl(*args, check=False).returncode != 0


def test_gm_and_intl_codes_verify_and_an_sm2_key_rotation_keeps_old_codes(stack: LocalStack) -> None:
    cert = issue_roles(stack, roles=("offline",))["offline"]
    uscc = cert["document"]["fields"]["颁发机构代码"]["value"]
    old_text = offline_text(stack, cert)
    old = decode_payload(old_text)
    old_signer = stack.node.keys.sm2_signer(uscc)
    assert old.statement is not None and not old.signature
    assert old.statement.key_id == key_id(raw_public_key(old_signer.public_key))
    _, trust = _trust(stack)
    verifier = OfflineVerifier(trust)
    assert verifier.verify_text(old_text).verdict == "valid"
    doc, anchor = Document.from_json(cert["document"]), AnchorProof.from_json(cert["document"]["anchor"])
    intl = make_offline_qr(doc, anchor, stack.node.keys.signer(uscc))  # the issuer's secp256k1 account
    intl_statement = decode_payload(intl.text).statement
    assert intl_statement is not None and intl_statement.scheme == "secp256k1"
    assert verifier.verify_text(intl.text).verdict == "valid"
    assert abs(len(old_text) - len(intl.text)) < 60  # an SM2 statement: DER and a key id, not 65 bytes

    admins = [m.uscc for m in stack.node.seeds.members if "admin" in m.roles]
    proposal = json.loads(run(stack, "consortium", "propose", "rotate-sm2-key", uscc, "--as", admins[0], "--json").stdout)
    new_key = bytes.fromhex(proposal["sm2_key"])
    run(stack, "consortium", "approve", str(proposal["id"]), "--as", admins[1])
    run(stack, "consortium", "execute", str(proposal["id"]), "--as", admins[0])
    record = stack.node.consortium.sm2_key_record(new_key)
    assert record is not None and record.uscc == uscc and stack.node.keys.sm2_public_key(uscc) == new_key

    _, trust = _trust(stack)
    verifier = OfflineVerifier(trust)
    assert verifier.verify_text(old_text).verdict == "valid"  # signed before the rotation
    stale = make_offline_qr(doc, anchor, old_signer, signed_at=record.since + 1)
    result = verifier.verify_text(stale.text)
    signature = next(c for c in result.checks if c.name == "signature")
    assert result.verdict == "unknown_issuer" and signature.status == "INVALID"
    assert signature.details["code"] == "key_not_valid_at_time"
    backdated = make_offline_qr(doc, anchor, old_signer, signed_at=record.since - 1)  # within the old validity
    assert verifier.verify_text(backdated.text).verdict == "valid"
    new_text = offline_text(stack, cert)
    fresh = decode_payload(new_text)
    assert fresh.statement is not None and fresh.statement.key_id == key_id(new_key)
    assert verifier.verify_text(new_text).verdict == "valid"
