"""Evidence records issued under a seal (issue 14 item 2) on a real anvil through the HTTP API: the sealed
signature over the record's content digests is stored with it, its verification gains the `seal` check, a
suspended, revoked, unknown or foreign seal refuses sealing with a clear 4xx and stores nothing, and a sealed
signature altered after the fact makes the verdict `tampered`."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from registry.node import Node
from registry.seals.asn1 import SESSignature
from registry.store.ledger_models import EvidenceRecord
from registry.store.seal_models import SealedSignature
from tests.conftest import Api, make_api
from tests.integration.test_seals import seal_png
from tests.support.evidence import JUSTICE, POLICE, digests, evidence_body

pytestmark = pytest.mark.anvil

UNTIL = (dt.datetime.now(dt.UTC) + dt.timedelta(days=365)).isoformat()


@pytest.fixture
def gm_api(anvil_node: Node, tmp_path: Path) -> Iterator[Api]:
    yield from make_api(anvil_node, tmp_path / "gm", crypto_profile="gm")


@pytest.fixture
def intl_api(anvil_node: Node, tmp_path: Path) -> Iterator[Api]:
    yield from make_api(anvil_node, tmp_path / "intl", crypto_profile="intl")


def _post(api: Api, path: str, body: Any, agency: str, status: int) -> dict[str, Any]:
    r = api.client.post(path, json=body, headers=api.auth(agency))
    assert r.status_code == status, r.text[:800]
    return r.json()  # type: ignore[no-any-return]


def _seal(api: Api, agency: str = POLICE) -> dict[str, Any]:
    body = {"name": "黑龙江省公安厅执法专用章", "category": "business", "valid_until": UNTIL,
            "image": base64.b64encode(seal_png("red")).decode()}
    return _post(api, "/api/v1/seals", body, agency, 201)


def _verify(api: Api, content: bytes, record_id: str) -> dict[str, Any]:
    r = api.client.post("/api/v1/evidence/verify", json={**digests(content), "id": record_id})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _seal_check(result: dict[str, Any]) -> dict[str, Any]:
    found = [c for c in result["checks"] if c["check"] == "seal"]
    assert len(found) == 1, result["checks"]
    return found[0]


def _count(api: Api, model: Any, *where: Any) -> int:
    with api.node.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_evidence_issued_under_a_seal_verifies_with_the_seal_check(gm_api: Api) -> None:
    api = gm_api
    seal = _seal(api)
    content = b"executive enforcement photo, sealed"
    view = _post(api, "/api/v1/evidence", evidence_body(content, case_no="哈公行罚〔2026〕S1号", seal=seal["id"]),
                 POLICE, 201)
    assert view["status"] == "registered" and view["seal"] == seal["id"]
    with api.node.db.session() as s:
        row = s.scalars(select(SealedSignature).where(SealedSignature.record_kind == "evidence",
                                                      SealedSignature.record_id == view["id"])).one()
        assert (row.seal_id, row.format) == (seal["id"], "ses-signature")
        assert row.digest_sha256 == hashlib.sha256(content).hexdigest()
    # the GB/T 38540 SES_Signature names the record and signs its SM3 content digest
    served = api.client.get(f"/api/v1/evidence/{view['id']}/seal")
    assert served.status_code == 200 and served.json()["format"] == "ses-signature"
    assert base64.b64decode(served.json()["signature"]) == row.signature
    tbs = SESSignature.load(row.signature, strict=True)["toSign"]
    assert tbs["propertyInfo"].native == view["id"] and tbs["dataHash"].native == bytes.fromhex(view["content"]["sm3"])

    result = _verify(api, content, view["id"])
    check = _seal_check(result)
    assert result["verdict"] == "unaltered" and check["status"] == "VALID", result
    assert check["details"]["seal"] == seal["id"] and "印章有效" in check["detail_zh"]
    assert f"e-seal {seal['id']} verified" in result["summary"]
    # an unsealed record has no seal check
    plain = _post(api, "/api/v1/evidence", evidence_body(b"unsealed", case_no="哈公行罚〔2026〕S1号"), POLICE, 201)
    assert plain["seal"] is None
    missing = api.client.get(f"/api/v1/evidence/{plain['id']}/seal")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_sealed"
    assert not [c for c in _verify(api, b"unsealed", plain["id"])["checks"] if c["check"] == "seal"]
    # a batch: every record sealed with the seal it names
    batch = {"records": [evidence_body(f"batch {i}".encode(), case_no="哈公行罚〔2026〕S2号", seal=seal["id"])
                         for i in range(3)]}
    records = _post(api, "/api/v1/evidence/batch", batch, POLICE, 201)["records"]
    assert [r["seal"] for r in records] == [seal["id"]] * 3
    assert _seal_check(_verify(api, b"batch 2", records[2]["id"]))["status"] == "VALID"


def test_a_suspended_revoked_unknown_or_foreign_seal_refuses_evidence_and_stores_nothing(gm_api: Api) -> None:
    api = gm_api
    seal = _seal(api)
    first = _post(api, "/api/v1/evidence", evidence_body(b"before", case_no="哈公行罚〔2026〕S3号", seal=seal["id"]),
                  POLICE, 201)
    assert _post(api, f"/api/v1/seals/{seal['id']}/suspend", {"reason": "印章遗失"}, POLICE, 200)["status"] == "suspended"
    records, sealed = _count(api, EvidenceRecord), _count(api, SealedSignature)
    refusals = [
        (POLICE, seal["id"], 409, "seal_suspended"),
        (JUSTICE, seal["id"], 403, "foreign_seal"),  # 省司法厅 may register evidence, not with 公安厅's seal
        (POLICE, "ES11230000MB1A00044B9999", 404, "unknown_seal"),
        (POLICE, "es-lower", 422, None),  # not a seal id at all (the schema's pattern)
    ]
    for agency, seal_id, status, code in refusals:
        err = _post(api, "/api/v1/evidence", evidence_body(b"while suspended", case_no="哈公行罚〔2026〕S4号",
                                                           seal=seal_id), agency, status)
        if code is not None:
            assert err["error"]["code"] == code, err
    batch = {"records": [evidence_body(b"ok", case_no="哈公行罚〔2026〕S4号"),
                         evidence_body(b"no", case_no="哈公行罚〔2026〕S4号", seal=seal["id"])]}
    err = _post(api, "/api/v1/evidence/batch", batch, POLICE, 409)["error"]
    assert err["code"] == "seal_suspended" and err["details"]["index"] == 1
    assert (_count(api, EvidenceRecord), _count(api, SealedSignature)) == (records, sealed)
    # what was sealed while the seal was active stays valid, and the check says the seal was suspended later
    check = _seal_check(_verify(api, b"before", first["id"]))
    assert check["status"] == "VALID" and check["details"]["later"] == "suspended", check

    assert _post(api, f"/api/v1/seals/{seal['id']}/revoke", {"reason": "机构调整"}, POLICE, 200)["status"] == "revoked"
    err = _post(api, "/api/v1/evidence", evidence_body(b"after", case_no="哈公行罚〔2026〕S4号", seal=seal["id"]),
                POLICE, 409)["error"]
    assert err["code"] == "seal_revoked"
    assert (_count(api, EvidenceRecord), _count(api, SealedSignature)) == (records, sealed)


def test_an_expired_seal_refuses_evidence_sealing(gm_api: Api) -> None:
    api = gm_api
    seal = _seal(api)
    sealer = api.services.evidence.sealer
    sealer.now = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=400)  # past the seal's validity
    try:
        err = _post(api, "/api/v1/evidence", evidence_body(b"late", case_no="哈公行罚〔2026〕S5号", seal=seal["id"]),
                    POLICE, 409)["error"]
    finally:
        sealer.now = lambda: dt.datetime.now(dt.UTC)
    assert err["code"] == "seal_expired" and _count(api, SealedSignature) == 0


def test_an_altered_sealed_signature_of_evidence_makes_the_verdict_tampered(gm_api: Api) -> None:
    api = gm_api
    seal = _seal(api)
    other = _post(api, "/api/v1/evidence", evidence_body(b"other file", case_no="哈公行罚〔2026〕S6号", seal=seal["id"]),
                  POLICE, 201)
    view = _post(api, "/api/v1/evidence", evidence_body(b"the file", case_no="哈公行罚〔2026〕S6号", seal=seal["id"]),
                 POLICE, 201)
    with api.node.db.session() as s:  # another record's (valid) sealed signature put in this one's place
        rows = {r.record_id: r for r in s.scalars(select(SealedSignature).where(
            SealedSignature.record_id.in_([view["id"], other["id"]])))}
        rows[view["id"]].signature = rows[other["id"]].signature
    result = _verify(api, b"the file", view["id"])
    check = _seal_check(result)
    assert result["verdict"] == "tampered" and check["status"] == "INVALID", result
    assert "not over this record" in check["detail"]


def test_intl_evidence_is_sealed_with_a_json_proof_and_verifies(intl_api: Api) -> None:
    api = intl_api
    seal = _seal(api)
    view = _post(api, "/api/v1/evidence", evidence_body(b"intl photo", case_no="哈公行罚〔2026〕S7号", seal=seal["id"]),
                 POLICE, 201)
    with api.node.db.session() as s:
        assert s.scalar(select(SealedSignature.format).where(SealedSignature.record_id == view["id"])) == "json-proof"
    result = _verify(api, b"intl photo", view["id"])
    assert result["verdict"] == "unaltered" and _seal_check(result)["status"] == "VALID", result
