"""The local consortium (`lianzheng consortium up`, api/consortium_stack.py): a devnet, the platform node, node A
(省公安厅 + 省司法厅, key file), node B (省市场监管局, key in SoftHSM2) and an auditor node, each a process of its
own over real HTTP. Nodes share nothing but the chain."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.consortium_stack import JUSTICE, MARKET, POLICE, LocalConsortium
from api.devtools.samples import sample_values
from api.runtime import build_node
from registry.identifiers import CertificateId
from registry.seeds import load_seeds
from tests.support import plain_http
from tests.support.cli import FirstCallReal
from tests.support.evidence import digests, evidence_body
from tests.support.nodes import wait_for
from tests.support.softhsm import require_softhsm

GENESIS = "11230000MB1A0001XM"  # 省政务服务局, on the platform node
JOINING = "11230100MB1B00060Q"  # a new agency joining with a node of its own


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    require_softhsm()
    # no checkpoint gateway nor witness processes here: tests/integration/test_witness_processes.py covers them
    with LocalConsortium(tmp_path_factory.mktemp("consortium"), checkpoint_interval=0) as c:
        yield c


# each command family's first call is a real process, later ones run in this process (the nodes' databases are served
# by the node processes, not by this one)
CLI = FirstCallReal(idle_sqlite=True)


def _lz(c: LocalConsortium, node: str, *args: str) -> str:
    """`LocalConsortium.lz`: `lianzheng` on a node's data dir, as its operator would; returns stdout. Node B's
    SoftHSM2 token is used by its own processes only: its commands always run as real processes."""
    if node == "b":
        return c.lz(node, *args)
    n = c.nodes[node]
    p = CLI(["--data-dir", str(n.data_dir), *args], env={**os.environ, **n.env})
    if p.returncode != 0:
        raise AssertionError(f"lianzheng {' '.join(args[:3])} on node {node} failed: {p.stderr.strip()[-400:]}")
    return p.stdout


def _auth(c: LocalConsortium, node: str, uscc: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {c.nodes[node].api_keys[uscc]}"}


@pytest.fixture(scope="module")
def police_certificate(consortium: LocalConsortium) -> dict[str, Any]:
    """A 无犯罪记录证明 issued by 省公安厅 on node A, anchored."""
    seeds = load_seeds(Path("seeds"))
    ct = next(t for t in seeds.certificate_types if POLICE in t.issuers)
    [values] = sample_values(ct, 1, issuer=seeds.member(POLICE), seed=11)
    r = plain_http.post(consortium.nodes["a"].url + "/api/v1/certificates?wait=true", headers=_auth(consortium, "a", POLICE),
                        json={"type": ct.code, "fields": values}, timeout=120)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _verify(url: str, body: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:  # the other node's index follows the chain (pulls new events at most every 0.5 s)
        r = plain_http.post(url + "/api/v1/verify", json=body, timeout=60)
        assert r.status_code == 200, r.text
        if r.json()["verdict"] == "valid" or time.monotonic() > deadline:
            return dict(r.json())
        time.sleep(0.3)


def test_a_certificate_issued_on_node_a_verifies_on_node_b_and_on_the_auditor_node(
        consortium: LocalConsortium, police_certificate: dict[str, Any]) -> None:
    identifier = police_certificate["identifier"]
    document = police_certificate["document"]
    assert document.get("anchor"), "issuing with wait=true returns the anchored document"
    for name in ("b", "auditor"):
        url = consortium.nodes[name].url
        by_document = _verify(url, {"document": document})
        assert by_document["verdict"] == "valid", by_document
        by_identifier = _verify(url, {"identifier": identifier})
        assert by_identifier["verdict"] == "valid", by_identifier
        checks = {c["name"]: c for c in by_identifier["checks"]}
        assert checks["source"]["status"] == "VALID" and checks["source"]["details"]["endpoint"] == \
            consortium.nodes["a"].url
        assert checks["anchoring"]["status"] == "VALID" and checks["status"]["status"] == "VALID"
        assert checks["sm3"]["status"] == "VALID"  # node A's record carries the SM3 path to the SM3 root on chain
        # the encrypted by-reference document is served by node A through any node (ciphertext only)
        blob = plain_http.get(f"{url}/api/v1/certificates/{identifier}/blob", timeout=30)
        assert blob.status_code == 200 and blob.content == plain_http.get(
            f"{consortium.nodes['a'].url}/api/v1/certificates/{identifier}/blob", timeout=30).content
    # an identifier node A never issued is unknown on other nodes too (node A answers 404 to them)
    cid = CertificateId.parse(identifier)
    unknown = str(CertificateId.build(cid.type_code, cid.issuer_uscc, 999_999))
    r = plain_http.post(consortium.nodes["b"].url + "/api/v1/verify", json={"identifier": unknown}, timeout=30)
    assert r.status_code == 200 and r.json()["verdict"] == "not_anchored", r.text


def test_node_b_and_the_auditor_hold_no_key_of_node_a(consortium: LocalConsortium) -> None:
    node_a = build_node(consortium.nodes["a"].settings())
    needles: set[bytes] = set()
    for uscc in (POLICE, JUSTICE):
        account = node_a.keys.signing_account(uscc).address
        private = bytes(node_a.keys._file.local_account(account).key)
        needles |= {private, private.hex().encode(), private.hex().upper().encode(), base64.b64encode(private)}
    master = bytes.fromhex((consortium.nodes["a"].data_dir / "master.key").read_text().strip())
    needles |= {master, master.hex().encode()}
    node_a.db.engine.dispose()
    for name in ("b", "auditor", "platform"):
        scanned = 0
        for path in consortium.nodes[name].data_dir.rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                scanned += 1
                for needle in needles:
                    assert needle not in content and needle not in content.lower(), f"{path} holds node A's key"
        assert scanned >= 3
    keys_b = json.loads(consortium.lz("b", "keys", "list", "--json"))
    assert {k["uscc"] for k in keys_b["keys"]} == {MARKET} and keys_b["key_backend"] == "pkcs11"
    keys_auditor = json.loads(_lz(consortium, "auditor", "keys", "list", "--json"))
    assert keys_auditor["keys"] == []


def test_a_revoke_from_node_b_is_refused_by_its_api_and_by_the_contract(
        consortium: LocalConsortium, police_certificate: dict[str, Any]) -> None:
    identifier = police_certificate["identifier"]
    r = plain_http.post(f"{consortium.nodes['b'].url}/api/v1/certificates/{identifier}/revoke",
                        headers=_auth(consortium, "b", MARKET), json={"reason": 5}, timeout=30)
    assert r.status_code in (403, 404), r.text
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_certificate"  # node B never had it
    # sent directly to the contract with node B's own key (in its token), the revoke reverts
    anchor = police_certificate["document"]["anchor"]
    script = textwrap.dedent(f"""
        import json, sys
        from api.runtime import build_node
        from api.settings import Settings
        from chain.errors import ContractRevertError
        node = build_node(Settings(data_dir={str(consortium.nodes['b'].data_dir)!r}))
        a = json.loads(sys.argv[1])
        digest = bytes.fromhex(sys.argv[2])
        try:
            node.certificate_ledger.revoke(node.sender_for({MARKET!r}), digest, bytes.fromhex(a["batch_root"][2:]),
                                           a["index"], [bytes.fromhex(p[2:]) for p in a["path"]], 5)
        except ContractRevertError as exc:
            print("REVERTED", exc.error_name if hasattr(exc, "error_name") else exc)
        else:
            print("ACCEPTED")
    """)
    digest = police_certificate["document"]["digest"]["sha256"].removeprefix("0x")
    p = subprocess.run([sys.executable, "-c", script, json.dumps(anchor), digest], capture_output=True, text=True,
                       timeout=120, env={**os.environ, **consortium.nodes["b"].env})
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.startswith("REVERTED"), p.stdout
    # and the certificate is still valid everywhere
    assert _verify(consortium.nodes["auditor"].url, {"identifier": identifier})["verdict"] == "valid"


def test_an_agency_node_issues_and_revokes_through_its_softhsm2_token(consortium: LocalConsortium) -> None:
    seeds = load_seeds(Path("seeds"))
    ct = next(t for t in seeds.certificate_types if MARKET in t.issuers)
    [values] = sample_values(ct, 1, issuer=seeds.member(MARKET), seed=12)
    url, auth = consortium.nodes["b"].url, _auth(consortium, "b", MARKET)
    r = plain_http.post(url + "/api/v1/certificates?wait=true", headers=auth, json={"type": ct.code, "fields": values},
                        timeout=120)
    assert r.status_code == 201, r.text
    identifier = r.json()["identifier"]
    r = plain_http.post(f"{url}/api/v1/certificates/{identifier}/revoke?wait=true", headers=auth, json={"reason": 5},
                        timeout=120)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 60
    while True:
        verdict = plain_http.post(consortium.nodes["a"].url + "/api/v1/verify", json={"identifier": identifier},
                                  timeout=30).json()["verdict"]
        if verdict == "revoked" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert verdict == "revoked"


def test_an_admission_is_approved_from_three_different_nodes(consortium: LocalConsortium, tmp_path: Path) -> None:
    # node C, a joining agency's node, generates its key itself
    joining = LocalConsortium.__new__(LocalConsortium)  # only for its `lz` helper on another data dir
    joining.nodes = {"c": type(consortium.nodes["a"])("c", tmp_path / "node-c", 0)}
    out = json.loads(joining.lz("c", "node", "init", "--agency", JOINING, "--rpc-url", consortium.rpc_url, "--json"))
    [agency] = out["agencies"]

    def lz(node: str, *args: str) -> str:
        return _lz(consortium, node, *args)

    # threshold 3 first (2 approvals suffice for that), so the admission needs all three admins
    t = json.loads(lz("platform", "consortium", "propose", "set-threshold", GENESIS, "--as", GENESIS,
                      "--threshold", "3", "--json"))
    lz("a", "consortium", "approve", str(t["id"]), "--as", JUSTICE)
    lz("platform", "consortium", "execute", str(t["id"]), "--as", GENESIS)
    p = json.loads(lz("platform", "consortium", "propose", "admit", JOINING, "--as", GENESIS, "--name",
                      "哈尔滨市新区管委会", "--roles", "exchange", "--account", agency["account"], "--bid", agency["bid"],
                      "--sm2-key", agency["sm2_key"],
                      "--json"))
    assert p["required"] == 3 and p["approvals"] == 1
    lz("a", "consortium", "approve", str(p["id"]), "--as", JUSTICE)  # node A, its key file
    with pytest.raises(Exception, match="ConsortiumInsufficientApprovals|insufficient|approv"):
        lz("platform", "consortium", "execute", str(p["id"]), "--as", GENESIS)
    lz("b", "consortium", "approve", str(p["id"]), "--as", MARKET)  # node B, its SoftHSM2 token
    lz("platform", "consortium", "execute", str(p["id"]), "--as", GENESIS)
    members = json.loads(lz("auditor", "members", "--json"))
    [joined] = [m for m in members if m["uscc"] == JOINING]
    assert joined["accounts"] == [agency["account"]] and joined["bid"] == agency["bid"]
    # the proposal's three approvals came from three accounts, each held by a different node
    info = json.loads(lz("auditor", "consortium", "proposals", "--json"))
    assert any(x["id"] == p["id"] and x["executed"] for x in info)


PRISONS = "11230000MB1A00095K"  # 省监狱管理局, on the platform node


def test_evidence_and_an_exchange_cross_nodes_each_step_signed_on_its_own_node(consortium: LocalConsortium) -> None:
    platform, a, b = (httpx.Client(base_url=consortium.nodes[n].url, timeout=60) for n in ("platform", "a", "b"))
    content = b"\xff\xd8 photo of seized goods"
    r = platform.post("/api/v1/evidence?wait=true", json=evidence_body(content, case_no="（2026）黑狱移字第7号"),
                      headers=_auth(consortium, "platform", PRISONS))
    assert r.status_code == 201, r.text
    ev = r.json()
    r = platform.post(f"/api/v1/evidence/{ev['id']}/transfer", json={"to": POLICE, "purpose": "移送侦查"},
                      headers=_auth(consortium, "platform", PRISONS))
    assert r.status_code in (200, 202), r.text
    incoming = wait_for(lambda: [x for x in a.get("/api/v1/evidence", params={"role": "incoming"},
                                                   headers=_auth(consortium, "a", POLICE)).json()["records"]
                                 if x["key"] == ev["key"]], "node A to see the transfer")
    r = a.post(f"/api/v1/evidence/{incoming[0]['id']}/accept", json={"sha256": digests(content)["sha256"]},
               headers=_auth(consortium, "a", POLICE))
    assert r.status_code in (200, 202), r.text
    wait_for(lambda: platform.get(f"/api/v1/evidence/{ev['id']}", headers=_auth(consortium, "platform", PRISONS))
             .json()["custodian"]["uscc"] == POLICE, "the platform to see node A's acceptance")

    r = a.post("/api/v1/exchanges", json={"item": "SCJG-001", "purpose": "核查涉案企业登记信息",
                                          "legal_basis": "《政务数据共享管理办法》第十条"},
               headers=_auth(consortium, "a", POLICE))
    assert r.status_code == 201, r.text
    ex = r.json()
    [mirror] = wait_for(lambda: [e for e in b.get("/api/v1/exchanges", params={"status": "requested"},
                                                  headers=_auth(consortium, "b", MARKET)).json()["exchanges"]
                                 if e["key"] == ex["key"]], "node B to see the request")
    for step, body in (("authorise", {"reason": "依申请共享"}),
                       ("deliver", {"sha256": "ab" * 32, "size": 1024, "records": 3})):
        r = b.post(f"/api/v1/exchanges/{mirror['id']}/{step}", json=body, headers=_auth(consortium, "b", MARKET))
        assert r.status_code == 200, r.text  # signed inside node B's SoftHSM2 token
    wait_for(lambda: a.get(f"/api/v1/exchanges/{ex['id']}", headers=_auth(consortium, "a", POLICE))
             .json()["status"] == "delivered", "node A to see the delivery")
    r = a.post(f"/api/v1/exchanges/{ex['id']}/acknowledge", json={"sha256": "ab" * 32},
               headers=_auth(consortium, "a", POLICE))
    assert r.status_code == 200 and r.json()["status"] == "acknowledged", r.text


def test_the_audit_replay_is_clean_on_every_node(consortium: LocalConsortium) -> None:
    for name in ("platform", "a", "b", "auditor"):
        n = consortium.nodes[name]
        args = ["--data-dir", str(n.data_dir), "audit", "replay", "--json", "--no-sign"]
        env = {**os.environ, **n.env}
        p = CLI(args, env=env) if name != "b" else subprocess.run([sys.executable, "-m", "api.cli", *args],
                                                                 capture_output=True, text=True, timeout=300, env=env)
        report = json.loads(p.stdout)
        assert report["findings"] == [] and p.returncode == 0, (name, report["findings"][:5], p.stderr[-500:])


def test_the_verifier_page_of_the_auditor_node_verifies_node_a_s_certificate(
        consortium: LocalConsortium, police_certificate: dict[str, Any], tmp_path: Path) -> None:
    """The QR's link, opened on the auditor node: the page fetches the ciphertext through that node (which asks
    node A), decrypts it in the browser, and the auditor node checks the digest against node A's public record
    and the chain."""
    from tests.support.browser import chromium, shot

    qr_url = police_certificate["qr_url"]
    assert qr_url.startswith(consortium.nodes["a"].url)
    on_auditor = consortium.nodes["auditor"].url + qr_url[len(consortium.nodes["a"].url):]
    with chromium() as browser:
        page = browser.new_page()
        page.goto(on_auditor)
        page.wait_for_selector("#result[data-verdict]", timeout=30_000)
        assert page.get_attribute("#result", "data-verdict") == "valid"
        holder = police_certificate["document"]["fields"]["持证主体"]["value"]
        assert holder in page.inner_text("body")  # decrypted in the browser, never by a node
        shot(page, tmp_path, "consortium_auditor_page_valid")
