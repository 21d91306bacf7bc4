"""Two nodes on one chain (issue 11): node A is a `LocalStack` hosting the seed agencies; node B is an
`AgencyNode` whose only agency was admitted through governance with a key generated in B's own key store.
Nothing is shared but the chain: each node learns the other's steps from EvidenceLedger / ExchangeLedger
events (registry/outbox/inbox.py), and each step is signed on the node of the agency acting. A sealed
certificate issued on A verifies on B with its seal checked there (the sealed signature in A's public record).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from api.devtools.samples import sample_values
from api.stack import LocalStack
from chain.ledgers import decode_raw_transaction
from registry.audit.replay import Auditor
from registry.evidence.inbox import EvidenceInbox
from registry.exchanges.inbox import ExchangeInbox
from registry.holders.keys import HolderKey
from registry.outbox.inbox import ChainInbox
from registry.store.db import Certificate
from registry.store.ledger_models import EvidenceCase, EvidenceEvent, EvidenceRecord, Exchange, ExchangeStepRow
from registry.store.seal_models import SealedSignature, SealRow
from tests.support import plain_http, postgres
from tests.support.evidence import JUSTICE, MARKET, POLICE, evidence_body
from tests.support.nodes import AgencyNode, wait_for
from tests.support.seals import CITY_MARKET, create_seal, seal_png, swap_sealed_image
from tests.support.usage import anchor, issue_bound, make_grant

pytestmark = pytest.mark.anvil  # the tests build on each other

CONTENT = b"\xff\xd8 bodycam frame 0042 of the case"
PAYLOAD = b"SCJG-001 enterprise registration rows" * 40


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, AgencyNode]]:
    where = tmp_path_factory.mktemp("two-nodes")
    with LocalStack(where / "a", checkpoint_interval=0, database_url=postgres.database_url(where / "a")) as a, \
            AgencyNode(where / "b", a) as b:
        yield a, b


def _signer(node: Any, tx_hash: str) -> str:
    raw = node.blocks.raw_transaction(tx_hash)
    assert raw is not None
    return decode_raw_transaction(raw).sender


def test_custody_moves_between_nodes_each_step_signed_on_its_own_node(nodes: tuple[LocalStack, AgencyNode]) -> None:
    a, b = nodes
    ca, cb = httpx.Client(base_url=a.url, timeout=30), httpx.Client(base_url=b.url, timeout=30)
    court = b.uscc
    r = ca.post("/api/v1/evidence", json=evidence_body(CONTENT, case_no="（2026）黑0102刑初88号"), headers=a.auth(POLICE))
    assert r.status_code == 201, r.text
    ev = r.json()
    r = ca.post(f"/api/v1/evidence/{ev['id']}/transfer", json={"to": court, "purpose": "移送审判"}, headers=a.auth(POLICE))
    assert r.status_code == 200, r.text
    sent = r.json()["custody_log"][-1]

    # B learns the offer from the chain alone: its agency's incoming list shows what the chain says
    incoming = wait_for(lambda: cb.get("/api/v1/evidence", params={"role": "incoming"}, headers=b.auth()).json()["records"],
                        "the transfer to appear on node B")
    [rec] = incoming
    sha = hashlib.sha256(CONTENT).hexdigest()
    assert rec["mirrored"] is True and rec["key"] == ev["key"] and rec["id"] == ev["key"][2:]
    assert rec["content"]["sha256"] == sha and rec["content"]["size"] == len(CONTENT) and rec["meta_digest"] == ev["meta_digest"]
    assert rec["custodian"]["uscc"] == POLICE and rec["pending_transfer_to"]["uscc"] == court
    assert rec["case_key"] == ev["case_key"] and rec["registered"]["tx_hash"] == ev["registered"]["tx_hash"]
    transfer = rec["custody_log"][-1]
    assert transfer["step"] == "transfer" and transfer["purpose"] is None  # only the purpose digest is on chain
    assert transfer["purpose_digest"] == sent["purpose_digest"] and transfer["tx_hash"] == sent["tx_hash"]
    assert transfer["account"] == a.node.keys.signing_account(POLICE).address
    # nothing personal crossed: no operator, no case number, no purpose text, no acquisition details
    assert rec["operator_id"] == "" and rec["case_no"] == ev["case_key"] and rec["acquisition"] == {}
    # the identifier, told out of band, finds the record too (its SHA-256 is the key)
    r = cb.get(f"/api/v1/evidence/{ev['id']}", headers=b.auth())
    assert r.status_code == 200 and r.json()["key"] == ev["key"]
    assert cb.get(f"/api/v1/evidence/{ev['id']}/status").json()["pending_transfer_to"]["uscc"] == court

    # B accepts with its own key, re-checking the digest of the file it received
    r = cb.post(f"/api/v1/evidence/{ev['id']}/accept", json={"sha256": "00" * 32}, headers=b.auth())
    assert r.status_code == 409 and r.json()["error"]["code"] == "digest_mismatch"
    r = cb.post(f"/api/v1/evidence/{ev['id']}/accept", json={"sha256": sha}, headers=b.auth())
    assert r.status_code == 200, r.text
    accept = r.json()["custody_log"][-1]
    assert accept["step"] == "accept" and accept["digest_rechecked"] is True
    assert _signer(b.node, accept["tx_hash"]) == b.account == accept["account"]

    # A sees the acceptance from the chain: custody is with B's agency
    def custodian_on_a() -> str:
        return str(ca.get(f"/api/v1/evidence/{ev['id']}", headers=a.auth(POLICE)).json()["custodian"]["uscc"])

    wait_for(lambda: custodian_on_a() == court, "node A to see B's acceptance")
    view = ca.get(f"/api/v1/evidence/{ev['id']}", headers=a.auth(POLICE)).json()
    assert view["pending_transfer_to"] is None and [e["step"] for e in view["custody_log"]] == ["register", "transfer", "accept"]
    assert view["custody_log"][-1]["account"] == b.account and view["custody_log"][-1]["tx_hash"] == accept["tx_hash"]
    status = ca.get(f"/api/v1/evidence/{ev['id']}/status").json()
    assert status["custodian"]["uscc"] == court and status["source"] == "chain"

    # custody now belongs to B's agency: it transfers further, to an agency hosted on A, which accepts
    r = cb.post(f"/api/v1/evidence/{rec['id']}/transfer", json={"to": JUSTICE, "purpose": "申诉复查"}, headers=b.auth())
    assert r.status_code == 200, r.text
    assert _signer(b.node, r.json()["custody_log"][-1]["tx_hash"]) == b.account
    wait_for(lambda: ca.get(f"/api/v1/evidence/{ev['id']}", headers=a.auth(JUSTICE)).json()["pending_transfer_to"],
             "node A to see B's transfer")
    r = ca.post(f"/api/v1/evidence/{ev['id']}/accept", json={}, headers=a.auth(JUSTICE))
    assert r.status_code == 200, r.text
    wait_for(lambda: cb.get(f"/api/v1/evidence/{rec['id']}", headers=b.auth()).json()["custodian"]["uscc"] == JUSTICE,
             "node B to see the acceptance on A")
    steps_a = [e["step"] for e in ca.get(f"/api/v1/evidence/{ev['id']}", headers=a.auth(JUSTICE)).json()["custody_log"]]
    steps_b = [e["step"] for e in cb.get(f"/api/v1/evidence/{rec['id']}", headers=b.auth()).json()["custody_log"]]
    assert steps_a == steps_b == ["register", "transfer", "accept", "transfer", "accept"]


def test_an_exchange_runs_its_four_steps_across_nodes(nodes: tuple[LocalStack, AgencyNode]) -> None:
    a, b = nodes
    ca, cb = httpx.Client(base_url=a.url, timeout=30), httpx.Client(base_url=b.url, timeout=30)
    r = cb.post("/api/v1/exchanges", json={"item": "SCJG-001", "purpose": "核查涉案企业登记信息",
                                           "legal_basis": "《政务数据共享管理办法》第十条"}, headers=b.auth())
    assert r.status_code == 201, r.text
    ex = r.json()
    assert ex["provider"]["uscc"] == MARKET and ex["consumer"]["uscc"] == b.uscc

    # the provider, hosted on A, finds the request among its exchanges
    def requested_on_a() -> list[dict[str, Any]]:
        got = ca.get("/api/v1/exchanges", params={"status": "requested"}, headers=a.auth(MARKET)).json()["exchanges"]
        return [e for e in got if e["key"] == ex["key"]]

    [mirror] = wait_for(requested_on_a, "the request to appear on node A")
    assert mirror["mirrored"] is True and mirror["purpose"] == "" and mirror["purpose_digest"] == ex["purpose_digest"]
    r = ca.post(f"/api/v1/exchanges/{ex['id']}/authorise", json={"reason": "依申请共享"}, headers=a.auth(MARKET))
    assert r.status_code == 200, r.text
    wait_for(lambda: cb.get(f"/api/v1/exchanges/{ex['id']}", headers=b.auth()).json()["status"] == "authorised",
             "node B to see the authorisation")
    payload = hashlib.sha256(PAYLOAD).hexdigest()
    r = ca.post(f"/api/v1/exchanges/{mirror['id']}/deliver", json={"sha256": payload, "size": len(PAYLOAD), "records": 40},
                headers=a.auth(MARKET))
    assert r.status_code == 200, r.text
    wait_for(lambda: cb.get(f"/api/v1/exchanges/{ex['id']}", headers=b.auth()).json()["status"] == "delivered",
             "node B to see the delivery")
    r = cb.post(f"/api/v1/exchanges/{ex['id']}/acknowledge", json={"sha256": payload}, headers=b.auth())
    assert r.status_code == 200 and r.json()["status"] == "acknowledged", r.text
    final_a = wait_for(lambda: (v := ca.get(f"/api/v1/exchanges/{mirror['id']}", headers=a.auth(MARKET)).json())
                       ["status"] == "acknowledged" and v, "node A to see the acknowledgement")
    final_b = cb.get(f"/api/v1/exchanges/{ex['id']}", headers=b.auth()).json()
    for field in ("status", "key", "purpose_digest", "payload", "received_sha256", "matched"):
        assert final_a[field] == final_b[field], field
    market = a.node.keys.signing_account(MARKET).address
    acting = {"request": b.account, "authorise": market, "deliver": market, "acknowledge": b.account}
    for view in (final_a, final_b):
        assert [s["step"] for s in view["steps"]] == list(acting)
        for step in view["steps"]:
            assert _signer(a.node, step["tx_hash"]) == acting[step["step"]] == step["account"]


def test_node_b_holds_no_key_of_node_a_and_both_audits_are_clean(nodes: tuple[LocalStack, AgencyNode]) -> None:
    a, b = nodes
    assert {k.uscc for k in b.node.keys.held_keys()} == {b.uscc}
    assert not a.node.keys.has_signing_key(b.uscc)
    with b.node.db.engine.connect() as db:  # the key table itself, not only what the key store reports
        rows = [tuple(r) for r in db.execute(text("SELECT uscc, address FROM agency_keys"))]
    assert rows == [(b.uscc, b.account)]
    seed_accounts = {a.node.keys.signing_account(m.uscc).address.lower() for m in a.node.seeds.members}
    assert not seed_accounts & {addr.lower() for _, addr in rows}
    for node, inbox in ((a.node, a.services.inbox), (b.node, b.services.inbox)):
        inbox.run_once()
        report = Auditor(node, link=None).run()
        assert report.findings == [], report.findings
        assert report.counts["evidence_records"] == 1 and report.counts["exchanges"] == 1
    # the mirrored rows are audited like any other: an edited custodian on B is found
    with b.node.db.session() as s:
        rec = s.scalars(select(EvidenceRecord)).one()
        assert rec.id == rec.key[2:]  # the mirrored record
        rec.custodian_uscc, real = POLICE, rec.custodian_uscc
    try:
        kinds = {f["kind"] for f in Auditor(b.node, link=None).run().findings}
        assert kinds == {"custody_mismatch"}, kinds
    finally:
        with b.node.db.session() as s:
            s.scalars(select(EvidenceRecord)).one().custodian_uscc = real


_TABLES = (EvidenceCase, EvidenceRecord, EvidenceEvent, Exchange, ExchangeStepRow)


def _dump(node: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every mirrored-ledger table, row by row (what a replay must not change)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with node.db.session() as s:
        for model in _TABLES:
            cols = [c.key for c in model.__table__.columns if c.key not in ("updated_at",)]
            out[model.__tablename__] = sorted(tuple(str(getattr(r, c)) for c in cols) for r in s.scalars(select(model)))
    return out


def test_replaying_every_event_again_changes_nothing_on_either_node(nodes: tuple[LocalStack, AgencyNode]) -> None:
    a, b = nodes
    for stack_or_node in (a, b):
        node = stack_or_node.node
        stack_or_node.services.inbox.run_once()
        before = _dump(node)
        assert before["evidence_events"] and before["exchange_steps"]
        # a new follower starts from the deployment block: every event of both ledgers is applied again
        fresh = ChainInbox(node, [EvidenceInbox(node), ExchangeInbox(node)])
        assert fresh.run_once() == 0
        assert fresh.run_once() == 0
        assert _dump(node) == before


def test_a_chain_reset_drops_mirrored_steps_until_the_chain_has_them_again(nodes: tuple[LocalStack, AgencyNode]) -> None:
    a, b = nodes
    ca, cb = httpx.Client(base_url=a.url, timeout=30), httpx.Client(base_url=b.url, timeout=30)
    snapshot = a.node.backend.raw("evm_snapshot", [])  # type: ignore[attr-defined]
    r = ca.post("/api/v1/evidence", json=evidence_body(b"reset me", case_no="RESET-1"), headers=a.auth(POLICE))
    ev = r.json()
    r = ca.post(f"/api/v1/evidence/{ev['id']}/transfer", json={"to": b.uscc, "purpose": "移送"}, headers=a.auth(POLICE))
    assert r.status_code == 200, r.text

    def on_b() -> dict[str, Any]:
        return dict(cb.get(f"/api/v1/evidence/{ev['id']}", headers=b.auth()).json())

    wait_for(lambda: on_b().get("pending_transfer_to"), "node B to mirror the transfer")
    assert a.node.backend.raw("evm_revert", [snapshot])  # type: ignore[attr-defined]  # the devnet lost those blocks
    b.services.inbox.run_once()
    # the record stays known (by its key) but nothing the chain lost is claimed: no steps, no offer, not
    # registered; B's agency is no longer involved in it
    r = cb.get(f"/api/v1/evidence/{ev['id']}", headers=b.auth())
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_involved", r.text
    with b.node.db.session() as s:
        rec = s.get(EvidenceRecord, ev["key"][2:])
        assert rec is not None and rec.status == "pending" and rec.pending_to is None and rec.custodian_uscc == POLICE
        assert not s.scalars(select(EvidenceEvent).where(EvidenceEvent.record_id == rec.id)).all()
    # A's outbox notices the loss and anchors its steps again; B mirrors them again, once
    a.services.worker.reconcile()
    a.services.worker.flush(timeout=30)
    wait_for(lambda: (v := on_b()).get("status") == "registered" and v["pending_transfer_to"], "node B to mirror them again")
    assert [e["step"] for e in on_b()["custody_log"]] == ["register", "transfer"]
    for node, inbox in ((a.node, a.services.inbox), (b.node, b.services.inbox)):
        inbox.run_once()
        report = Auditor(node, link=None).run()
        assert report.findings == [], report.findings


def test_a_sealed_certificate_issued_on_node_a_verifies_with_its_seal_on_node_b(
        nodes: tuple[LocalStack, AgencyNode]) -> None:
    """Node B holds neither the certificate nor the seal: the sealed signature comes in node A's public record
    and B checks it against its own seal index (the chain), as A does."""
    a, b = nodes
    a.node.consortium.set_endpoint(a.node.sender_for(MARKET), a.url)  # how B finds the issuing node: on chain
    ours = create_seal(a.url, a.auth(MARKET), seal_png("red"))
    create_seal(a.url, a.auth(CITY_MARKET), seal_png("blue"), name="哈尔滨市市场监督管理局行政许可专用章")
    ct = a.node.seeds.certificate_types[0]
    r = plain_http.post(f"{a.url}/api/v1/certificates/batch?wait=true", headers=a.auth(MARKET), timeout=60, json={
        "type": ct.code, "seal": ours["id"], "documents": sample_values(ct, 2, issuer=a.node.seeds.member(MARKET), seed=91)})
    assert r.status_code == 201, r.text
    good, swapped = r.json()["certificates"]
    swap_sealed_image(a.node, swapped["identifier"], seal_png("blue"))  # before B ever fetched its record
    cb = httpx.Client(base_url=b.url, timeout=30)

    def verified(identifier: str) -> dict[str, Any] | None:
        result = cb.post("/api/v1/verify", json={"identifier": identifier}).json()
        return None if result["verdict"] in ("not_anchored", "cannot_verify") else dict(result)

    result = wait_for(lambda: verified(good["identifier"]), "node B to see the sealed batch")
    checks = {c["name"]: c for c in result["checks"]}
    assert result["verdict"] == "valid", result
    assert checks["source"]["status"] == "VALID" and checks["source"]["details"]["endpoint"] == a.url
    seal = checks["seal"]
    assert seal["status"] == "VALID" and seal["details"]["source"] == "issuer_node", seal
    assert seal["details"]["seal"] == ours["id"] and seal["details"]["image_sha256"] == ours["image_sha256"]
    assert seal["details"]["agency"] == MARKET and "印章有效" in seal["reason_zh"]
    # the page's path (digest only) runs the same check on B, and B serves the image that was sealed
    with a.node.db.session() as s:
        row = s.get(Certificate, good["identifier"])
        assert row is not None
        digest = row.digest_sha256
    by_digest = cb.post("/api/v1/verify/digest", json={"identifier": good["identifier"], "digest": digest}).json()
    assert [c["status"] for c in by_digest["checks"] if c["name"] == "seal"] == ["VALID"], by_digest
    # so does a full document presented on B: its own digests, the seal from A's record
    by_document = cb.post("/api/v1/verify", json={"document": good["document"]}).json()
    [doc_seal] = [c for c in by_document["checks"] if c["name"] == "seal"]
    assert by_document["verdict"] == "valid" and doc_seal["status"] == "VALID", by_document
    image = cb.get(f"/api/v1/certificates/{good['identifier']}/seal/image")
    assert image.status_code == 200 and hashlib.sha256(image.content).hexdigest() == ours["image_sha256"]
    with b.node.db.session() as s:  # B learnt the seal from the chain only, and stored no signature of A's
        assert s.scalars(select(SealedSignature)).first() is None and s.scalars(select(SealRow)).first() is None
    # a record whose sealed signature carries another agency's seal image: B says so, in words
    bad = wait_for(lambda: verified(swapped["identifier"]), "node B to verify the swapped one")
    [check] = [c for c in bad["checks"] if c["name"] == "seal"]
    assert bad["verdict"] == "tampered" and check["status"] == "INVALID", check
    assert check["details"]["problem"] == "image_mismatch" and "哈尔滨市市场监督管理局" in check["reason_zh"], check


def test_an_agency_on_node_b_uses_and_fetches_a_certificate_issued_on_node_a_under_the_holder_s_grant(
        nodes: tuple[LocalStack, AgencyNode]) -> None:
    """用证 and 免证办 across nodes: the grant names B's agency and is anchored by A (the issuer's node); B checks it
    against A's public record (the holder key id) and the chain, records the usage with its own key, and opens the
    document with its own exchange key from the ciphertext A serves. A grant for another agency is refused."""
    a, b = nodes
    ca = httpx.Client(base_url=a.url, timeout=60)
    api_a = SimpleNamespace(node=a.node, services=a.services, auth=a.auth, client=ca)
    holder = HolderKey.generate()
    cert = issue_bound(api_a, holder, seed=41)  # type: ignore[arg-type]
    a.node.consortium.set_endpoint(a.node.sender_for(cert.issuer), a.url)  # how B finds the issuing node
    assert ca.get(f"/api/v1/certificates/{cert.identifier}/record").json()["holder_key_digest"] == holder.public.key_id
    grant = make_grant(b.node, holder, cert, b.uscc, wrap_for=b.uscc)  # wrapped to B's exchange key
    anchor(a.node, grant)
    cb = httpx.Client(base_url=b.url, timeout=60)
    body = {"certificate": cert.identifier, "purpose": "跨节点核验从业资格", "grant": grant.to_json()}
    r = cb.post("/api/v1/usages", json=body, headers=b.auth())  # B's grant index reads the chain as it is now
    assert r.status_code == 201, r.text
    usage = r.json()
    assert usage["channel"] == "grant" and usage["agency"]["uscc"] == b.uscc
    r = cb.post("/api/v1/usages/fetch", json=body, headers=b.auth())
    assert r.status_code == 200, r.text
    doc = r.json()["document"]
    assert doc["identifier"] == cert.identifier and doc["digest"]["sha256"] == cert.digest
    assert doc["fields"]["持证主体"]["value"] == cert.values["持证主体"]
    # a grant naming an agency hosted on A is not B's to use
    other = make_grant(a.node, holder, cert, POLICE)
    anchor(a.node, other)
    r = cb.post("/api/v1/usages", json={**body, "grant": other.to_json()}, headers=b.auth())
    assert r.status_code == 403 and r.json()["error"]["code"] in ("wrong_grantee", "wrong_party"), r.text
