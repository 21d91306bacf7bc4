"""The audit replay on two chains (a business sub-chain and the main chain with the Backbone): a clean history
has no findings; every injected fault is found and named by its own `kind`; the report is signed, anchored,
rendered, resumable, and served by the CLI and the API."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode
from sqlalchemy import delete, select, update

from api.devtools.samples import sample_values
from chain.backbone import CheckpointFields
from chain.backends import RpcBackend
from chain.contracts import Action, Role
from chain.errors import ContractRevertError
from registry.audit.replay import Auditor
from registry.audit.report import (
    AuditReport,
    anchor_report,
    check_report_signer,
    render_html,
    sign_report,
    verify_report_signature,
)
from registry.certificates.service import CertificateService
from registry.consortium.members import bootstrap, sync_members
from registry.crypto.hashing import sm3
from registry.logs.checkpoints import connect_backbone, gateway_uscc
from registry.logs.log import LedgerLogs, ledger_id
from registry.node import Node
from registry.store.db import Batch, Certificate, Database
from tests.conftest import MASTER_KEY, SEEDS, make_api
from tests.support import postgres
from tests.support.anvil import make_devnet
from tests.support.audit import (
    TwoChains,
    anchor_without_issuer_role,
    build_two_chains,
    checkpoint_all,
    issue,
    populate,
)
from tests.support.cli import FirstCallReal

SM3_ROOT = sm3(b"an SM3 batch root")  # anchorBatch records it beside the SHA-256 root

pytestmark = pytest.mark.anvil

LZ = str(Path(sys.executable).parent / "lianzheng")
# the first audit command runs as the installed entry point, the others in this process (on the test's node's
# database, which nothing else uses meanwhile)
CLI = FirstCallReal(idle_sqlite=True)
JUSTICE = "11230000MB1A00036G"  # 省司法厅: auditor and witness
NOTARY = "12230100MB1B00029D"  # 哈尔滨市公证处: evidence and auditor roles, never issuer
MARKET = "11230000MB1A00028M"  # 省市场监督管理局: admin, issuer


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoChains]:
    built = build_two_chains(tmp_path_factory.mktemp("two-chains"))
    try:
        yield built
    finally:
        built.stop()


def audit(node: Node, link: Any, **kwargs: Any) -> AuditReport:
    return Auditor(node, link=link).run(**kwargs)


def kinds(report: AuditReport) -> set[str]:
    return {f["kind"] for f in report.findings}


def _only(report: AuditReport, kind: str) -> dict[str, str]:
    [finding] = [f for f in report.findings if f["kind"] == kind]
    return finding


def _root_of(node: Node, identifier: str) -> str:
    with node.db.session() as s:
        return str(s.scalar(select(Batch.root).join(Certificate, Certificate.batch_id == Batch.id)
                            .where(Certificate.identifier == identifier)))


# -- a clean history ----------------------------------------------------------------------------------------------


def test_a_clean_history_on_two_chains_audits_with_zero_findings(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        populate(node)
        checkpoint_all(node, link)
        report = audit(node, link)
        assert report.findings == [], report.findings
        c = report.counts
        assert c["findings"] == 0 and c["by_kind"] == {}
        assert all(n > 0 for n in c["events_by_ledger"].values()), c
        # populate() also issues one bound certificate (its own batch) and uses it twice
        assert (c["batches"], c["certificates_anchored"], c["certificates_revoked"], c["certificates_superseded"]) == (4, 9, 1, 1)
        assert (c["evidence_records"], c["cases"], c["exchanges"], c["usages"], c["members"]) == (2, 1, 1, 2, 13)
        assert c["checkpoints"] == 5 and c["cosignatures"] == 15  # every checkpoint cosigned by the 3 witnesses
        assert c["db_records"] >= 9 + 2 + 1 + 2 + 13
        assert report.data["main_chain"]["chain_id"] != report.data["subchain"]["chain_id"]
        for ledger, info in report.data["ledgers"].items():
            assert info["latest_checkpoint"]["root"] == info["root"], ledger
        assert report.data["anchored_per_day"]  # the chart's data: records per day per agency

        signed = sign_report(node, report, JUSTICE)
        assert signed.data["proof"]["alg"] == "SM2-SM3"  # the gm profile (the default)
        assert verify_report_signature(signed)
        check_report_signer(node, signed)  # the SM2 key is 省司法厅's on chain at the signing time
        forged = signed.with_fields(findings=[{"kind": "x", "ledger": "", "ref": "", "detail": ""}])
        assert not verify_report_signature(forged)
        anchor = anchor_report(node, link, signed)
        assert anchor["log_index"] == 0 and anchor["cosigned_by_auditor"]
        assert link.client.get_checkpoint(bytes.fromhex(anchor["checkpoint"][2:])).cosignatures == 1
        head = link.client.latest_checkpoint(link.subchain_id, ledger_id("audit-reports"))
        assert head.tree_size == 1 and head.root == hashlib.sha256(b"\x00" + signed.digest()).digest()  # RFC 6962 leaf

        again = audit(node, link)  # the anchored report's checkpoint is checked against the stored digests
        assert again.findings == [] and again.data["ledgers"]["audit-reports"]["size"] == 1

        html = render_html(sign_report(node, again, JUSTICE).with_fields(anchor=anchor))
        assert "审计通过" in html and "<svg" in html and "省市场监管局" in html and "audit-reports" in html
        assert "<script" not in html and "src=" not in html and "<link" not in html  # self-contained, no CDN


def test_a_role_removed_later_does_not_make_earlier_anchors_illegal(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        issue(node, 2, seed=5)  # 省市场监管局 anchors while it holds the issuer role
        c = node.consortium
        roles = int(c.get_member(MARKET).roles) & ~int(Role.ISSUER)
        pid = c.propose(node.sender_for(node.seeds.genesis.uscc), Action.SET_ROLES, MARKET, encode(["uint64"], [roles]))
        c.approve(node.sender_for(JUSTICE), pid)
        c.execute(node.sender_for(JUSTICE), pid)
        sync_members(node)
        with pytest.raises(ContractRevertError, match="CertificateLedgerNotIssuer"):
            node.certificate_ledger.anchor_batch(node.sender_for(MARKET), b"\x44" * 32, SM3_ROOT, 1)
        checkpoint_all(node, link)
        report = audit(node, link)
        assert report.findings == []  # the replay judged the anchor by the roles at its block
        assert report.counts["batches"] == 1


# -- the tamper suite: each fault found and named ------------------------------------------------------------------


def test_a_database_row_whose_field_was_edited_is_found(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        ids = issue(node, 3, seed=11)
        checkpoint_all(node, link)
        assert audit(node, link).ok
        with node.db.session() as s:
            s.execute(update(Certificate).where(Certificate.identifier == ids[1])
                      .values(digest_sha256=hashlib.sha256(b"someone else's licence").hexdigest()))
        report = audit(node, link)
        assert kinds(report) == {"digest_mismatch"}
        assert _only(report, "digest_mismatch")["ref"] == ids[1]  # localised by the row's own audit path


def test_a_deleted_database_row_is_found(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        ids = issue(node, 3, seed=12)
        checkpoint_all(node, link)
        root = _root_of(node, ids[2])
        with node.db.session() as s:
            s.execute(delete(Certificate).where(Certificate.identifier == ids[2]))
        report = audit(node, link)
        assert kinds(report) == {"db_row_missing"}
        finding = _only(report, "db_row_missing")
        assert finding["ref"] == root and "[2]" in finding["detail"]


def test_an_anchor_by_an_account_without_the_issuer_role_at_that_block_is_found(chains: TwoChains,
                                                                                tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        root = hashlib.sha256(b"forged batch").digest()
        anchor_without_issuer_role(node, NOTARY, root)
        checkpoint_all(node, link)
        report = audit(node, link)
        assert kinds(report) == {"anchor_without_issuer_role", "chain_record_not_in_db"}
        finding = _only(report, "anchor_without_issuer_role")
        assert finding["ref"] == "0x" + root.hex() and finding["ledger"] == "certificates"
        assert "哈尔滨市公证处" in finding["detail"] and "roles evidence,auditor" in finding["detail"]
        assert _only(report, "chain_record_not_in_db")["ref"] == "0x" + root.hex()
        assert node.consortium.has_role(node.sender_for(NOTARY).address, Role.ISSUER) is False  # registry intact


def test_a_revoked_certificate_marked_valid_in_the_database_is_found(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        ids = issue(node, 2, seed=13)
        CertificateService(node, public_base="http://lianzheng.test").change_status(MARKET, ids[0], "revoke", reason=5)
        checkpoint_all(node, link)
        assert audit(node, link).ok
        with node.db.session() as s:
            s.execute(update(Certificate).where(Certificate.identifier == ids[0]).values(status="issued", reason=None))
        report = audit(node, link)
        assert kinds(report) == {"revoked_but_valid_in_db"}
        assert _only(report, "revoked_but_valid_in_db")["ref"] == ids[0]


def test_a_checkpoint_whose_root_does_not_match_the_events_is_found(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        issue(node, 2, seed=14)
        logs = LedgerLogs(node.backend, node.require_deployment())
        logs.sync()
        block = node.backend.w3.eth.get_block(logs.synced_block)
        forged = CheckpointFields(link.subchain_id, ledger_id("certificates"), logs.log("certificates").size,
                                  b"\x55" * 32, b"\0" * 32, node.require_deployment().first_block, logs.synced_block,
                                  bytes(block["hash"]))
        link.client.submit_checkpoint(link.sender_for(gateway_uscc(node)), forged)
        report = audit(node, link)
        assert kinds(report) == {"checkpoint_root_mismatch"}
        finding = _only(report, "checkpoint_root_mismatch")
        assert finding["ref"] == "0x" + forged.hash.hex() and finding["ledger"] == "certificates"


def test_a_missing_checkpoint_beyond_its_deadline_is_found_and_a_late_one_too(chains: TwoChains,
                                                                              tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        issue(node, 2, seed=15)
        assert audit(node, link, deadline=600).ok  # waiting, but within the deadline
        node.backend.raw("evm_increaseTime", [700])
        node.backend.raw("evm_mine", [])
        report = audit(node, link, deadline=600)
        assert kinds(report) == {"checkpoint_missing"}
        finding = _only(report, "checkpoint_missing")
        assert (finding["ledger"], finding["ref"]) == ("certificates", "0") and "deadline is 600 s" in finding["detail"]
        # the gateway finally submits, 700 s after the event by the main chain's clock too: late, no longer missing
        link.backend.raw("evm_increaseTime", [700])
        checkpoint_all(node, link)
        report = audit(node, link, deadline=600)
        assert kinds(report) == {"checkpoint_late"}
        assert audit(node, link, deadline=3600).ok


def test_a_subchain_reset_that_drops_anchored_blocks_is_found(chains: TwoChains, tmp_path: Path) -> None:
    main_snapshot = chains.main_backend.raw("evm_snapshot", [])
    sub = make_devnet(tmp_path)
    try:
        sub.start()
        node = Node.open(db=Database(postgres.database_url(tmp_path)), master_key=MASTER_KEY, seeds_dir=SEEDS,
                         backend=RpcBackend(sub.url), deployment_file=tmp_path / "deployment.json")
        bootstrap(node)
        sub.stop()  # SIGTERM: anvil dumps state.json ...
        sub.start()  # ... which becomes state.prev.json, the snapshot this run was loaded from (bootstrap only)
        link = connect_backbone(node, chains.main_backend)  # a Backbone of its own on the shared main chain
        checkpoint_all(node, link)
        ids = issue(node, 3, seed=16)
        [cp] = checkpoint_all(node, link)
        assert audit(node, link).ok
        sub.kill()
        sub.state_file.unlink(missing_ok=True)  # restart from the older state file: the anchors are gone
        sub.start()
        node.reset_senders()
        node.backend.raw("anvil_mine", ["0x8"])  # the chain moves on: the checkpoint's block numbers now hold others
        report = audit(node, link)
        assert kinds(report) == {"subchain_blocks_lost", "db_record_not_on_chain"}
        lost = _only(report, "subchain_blocks_lost")
        assert lost["ref"] == "0x" + cp.fields.hash.hex() and lost["ledger"] == "certificates"
        assert f"block {cp.fields.to_block} is now 0x" in lost["detail"]
        assert _only(report, "db_record_not_on_chain")["ref"] == _root_of(node, ids[0])
        node.db.engine.dispose()
    finally:
        sub.kill()
        chains.main_backend.raw("evm_revert", [main_snapshot])


def test_a_record_never_anchored_within_the_deadline_is_found(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        ct = node.seeds.certificate_types[0]
        CertificateService(node, public_base="http://lianzheng.test").issue(
            MARKET, ct.code, sample_values(ct, 2, issuer=node.seeds.member(MARKET), seed=17))  # no worker: stays pending
        assert audit(node, link).ok
        report = audit(node, link, deadline=600, now=time.time() + 3600)
        assert kinds(report) == {"db_record_never_anchored"}
        assert _only(report, "db_record_never_anchored")["ref"] == MARKET


# -- resuming, window audits, CLI and API ------------------------------------------------------------------------


def test_resume_reads_only_new_blocks_and_still_compares_everything(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        ids = issue(node, 2, seed=18)
        checkpoint_all(node, link)
        full = audit(node, link)
        assert full.ok and full.data["resumed_from"] is None
        head = full.data["subchain"]["to_block"]
        issue(node, 2, type_index=1, seed=19)
        checkpoint_all(node, link)
        resumed = audit(node, link, resume=True)
        assert resumed.ok and resumed.data["resumed_from"] == head
        assert resumed.counts["consistency_proofs"] == 1  # certificates checkpoint #0 -> #1, RFC 9162 §2.1.4.2
        assert resumed.counts["events_read"] == 1  # one BatchAnchored since the cursor
        assert resumed.counts["events"] == audit(node, link, save=False).counts["events"] == full.counts["events"] + 1
        with node.db.session() as s:  # the database is compared in full on every run
            s.execute(update(Certificate).where(Certificate.identifier == ids[0]).values(
                digest_sha256=hashlib.sha256(b"edited").hexdigest()))
        assert kinds(audit(node, link, resume=True)) == {"digest_mismatch"}
        window = audit(node, link, from_block=head + 1, save=False)
        assert window.data["partial"] and window.counts["batches"] == 1 and window.findings == []


def _cli(node: Node, chains: TwoChains, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI on `node`'s data dir and database (a SQLite file there, or its PostgreSQL database)."""
    env = {**os.environ, "LIANZHENG_DATA_DIR": str(node.deployment_file.parent), "LIANZHENG_RPC_URLS": chains.sub.url,
           "LIANZHENG_MAIN_RPC_URLS": chains.main.url, "LIANZHENG_ENV": "test", "LIANZHENG_DATABASE_URL": node.db.url}
    return CLI(args, env=env)


