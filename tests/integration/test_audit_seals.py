"""The audit replay covers SealRegistry (电子印章) on two real chains: a clean history with sealed certificates and
sealed evidence audits with zero findings; a tampered seal row, a swapped image file, a deleted index row and
a sealed signature of a document that names a seal not active at its sealing block are each found by their
own kind; a seal suspended on chain by another agency's account (let through by a compromised consortium
contract) is ``seal_action_unauthorised``; `lianzheng audit` names the findings in words."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from chain.seals import SealRegistryClient
from registry.audit.replay import Auditor
from registry.audit.report import AuditReport
from registry.crypto.hashing import sha256_key
from registry.node import Node
from registry.seals.keys import load_key
from registry.seals.structures import make_sealed_signature
from registry.store.db import Certificate
from registry.store.seal_models import SealChainEvent, SealedSignature, SealRow
from tests.conftest import MASTER_KEY
from tests.support.audit import (
    POLICE,
    SealActivity,
    TwoChains,
    build_two_chains,
    checkpoint_all,
    issue,
    open_consortium,
    seal_history,
)
from tests.support.cli import in_process

pytestmark = pytest.mark.anvil

JUSTICE = "11230000MB1A00036G"  # 省司法厅: an issuer too, but not the owner of 省公安厅's seal
LZ = str(Path(sys.executable).parent / "lianzheng")


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoChains]:
    built = build_two_chains(tmp_path_factory.mktemp("two-chains"))
    try:
        yield built
    finally:
        built.stop()


def kinds(report: AuditReport) -> set[str]:
    return {f["kind"] for f in report.findings}


def only(report: AuditReport, kind: str) -> dict[str, str]:
    found = [f for f in report.findings if f["kind"] == kind]
    assert len(found) == 1, report.findings
    return found[0]


def test_a_clean_history_with_seals_audits_with_zero_findings_and_each_tamper_is_found(chains: TwoChains,
                                                                                        tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        act = seal_history(node)
        checkpoint_all(node, link)
        auditor = Auditor(node, link=link)
        replayed = auditor.replay(save=False)
        clean = auditor.report(replayed)
        assert clean.findings == [], clean.findings
        c = clean.counts
        assert (c["seals"], c["seals_revoked"], c["seals_suspended"]) == (2, 1, 0)
        assert c["seal_events"] == 6  # maker key, 2 created, suspended, reinstated, revoked
        assert "SealRegistry" in clean.data["subchain"]["contracts"]

        def tampered(change: Any, undo: Any) -> AuditReport:
            with node.db.session() as s:
                s.execute(change)
            try:
                return auditor.report(replayed)
            finally:
                with node.db.session() as s:
                    s.execute(undo)

        # a seal row edited: the chain says revoked, the row says active
        report = tampered(update(SealRow).where(SealRow.id == act.cert_seal).values(status="active"),
                          update(SealRow).where(SealRow.id == act.cert_seal).values(status="revoked"))
        assert kinds(report) == {"seal_mismatch"}
        assert "status 'active' (chain: 'revoked')" in only(report, "seal_mismatch")["detail"]

        # the image file swapped for the other seal's: named as that seal's image
        with node.db.session() as s:
            images = {r.id: r.image for r in s.scalars(select(SealRow))}
        report = tampered(update(SealRow).where(SealRow.id == act.cert_seal).values(image=images[act.evidence_seal]),
                          update(SealRow).where(SealRow.id == act.cert_seal).values(image=images[act.cert_seal]))
        assert kinds(report) == {"seal_image_mismatch"}
        finding = only(report, "seal_image_mismatch")
        assert finding["ref"] == act.cert_seal and f"of {POLICE}" in finding["detail"]

        # the index's copy of the revocation deleted: every verification would then call the seal active
        with node.db.session() as s:
            revoked = s.scalars(select(SealChainEvent).where(SealChainEvent.name == "SealRevoked")).one()
            saved = {c.name: getattr(revoked, c.name) for c in SealChainEvent.__table__.columns}
        with node.db.session() as s:
            s.execute(delete(SealChainEvent).where(SealChainEvent.id == saved["id"]))
            s.add(SealChainEvent(**{**saved, "id": None}))  # the latest event stays, so the gap is visible
            s.execute(update(SealChainEvent).where(SealChainEvent.name == "SealRevoked").values(name="SealReinstated"))
        report = auditor.report(replayed)
        assert kinds(report) == {"seal_index_mismatch"}, report.findings
        assert "event 'SealReinstated' (chain: 'SealRevoked')" in only(report, "seal_index_mismatch")["detail"]
        with node.db.session() as s:
            s.execute(update(SealChainEvent).where(SealChainEvent.tx_hash == saved["tx_hash"]).values(name="SealRevoked"))

        # a seal row deleted: the chain has a seal of a hosted agency that the seal-making node does not know
        with node.db.session() as s:
            row = s.get(SealRow, act.evidence_seal)
            assert row is not None
            kept = {c.name: getattr(row, c.name) for c in SealRow.__table__.columns}
            s.delete(row)
        report = auditor.report(replayed)
        assert kinds(report) == {"chain_record_not_in_db"}, report.findings
        assert only(report, "chain_record_not_in_db")["ref"] == "0x" + sha256_key(act.evidence_seal).hex()
        with node.db.session() as s:
            s.add(SealRow(**kept))

        # a sealed signature over evidence whose digest column was edited
        report = tampered(update(SealedSignature).where(SealedSignature.record_id == act.evidence[0])
                          .values(digest_sha256="00" * 32),
                          update(SealedSignature).where(SealedSignature.record_id == act.evidence[0])
                          .values(digest_sha256=_content_sha(node, act.evidence[0])))
        assert kinds(report) == {"sealed_signature_invalid"}
        assert only(report, "sealed_signature_invalid")["ref"] == f"evidence {act.evidence[0]}"
        assert auditor.report(replayed).findings == []  # every edit undone


def _content_sha(node: Node, record_id: str) -> str:
    from registry.store.ledger_models import EvidenceRecord

    with node.db.session() as s:
        return str(s.scalar(select(EvidenceRecord.sha256).where(EvidenceRecord.id == record_id)))


def _forge_sealed_signature(node: Node, act: SealActivity, identifier: str) -> None:
    """What a node that ignored the refusal would store: a sealed signature made with the (revoked) seal's own
    key for a certificate issued after the revocation. Every signature in it verifies."""
    with node.db.session() as s:
        row = s.get(SealRow, act.cert_seal)
        cert = s.get(Certificate, identifier)
        assert row is not None and cert is not None
        key = load_key(row.key_algorithm, node.keys.open_secret(row.key_blob, f"seal:{row.id}".encode()))
        fmt, data = make_sealed_signature(row.seseal, key, identifier, bytes.fromhex(cert.digest_sha256),
                                          bytes.fromhex(cert.digest_sm3), dt.datetime.now(dt.UTC))
        s.add(SealedSignature(record_kind="certificate", record_id=identifier, seal_id=row.id, format=fmt,
                              signature=data, digest_sha256=cert.digest_sha256, digest_sm3=cert.digest_sm3))


def test_a_document_sealed_with_a_seal_not_active_at_its_block_is_found(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        act = seal_history(node)  # the certificate seal is revoked at its end
        [late] = issue(node, 1, seed=78)  # anchored after the revocation, without a seal
        _forge_sealed_signature(node, act, late)
        checkpoint_all(node, link)
        report = Auditor(node, link=link).run(save=False)
        assert kinds(report) == {"seal_not_active_when_sealed"}, report.findings
        finding = only(report, "seal_not_active_when_sealed")
        assert finding["ref"] == f"certificate {late}" and f"seal {act.cert_seal} was revoked in block" in finding["detail"]


def test_a_seal_suspended_by_another_agencys_account_is_unauthorised(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        act = seal_history(node)
        registry = node.client(SealRegistryClient)
        key = sha256_key(act.evidence_seal)
        with open_consortium(node, POLICE):  # the consortium answers "yes, 省公安厅" for every account
            receipt = registry.transact(node.sender_for(JUSTICE), registry.suspend_fn(key, bytes(32)))
        checkpoint_all(node, link)
        report = Auditor(node, link=link).run(save=False)
        assert kinds(report) == {"seal_action_unauthorised", "seal_mismatch"}, report.findings
        finding = only(report, "seal_action_unauthorised")
        assert finding["ref"] == "0x" + key.hex() and finding["ledger"] == "seals"
        assert receipt.tx_hash in finding["detail"] and "省司法厅" in finding["detail"]
        # the database still says active: the chain's suspension is named too
        assert "status 'active' (chain: 'suspended')" in only(report, "seal_mismatch")["detail"]


def test_the_audit_cli_names_the_seal_findings_in_words(chains: TwoChains, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with chains.node(data) as (node, link):
        (data / "master.key").write_text(MASTER_KEY.hex())
        act = seal_history(node)
        checkpoint_all(node, link)
        with node.db.session() as s:
            s.execute(update(SealRow).where(SealRow.id == act.evidence_seal).values(valid_until=dt.datetime(2099, 1, 1)))
        env = {**os.environ, "LIANZHENG_DATA_DIR": str(data), "LIANZHENG_RPC_URLS": chains.sub.url,
               "LIANZHENG_MAIN_RPC_URLS": chains.main.url, "LIANZHENG_ENV": "test",
               "LIANZHENG_DATABASE_URL": node.db.url}  # its SQLite file in `data`, or its PostgreSQL database
        p = subprocess.run([LZ, "audit", "replay", "--json", "--no-sign"], capture_output=True, text=True, env=env,
                           timeout=300)
        assert p.returncode == 1, p.stderr[-2000:]
        body = json.loads(p.stdout)
        assert [f["kind"] for f in body["findings"]] == ["seal_mismatch"] and body["counts"]["seals"] == 2
        p = in_process(["audit", "replay", "--no-sign"], env=env, idle_sqlite=True)  # the real process ran above
        assert p.returncode == 1, p.stderr[-2000:]
        out = " ".join(p.stdout.split())  # rich wraps long lines
        assert "2 seals" in out and "seal_mismatch" in out
        assert "印章记录" in out and "differs from its registration" in out


def test_resume_and_window_audits_keep_the_seal_rules_and_comparisons(chains: TwoChains, tmp_path: Path) -> None:
    from registry.crypto.profiles import CryptoProfile
    from registry.seals.service import SealService

    with chains.node(tmp_path) as (node, link):
        act = seal_history(node)
        checkpoint_all(node, link)
        first = Auditor(node, link=link).run()  # saves the replayed state, seals included
        assert first.findings == [], first.findings
        window_start = node.blocks.head() + 1
        SealService(node, profile=CryptoProfile.GM).change(POLICE, act.evidence_seal, "suspend", reason="印章送检")
        checkpoint_all(node, link)
        resumed = Auditor(node, link=link).run(resume=True)
        assert resumed.findings == [], resumed.findings
        assert resumed.data["resumed_from"] is not None and resumed.counts["events_read"] < first.counts["events_read"]
        assert (resumed.counts["seal_events"], resumed.counts["seals_suspended"]) == (7, 1)
        # a window audit starts after both seals were made: it judges what it sees and calls nothing missing
        window = Auditor(node, link=link).run(from_block=window_start, save=False)
        assert window.findings == [] and window.data["partial"], window.findings
        assert window.counts["seal_events"] == 1
        # the resumed replay still compares: the database's seal edited after the suspension is found
        with node.db.session() as s:
            s.execute(update(SealRow).where(SealRow.id == act.evidence_seal).values(status="active"))
        again = Auditor(node, link=link).run(resume=True)
        assert kinds(again) == {"seal_mismatch"}, again.findings
