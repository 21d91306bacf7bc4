"""SM3 batch roots on a real anvil (issue 13, item 3): each batch is anchored with its SM3 RFC 6962 root beside
the SHA-256 one, documents carry their SM3 audit path, verification (API document / identifier / digest)
recomputes both, and one flipped bit of the SM3 root or of a row's SM3 digest in the database is reported as
tampered by verification and as a finding by the audit replay."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from api.devtools.samples import sample_values
from registry.audit.replay import Auditor
from registry.certificates.anchoring import sm3_root
from registry.certificates.documents import Document
from registry.certificates.offline import OfflineVerifier, make_offline_qr
from registry.consortium.trust_list import TrustList
from registry.errors import PayloadTooLargeError
from registry.formats.qr import encode_payload, sign_payload
from registry.node import Node
from registry.store.db import Batch, Certificate
from tests.conftest import Api, make_api

pytestmark = pytest.mark.anvil


@pytest.fixture(params=["gm", "intl"])
def gm_api(request: pytest.FixtureRequest, anvil_node: Node, tmp_path: Path) -> Iterator[Api]:
    yield from make_api(anvil_node, tmp_path / "api", crypto_profile=request.param)


def _issue(api: Api, n: int = 5) -> list[dict[str, Any]]:
    ct = api.node.seeds.certificate_types[0]
    issuer = api.node.seeds.member(ct.issuers[0])
    r = api.client.post("/api/v1/certificates/batch?wait=true",
                        json={"type": ct.code, "documents": sample_values(ct, n, issuer=issuer, seed=1313)},
                        headers=api.auth(issuer.uscc))
    assert r.status_code == 201, r.text
    return list(r.json()["certificates"])


def _checks(body: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in body["checks"]}


def _verify(api: Api, body: dict[str, Any], path: str = "/api/v1/verify") -> dict[str, Any]:
    r = api.client.post(path, json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _flip(hex_text: str) -> str:
    return hex_text[:-1] + ("0" if hex_text[-1] != "0" else "1")


def test_a_batch_is_anchored_with_its_sm3_root_and_verifies_through_both_trees(gm_api: Api) -> None:
    api = gm_api
    certs = _issue(api)
    with api.node.db.session() as s:
        batch = s.scalars(select(Batch)).one()
        digests = list(s.scalars(select(Certificate.digest_sm3).where(Certificate.batch_id == batch.id)
                                 .order_by(Certificate.leaf_index)))
    on_chain = api.node.certificate_ledger.get_batch(bytes.fromhex(batch.root[2:]))
    assert on_chain is not None and on_chain.count == 5
    assert on_chain.sm3_root == sm3_root(digests) == bytes.fromhex(batch.root_sm3[2:])  # recomputed independently
    doc = Document.from_json(certs[2]["document"])
    assert doc.anchor is not None and doc.anchor.sm3_root == on_chain.sm3_root
    assert doc.anchor.includes_sm3(doc.digest_sm3) and not doc.anchor.includes_sm3(doc.digest_sha256)

    for body, path in (({"document": certs[2]["document"]}, "/api/v1/verify"),
                       ({"identifier": doc.identifier}, "/api/v1/verify"),
                       ({"identifier": doc.identifier, "digest": doc.digest_sha256.hex(), "sm3": doc.digest_sm3.hex()},
                        "/api/v1/verify/digest"),
                       ({"identifier": doc.identifier, "digest": doc.digest_sha256.hex()}, "/api/v1/verify/digest")):
        result = _verify(api, body, path)
        assert result["verdict"] == "valid", (path, result["checks"])
        assert _checks(result)["sm3"] == "VALID", (path, result["checks"])
        assert result["anchor"]["sm3_root"] == on_chain.sm3_root.hex()


def test_a_document_whose_sm3_path_or_root_was_altered_is_tampered(api: Api) -> None:
    cert = _issue(api, 3)[1]
    for member, index in (("sm3_path", 0), ("sm3_root", None)):
        forged = copy.deepcopy(cert["document"])
        if index is None:
            forged["anchor"][member] = _flip(forged["anchor"][member])
        else:
            forged["anchor"][member][index] = _flip(forged["anchor"][member][index])
        result = _verify(api, {"document": forged})
        assert result["verdict"] == "tampered", member
        assert _checks(result)["sm3"] == "INVALID" and _checks(result)["anchoring"] == "VALID", member
    wrong = _verify(api, {"identifier": cert["identifier"], "digest": cert["document"]["digest"]["sha256"],
                          "sm3": _flip(cert["document"]["digest"]["sm3"])}, "/api/v1/verify/digest")
    assert wrong["verdict"] == "tampered" and "SM3" in wrong["checks"][0]["reason_en"]


def test_an_anchor_without_sm3_path_is_not_available_never_valid(api: Api) -> None:
    """A document anchored before SM3 roots went on chain carries no SM3 members: SKIPPED, not VALID."""
    cert = _issue(api, 2)[0]
    old = copy.deepcopy(cert["document"])
    del old["anchor"]["sm3_root"], old["anchor"]["sm3_path"]
    result = _verify(api, {"document": old})
    assert result["verdict"] == "valid" and _checks(result)["sm3"] == "SKIPPED"
    half = copy.deepcopy(cert["document"])
    del half["anchor"]["sm3_path"]
    r = api.client.post("/api/v1/verify", json={"document": half})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_document", r.text
    assert "invalid anchor proof" in r.json()["error"]["message"]


@pytest.mark.parametrize("edit", ["batch SM3 root", "certificate SM3 digest", "certificate SM3 path"])
def test_one_flipped_sm3_bit_in_the_database_is_tampered_and_an_audit_finding(api: Api, edit: str) -> None:
    certs = _issue(api, 4)
    target = certs[1]["identifier"]
    auditor = Auditor(api.node, link=None)
    kinds = {"anchor_mismatch", "digest_mismatch", "proof_mismatch"}
    assert not [f for f in auditor.run(save=False).findings if f["kind"] in kinds]
    assert _verify(api, {"identifier": target})["verdict"] == "valid"
    with api.node.db.session() as s:
        row = s.get(Certificate, target)
        assert row is not None and row.proof_sm3 is not None
        if edit == "batch SM3 root":
            batch = s.get(Batch, row.batch_id)
            assert batch is not None and batch.root_sm3 is not None
            s.execute(update(Batch).where(Batch.id == batch.id).values(root_sm3=_flip(batch.root_sm3)))
            expected = "anchor_mismatch"
        elif edit == "certificate SM3 digest":
            s.execute(update(Certificate).where(Certificate.identifier == target)
                      .values(digest_sm3=_flip(row.digest_sm3)))
            expected = "digest_mismatch"
        else:
            s.execute(update(Certificate).where(Certificate.identifier == target)
                      .values(proof_sm3=bytes([row.proof_sm3[0] ^ 1]) + row.proof_sm3[1:]))
            expected = "proof_mismatch"
    result = _verify(api, {"identifier": target})
    assert result["verdict"] == "tampered", result["checks"]
    assert _checks(result)["sm3"] == "INVALID" and _checks(result)["anchoring"] == "VALID"
    findings = [f for f in auditor.run(save=False).findings if f["kind"] in kinds]
    assert findings and {f["kind"] for f in findings} == {expected}, findings
    if edit != "batch SM3 root":
        assert {f["ref"] for f in findings} == {target}


# --- offline (by-value) QR payloads ---------------------------------------------------------------------------


def _offline(api: Api, n: int) -> tuple[Any, Document, Any, bytes]:
    """(verifier over the server's signed trust list, document, its anchor, the issuer's key) of a batch of n."""
    cert = _issue(api, n)[0]
    api.services.index.refresh(force=True)
    r = api.client.get("/api/v1/trust-list")
    assert r.status_code == 200, r.text
    trust = TrustList.from_json(r.json())
    doc = Document.from_json(cert["document"])
    assert doc.anchor is not None and trust.sm3_roots[doc.anchor.batch_root] == doc.anchor.sm3_root
    key = bytes(api.node.keys.signing_account(doc.issuer_uscc).key)
    return OfflineVerifier(trust), doc, doc.anchor, key


def test_an_offline_payload_carries_the_sm3_path_when_it_costs_no_field_and_verifies_both_roots(api: Api) -> None:
    verifier, doc, anchor, key = _offline(api, 5)
    qr = make_offline_qr(doc, anchor, key)  # a batch of 5: a 3-hash path fits within version 25
    assert qr.hidden == () and qr.payload.sm3_proof == list(anchor.sm3_path or ())
    result = verifier.verify_text(qr.text)
    assert result.verdict == "valid" and _checks(result.to_json())["sm3"] == "VALID", result.checks
    without = make_offline_qr(doc, anchor, key, sm3=False)
    assert len(qr.text) - len(without.text) > 3 * 32  # what the SM3 part costs here
    old = verifier.verify_text(without.text)
    assert old.verdict == "valid" and _checks(old.to_json())["sm3"] == "SKIPPED"

    steps = list(qr.payload.sm3_proof or [])
    steps[0] = bytes([steps[0][0] ^ 1]) + steps[0][1:]
    forged = dataclasses.replace(qr.payload, sm3_proof=steps)  # the statement signs the roots, not the paths
    resigned = sign_payload(dataclasses.replace(forged, issuer_account=b""), key)  # the first intl form, re-signed
    for bad in (verifier.verify_text(encode_payload(forged)), verifier.verify_text(encode_payload(resigned))):
        assert bad.verdict == "tampered" and _checks(bad.to_json())["sm3"] == "INVALID"
        assert _checks(bad.to_json())["integrity"] == "VALID" and _checks(bad.to_json())["signature"] == "VALID"


def test_a_long_document_in_a_big_batch_keeps_its_fields_rather_than_the_sm3_path(api: Api) -> None:
    verifier, doc, anchor, key = _offline(api, 40)  # a 6-hash path: ~300 more characters
    plain = make_offline_qr(doc, anchor, key, sm3=False)
    qr = make_offline_qr(doc, anchor, key)
    assert qr.hidden == plain.hidden  # never a field hidden for the SM3 part
    assert qr.payload.sm3_proof is None and verifier.verify_text(qr.text).verdict == "valid"
    with pytest.raises(PayloadTooLargeError):  # asked for, it does not fit version 25 even hiding fields
        make_offline_qr(doc, anchor, key, sm3=True)
    forced = make_offline_qr(doc, anchor, key, sm3=True, max_version=30)
    assert forced.payload.sm3_proof is not None and forced.version > plain.version
    assert _checks(verifier.verify_text(forced.text).to_json())["sm3"] == "VALID"