def test_the_audit_cli_prints_json_and_html_and_exits_non_zero_on_findings(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path / "data") as (node, link):
        (tmp_path / "data" / "master.key").write_text(MASTER_KEY.hex())
        ids = issue(node, 3, seed=20)
        p = _cli(node, chains, "audit", "checkpoint", "--json")
        assert p.returncode == 0, p.stderr
        assert [c["ledger"] for c in json.loads(p.stdout)["checkpoints"]] == ["certificates"]
        html = tmp_path / "report.html"
        p = _cli(node, chains, "audit", "replay", "--json", "--html", str(html))
        assert p.returncode == 0, p.stderr
        body = json.loads(p.stdout)
        assert body["findings"] == [] and body["counts"]["findings"] == 0 and body["signed_by"]["uscc"] == JUSTICE
        assert "events/s" in p.stderr  # the progress bar reports its rate
        assert "审计通过" in html.read_text(encoding="utf-8")
        report_file = tmp_path / "report.json"
        report_file.write_text(p.stdout, encoding="utf-8")
        assert _cli(node, chains, "audit", "verify-report", str(report_file)).returncode == 0
        report_file.write_text(p.stdout.replace('"findings": 0', '"findings": 1', 1), encoding="utf-8")
        assert _cli(node, chains, "audit", "verify-report", str(report_file)).returncode == 1

        with node.db.session() as s:
            s.execute(delete(Certificate).where(Certificate.identifier == ids[1]))
        p = _cli(node, chains, "audit", "replay", "--json", "--resume", "--no-sign")
        assert p.returncode == 1, p.stderr
        assert [f["kind"] for f in json.loads(p.stdout)["findings"]] == ["db_row_missing"]
        p = _cli(node, chains, "audit", "replay")
        assert p.returncode == 1 and "db_row_missing" in p.stdout

        p = _cli(node, chains, "audit", "backbone", "--json")
        assert p.returncode == 0, p.stderr
        tree = json.loads(p.stdout)
        assert tree["backbone_node"]["name"] == "哈尔滨骨干节点" and tree["subchain"]["chain_id"] == 1337
        assert tree["latest_checkpoints"]["certificates"]["cosignatures"] == 3 and len(tree["witnesses"]) == 3
        assert tree["backbone"] == link.contract.address


