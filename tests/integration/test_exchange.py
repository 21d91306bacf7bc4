"""Data exchanges end to end through the HTTP API on a real anvil: request -> authorise -> deliver ->
acknowledge signed by the acting sides, disputes and unacknowledged deliveries in queries, every refusal
by the API and by the contract called directly, and the outbox across a chain outage."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from chain.errors import ContractRevertError
from chain.ledgers import ExchangeLedgerClient, ExchangeStep, decode_raw_transaction
from registry.crypto.hashing import sha256_key
from registry.exchanges.service import audit_records
from registry.store.ledger_models import Exchange, ExchangeStepRow
from tests.conftest import Api
from tests.support.evidence import COURT, HRSS, JUSTICE, MARKET, POLICE, PRISON, chain_outage

pytestmark = pytest.mark.anvil

PAYLOAD = "\n".join(f'{{"统一社会信用代码": "91230100MA1B{i:06d}", "登记状态": "存续"}}' for i in range(120)).encode()


def _post(api: Api, path: str, body: Any, agency: str, status: int = 200) -> dict[str, Any]:
    r = api.client.post(path, json=body, headers=api.auth(agency))
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


def _request(api: Api, consumer: str = POLICE, item: str = "SCJG-001", **kw: Any) -> dict[str, Any]:
    body = {"item": item, "purpose": "核查涉案企业登记信息（哈公经侦〔2026〕12号）",
            "legal_basis": "《政务数据共享管理办法》第十条", **kw}
    return _post(api, "/api/v1/exchanges", body, consumer, 201)


def _delivered(api: Api, item: str = "SCJG-001", provider: str = MARKET) -> dict[str, Any]:
    ex = _request(api, item=item)
    _post(api, f"/api/v1/exchanges/{ex['id']}/authorise", {}, provider)
    return _post(api, f"/api/v1/exchanges/{ex['id']}/deliver",
                 {"sha256": hashlib.sha256(PAYLOAD).hexdigest(), "size": len(PAYLOAD), "records": 120}, provider)


def _ledger(api: Api) -> ExchangeLedgerClient:
    return api.node.client(ExchangeLedgerClient)


def _stored(api: Api) -> tuple[int, int]:
    with api.node.db.session() as s:
        return (int(s.scalar(select(func.count()).select_from(Exchange)) or 0),
                int(s.scalar(select(func.count()).select_from(ExchangeStepRow)) or 0))


def test_request_authorise_deliver_acknowledge_each_step_signed_by_the_acting_side(api: Api) -> None:
    ex = _request(api)
    assert ex["status"] == "requested" and ex["provider"]["uscc"] == MARKET and ex["id"].startswith("EX-SCJG-001-")
    assert _ledger(api).get_exchange(sha256_key(ex["id"])).step == ExchangeStep.REQUESTED  # type: ignore[union-attr]
    ex = _post(api, f"/api/v1/exchanges/{ex['id']}/authorise", {"reason": "依申请共享"}, MARKET)
    assert ex["status"] == "authorised"
    ex = _post(api, f"/api/v1/exchanges/{ex['id']}/deliver",
               {"sha256": hashlib.sha256(PAYLOAD).hexdigest(), "size": len(PAYLOAD), "records": 120}, MARKET)
    assert ex["status"] == "delivered" and ex["payload"]["records"] == 120
    ex = _post(api, f"/api/v1/exchanges/{ex['id']}/acknowledge", {"sha256": hashlib.sha256(PAYLOAD).hexdigest()}, POLICE)
    assert ex["status"] == "acknowledged" and ex["matched"] is True

    state = _ledger(api).get_exchange(sha256_key(ex["id"]))
    assert state is not None and state.step == ExchangeStep.ACKNOWLEDGED and state.records == 120
    assert state.consumer_uscc == POLICE and state.provider_uscc == MARKET
    assert "0x" + state.purpose_digest.hex() == ex["purpose_digest"]  # the purpose text itself stays off chain
    # each step's transaction was signed by the acting side's own account
    accounts = {u: api.node.keys.signing_account(u).address for u in (POLICE, MARKET)}
    expected = {"request": POLICE, "authorise": MARKET, "deliver": MARKET, "acknowledge": POLICE}
    assert [s["step"] for s in ex["steps"]] == list(expected)
    for step in ex["steps"]:
        raw = api.node.backend.w3.eth.get_raw_transaction(step["tx_hash"])
        assert decode_raw_transaction(bytes(raw)).sender == accounts[expected[step["step"]]] == step["account"]

    with api.node.db.session() as s:
        [entry] = [e for e in audit_records(s) if e.ref == ex["id"]]
    assert entry.anchored and entry.digest == ex["purpose_digest"] and entry.key == "0x" + sha256_key(ex["id"]).hex()


def test_unacknowledged_deliveries_disputes_and_refusals_are_queryable(api: Api) -> None:
    never_acked = _delivered(api)
    disputed = _delivered(api)
    _post(api, f"/api/v1/exchanges/{disputed['id']}/acknowledge", {"sha256": "ab" * 32}, POLICE)
    refused = _request(api, item="RSHB-001")
    _post(api, f"/api/v1/exchanges/{refused['id']}/refuse", {"reason": "申请事由不充分"}, HRSS)
    assert _ledger(api).get_exchange(sha256_key(disputed["id"])).step == ExchangeStep.DISPUTED  # type: ignore[union-attr]

    def ids(caller: str, **params: Any) -> list[str]:
        r = api.client.get("/api/v1/exchanges", params=params, headers=api.auth(caller))
        assert r.status_code == 200, r.text
        return [e["id"] for e in r.json()["exchanges"]]

    assert ids(POLICE, status="unacknowledged") == [never_acked["id"]]
    assert ids(MARKET, status="disputed") == [disputed["id"]]
    assert ids(POLICE, status="refused") == [refused["id"]]
    assert set(ids(POLICE)) == {never_acked["id"], disputed["id"], refused["id"]}
    assert set(ids(POLICE, item="SCJG-001")) == {never_acked["id"], disputed["id"]}
    assert ids(POLICE, agency=HRSS) == [refused["id"]]
    assert ids(JUSTICE, status="unacknowledged") == [never_acked["id"]]  # an auditor sees every exchange
    assert ids(PRISON) == []  # a stranger sees none
    r = api.client.get("/api/v1/exchanges", params={"status": "lost"}, headers=api.auth(POLICE))
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_status")


def test_refusals_are_clear_4xx_errors_and_store_nothing(api: Api) -> None:
    requested = _request(api)
    authorised = _request(api)
    _post(api, f"/api/v1/exchanges/{authorised['id']}/authorise", {}, MARKET)
    delivered = _delivered(api)
    before = _stored(api)
    head = api.node.backend.w3.eth.block_number
    good = {"item": "SCJG-001", "purpose": "核查", "legal_basis": "《政务数据共享管理办法》"}
    digest = {"sha256": hashlib.sha256(PAYLOAD).hexdigest()}

    def refused(path: str, body: Any, agency: str, status: int, code: str) -> None:
        r = api.client.post(path, json=body, headers=api.auth(agency))
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text

    refused("/api/v1/exchanges", {**good, "item": "XXXX-999"}, POLICE, 404, "unknown_catalogue_item")
    refused("/api/v1/exchanges", {**good, "provider": HRSS}, POLICE, 422, "wrong_provider")
    refused("/api/v1/exchanges", {**good, "purpose": ""}, POLICE, 422, "missing_purpose")
    refused("/api/v1/exchanges", {**good, "legal_basis": None}, POLICE, 422, "missing_legal_basis")
    refused("/api/v1/exchanges", good, COURT, 403, "missing_exchange_role")
    refused("/api/v1/exchanges", good, MARKET, 422, "invalid_provider")  # a provider cannot request from itself
    refused(f"/api/v1/exchanges/{requested['id']}/deliver", {**digest, "size": 1, "records": 1}, MARKET, 409,
            "not_authorised")
    refused(f"/api/v1/exchanges/{requested['id']}/authorise", {}, POLICE, 403, "not_provider")
    refused(f"/api/v1/exchanges/{requested['id']}/refuse", {}, MARKET, 422, "missing_reason")
    refused(f"/api/v1/exchanges/{authorised['id']}/authorise", {}, MARKET, 409, "invalid_step")
    refused(f"/api/v1/exchanges/{delivered['id']}/acknowledge", digest, HRSS, 403, "not_a_party")
    refused(f"/api/v1/exchanges/{delivered['id']}/acknowledge", digest, MARKET, 403, "not_consumer")
    refused(f"/api/v1/exchanges/{requested['id']}/acknowledge", digest, POLICE, 409, "not_delivered")
    refused(f"/api/v1/exchanges/{delivered['id']}/deliver", {**digest, "size": -1, "records": 1}, MARKET, 422,
            "invalid_size")
    refused("/api/v1/exchanges/EX-SCJG-001-20260101-999999/authorise", {}, MARKET, 404, "unknown_exchange")
    r = api.client.get(f"/api/v1/exchanges/{delivered['id']}", headers=api.auth(HRSS))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "not_a_party")
    assert _stored(api) == before and api.node.backend.w3.eth.block_number == head


def test_the_contract_refuses_a_stranger_an_early_delivery_and_a_missing_role_on_its_own(api: Api) -> None:
    requested = _request(api)
    delivered = _delivered(api)
    ledger = _ledger(api)
    cases = [
        (HRSS, lambda s: ledger.acknowledge(s, sha256_key(delivered["id"]), b"\1" * 32), "ExchangeLedgerNotParty"),
        (MARKET, lambda s: ledger.deliver(s, sha256_key(requested["id"]), b"\1" * 32, 1, 1), "ExchangeLedgerInvalidStep"),
        (POLICE, lambda s: ledger.deliver(s, sha256_key(requested["id"]), b"\1" * 32, 1, 1), "ExchangeLedgerNotParty"),
        (COURT, lambda s: ledger.request(s, sha256_key("EX-direct"), MARKET, "SCJG-001", b"\1" * 32),
         "ExchangeLedgerUnauthorized"),
        (POLICE, lambda s: ledger.request(s, sha256_key("EX-direct"), POLICE, "SCJG-001", b"\1" * 32),
         "ExchangeLedgerInvalidProvider"),
        (POLICE, lambda s: ledger.request(s, sha256_key(requested["id"]), MARKET, "SCJG-001", b"\1" * 32),
         "ExchangeLedgerExists"),
    ]
    for agency, call, error in cases:
        with pytest.raises(ContractRevertError) as exc:
            call(api.node.sender_for(agency))
        assert exc.value.name == error, agency


def test_a_chain_outage_queues_exchange_steps_and_each_is_anchored_once(api: Api) -> None:
    with chain_outage(api.node):
        r = api.client.post("/api/v1/exchanges", json={"item": "SCJG-001", "purpose": "核查", "legal_basis": "依法"},
                            headers=api.auth(POLICE))
        assert r.status_code == 202 and r.json()["status"] == "pending"
        ex = r.json()
        r = api.client.post(f"/api/v1/exchanges/{ex['id']}/authorise", json={}, headers=api.auth(MARKET))
        assert (r.status_code, r.json()["error"]["code"]) == (409, "step_in_progress")
    service = api.services.exchanges
    deadline = time.monotonic() + 20
    while service.pending_count():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    view = api.client.get(f"/api/v1/exchanges/{ex['id']}", headers=api.auth(POLICE)).json()
    assert view["status"] == "requested" and view["steps"][0]["tx_hash"]
    events = [e for e in _ledger(api).events_for(sha256_key(ex["id"])) if e.name == "ExchangeRequested"]
    assert len(events) == 1
