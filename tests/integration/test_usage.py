"""Usage records (用证记录), 免证办 and 用证率 end to end through the HTTP API on a real anvil: usages with grants
and in-person presentations on the UsageLedger, every refusal by the API (nothing stored) and by the contract
(sent directly), the grantee's node opening a granted certificate while no other key can, the database holding
no holder plaintext, 用证率 against a count done here, and the audit replay over usages."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from api.holder_auth import authorization_header
from chain.errors import ContractRevertError
from chain.usage import UsageLedgerClient
from registry.audit.replay import Auditor
from registry.crypto.hashing import sha256_key
from registry.errors import ProofError
from registry.holders.exchange import ExchangeKeys
from registry.holders.keys import HolderKey
from registry.holders.wrapping import unwrap_key
from registry.outbox.inbox import hosted_agencies
from registry.store.usage_models import UsageRecord
from registry.usage.inbox import UsageInbox
from tests.conftest import Api
from tests.support.postgres import stored_bytes
from tests.support.usage import (
    HOUR,
    HRSS,
    JUSTICE,
    MARKET,
    POLICE,
    Issued,
    anchor,
    anchored_grant,
    chain_now,
    issue_bound,
    make_grant,
    presentation,
    record_without_grant,
)

pytestmark = pytest.mark.anvil

PURPOSE = "办理道路运输从业资格变更（哈运管〔2026〕7号）"


def _use(api: Api, agency: str, cert: Issued, status: int = 201, **consent: Any) -> dict[str, Any]:
    r = api.client.post("/api/v1/usages", json={"certificate": cert.identifier, "purpose": PURPOSE, **consent},
                        headers=api.auth(agency))
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


def _usages(api: Api) -> int:
    with api.node.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(UsageRecord)) or 0)


def _ledger(api: Api) -> UsageLedgerClient:
    return api.node.client(UsageLedgerClient)


def test_three_agencies_use_a_certificate_with_grants_and_the_holder_sees_exactly_those_uses(api: Api) -> None:
    holder = HolderKey.generate()
    cert = issue_bound(api, holder)
    someone = HolderKey.generate()
    other = issue_bound(api, someone, seed=2)  # someone else's certificate, used too
    used = {}
    for agency in (POLICE, HRSS, MARKET):
        view = _use(api, agency, cert, grant=anchored_grant(api, holder, cert, agency))
        assert view["status"] == "recorded" and view["channel"] == "grant" and view["id"].startswith("UR-")
        state = _ledger(api).get_usage(sha256_key(view["id"]))
        assert state is not None and state.agency_uscc == agency and state.certificate_doc.hex() == cert.digest
        assert "0x" + state.grant_digest.hex() == view["grant"]["digest"]  # type: ignore[union-attr]
        assert "0x" + state.purpose_digest.hex() == view["purpose_digest"]  # the matter itself stays off chain
        used[view["id"]] = agency
    _use(api, JUSTICE, other, grant=anchored_grant(api, someone, other, JUSTICE))
    _use(api, POLICE, other, presentation=presentation(api.node, someone, other))

    r = api.client.get("/api/v1/holders/me/usages",
                       headers={"Authorization": authorization_header(holder, "GET", "/api/v1/holders/me/usages")})
    assert r.status_code == 200, r.text
    mine = r.json()
    assert mine["count"] == 3 and mine["holder_key"] == holder.public.key_id
    assert {u["id"]: u["agency"]["uscc"] for u in mine["usages"]} == used
    for u in mine["usages"]:
        assert u["purpose"] == PURPOSE and u["used_at"] and u["certificate"]["identifier"] == cert.identifier
        assert u["grant"]["purpose"] == "办理社会保险关系转移"
    # each agency lists its own usage only; the auditor (省司法厅) sees all three
    listed = api.client.get("/api/v1/usages", headers=api.auth(POLICE)).json()
    assert [(u["agency"]["uscc"], u["certificate"]["identifier"]) for u in listed["usages"]] == [
        (POLICE, other.identifier), (POLICE, cert.identifier)]
    everything = api.client.get("/api/v1/usages", params={"certificate": cert.identifier}, headers=api.auth(JUSTICE))
    assert everything.json()["count"] == 3
    assert api.services.usage.of_holder(someone.public.key_id)["count"] == 2
    assert api.client.get("/api/v1/holders/me/usages").status_code == 401  # no holder signature
    stale = authorization_header(holder, "GET", "/api/v1/holders/me/usages", now=int(time.time()) - 3600)
    assert api.client.get("/api/v1/holders/me/usages", headers={"Authorization": stale}).status_code == 401


def test_an_in_person_presentation_is_a_consent_once(api: Api) -> None:
    holder = HolderKey.generate()
    cert = issue_bound(api, holder)
    signed = presentation(api.node, holder, cert)
    view = _use(api, POLICE, cert, presentation=signed)
    assert view["channel"] == "presentation" and view["presentation_digest"] and view["grant"] is None
    state = _ledger(api).get_usage(sha256_key(view["id"]))
    assert state is not None and state.grant_digest is None and state.presentation_digest is not None
    before = _usages(api)
    r = api.client.post("/api/v1/usages", json={"certificate": cert.identifier, "purpose": PURPOSE,
                                                "presentation": signed}, headers=api.auth(HRSS))
    assert r.status_code == 409 and r.json()["error"]["code"] == "replayed_nonce", r.text
    foreign = presentation(api.node, HolderKey.generate(), cert)  # not the bound key: shown by someone else
    r = api.client.post("/api/v1/usages", json={"certificate": cert.identifier, "purpose": PURPOSE,
                                                "presentation": foreign}, headers=api.auth(HRSS))
    assert r.status_code == 403 and r.json()["error"]["code"] == "wrong_key", r.text
    assert _usages(api) == before


def test_a_usage_without_a_valid_grant_is_refused_by_the_api_and_by_the_contract(api: Api) -> None:
    holder = HolderKey.generate()
    cert = issue_bound(api, holder)
    before = _usages(api)

    def refused(agency: str, status: int, code: str, **consent: Any) -> None:
        r = api.client.post("/api/v1/usages", json={"certificate": cert.identifier, "purpose": PURPOSE, **consent},
                            headers=api.auth(agency))
        assert r.status_code == status and r.json()["error"]["code"] == code, r.text

    refused(POLICE, 422, "missing_consent")
    to_hrss = anchored_grant(api, holder, cert, HRSS)
    refused(POLICE, 403, "wrong_grantee", grant=to_hrss)  # a grant for another agency
    refused(HRSS, 409, "grant_not_anchored", grant=make_grant(api.node, holder, cert, HRSS).to_json())
    now = chain_now(api.node)
    later = make_grant(api.node, holder, cert, HRSS, not_before=now + 2 * HOUR, expires=now + 4 * HOUR)
    anchor(api.node, later)
    refused(HRSS, 409, "grant_not_yet_valid", grant=later.to_json())
    forged = dict(to_hrss, purpose="办理一切事项")  # altered after signing
    refused(HRSS, 422, "bad_signature", grant=forged)
    assert _usages(api) == before

    ledger, sender = _ledger(api), api.node.sender_for(POLICE)
    doc = bytes.fromhex(cert.digest)
    with pytest.raises(ContractRevertError, match="UsageLedgerNoConsent"):
        ledger.record(sender, sha256_key("UR-direct-1"), doc, b"\0" * 32, b"\0" * 32, b"\1" * 32)
    with pytest.raises(ContractRevertError, match="UsageLedgerUnknownGrant"):
        ledger.record(sender, sha256_key("UR-direct-2"), doc, hashlib.sha256(b"no grant").digest(), b"\0" * 32,
                      b"\1" * 32)
    with pytest.raises(ContractRevertError, match="UsageLedgerWrongGrantee"):  # HRSS's grant, sent by POLICE
        ledger.record(sender, sha256_key("UR-direct-3"), doc, bytes.fromhex(_digest(to_hrss)), b"\0" * 32, b"\1" * 32)
    assert ledger.usage_count() == 0


def _digest(grant: dict[str, Any]) -> str:
    from registry.holders.grants import Grant

    return Grant.parse(grant).digest.hex()


def test_mianzhengban_the_grantee_node_opens_the_document_no_other_key_can_and_no_plaintext_is_stored(
        api: Api, tmp_path: Path) -> None:
    holder = HolderKey.generate()
    cert = issue_bound(api, holder)
    name, id_number = cert.values["持证主体"], cert.values["持证主体代码"]
    grant = anchored_grant(api, holder, cert, HRSS, wrap_for=HRSS, fields=["证照名称", "持证主体", "准驾车型"])

    r = api.client.post("/api/v1/usages/fetch", json={"certificate": cert.identifier, "purpose": PURPOSE,
                                                      "grant": grant}, headers=api.auth(HRSS))
    assert r.status_code == 200, r.text
    out = r.json()
    assert r.headers["cache-control"] == "no-store"
    doc = out["document"]
    assert doc["fields"]["持证主体"]["value"] == name and doc["identifier"] == cert.identifier
    assert "持证主体代码" in doc["hidden"] and "持证主体代码" in out["hidden_fields"]  # outside the grant's fields
    assert doc["digest"]["sha256"] == cert.digest  # the disclosed copy still verifies against the anchor
    verdict = api.client.post("/api/v1/verify", json={"document": doc}).json()
    assert verdict["verdict"] == "valid", verdict
    usage = out["usage"]
    assert usage["channel"] == "fetch" and usage["status"] == "recorded" and usage["agency"]["uscc"] == HRSS

    before = _usages(api)
    # another agency hosted on this node presenting the same grant: not its grantee
    r = api.client.post("/api/v1/usages/fetch", json={"certificate": cert.identifier, "purpose": PURPOSE,
                                                      "grant": grant}, headers=api.auth(POLICE))
    assert r.status_code == 403 and r.json()["error"]["code"] == "wrong_grantee", r.text
    # a grant naming POLICE but wrapped to HRSS's key: POLICE's exchange key cannot open it
    misdirected = anchored_grant(api, holder, cert, POLICE, wrap_for=HRSS)
    r = api.client.post("/api/v1/usages/fetch", json={"certificate": cert.identifier, "purpose": PURPOSE,
                                                      "grant": misdirected}, headers=api.auth(POLICE))
    assert r.status_code == 422 and r.json()["error"]["code"] == "unwrap_failed", r.text
    with pytest.raises(ProofError) as exc:
        unwrap_key(grant["wrapped_key"], ExchangeKeys(api.node).private(MARKET), grant_id=grant["id"])
    assert exc.value.code == "unwrap_failed"
    # a grant without a wrapped key, and a wrong document key wrapped correctly
    r = api.client.post("/api/v1/usages/fetch", json={"certificate": cert.identifier, "purpose": PURPOSE,
                                                      "grant": anchored_grant(api, holder, cert, HRSS)},
                        headers=api.auth(HRSS))
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_wrapped_key", r.text
    wrong = anchored_grant(api, holder, cert, HRSS, wrap_for=HRSS, key=b"\7" * 32)
    r = api.client.post("/api/v1/usages/fetch", json={"certificate": cert.identifier, "purpose": PURPOSE,
                                                      "grant": wrong}, headers=api.auth(HRSS))
    assert r.status_code == 422 and r.json()["error"]["code"] == "decrypt_failed", r.text
    assert _usages(api) == before

    # the database holds no holder plaintext: not the name, not the ID number (in any table, WAL included)
    raw = stored_bytes(api.node.db.engine)  # the SQLite file and WAL, or this PostgreSQL database's files
    assert len(raw) > 100_000
    for secret in (name, id_number):
        assert secret.encode() not in raw, f"{secret!r} is stored in the database"
        assert secret.encode("utf-16-le") not in raw


def test_bad_input_is_a_4xx_with_a_code_and_nothing_is_stored(api: Api) -> None:
    holder = HolderKey.generate()
    cert = issue_bound(api, holder)
    grant = anchored_grant(api, holder, cert, POLICE)
    before = _usages(api)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"certificate": cert.identifier, "grant": grant}, 422, "missing_purpose"),
        ({"certificate": cert.identifier, "purpose": " ", "grant": grant}, 422, "missing_purpose"),
        ({"purpose": PURPOSE, "grant": grant}, 422, "missing_certificate"),
        ({"certificate": "1.2.156.3005.2.bogus", "purpose": PURPOSE, "grant": grant}, 422, "invalid_identifier"),
        ({"certificate": "ab" * 32, "purpose": PURPOSE, "grant": grant}, 422, "certificate_mismatch"),
        ({"certificate": cert.identifier, "purpose": PURPOSE, "grant": {"type": "LianzhengGrant"}}, 422, "invalid_grant"),
        ({"certificate": cert.identifier, "purpose": PURPOSE, "grant": "lianzheng:grant:@@@"}, 422, "invalid_grant"),
        ({"certificate": cert.identifier, "purpose": PURPOSE, "grant": grant,
          "presentation": presentation(api.node, holder, cert)}, 422, "missing_consent"),
        ({"certificate": cert.identifier, "purpose": PURPOSE, "grant": grant, "extra": 1}, 422, "invalid_request"),
        ({"certificate": cert.identifier, "purpose": PURPOSE * 300, "grant": grant}, 422, "invalid_request"),
    ]
    for body, status, code in cases:
        r = api.client.post("/api/v1/usages", json=body, headers=api.auth(POLICE))
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (body.keys(), r.text)
    r = api.client.post("/api/v1/usages", json={"certificate": cert.identifier, "purpose": PURPOSE, "grant": grant})
    assert r.status_code == 401
    assert api.client.get("/api/v1/usages/UR-nope", headers=api.auth(POLICE)).json()["error"]["code"] == "unknown_usage"
    assert api.client.get("/api/v1/indicators/usage-rate", params={"by": "year"}).json()["error"]["code"] == \
        "invalid_grouping"
    assert _usages(api) == before


def test_usage_rate_matches_a_count_done_here_by_agency_type_and_month(api: Api) -> None:
    base = {by: api.client.get("/api/v1/indicators/usage-rate", params={"by": by}).json() for by in
            ("agency", "type", "month")}
    issued: list[tuple[Issued, HolderKey]] = []
    for i, type_index in enumerate((2, 2, 2, 0, 0, 1)):  # two types of two issuers, one more of a third type
        holder = HolderKey.generate()
        issued.append((issue_bound(api, holder, type_index=type_index, seed=10 + i), holder))
    used = [issued[0], issued[1], issued[3]]  # two of the first type, one of the second, none of the third
    for cert, holder in used:
        _use(api, POLICE, cert, presentation=presentation(api.node, holder, cert))
    _use(api, HRSS, used[0][0], presentation=presentation(api.node, used[0][1], used[0][0]))  # twice: counts once

    expected: dict[str, dict[str, tuple[int, int]]] = {"agency": {}, "type": {}}
    for cert, _ in issued:
        for by, key in (("agency", cert.issuer), ("type", cert.type_code)):
            i, u = expected[by].get(key, (0, 0))
            expected[by][key] = (i + 1, u + (1 if any(cert is c for c, _ in used) else 0))
    for by in ("agency", "type"):
        now = api.client.get("/api/v1/indicators/usage-rate", params={"by": by}).json()
        was = {g["key"]: (g["issued"], g["used"]) for g in base[by]["groups"]}
        for key, (i, u) in expected[by].items():
            group = next(g for g in now["groups"] if g["key"] == key)
            bi, bu = was.get(key, (0, 0))
            assert (group["issued"] - bi, group["used"] - bu) == (i, u), (by, key, group)
            assert group["rate"] == round(group["used"] / group["issued"], 4)
    month = api.client.get("/api/v1/indicators/usage-rate", params={"by": "month"}).json()
    assert sum(g["issued"] for g in month["groups"]) == month["total"]["issued"] == base["month"]["total"]["issued"] + 6
    assert month["total"]["used"] == base["month"]["total"]["used"] + 3 and month["target"] == 0.9
    page = api.client.get("/operator/usage-rate")
    assert page.status_code == 200 and "电子证照用证率" in page.text and "script-src 'self'" in page.headers[
        "content-security-policy"]
    assert api.client.get("/static/operator/usage_rate.js").status_code == 200


def test_the_audit_replays_usages_and_finds_a_tampered_row_a_dropped_one_and_a_usage_without_a_grant(
        api: Api) -> None:
    holder = HolderKey.generate()
    cert = issue_bound(api, holder)
    by_grant = _use(api, POLICE, cert, grant=anchored_grant(api, holder, cert, POLICE))
    in_person = _use(api, HRSS, cert, presentation=presentation(api.node, holder, cert))
    auditor = Auditor(api.node, link=None)

    def usage_findings() -> list[dict[str, Any]]:
        return [f for f in auditor.run(save=False).findings if f["ledger"] == "usage"]

    clean = auditor.run(save=False)
    assert clean.counts["usages"] == 2 and clean.counts["events_by_ledger"]["usage"] == 2
    assert [f for f in clean.findings if f["ledger"] in ("usage", "certificates")] == []

    with api.node.db.session() as s:
        s.execute(update(UsageRecord).where(UsageRecord.ref == by_grant["id"]).values(purpose="另一事项"))
    [f] = usage_findings()
    assert (f["kind"], f["ref"]) == ("digest_mismatch", by_grant["id"])
    with api.node.db.session() as s:
        s.execute(update(UsageRecord).where(UsageRecord.ref == by_grant["id"]).values(purpose=PURPOSE))
        s.execute(delete(UsageRecord).where(UsageRecord.ref == in_person["id"]))
    [f] = usage_findings()
    assert (f["kind"], f["ref"]) == ("chain_record_not_in_db", in_person["key"])

    ghost = sha256_key("UR-forged")
    record_without_grant(api.node, JUSTICE, bytes.fromhex(cert.digest), hashlib.sha256(b"never granted").digest(),
                         ghost, b"\2" * 32)
    kinds = {(f["kind"], f["ref"]) for f in usage_findings()}
    assert ("usage_without_valid_grant", "0x" + ghost.hex()) in kinds
    assert ("chain_record_not_in_db", "0x" + ghost.hex()) in kinds


def test_a_usage_recorded_on_another_node_is_mirrored_for_the_holder_and_the_usage_rate(api: Api) -> None:
    """The usage inbox lane: a UsageRecorded event by an agency this node does not host becomes a done, mirrored
    row (its key as id, the matter's digest only); the issuing node then shows it to the holder and counts it."""
    holder = HolderKey.generate()
    cert = issue_bound(api, holder)
    view = _use(api, POLICE, cert, grant=anchored_grant(api, holder, cert, POLICE))
    rate_before = api.client.get("/api/v1/indicators/usage-rate").json()["total"]["used"]
    with api.node.db.session() as s:  # as if it had been recorded on 省公安厅's own node
        s.execute(delete(UsageRecord).where(UsageRecord.ref == view["id"]))
    assert api.services.usage.of_holder(holder.public.key_id)["count"] == 0
    events = _ledger(api).events_for(sha256_key(view["id"]))
    lane = UsageInbox(api.node)
    hosted = frozenset(hosted_agencies(api.node) - {POLICE})
    assert lane.apply(events, frozenset(hosted_agencies(api.node))) == 0  # hosted here: its own row, not mirrored
    assert lane.apply(events, hosted) == 1 and lane.apply(events, hosted) == 0  # once
    [mirrored] = api.services.usage.of_holder(holder.public.key_id)["usages"]
    assert mirrored["mirrored"] is True and mirrored["id"] == view["key"][2:] and mirrored["purpose"] == ""
    assert mirrored["purpose_digest"] == view["purpose_digest"] and mirrored["grant"]["digest"] == view["grant"]["digest"]
    assert mirrored["anchor"]["tx_hash"] == view["anchor"]["tx_hash"] and mirrored["agency"]["uscc"] == POLICE
    assert mirrored["certificate"]["identifier"] == cert.identifier
    assert api.client.get("/api/v1/indicators/usage-rate").json()["total"]["used"] == rate_before
    report = Auditor(api.node, link=None).run(save=False)
    assert [f for f in report.findings if f["ledger"] == "usage"] == []