def test_the_audit_report_api_is_for_auditors_and_signed_by_the_caller(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path / "node") as (node, link):
        issue(node, 2, seed=21)
        checkpoint_all(node, link)
        for api in make_api(node, tmp_path / "api", main_rpc_urls=chains.main.url, checkpoint_interval=0):
            r = api.client.get("/api/v1/audit/report", headers=api.auth(NOTARY))
            assert r.status_code == 200, r.text
            report = AuditReport(r.json())
            assert report.ok and report.signer_uscc == NOTARY
            assert verify_report_signature(report)
            check_report_signer(node, report)  # the caller's SM2 key, registered for it on chain
            r = api.client.get("/api/v1/audit/report", params={"format": "html"}, headers=api.auth(NOTARY))
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html") and "<svg" in r.text
            r = api.client.get("/api/v1/audit/report", headers=api.auth(MARKET))
            assert r.status_code == 403 and r.json()["error"]["code"] == "not_an_auditor"
            assert api.client.get("/api/v1/audit/report").status_code == 401
            r = api.client.post("/api/v1/audit/reports", headers=api.auth(JUSTICE))
            assert r.status_code == 201, r.text
            assert r.json()["anchor"]["ledger"] == "audit-reports" and r.json()["anchor"]["cosigned_by_auditor"]
            listed = api.client.get("/api/v1/audit/reports", headers=api.auth(JUSTICE)).json()
            assert listed["count"] == 3 and listed["reports"][0]["log_index"] == 0


def test_bench_replay_runs_small(tmp_path: Path) -> None:
    env = {**os.environ, "LIANZHENG_ENV": "test"}
    p = subprocess.run([LZ, "bench", "replay", "--batches", "20", "--per-batch", "50", "--evidence", "30",
                        "--exchanges", "10", "--cache", str(tmp_path / "cache"), "--json"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout)
    assert result["history"]["batches"] == 20 and result["history"]["certificates"] == 1000
    assert result["audit"]["findings"] == 0, result
    assert result["read"]["ours"]["events"] == result["read"]["baseline"]["events"] > 20 + 30
    again = subprocess.run([LZ, "bench", "replay", "--batches", "20", "--per-batch", "50", "--evidence", "30",
                            "--exchanges", "10", "--cache", str(tmp_path / "cache"), "--json"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["history"]["cached"] is True
