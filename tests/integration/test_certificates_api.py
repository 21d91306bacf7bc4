"""E-certificates end to end through the HTTP API on a real anvil: issue, lifecycle, every verdict,
refusals and bad input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from api.devtools.samples import sample_values
from chain.errors import ContractRevertError
from registry.certificates.documents import DisclosedField, Document
from registry.identifiers import CertificateId
from registry.store.db import Certificate
from tests.conftest import Api


def _type(api: Api, index: int = 0) -> Any:
    return api.node.seeds.certificate_types[index]


def _samples(api: Api, n: int, type_index: int = 0, seed: int = 1) -> tuple[Any, str, list[dict[str, Any]]]:
    ct = _type(api, type_index)
    issuer = api.node.seeds.member(ct.issuers[0])
    return ct, issuer.uscc, sample_values(ct, n, issuer=issuer, seed=seed)


def _issue(api: Api, n: int = 1, *, type_index: int = 0, seed: int = 1, wait: bool = True,
           values: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    ct, agency, docs = _samples(api, n, type_index, seed)
    r = api.client.post(f"/api/v1/certificates/batch?wait={str(wait).lower()}",
                        json={"type": ct.code, "documents": values or docs}, headers=api.auth(agency))
    assert r.status_code == 201, r.text
    return r.json()["certificates"]  # type: ignore[no-any-return]


def _verify(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    api.services.index.refresh(force=True)
    r = api.client.post("/api/v1/verify", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def _stored(api: Api) -> int:
    with api.node.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Certificate)) or 0)


def test_a_single_certificate_is_pending_at_once_and_valid_once_anchored(api: Api) -> None:
    ct, agency, [values] = _samples(api, 1)
    r = api.client.post("/api/v1/certificates", json={"type": ct.code, "fields": values}, headers=api.auth(agency))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "pending"
    CertificateId.parse(body["identifier"])
    assert "#" in body["qr_url"] and body["qr_url"].split("#")[0].endswith("/v/" + body["identifier"])
    api.services.certificates.wait_for([body["identifier"]], timeout=30)
    result = _verify(api, body["document"])
    assert result["verdict"] == "valid", result
    assert [c["name"] for c in result["checks"]] == ["integrity", "anchoring", "sm3", "issuer", "status", "validity"]
    assert all(c["status"] == "VALID" for c in result["checks"])
    assert result["issuer"]["uscc"] == agency and result["issuer"]["bid"].startswith("did:bid:")
    assert result["anchor"]["tx_hash"].startswith("0x") and result["anchor"]["block_number"] > 0
    view = api.client.get(f"/api/v1/certificates/{body['identifier']}", headers=api.auth(agency)).json()
    assert view["status"] == "issued" and view["anchor"]["size"] >= 1
    assert "持证主体" not in json.dumps(view, ensure_ascii=False)  # the issuer view holds no holder data


def test_every_lifecycle_transition_and_its_verdict(api: Api) -> None:
    [cert] = _issue(api)
    ident, agency = cert["identifier"], CertificateId.parse(cert["identifier"]).issuer_uscc
    h = api.auth(agency)

    def act(action: str, body: dict[str, Any] | None = None) -> Any:
        return api.client.post(f"/api/v1/certificates/{ident}/{action}", json=body or {}, headers=h)

    assert act("suspend").json()["status"] == "suspended"
    assert _verify(api, cert["document"])["verdict"] == "suspended"
    assert act("suspend").status_code == 409
    assert act("reinstate").json()["status"] == "issued"
    assert _verify(api, cert["document"])["verdict"] == "valid"
    assert act("revoke", {"reason": 4}).json()["status"] == "revoked"
    revoked = _verify(api, cert["document"])
    assert revoked["verdict"] == "revoked"
    assert "遗失" in next(c for c in revoked["checks"] if c["name"] == "status")["reason_zh"]
    refused = act("reinstate")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "invalid_transition"
    assert _verify(api, {"identifier": ident})["verdict"] == "revoked"
    history = api.client.get(f"/api/v1/certificates/{ident}", headers=h).json()["history"]
    assert [e["action"] for e in history] == ["suspend", "reinstate", "revoke"]
    assert all(e["tx_hash"] for e in history)


def test_supersede_links_old_and_new(api: Api) -> None:
    [cert] = _issue(api)
    ident = cert["identifier"]
    agency = CertificateId.parse(ident).issuer_uscc
    fields = {k: v["value"] for k, v in cert["document"]["fields"].items()}
    fields["持证主体"] = fields["持证主体"] + "（更正）"
    for k in ("证照标识", "证照编号"):
        fields.pop(k)
    r = api.client.post(f"/api/v1/certificates/{ident}/supersede", json={"fields": fields}, headers=api.auth(agency))
    assert r.status_code == 200, r.text
    new = r.json()["replacement"]
    assert CertificateId.parse(new["identifier"]).version == 2
    assert r.json()["superseded"]["superseded_by"] == new["identifier"]
    old_result = _verify(api, cert["document"])
    assert old_result["verdict"] == "superseded" and old_result["superseded_by"] == new["identifier"]
    assert _verify(api, new["document"])["verdict"] == "valid"


def test_tampering_with_a_value_or_a_salt_is_detected(api: Api) -> None:
    [cert] = _issue(api)
    doc = cert["document"]
    for mutate in ("value", "salt"):
        forged = json.loads(json.dumps(doc))
        field = forged["fields"]["持证主体"]
        if mutate == "value":
            field["value"] += "X"
        else:
            field["salt"] = ("0" if field["salt"][0] != "0" else "1") + field["salt"][1:]
        result = _verify(api, forged)
        assert result["verdict"] == "tampered", mutate
        assert next(c for c in result["checks"] if c["name"] == "integrity")["status"] == "INVALID"


def test_a_selectively_disclosed_copy_verifies_and_names_hidden_fields(api: Api) -> None:
    [cert] = _issue(api)
    doc = Document.from_json(cert["document"]).disclose(["持证主体代码", "住所"] if "住所" in cert["document"]["fields"]
                                                        else ["持证主体代码"])
    result = _verify(api, doc.to_json())
    assert result["verdict"] == "valid"
    assert "持证主体代码" in result["hidden_fields"] and "持证主体代码" not in result["fields"]


def test_unanchored_and_foreign_documents(api: Api) -> None:
    ct, agency, [values] = _samples(api, 1)
    local = Document.create(ct, values, identifier=str(CertificateId.build(ct.code, agency, 999_999)))
    assert _verify(api, local.to_json())["verdict"] == "not_anchored"
    from stdnum.cn import uscc as uscc_lib

    body = "91230100MA1B2C3D4"
    outsider = body + uscc_lib.calc_check_digit(body)
    # a well-formed, self-consistent document from an agency outside the consortium
    forged_id = str(CertificateId.build(ct.code, outsider, 1))
    fields = dict(local.fields)
    for name, value in (("颁发机构代码", outsider), ("颁发机构", "黑龙江省不存在局"), ("证照标识", forged_id)):
        fields[name] = DisclosedField(fields[name].salt, value)
    forged = dataclasses.replace(local, identifier=forged_id, fields=fields)
    forged = dataclasses.replace(forged, digest_sha256=forged.compute_digests()[0], digest_sm3=forged.compute_digests()[1])
    assert _verify(api, forged.to_json())["verdict"] == "unknown_issuer"
    assert _verify(api, {"identifier": str(CertificateId.build(ct.code, agency, 424242))})["verdict"] == "not_anchored"


def test_an_expired_certificate(api: Api) -> None:
    ct = next(t for t in api.node.seeds.certificate_types if t.validity_years)
    issuer = api.node.seeds.member(ct.issuers[0])
    [values] = sample_values(ct, 1, issuer=issuer, seed=5)
    values.update({"颁发日期": "2019-01-01", "有效期起始": "2019-01-01", "有效期截止": "2020-12-31"})
    r = api.client.post("/api/v1/certificates?wait=true", json={"type": ct.code, "fields": values},
                        headers=api.auth(issuer.uscc))
    assert r.status_code == 201, r.text
    result = _verify(api, r.json()["document"])
    assert result["verdict"] == "expired"
    assert "2020-12-31" in next(c for c in result["checks"] if c["name"] == "validity")["reason_en"]


def test_chain_unreachable_is_cannot_verify_never_valid(api: Api, tmp_path: Any) -> None:
    [cert] = _issue(api)
    from chain.backends import RpcBackend
    from chain.devnet import free_port
    from registry.certificates.index import ChainIndex
    from registry.certificates.verification import Verifier
    from registry.node import Node

    dead = Node(db=api.node.db, keys=api.node.keys, seeds=api.node.seeds,
                backend=RpcBackend(f"http://127.0.0.1:{free_port()}", timeout=1),
                deployment_file=api.node.deployment_file, deployment=api.node.deployment)
    result = Verifier(dead, ChainIndex(dead, stale_after=0)).verify_document(cert["document"])
    assert result.verdict == "cannot_verify"
    assert {c.name: c.status for c in result.checks}["integrity"] == "VALID"


def test_revoking_one_document_in_a_batch_of_1000_leaves_the_other_999_valid(api: Api) -> None:
    certs = _issue(api, 1000, seed=7)
    assert len({c["document"]["anchor"]["batch_root"] for c in certs}) == 1
    victim = certs[500]["identifier"]
    agency = CertificateId.parse(victim).issuer_uscc
    r = api.client.post(f"/api/v1/certificates/{victim}/revoke", json={"reason": 1}, headers=api.auth(agency))
    assert r.status_code == 200, r.text
    api.services.index.refresh(force=True)
    verdicts = {c["identifier"]: api.services.verifier.verify_identifier(c["identifier"]).verdict for c in certs}
    assert verdicts.pop(victim) == "revoked"
    assert set(verdicts.values()) == {"valid"} and len(verdicts) == 999


def test_another_agency_cannot_revoke_at_the_api_or_at_the_contract(api: Api) -> None:
    [cert] = _issue(api)
    ident = cert["identifier"]
    issuer = CertificateId.parse(ident).issuer_uscc
    other = next(m.uscc for m in api.node.seeds.members if m.uscc != issuer and "revoker" in m.roles
                 and issuer not in (api.node.seeds.member(issuer).revoker_delegates or ()))
    r = api.client.post(f"/api/v1/certificates/{ident}/revoke", json={"reason": 1}, headers=api.auth(other))
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_certificate"
    anchor = cert["document"]["anchor"]
    ledger = api.node.certificate_ledger
    with pytest.raises(ContractRevertError) as info:
        ledger.revoke(api.node.sender_for(other), _hex(cert["document"]["digest"]["sha256"]),
                      _hex(anchor["batch_root"]), anchor["index"], [_hex(p) for p in anchor["path"]], 1)
    assert info.value.name == "CertificateLedgerUnauthorized"
    assert _verify(api, cert["document"])["verdict"] == "valid"


def test_bad_input_is_a_clear_4xx_and_stores_nothing(api: Api) -> None:
    ct, agency, docs = _samples(api, 2)
    h = api.auth(agency)
    before = _stored(api)

    def post(path: str, **kw: Any) -> Any:
        return api.client.post(path, headers={**h, **kw.pop("headers", {})}, **kw)

    too_many = post("/api/v1/certificates/batch", json={"type": ct.code, "documents": [docs[0]] * 10_001})
    assert too_many.status_code == 413 and too_many.json()["error"]["code"] == "batch_too_large"
    missing = dict(docs[1])
    missing.pop("持证主体")
    r = post("/api/v1/certificates/batch", json={"type": ct.code, "documents": [docs[0], missing]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "missing_field"
    assert r.json()["error"]["details"] == {"field": "持证主体", "index": 1}
    r = post("/api/v1/certificates", json={"type": "11230000MB1A00028M999", "fields": docs[0]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_certificate_type"
    r = api.client.get("/api/v1/certificates/1.2.156.3005.2.bogus", headers=h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_identifier"
    r = post("/api/v1/certificates", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json"
    r = post("/api/v1/certificates/batch", content=b"x" * (20 * 1024 * 1024), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = api.client.post("/api/v1/certificates", json={"type": ct.code, "fields": docs[0]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    not_issuer = next(m.uscc for m in api.node.seeds.members if m.uscc not in ct.issuers)
    r = api.client.post("/api/v1/certificates", json={"type": ct.code, "fields": docs[0]}, headers=api.auth(not_issuer))
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_an_issuer_of_type"
    r = api.client.post("/api/v1/verify", content=b"[1,2]", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert _stored(api) == before


def test_certificate_types_list_issuers_and_fields(api: Api) -> None:
    body = api.client.get("/api/v1/certificate-types").json()
    assert body["count"] >= 6
    names = {t["name"] for t in body["types"]}
    assert {"营业执照", "食品经营许可证", "道路运输从业人员资格证", "学位证书", "职业资格证书", "不动产权证书"} <= names
    assert all(t["issuers"] and t["fields"] for t in body["types"])


def test_health_members_and_resolution(api: Api) -> None:
    health = api.client.get("/healthz").json()
    assert health["status"] == "ok" and health["chain"]["block_number"] > 0
    members = api.client.get("/api/v1/members").json()
    assert members["count"] == len(api.node.seeds.members)
    m = members["members"][0]
    for q in (m["bid"], m["uscc"], m["accounts"][0]):
        r = api.client.get(f"/api/v1/identifiers/{q}")
        assert r.status_code == 200 and r.json()["member"]["uscc"] == m["uscc"]
    assert api.client.get("/api/v1/identifiers/0x12").status_code == 422
    assert api.client.get("/api/v1/identifiers/" + "0x" + "22" * 20).status_code == 404
    wrong_check = api.client.get("/api/v1/identifiers/91230100MA1B2C3D40")
    assert wrong_check.status_code == 422
    assert "check character 0, expected 9" in wrong_check.json()["error"]["message"]
    assert dt.date.today()


def test_the_openapi_spec_describes_every_route(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    paths = set(spec["paths"])
    for path in ("/healthz", "/api/v1/members", "/api/v1/identifiers/{identifier}", "/api/v1/certificates",
                 "/api/v1/certificates/batch", "/api/v1/certificates/{identifier}/revoke", "/api/v1/verify",
                 "/api/v1/certificate-types"):
        assert path in paths, path


def test_a_delegated_revoker_may_revoke_for_the_issuer(api: Api) -> None:
    city, province = "11230100MB1B000456", "11230000MB1A00028M"  # seeds: the city bureau delegates to the province
    ct = next(t for t in api.node.seeds.certificate_types if city in t.issuers)
    [values] = sample_values(ct, 1, issuer=api.node.seeds.member(city), seed=21)
    r = api.client.post("/api/v1/certificates?wait=true", json={"type": ct.code, "fields": values},
                        headers=api.auth(city))
    assert r.status_code == 201, r.text
    ident = r.json()["identifier"]
    revoked = api.client.post(f"/api/v1/certificates/{ident}/revoke", json={"reason": 5}, headers=api.auth(province))
    assert revoked.status_code == 200, revoked.text
    assert _verify(api, r.json()["document"])["verdict"] == "revoked"
    # the delegation is one way
    [values] = sample_values(ct, 1, issuer=api.node.seeds.member(province), seed=22)
    own = api.client.post("/api/v1/certificates?wait=true", json={"type": ct.code, "fields": values},
                          headers=api.auth(province)).json()["identifier"]
    refused = api.client.post(f"/api/v1/certificates/{own}/suspend", json={}, headers=api.auth(city))
    assert refused.status_code == 403


def test_concurrent_changes_of_one_certificate_let_exactly_one_through(api: Api) -> None:
    from concurrent.futures import ThreadPoolExecutor

    [cert] = _issue(api)
    ident = cert["identifier"]
    h = api.auth(CertificateId.parse(ident).issuer_uscc)
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda _: api.client.post(f"/api/v1/certificates/{ident}/suspend", json={},
                                                         headers=h).status_code, range(4)))
    assert sorted(codes) == [200, 409, 409, 409]
    history = api.client.get(f"/api/v1/certificates/{ident}", headers=h).json()["history"]
    assert [e["action"] for e in history] == ["suspend"]
