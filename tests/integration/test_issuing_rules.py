"""Strict input and idempotent issuing through the HTTP API on a real anvil: amounts, unsafe characters,
strict revocation reasons, bounded list offsets, every invalid document of a batch at once, idempotency by
证照编号 and by Idempotency-Key, and an OpenAPI that declares the error responses."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from api.devtools.samples import sample_values
from registry.store.db import Certificate
from registry.store.idempotency_models import CertificateNumber, IdempotencyRecord
from tests.conftest import Api

pytestmark = pytest.mark.anvil

LICENCE = 0  # 营业执照: has 注册资本


def _samples(api: Api, n: int, seed: int = 1) -> tuple[str, str, list[dict[str, Any]]]:
    ct = api.node.seeds.certificate_types[LICENCE]
    issuer = api.node.seeds.member(ct.issuers[0])
    return ct.code, issuer.uscc, sample_values(ct, n, issuer=issuer, seed=seed)


def _stored(api: Api, model: Any = Certificate) -> int:
    with api.node.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _issue_one(api: Api, agency: str, type_code: str, fields: dict[str, Any], **headers: str) -> Any:
    return api.client.post("/api/v1/certificates", json={"type": type_code, "fields": fields},
                           headers={**api.auth(agency), **headers})


def _error(r: Any) -> dict[str, Any]:
    return r.json()["error"]  # type: ignore[no-any-return]


def test_a_negative_registered_capital_is_refused(api: Api) -> None:
    code, agency, [values] = _samples(api, 1)
    r = _issue_one(api, agency, code, {**values, "注册资本": "-5.00"})
    assert r.status_code == 422 and _error(r)["code"] == "invalid_field", r.text
    assert _error(r)["details"]["field"] == "注册资本" and "at least 0" in _error(r)["message"]
    assert _issue_one(api, agency, code, {**values, "注册资本": "0.00"}).status_code == 201
    assert _stored(api) == 1


@pytest.mark.parametrize("name", ["张三\x00", "张\u202e三", "张三\u2066", "\x1b[31m张三\x1b[0m", "张三\u200f", "张三\n"])
def test_holder_names_with_control_or_bidi_characters_are_refused(api: Api, name: str) -> None:
    code, agency, [values] = _samples(api, 1)
    r = _issue_one(api, agency, code, {**values, "持证主体": name})
    assert r.status_code == 422, r.text
    assert (_error(r)["code"], _error(r)["details"]["field"]) == ("unsafe_characters", "持证主体")
    assert _stored(api) == 0


def test_a_revocation_reason_must_be_one_of_the_codes_and_is_never_coerced(api: Api) -> None:
    code, agency, [values] = _samples(api, 1)
    ident = _issue_one(api, agency, code, values).json()["identifier"]
    for reason in ("4", True, 4.0, 7, None):
        r = api.client.post(f"/api/v1/certificates/{ident}/revoke", json={"reason": reason}, headers=api.auth(agency))
        assert r.status_code == 422 and _error(r)["code"] == "invalid_request", (reason, r.text)
    assert api.client.get(f"/api/v1/certificates/{ident}", headers=api.auth(agency)).json()["history"] == []


@pytest.mark.parametrize("query", ["offset=9223372036854775808", "offset=-1", "offset=1000001", "limit=0",
                                   "limit=1001", "limit=99999999999999999999"])
def test_list_offsets_and_limits_are_bounded(api: Api, query: str) -> None:
    _, agency, _ = _samples(api, 0)
    r = api.client.get(f"/api/v1/exchanges?{query}", headers=api.auth(agency))
    assert r.status_code == 422 and _error(r)["code"] == "invalid_request", r.text


def test_the_largest_offset_allowed_answers_an_empty_page(api: Api) -> None:
    _, agency, _ = _samples(api, 0)
    r = api.client.get("/api/v1/exchanges?offset=1000000&limit=1000", headers=api.auth(agency))
    assert r.status_code == 200, r.text


def test_a_batch_reports_every_invalid_document_at_once(api: Api) -> None:
    code, agency, docs = _samples(api, 5)
    docs[1] = {**docs[1], "注册资本": "-1"}
    docs[2] = {k: v for k, v in docs[2].items() if k != "持证主体"}
    docs[4] = {**docs[4], "持证主体": "a\u202eb"}
    r = api.client.post("/api/v1/certificates/batch", json={"type": code, "documents": docs}, headers=api.auth(agency))
    assert r.status_code == 422, r.text
    error = _error(r)
    assert (error["code"], error["details"]["index"], error["details"]["invalid_documents"]) == ("invalid_field", 1, 3)
    assert [(e["index"], e["field"], e["code"]) for e in error["details"]["errors"]] == [
        (1, "注册资本", "invalid_field"), (2, "持证主体", "missing_field"), (4, "持证主体", "unsafe_characters")]
    assert all(e["message"].startswith(f"document {e['index']}: ") for e in error["details"]["errors"])
    assert _stored(api) == 0


def test_issuing_the_same_number_with_the_same_values_returns_the_existing_certificate(api: Api) -> None:
    code, agency, [values] = _samples(api, 1)
    first = _issue_one(api, agency, code, values)
    assert first.status_code == 201 and first.json()["idempotent_replay"] is False
    again = _issue_one(api, agency, code, dict(reversed(list(values.items()))))  # same values, other key order
    assert again.status_code == 200, again.text
    body = again.json()
    assert (body["identifier"], body["idempotent_replay"], body["document"], body["qr_url"]) == (
        first.json()["identifier"], True, None, None)
    assert _stored(api) == 1 and _stored(api, CertificateNumber) == 1


def test_issuing_the_same_number_with_other_values_is_a_conflict_naming_the_holder(api: Api) -> None:
    code, agency, [values, other] = _samples(api, 2)
    ident = _issue_one(api, agency, code, values).json()["identifier"]
    r = _issue_one(api, agency, code, {**other, "证照编号": values["证照编号"]})
    assert r.status_code == 409 and _error(r)["code"] == "duplicate_certificate_number", r.text
    assert _error(r)["details"]["existing"] == ident and ident in _error(r)["message"]
    batch = api.client.post("/api/v1/certificates/batch", headers=api.auth(agency), json={
        "type": code, "documents": [other, {**other, "住所": "别处"}]})  # one number twice in one request
    assert batch.status_code == 409 and _error(batch)["details"]["conflicts"][0]["duplicate_of_index"] == 0
    assert _stored(api) == 1


def test_a_batch_with_known_and_new_numbers_issues_only_the_new_ones(api: Api) -> None:
    code, agency, docs = _samples(api, 3)
    first = api.client.post("/api/v1/certificates/batch", json={"type": code, "documents": docs[:2]},
                            headers=api.auth(agency)).json()
    r = api.client.post("/api/v1/certificates/batch", json={"type": code, "documents": docs}, headers=api.auth(agency))
    assert r.status_code == 201, r.text
    certs = r.json()["certificates"]
    assert [c["idempotent_replay"] for c in certs] == [True, True, False]
    assert [c["identifier"] for c in certs[:2]] == [c["identifier"] for c in first["certificates"]]
    assert _stored(api) == 3
    all_known = api.client.post("/api/v1/certificates/batch", json={"type": code, "documents": docs},
                                headers=api.auth(agency))
    assert all_known.status_code == 200 and _stored(api) == 3


def test_an_idempotency_key_replays_the_first_answer_and_refuses_another_request(api: Api) -> None:
    code, agency, docs = _samples(api, 3)
    key = str(uuid.uuid4())
    first = _issue_one(api, agency, code, docs[0], **{"Idempotency-Key": key})
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    again = _issue_one(api, agency, code, docs[0], **{"Idempotency-Key": key})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    for field in ("identifier", "qr_url", "idempotent_replay"):
        assert again.json()[field] == first.json()[field]
    assert again.json()["document"]["fields"] == first.json()["document"]["fields"]
    other = _issue_one(api, agency, code, docs[1], **{"Idempotency-Key": key})
    assert other.status_code == 409 and _error(other)["code"] == "idempotency_key_reused"
    batch_key = str(uuid.uuid4())
    body = {"type": code, "documents": docs[1:]}
    b1 = api.client.post("/api/v1/certificates/batch", json=body, headers={**api.auth(agency), "Idempotency-Key": batch_key})
    b2 = api.client.post("/api/v1/certificates/batch", json=body, headers={**api.auth(agency), "Idempotency-Key": batch_key})
    assert (b1.status_code, b2.status_code) == (201, 201) and b2.headers["Idempotent-Replayed"] == "true"
    assert [c["qr_url"] for c in b2.json()["certificates"]] == [c["qr_url"] for c in b1.json()["certificates"]]
    assert _stored(api) == 3 and _stored(api, IdempotencyRecord) == 2
    with api.node.db.session() as s:  # the stored answer holds document keys: never in clear
        blobs = b"".join(s.scalars(select(IdempotencyRecord.response)))
    assert first.json()["qr_url"].split("#")[1].encode() not in blobs and key.encode() not in blobs


def test_a_malformed_idempotency_key_is_refused(api: Api) -> None:
    code, agency, [values] = _samples(api, 1)
    r = _issue_one(api, agency, code, values, **{"Idempotency-Key": "short"})
    assert r.status_code == 422 and _stored(api) == 0


def test_the_openapi_declares_error_bodies_and_the_constraints_the_server_enforces(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            errors = {s for s in op["responses"] if s.startswith("4")}
            assert {"404", "422"} <= errors, (method, path)
            for status in errors:
                ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorBody"), (method, path, status)
            if op.get("security"):
                assert {"401", "403"} <= errors, (method, path)
    assert spec["paths"]["/api/v1/certificates"]["post"]["security"] == [{"agency_api_key": []}]
    assert "security" not in spec["paths"]["/api/v1/verify"]["post"]
    schemas = spec["components"]["schemas"]
    assert schemas["BatchCreate"]["properties"]["documents"]["minItems"] == 1
    assert schemas["BatchCreate"]["properties"]["type"]["pattern"] == "^[0-9A-Z]{18}[0-9]{3}$"
    assert schemas["RevokeRequest"]["properties"]["reason"]["enum"] == [1, 2, 3, 4, 5, 6, 9]
    exchanges = {p["name"]: p["schema"] for p in spec["paths"]["/api/v1/exchanges"]["get"]["parameters"]}
    assert (exchanges["offset"]["maximum"], exchanges["limit"]["maximum"]) == (1_000_000, 1000)
