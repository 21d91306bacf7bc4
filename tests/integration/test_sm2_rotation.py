"""An agency's SM2 key rotated through governance on a real anvil: records signed before the rotation still
verify (on chain and offline against an evidence package's trust list), a record signed with the old key
after it is refused, and the new key and BID are on chain."""

from __future__ import annotations

import base64
import datetime as dt
import time
from pathlib import Path

import pytest
import rfc8785

from registry.audit.report import AuditReport, check_report_signer, default_auditor, sign_report
from registry.consortium.rotation import rotate_sm2_key
from registry.consortium.signers import check_on_chain, signed_at
from registry.crypto.proofs import sign_json, verify_json
from registry.errors import SignatureError
from registry.identifiers import bid_from_sm2_public_key
from registry.node import Node
from tests.unit.crypto._openssl import SM2_ID, needs_openssl, openssl, write


def _record(node: Node, uscc: str, at: dt.datetime) -> dict[str, object]:
    when = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return sign_json({"kind": "test-record", "agency": uscc, "signed_at": when}, node.keys.proof_signer(uscc))


def _check(node: Node, record: dict[str, object], uscc: str) -> None:
    check_on_chain(node.consortium, verify_json(record), uscc, at=signed_at(str(record["signed_at"])))


def test_records_signed_before_a_rotation_verify_and_the_old_key_is_refused_after_it(anvil_node: Node) -> None:
    node = anvil_node
    uscc = next(m.uscc for m in node.seeds.members if "issuer" in m.roles)
    old_signer = node.keys.sm2_signer(uscc)
    # times are the chain's (a shared anvil reverted to a snapshot runs behind the wall clock)
    head = node.blocks.header(node.blocks.head())
    assert head is not None
    before = _record(node, uscc, dt.datetime.fromtimestamp(head.timestamp, dt.UTC))
    _check(node, before, uscc)

    new_key = rotate_sm2_key(node, uscc)
    info = node.consortium.get_member(uscc)
    assert info is not None and info.sm2_key == new_key and info.bid == bid_from_sm2_public_key(new_key)
    rotated_at = node.consortium.sm2_key_record(new_key).since  # type: ignore[union-attr]
    deadline = time.monotonic() + 5
    while int(time.time()) <= rotated_at and time.monotonic() < deadline:  # the clock must pass the rotation
        time.sleep(0.05)

    _check(node, before, uscc)  # signed before the rotation: still valid
    after = dt.datetime.fromtimestamp(rotated_at + 1, dt.UTC)
    stale = sign_json({"kind": "test-record", "agency": uscc, "signed_at": after.strftime("%Y-%m-%dT%H:%M:%SZ")},
                      old_signer)
    with pytest.raises(SignatureError) as refused:
        _check(node, stale, uscc)
    assert refused.value.code == "key_not_valid_at_time"
    fresh = _record(node, uscc, after)
    assert node.keys.sm2_signer(uscc) is not old_signer
    _check(node, fresh, uscc)  # the new key from the rotation on


def test_a_key_of_another_agency_is_refused(anvil_node: Node) -> None:
    issuers = [m.uscc for m in anvil_node.seeds.members if "issuer" in m.roles]
    record = _record(anvil_node, issuers[0], dt.datetime.now(dt.UTC))
    with pytest.raises(SignatureError) as refused:
        check_on_chain(anvil_node.consortium, verify_json(record), issuers[1], at=signed_at(str(record["signed_at"])))
    assert refused.value.code == "untrusted_key"


@needs_openssl
def test_a_signed_audit_report_verifies_with_openssl(anvil_node: Node, tmp_path: Path) -> None:
    auditor = default_auditor(anvil_node)
    signed = sign_report(anvil_node, AuditReport({"findings": [], "counts": {"findings": 0}}), auditor)
    check_report_signer(anvil_node, signed)
    proof = signed.data["proof"]
    assert proof["alg"] == "SM2-SM3" and signed.signer_uscc == auditor
    key = write(tmp_path / "key.pem", proof["key"].encode())
    sig = write(tmp_path / "sig.der", base64.b64decode(proof["signature"]))
    body = write(tmp_path / "report.jcs", rfc8785.dumps(signed.unsigned()))  # without proof (and anchor)
    args = ["pkeyutl", "-verify", "-pubin", "-inkey", key, "-rawin", "-digest", "sm3", "-pkeyopt", SM2_ID,
            "-in", body, "-sigfile", sig]
    assert b"Signature Verified Successfully" in openssl(*args).stdout
    write(tmp_path / "report.jcs", rfc8785.dumps({**signed.unsigned(), "findings": [{"kind": "x"}]}))
    assert openssl(*args, check=False).returncode != 0
