"""Evidence records end to end through the HTTP API on a real anvil: the three scenarios from the seeds,
custody across three agencies, sealing, verification of files, packages, every refusal (by the API and by
the contract called directly), and the outbox surviving a chain outage without doing anything twice."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from chain.errors import ChainUnavailableError, ContractRevertError
from chain.ledgers import EvidenceLedgerClient
from chain.sender import TransactionSender
from registry.crypto.hashing import sha256_key
from registry.evidence.package import verify_package
from registry.evidence.service import audit_records
from registry.outbox.steps import StepLedger
from registry.store.ledger_models import EvidenceEvent, EvidenceRecord
from tests.conftest import Api
from tests.support.evidence import (
    COURT,
    JUSTICE,
    MARKET,
    NOTARY,
    POLICE,
    PRISON,
    chain_outage,
    digests,
    evidence_body,
    rewrite_zip,
)
from tests.unit.crypto._openssl import SM2_ID, needs_openssl, openssl, write

pytestmark = pytest.mark.anvil


def _post(api: Api, path: str, body: Any, agency: str, status: int = 200) -> dict[str, Any]:
    r = api.client.post(path, json=body, headers=api.auth(agency))
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


def _register(api: Api, agency: str, content: bytes, **kw: Any) -> dict[str, Any]:
    return _post(api, "/api/v1/evidence", evidence_body(content, **kw), agency, 201)


def _ledger(api: Api) -> EvidenceLedgerClient:
    return api.node.client(EvidenceLedgerClient)


def _stored(api: Api) -> tuple[int, int]:
    with api.node.db.session() as s:
        return (int(s.scalar(select(func.count()).select_from(EvidenceRecord)) or 0),
                int(s.scalar(select(func.count()).select_from(EvidenceEvent)) or 0))


def _registered_events(api: Api, record_id: str) -> list[Any]:
    return [e for e in _ledger(api).events_for(sha256_key(record_id)) if e.name == "EvidenceRegistered"]


def _wait(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_enforcement_record_photos_and_decision_with_custody_across_three_agencies_then_sealed(api: Api) -> None:
    case = "哈公（道里）行罚决字〔2026〕0317号"
    photos = [b"\xff\xd8 on-site photo 1", b"\xff\xd8 on-site photo 2"]
    batch = _post(api, "/api/v1/evidence/batch", {"records": [
        evidence_body(p, case_no=case, filename=f"IMG_{i}.jpg") for i, p in enumerate(photos)]}, POLICE, 201)
    assert batch["refused"] == [] and [r["type_code"] for r in batch["records"]] == ["XZZF-001", "XZZF-001"]
    decision = _register(api, POLICE, b"%PDF-1.7 decision", case_no=case, media_type="application/pdf",
                         filename="处罚决定书.pdf")
    assert decision["type_code"] == "XZZF-003" and decision["status"] == "registered"
    assert decision["id"].startswith("EV-XZZF-") and decision["registered"]["block_number"] > 0
    photo = batch["records"][0]

    # on chain: digests, size, the metadata commitment and who, never the case number or the operator
    state = _ledger(api).get_record(sha256_key(photo["id"]))
    assert state is not None and state.sha256.hex() == photo["content"]["sha256"] and state.collector_uscc == POLICE
    assert "0x" + state.meta_digest.hex() == photo["meta_digest"] and state.case_id == sha256_key(case)

    # custody: 省公安厅 -> 省司法厅 -> 哈尔滨中院, the recipient re-checks the digest on the way
    v = _post(api, f"/api/v1/evidence/{photo['id']}/transfer", {"to": JUSTICE, "purpose": "移送法制审核"}, POLICE)
    assert v["pending_transfer_to"]["uscc"] == JUSTICE and v["custodian"]["uscc"] == POLICE
    v = _post(api, f"/api/v1/evidence/{photo['id']}/accept", {"sha256": digests(photos[0])["sha256"]}, JUSTICE)
    assert v["custodian"]["uscc"] == JUSTICE and v["custody_log"][-1]["digest_rechecked"] is True
    _post(api, f"/api/v1/evidence/{photo['id']}/transfer", {"to": COURT, "purpose": "移送法院审理"}, JUSTICE)
    v = _post(api, f"/api/v1/evidence/{photo['id']}/accept", None, COURT)
    assert [c["uscc"] for c in v["custody_chain"]] == [POLICE, JUSTICE, COURT]
    assert all(c["since"] and c["tx_hash"] for c in v["custody_chain"])
    assert [e["step"] for e in v["custody_log"]] == ["register", "transfer", "accept", "transfer", "accept"]
    assert _ledger(api).get_record(sha256_key(photo["id"])).custodian_uscc == COURT  # type: ignore[union-attr]

    sealed = _post(api, "/api/v1/evidence/cases/seal", {"case_no": case}, POLICE)
    assert sealed["sealed"] and sealed["sealed_at"] and len(sealed["records"]) == 3
    assert _ledger(api).get_case(sha256_key(case)).sealed

    # the holder of a copy uploads it (multipart): unaltered, with the custody chain and the seal
    r = api.client.post("/api/v1/evidence/verify", files={"file": ("p.jpg", io.BytesIO(photos[0]))},
                        data={"id": photo["id"]})
    result = r.json()
    assert r.status_code == 200 and result["verdict"] == "unaltered", result
    assert "省公安厅 -> 省司法厅 -> 哈尔滨中院" in result["summary"] and "sealed at" in result["summary"]
    assert "operator_id" not in result["record"]["collector"] and "case_no" not in result["record"]
    # ... and links to the record's inclusion proof in the evidence ledger log
    proof = api.client.get(result["log_proof"])
    assert proof.status_code == 200, proof.text

    # a sealed case refuses changes: API 409, nothing stored, and the contract refuses on its own
    before = _stored(api)
    r = api.client.post("/api/v1/evidence", json=evidence_body(b"late photo", case_no=case), headers=api.auth(POLICE))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "case_sealed")
    r = api.client.post(f"/api/v1/evidence/{photo['id']}/transfer", json={"to": POLICE, "purpose": "归还"},
                        headers=api.auth(COURT))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "case_sealed")
    assert _stored(api) == before
    ledger, d = _ledger(api), digests(b"late photo")
    with pytest.raises(ContractRevertError) as refused:
        ledger.register(api.node.sender_for(POLICE), sha256_key("EV-direct-1"), sha256_key(case),
                        bytes.fromhex(d["sha256"]), bytes.fromhex(d["sm3"]), d["size"], b"\1" * 32)
    assert refused.value.name == "EvidenceLedgerCaseSealed"
    with pytest.raises(ContractRevertError, match="EvidenceLedgerCaseSealed"):
        ledger.transfer(api.node.sender_for(COURT), sha256_key(photo["id"]), POLICE)


def test_penalty_execution_check_ins_are_appended_to_one_case_and_corrected_by_a_linked_record(api: Api) -> None:
    case = "黑司矫字〔2026〕第0042号"
    ids = []
    for week in range(3):
        content = json.dumps({"对象编号": "JZ-0042", "周次": week, "报到方式": "现场", "定位核查": "正常"}).encode()
        rec = _register(api, PRISON, content, case_no=case, scenario="刑罚执行", media_type="application/json",
                        authority="黑龙江省监狱管理局", legal_basis="《社区矫正法》第二十一条、第二十六条")
        assert rec["type_code"] == "XFZX-001" and rec["status"] == "registered"
        ids.append(rec["id"])
    # a correction is a new record linked to the old one; nothing is overwritten
    fixed = json.dumps({"对象编号": "JZ-0042", "周次": 1, "报到方式": "远程视频", "定位核查": "正常"}).encode()
    correction = _register(api, PRISON, fixed, case_no=case, scenario="刑罚执行", media_type="application/json",
                           supersedes=ids[1], correction_reason="报到方式登记错误")
    assert correction["supersedes"] == ids[1]
    old = api.client.get(f"/api/v1/evidence/{ids[1]}", headers=api.auth(PRISON)).json()
    assert old["superseded_by"] == correction["id"] and old["content"]["sha256"] != correction["content"]["sha256"]
    assert _ledger(api).get_record(sha256_key(ids[1])).superseded_by == sha256_key(correction["id"])  # type: ignore[union-attr]
    view = api.client.get("/api/v1/evidence/cases", params={"case_no": case}, headers=api.auth(PRISON)).json()
    assert [r["id"] for r in view["records"]] == [*ids, correction["id"]]
    assert _ledger(api).get_case(sha256_key(case)).records == 4
    r = api.client.post("/api/v1/evidence", headers=api.auth(PRISON), json=evidence_body(
        b"x", case_no=case, scenario="刑罚执行", supersedes=ids[1], correction_reason="again"))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "already_superseded")


def test_a_notarised_copy_is_verified_by_its_holder_and_one_altered_byte_is_reported(api: Api) -> None:
    copy = b"%PDF-1.7 notarised copy of a contract " * 100
    token = base64.b64encode(b"\x30\x82\x01\x00" + b"\x01" * 256).decode()  # an RFC 3161 token's DER envelope
    rec = _register(api, NOTARY, copy, case_no="(2026)黑哈证字第1024号", scenario="公证",
                    media_type="application/pdf", authority="哈尔滨市公证处", legal_basis="《公证法》第二条、第三十六条",
                    timestamp_token=token)
    assert rec["type_code"] == "GZ-001"
    assert rec["timestamp_token_sha256"] == hashlib.sha256(base64.b64decode(token)).hexdigest()

    # later, the holder streams the file (raw body): unaltered, found by its digest alone
    r = api.client.post("/api/v1/evidence/verify", content=copy, headers={"content-type": "application/octet-stream"})
    assert r.json()["verdict"] == "unaltered" and r.json()["record"]["id"] == rec["id"]
    altered = bytearray(copy)
    altered[len(copy) // 2] ^= 0x01
    r = api.client.post("/api/v1/evidence/verify", files={"file": ("copy.pdf", io.BytesIO(bytes(altered)))},
                        data={"id": rec["id"]})
    result = r.json()
    assert result["verdict"] == "altered" and result["differences"] == ["sha256", "sm3"]
    assert result["record"]["id"] == rec["id"] and "SHA-256 differs" in result["summary"]
    r = api.client.post("/api/v1/evidence/verify", json=digests(bytes(altered)))
    assert r.json()["verdict"] == "unknown"
    # by digests, naming the case instead of the record
    r = api.client.post("/api/v1/evidence/verify", json={**digests(bytes(altered)), "case_no": "(2026)黑哈证字第1024号"})
    assert r.json()["verdict"] == "altered" and [c["id"] for c in r.json()["candidates"]] == [rec["id"]]


def test_refusals_are_clear_4xx_errors_and_store_nothing(api: Api) -> None:
    case = "哈公行罚〔2026〕0400号"
    rec = _register(api, POLICE, b"photo", case_no=case)
    before = _stored(api)
    head = api.node.backend.w3.eth.block_number

    def refused(method: str, path: str, body: Any, agency: str | None, status: int, code: str) -> None:
        headers = api.auth(agency) if agency else {}
        r = api.client.request(method, path, json=body, headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text

    refused("POST", "/api/v1/evidence", evidence_body(b"a", case_no=case, legal_basis=None), POLICE, 422, "missing_legal_basis")
    refused("POST", "/api/v1/evidence", evidence_body(b"a", case_no=case, legal_basis="  "), POLICE, 422, "missing_legal_basis")
    refused("POST", "/api/v1/evidence", evidence_body(b"a", case_no=case, authority=None), POLICE, 422, "missing_authority")
    refused("POST", "/api/v1/evidence", evidence_body(b"a", case_no=case, operator_id=""), POLICE, 422, "missing_operator")
    refused("POST", "/api/v1/evidence", evidence_body(b"a", case_no=case, sha256="12ab"), POLICE, 422, "invalid_digest")
    refused("POST", "/api/v1/evidence", evidence_body(b"a", case_no=case, scenario="民事"), POLICE, 422, "unknown_scenario")
    refused("POST", "/api/v1/evidence", evidence_body(b"a", case_no=case, type="GZ-001"), POLICE, 422,
            "type_not_in_scenario")
    refused("POST", "/api/v1/evidence", evidence_body(b"a", case_no=case, timestamp_token="not base64!"), POLICE, 422,
            "invalid_timestamp_token")
    refused("POST", "/api/v1/evidence", evidence_body(b"a", case_no=case, acquisition={"acquired_at": "yesterday"}),
            POLICE, 422, "invalid_acquired_at")
    refused("POST", "/api/v1/evidence", evidence_body(b"photo", case_no=case), POLICE, 409, "duplicate_evidence")
    refused("POST", "/api/v1/evidence", evidence_body(b"a", case_no=case), MARKET, 403, "missing_evidence_role")
    refused("POST", "/api/v1/evidence", evidence_body(b"a", case_no=case), None, 401, "unauthenticated")
    refused("POST", "/api/v1/evidence/batch", {"records": [evidence_body(b"b", case_no=case),
                                                           evidence_body(b"c", case_no=case, legal_basis="")]},
            POLICE, 422, "missing_legal_basis")
    path = f"/api/v1/evidence/{rec['id']}"
    refused("POST", f"{path}/transfer", {"to": COURT, "purpose": "x"}, JUSTICE, 403, "not_custodian")
    refused("POST", f"{path}/transfer", {"to": MARKET, "purpose": "x"}, POLICE, 422, "invalid_recipient")
    refused("POST", f"{path}/transfer", {"to": POLICE, "purpose": "x"}, POLICE, 422, "invalid_recipient")
    refused("POST", f"{path}/transfer", {"to": COURT}, POLICE, 422, "missing_purpose")
    refused("POST", f"{path}/accept", None, COURT, 409, "no_pending_transfer")
    refused("POST", "/api/v1/evidence/cases/seal", {"case_no": case}, COURT, 403, "not_case_owner")
    refused("POST", "/api/v1/evidence/cases/seal", {"case_no": "no such case"}, POLICE, 404, "unknown_case")
    refused("POST", "/api/v1/evidence/EV-XZZF-20260101-999999/transfer", {"to": COURT, "purpose": "x"}, POLICE, 404,
            "unknown_evidence")
    refused("GET", path, None, PRISON, 403, "not_involved")
    assert _stored(api) == before and api.node.backend.w3.eth.block_number == head

    _post(api, f"{path}/transfer", {"to": COURT, "purpose": "移送"}, POLICE)
    steps = _stored(api)
    refused("POST", f"{path}/accept", None, JUSTICE, 403, "not_recipient")
    refused("POST", f"{path}/accept", {"sha256": "00" * 32}, COURT, 409, "digest_mismatch")
    refused("POST", f"{path}/transfer", {"to": JUSTICE, "purpose": "x"}, POLICE, 409, "transfer_pending")
    assert _stored(api) == steps
    v = _post(api, f"{path}/reject", {"reason": "非本院管辖"}, COURT)  # the recipient declines: custody unchanged
    assert v["custodian"]["uscc"] == POLICE and v["pending_transfer_to"] is None
    assert api.client.get(f"{path}/status").json()["custodian"]["uscc"] == POLICE


def test_the_contract_refuses_on_its_own_whatever_the_api_would_say(api: Api) -> None:
    rec = _register(api, POLICE, b"photo", case_no="C-contract")
    ledger, key = _ledger(api), sha256_key(rec["id"])
    cases = [
        (MARKET, lambda s: ledger.register(s, sha256_key("EV-x"), sha256_key("C-x"), b"\1" * 32, b"\2" * 32, 1, b"\3" * 32),
         "EvidenceLedgerUnauthorized"),
        (JUSTICE, lambda s: ledger.transfer(s, key, COURT), "EvidenceLedgerNotCustodian"),
        (POLICE, lambda s: ledger.transfer(s, key, MARKET), "EvidenceLedgerInvalidRecipient"),
        (COURT, lambda s: ledger.accept(s, key), "EvidenceLedgerNoPendingTransfer"),
        (COURT, lambda s: ledger.seal_case(s, sha256_key("C-contract")), "EvidenceLedgerNotCaseOwner"),
        (POLICE, lambda s: ledger.register(s, key, sha256_key("C-contract"), b"\1" * 32, b"\2" * 32, 1, b"\3" * 32),
         "EvidenceLedgerRecordExists"),
    ]
    for agency, call, error in cases:
        with pytest.raises(ContractRevertError) as exc:
            call(api.node.sender_for(agency))
        assert exc.value.name == error
    ledger.transfer(api.node.sender_for(POLICE), key, COURT)
    with pytest.raises(ContractRevertError, match="EvidenceLedgerNotRecipient"):
        ledger.accept(api.node.sender_for(JUSTICE), key)


def test_a_chain_outage_leaves_steps_in_the_outbox_and_the_worker_sends_each_once(api: Api) -> None:
    rec = _register(api, POLICE, b"before the outage", case_no="C-outage")
    with chain_outage(api.node):
        r = api.client.post("/api/v1/evidence", json=evidence_body(b"during the outage", case_no="C-outage"),
                            headers=api.auth(POLICE))
        assert r.status_code == 202 and r.json()["status"] == "pending" and r.json()["pending_steps"] == 1
        pending = r.json()["id"]
        r = api.client.post(f"/api/v1/evidence/{rec['id']}/transfer", json={"to": COURT, "purpose": "移送"},
                            headers=api.auth(POLICE))
        assert r.status_code == 202 and r.json()["custody_log"][-1]["state"] == "pending"
        time.sleep(0.6)  # the worker keeps failing meanwhile; nothing is lost
    service = api.services.evidence
    _wait(lambda: service.pending_count() == 0)
    view = api.client.get(f"/api/v1/evidence/{pending}", headers=api.auth(POLICE)).json()
    assert view["status"] == "registered" and view["registered"]["tx_hash"]
    assert len(_registered_events(api, pending)) == 1
    assert _ledger(api).get_record(sha256_key(rec["id"])).pending_to == COURT  # type: ignore[union-attr]


def test_a_resend_finds_a_step_already_on_chain_instead_of_sending_it_again(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    service = api.services.evidence
    sender = api.node.sender_for(POLICE)
    nonce = api.node.backend.w3.eth.get_transaction_count(sender.address)

    # 1. the receipt is lost after the broadcast: the step stays `sent` with its tx hash
    real_wait = TransactionSender.wait
    monkeypatch.setattr(TransactionSender, "wait", lambda self, p, timeout=None: (_ for _ in ()).throw(
        ChainUnavailableError("receipt lost")))
    r = api.client.post("/api/v1/evidence", json=evidence_body(b"lost receipt", case_no="C-resend"),
                        headers=api.auth(POLICE))
    first = r.json()["id"]
    assert r.status_code == 202
    # 2. a crash between the broadcast and recording the tx hash: the step stays `pending`, yet it is on chain
    monkeypatch.setattr(TransactionSender, "wait", real_wait)
    real_mark = StepLedger._mark_sent
    monkeypatch.setattr(StepLedger, "_mark_sent", lambda self, items: (_ for _ in ()).throw(
        ChainUnavailableError("crashed before recording the tx")))
    r = api.client.post("/api/v1/evidence", json=evidence_body(b"crash before mark", case_no="C-resend"),
                        headers=api.auth(POLICE))
    second = r.json()["id"]
    assert r.status_code == 202
    monkeypatch.setattr(StepLedger, "_mark_sent", real_mark)
    _wait(lambda: service.pending_count() == 0)
    for rid in (first, second):
        view = api.client.get(f"/api/v1/evidence/{rid}", headers=api.auth(POLICE)).json()
        assert view["status"] == "registered" and len(_registered_events(api, rid)) == 1
        assert view["registered"]["tx_hash"] == _registered_events(api, rid)[0].tx_hash
    assert api.node.backend.w3.eth.get_transaction_count(sender.address) == nonce + 2  # two txs, not three or four


def test_audit_records_recompute_the_metadata_digest_and_an_edited_row_is_caught(api: Api) -> None:
    rec = _register(api, POLICE, b"audited photo", case_no="C-audit")
    with api.node.db.session() as s:
        [entry] = [e for e in audit_records(s) if e.ref == rec["id"]]
    state = _ledger(api).get_record(sha256_key(rec["id"]))
    assert state is not None and entry.anchored and entry.key == "0x" + sha256_key(rec["id"]).hex()
    assert entry.digest == "0x" + state.meta_digest.hex() and entry.tx_hash == rec["registered"]["tx_hash"]
    with api.node.db.session() as s:
        s.get(EvidenceRecord, rec["id"]).legal_basis = "edited after anchoring"  # type: ignore[union-attr]
    with api.node.db.session() as s:
        [entry] = [e for e in audit_records(s) if e.ref == rec["id"]]
    assert entry.digest != "0x" + state.meta_digest.hex()
    r = api.client.post("/api/v1/evidence/verify", json={**digests(b"audited photo"), "id": rec["id"]})
    assert r.json()["verdict"] == "tampered"


def test_an_exported_package_verifies_online_and_offline_and_names_an_edited_record(api: Api, tmp_path: Path) -> None:
    case = "哈公行罚〔2026〕0500号"
    a = _register(api, POLICE, b"photo a", case_no=case)
    b = _register(api, POLICE, b"decision b", case_no=case, media_type="application/pdf")
    _post(api, f"/api/v1/evidence/{a['id']}/transfer", {"to": JUSTICE, "purpose": "移送"}, POLICE)
    _post(api, f"/api/v1/evidence/{a['id']}/accept", None, JUSTICE)
    _post(api, "/api/v1/evidence/cases/seal", {"case_no": case}, POLICE)
    r = api.client.get("/api/v1/evidence/cases/export", params={"case_no": case}, headers=api.auth(POLICE))
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    package = tmp_path / "case.zip"
    package.write_bytes(r.content)
    offline = verify_package(package)
    assert offline.ok and offline.records == 2 and offline.steps == 5 and offline.mode == "offline", offline.findings
    online = verify_package(package, backend=api.node.backend)
    assert online.ok and "every transaction is still on chain" in online.summary, online.findings

    def edit(name: str, data: bytes) -> bytes:
        if name == f"records/{b['id']}.json":
            doc = json.loads(data)
            doc["metadata"]["legal_basis"] = "《某法》第一条"
            return json.dumps(doc, ensure_ascii=False).encode()
        return data

    edited = tmp_path / "edited.zip"
    rewrite_zip(package, edited, edit)
    report = verify_package(edited)
    assert not report.ok and {f.subject for f in report.findings} == {f"record {b['id']}"}
    assert {f.code for f in report.findings} >= {"file_modified", "metadata_mismatch"}
    # an outsider (neither owner, involved, nor auditor) may not export
    r = api.client.get("/api/v1/evidence/cases/export", params={"case_no": case}, headers=api.auth(PRISON))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "not_involved")


def test_steps_the_chain_lost_are_found_by_reconcile_and_anchored_again_once(api: Api) -> None:
    service = api.services.evidence
    snapshot = api.node.backend.raw("evm_snapshot", [])
    rec = _register(api, POLICE, b"anchored, then lost", case_no="C-lost")
    assert rec["status"] == "registered"
    api.node.backend.raw("evm_revert", [snapshot])  # the devnet restarted from an older state: the block is gone
    api.node.reset_senders()
    assert _ledger(api).get_record(sha256_key(rec["id"])) is None
    assert service.reconcile() == 1
    _wait(lambda: service.pending_count() == 0)
    view = api.client.get(f"/api/v1/evidence/{rec['id']}", headers=api.auth(POLICE)).json()
    assert view["status"] == "registered" and _ledger(api).get_record(sha256_key(rec["id"])) is not None
    [event] = _registered_events(api, rec["id"])
    assert view["registered"]["tx_hash"] == event.tx_hash and service.reconcile() == 0


def test_concurrent_transfers_of_one_record_let_exactly_one_through(api: Api) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from registry.errors import ConflictError

    rec = _register(api, POLICE, b"contested photo", case_no="C-race")
    service = api.services.evidence

    def attempt(to: str) -> str:
        try:
            service.transfer(POLICE, rec["id"], to, "移送")
        except ConflictError as exc:
            return exc.code
        return "ok"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(attempt, [JUSTICE, COURT, NOTARY, PRISON]))
    assert outcomes.count("ok") == 1 and set(outcomes) - {"ok"} <= {"step_in_progress", "transfer_pending"}, outcomes
    transfers = [e for e in _ledger(api).events_for(sha256_key(rec["id"])) if e.name == "CustodyTransferRequested"]
    assert len(transfers) == 1


def test_custody_comes_from_the_chain_so_an_edited_custodian_neither_shows_nor_locks_out_the_real_one(api: Api) -> None:
    rec = _register(api, POLICE, b"seized ledger book", case_no="C-forged-custody")
    _post(api, f"/api/v1/evidence/{rec['id']}/transfer", {"to": JUSTICE, "purpose": "移送审核"}, POLICE)
    _post(api, f"/api/v1/evidence/{rec['id']}/accept", None, JUSTICE)  # JUSTICE holds it, on chain and in the DB
    with api.node.db.session() as s:  # someone with database access forges the custodian and a pending offer
        s.execute(text("update evidence_records set custodian_uscc = :forger, pending_to = :to where id = :id"),
                  {"forger": PRISON, "to": NOTARY, "id": rec["id"]})

    status = api.client.get(f"/api/v1/evidence/{rec['id']}/status").json()
    assert status["source"] == "chain" and status["custodian"]["uscc"] == JUSTICE, status
    assert status["pending_transfer_to"] is None and status["collector"]["uscc"] == POLICE

    # the forged custodian is refused by the API (and would be by the contract); the forged offer is not one
    r = api.client.post(f"/api/v1/evidence/{rec['id']}/transfer", json={"to": COURT, "purpose": "x"},
                        headers=api.auth(PRISON))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "not_custodian")
    r = api.client.post(f"/api/v1/evidence/{rec['id']}/accept", headers=api.auth(NOTARY))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "no_pending_transfer")

    # the real custodian still transfers, and the court accepts: the chain records both
    _post(api, f"/api/v1/evidence/{rec['id']}/transfer", {"to": COURT, "purpose": "移送审查起诉"}, JUSTICE)
    assert _ledger(api).get_record(sha256_key(rec["id"])).pending_to == COURT  # type: ignore[union-attr]
    assert api.client.get(f"/api/v1/evidence/{rec['id']}/status").json()["pending_transfer_to"]["uscc"] == COURT
    view = _post(api, f"/api/v1/evidence/{rec['id']}/accept", None, COURT)
    assert view["custodian"]["uscc"] == COURT  # the mirror is right again once a step lands
    assert _ledger(api).get_record(sha256_key(rec["id"])).custodian_uscc == COURT  # type: ignore[union-attr]


@needs_openssl
def test_an_exported_package_manifest_verifies_with_openssl_sm2(api: Api, tmp_path: Path) -> None:
    """signature.json is an SM2-SM3 proof over manifest.json's bytes (gm profile): OpenSSL checks it alone."""
    case = "哈公行罚〔2026〕0501号"
    _register(api, POLICE, b"photo c", case_no=case)
    r = api.client.get("/api/v1/evidence/cases/export", params={"case_no": case}, headers=api.auth(POLICE))
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        manifest, proof = z.read("manifest.json"), json.loads(z.read("signature.json"))
    assert proof["alg"] == "SM2-SM3"
    key = write(tmp_path / "key.pem", proof["key"].encode())
    sig = write(tmp_path / "sig.der", base64.b64decode(proof["signature"]))
    data = write(tmp_path / "manifest.json", manifest)
    args = ["pkeyutl", "-verify", "-pubin", "-inkey", key, "-rawin", "-digest", "sm3", "-pkeyopt", SM2_ID,
            "-in", data, "-sigfile", sig]
    assert b"Signature Verified Successfully" in openssl(*args).stdout
    write(tmp_path / "manifest.json", manifest.replace(b'"format"', b'"formaT"'))
    assert openssl(*args, check=False).returncode != 0
