"""Holders end to end over the HTTP API on a real anvil (issue 15): bound issuance, presentations with fresh
challenges (and every status_only reason), grants anchored on GrantRegistry, verified by the right and the wrong
party, within and outside their fields, after revocation and after expiry (the chain's time), refused bad
input with nothing stored, holder-signed requests, and the agencies' signed exchange keys."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from api.devtools.samples import sample_values
from api.holder_auth import authorization_header
from chain.grants import GrantRegistryClient, GrantStatus
from registry.errors import ProofError
from registry.holders.exchange import check_statement
from registry.holders.grants import Grant, Grantee, GrantRevocation
from registry.holders.keys import HolderKey, b64url_encode
from registry.holders.presentation import Challenge, sign_presentation
from registry.holders.wrapping import unwrap_key, wrap_key
from registry.store.db import Certificate
from registry.store.holder_models import GrantRow, GrantStep
from tests.conftest import Api

ID_NUMBER = "230102199003071237"


def _issue_bound(api: Api, holder: HolderKey, *, seed: int = 7) -> dict[str, Any]:
    ct = api.node.seeds.certificate_types[0]
    issuer = api.node.seeds.member(ct.issuers[0])
    [values] = sample_values(ct, 1, issuer=issuer, seed=seed)
    r = api.client.post("/api/v1/certificates?wait=true", json={"type": ct.code, "fields": values,
                                                                "holder_key": holder.public.spki_b64url},
                        headers=api.auth(issuer.uscc))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _grantee_agencies(api: Api, issuer: str) -> list[str]:
    return [m.uscc for m in api.node.seeds.members if m.uscc != issuer]


def _challenge(api: Api) -> Challenge:
    r = api.client.post("/api/v1/presentations/challenge", json={"verifier": "银行柜台 #3"})
    assert r.status_code == 200, r.text
    return Challenge.parse(r.json())


def _present(api: Api, document: dict[str, Any], presentation: dict[str, Any] | None) -> dict[str, Any]:
    api.services.index.refresh(force=True)
    r = api.client.post("/api/v1/presentations", json={"document": document, "presentation": presentation})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _chain_now(api: Api) -> int:
    return int(api.services.grants.chain_now())


def _grant(api: Api, holder: HolderKey, cert: dict[str, Any], grantee: Grantee, *, ttl: int = 3600,
           fields: list[str] | None = None, purpose: str = "办理企业开户") -> Grant:
    now = _chain_now(api)
    doc = cert["document"]
    return Grant.build(certificate=doc["digest"]["sha256"], issuer=doc["fields"]["颁发机构代码"]["value"],
                       holder_key=holder.public, grantee=grantee, purpose=purpose, not_before=now - 60,
                       expires=now + ttl, fields=fields).sign(holder)


def _verify_grant(api: Api, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = api.client.post("/api/v1/grants/verify", json=body, headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _rows(api: Api) -> tuple[int, int]:
    with api.node.db.session() as s:
        return (int(s.scalar(select(func.count()).select_from(GrantRow)) or 0),
                int(s.scalar(select(func.count()).select_from(GrantStep)) or 0))


def test_a_bound_certificate_presented_with_a_fresh_challenge_is_presented_by_its_holder(api: Api) -> None:
    holder = HolderKey.generate()
    cert = _issue_bound(api, holder)
    doc = cert["document"]
    assert doc["fields"]["holderKeyDigest"]["value"] == holder.public.key_id
    with api.node.db.session() as s:
        assert s.get(Certificate, cert["identifier"]).holder_key_digest == holder.public.key_id  # type: ignore[union-attr]
    plain = api.client.post("/api/v1/verify", json={"document": doc}).json()
    assert plain["verdict"] == "valid" and plain["bound"] is True
    assert plain["presentation"]["verdict"] == "status_only" and plain["presentation"]["reason"] == "no_signature"

    presentation = sign_presentation(holder, doc["digest"]["sha256"], _challenge(api))
    result = _present(api, doc, presentation)
    assert result["verdict"] == "valid" and result["bound"] is True
    assert result["presentation"] == {"verdict": "presented_by_holder", "reason": None, "reason_zh": None,
                                      "reason_en": None, "holder_key": holder.public.key_id}
    replayed = _present(api, doc, presentation)["presentation"]
    assert (replayed["verdict"], replayed["reason"]) == ("status_only", "replayed_nonce")

    foreign = HolderKey.generate()
    other = _present(api, doc, sign_presentation(foreign, doc["digest"]["sha256"], _challenge(api)))["presentation"]
    assert (other["verdict"], other["reason"]) == ("status_only", "wrong_key")
    forged = sign_presentation(holder, doc["digest"]["sha256"], _challenge(api))
    forged["signature"] = b64url_encode(bytes(64))
    assert _present(api, doc, forged)["presentation"]["reason"] == "bad_signature"
    made_up = Challenge(b64url_encode(bytes(16)), "银行柜台 #3", int(time.time()))
    assert _present(api, doc, sign_presentation(holder, doc["digest"]["sha256"], made_up))["presentation"][
        "reason"] == "unknown_challenge"
    # a disclosed copy is still the holder's to present (the digest is the same)
    hidden = api.client.post("/api/v1/verify", json={"document": doc}).json()  # sanity: still valid
    assert hidden["verdict"] == "valid"


def test_an_unbound_certificate_with_a_presentation_is_status_only_not_bound(api: Api) -> None:
    ct = api.node.seeds.certificate_types[0]
    issuer = api.node.seeds.member(ct.issuers[0])
    [values] = sample_values(ct, 1, issuer=issuer, seed=3)
    r = api.client.post("/api/v1/certificates?wait=true", json={"type": ct.code, "fields": values},
                        headers=api.auth(issuer.uscc))
    doc = r.json()["document"]
    assert "holderKeyDigest" not in doc["fields"]
    holder = HolderKey.generate()
    result = _present(api, doc, sign_presentation(holder, doc["digest"]["sha256"], _challenge(api)))
    assert result["bound"] is False and result["presentation"]["reason"] == "not_bound"


def test_a_grant_within_its_scope_verifies_with_the_delegation_and_fails_with_each_reason(api: Api) -> None:
    holder = HolderKey.generate()
    cert = _issue_bound(api, holder, seed=11)
    issuer = cert["document"]["fields"]["颁发机构代码"]["value"]
    grantee, stranger = _grantee_agencies(api, issuer)[:2]
    grant = _grant(api, holder, cert, Grantee.agency(grantee), fields=["持证主体", "持证主体代码", "住所"])
    r = api.client.post("/api/v1/grants", json={"grant": grant.to_json()})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active" and r.json()["digest"] == grant.digest.hex()
    state = api.node.client(GrantRegistryClient).grant_of(grant.digest)
    assert state.status is GrantStatus.ACTIVE and state.grantee_digest == Grantee.agency(grantee).digest

    shown = _disclose(cert["document"], keep={"证照标识", "持证主体", "持证主体代码", "住所", "holderKeyDigest"})
    ok = _verify_grant(api, {"qr": grant.qr(), "document": shown}, api.auth(grantee))
    assert ok["ok"] is True, ok
    assert ok["certificate"]["verdict"] == "valid"
    assert ok["delegation"]["purpose"] == "办理企业开户" and ok["delegation"]["presented_by"]["uscc"] == grantee
    assert "on behalf of holder" in ok["text_en"] and "办理企业开户" in ok["text_zh"]

    assert _verify_grant(api, {"grant": grant.to_json(), "document": shown}, api.auth(stranger))["reason"] == \
        "wrong_party"
    outside = _verify_grant(api, {"grant": grant.to_json(), "document": cert["document"]}, api.auth(grantee))
    assert outside["reason"] == "fields_out_of_scope" and "法定代表人" in outside["details"]["fields"]
    assert _verify_grant(api, {"grant": grant.to_json()}, api.auth(grantee))["ok"] is True  # no document: status

    statement = GrantRevocation.build(grant.digest, int(time.time())).sign(holder).to_json()
    foreign = GrantRevocation.build(grant.digest, int(time.time())).sign(HolderKey.generate()).to_json()
    r = api.client.post(f"/api/v1/grants/{grant.digest.hex()}/revoke", json={"revocation": foreign})
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_signature"
    r = api.client.post(f"/api/v1/grants/{grant.digest.hex()}/revoke", json={"revocation": statement})
    assert r.status_code == 200 and r.json()["status"] == "revoked", r.text
    assert api.node.client(GrantRegistryClient).grant_of(grant.digest).status is GrantStatus.REVOKED
    assert _verify_grant(api, {"grant": grant.to_json()}, api.auth(grantee))["reason"] == "revoked"
    r = api.client.post(f"/api/v1/grants/{grant.digest.hex()}/revoke", json={"revocation": statement})
    assert r.status_code == 409 and r.json()["error"]["code"] == "grant_revoked"
    # every node knows the status from the chain (the inbox lane)
    api.services.grants.index.refresh()
    history = api.services.grants.index.history(grant.digest.hex())
    assert history is not None and history.status == "revoked" and history.relay_uscc == issuer


def test_a_person_grant_verifies_with_the_id_number_and_salt_and_expires_by_the_chains_clock(api: Api) -> None:
    holder = HolderKey.generate()
    cert = _issue_bound(api, holder, seed=12)
    person, salt = Grantee.person(ID_NUMBER)
    grant = _grant(api, holder, cert, person, ttl=15)  # long enough to verify it first on a loaded machine
    assert api.client.post("/api/v1/grants", json={"grant": grant.to_json()}).status_code == 201
    qr = grant.qr(salt)
    body = {"qr": qr, "person": {"id_number": ID_NUMBER, "salt": b64url_encode(salt)}}
    ok = _verify_grant(api, body)
    assert ok["ok"] is True and ok["delegation"]["presented_by"]["kind"] == "person"
    assert ID_NUMBER not in json.dumps(ok, ensure_ascii=False)  # only a masked number comes back
    other = {"grant": grant.to_json(), "person": {"id_number": "11010519491231002X", "salt": b64url_encode(salt)}}
    assert _verify_grant(api, other)["reason"] == "wrong_party"
    deadline = time.monotonic() + 60
    while _chain_now(api) < grant.expires:  # the chain's time decides: mine until a block is past the expiry
        assert time.monotonic() < deadline, "the chain's clock did not pass the grant's expiry"
        api.node.backend.raw("evm_mine", [])  # type: ignore[attr-defined]
        time.sleep(0.25)
    expired = _verify_grant(api, {"grant": grant.to_json(), "person": body["person"]})
    assert expired["reason"] == "expired" and expired["ok"] is False


def test_bad_grants_are_refused_with_4xx_and_nothing_is_stored(api: Api) -> None:
    holder = HolderKey.generate()
    cert = _issue_bound(api, holder, seed=13)
    issuer = cert["document"]["fields"]["颁发机构代码"]["value"]
    grantee = Grantee.agency(_grantee_agencies(api, issuer)[0])
    good = _grant(api, holder, cert, grantee)
    cases: list[tuple[Any, int, str]] = [
        ({k: v for k, v in good.to_json().items() if k != "purpose"}, 422, "invalid_grant"),
        ({**good.to_json(), "expires": "tomorrow"}, 422, "invalid_grant"),
        ({**good.to_json(), "purpose": "改过的事由"}, 422, "bad_signature"),  # the holder did not sign this
        (_grant(api, HolderKey.generate(), cert, grantee).to_json(), 403, "holder_mismatch"),
        ({**good.unsigned_json(), "certificate": "ab" * 32, "signature": None}, 0, ""),  # re-signed below
    ]
    unknown = Grant.parse({**good.to_json(), "certificate": "ab" * 32, "signature": good.signature})
    cases[-1] = (Grant.build(**_fields_of(unknown)).sign(holder).to_json(), 404, "unknown_certificate")
    now = _chain_now(api)
    past = Grant.build(**{**_fields_of(good), "not_before": now - 7200, "expires": now - 3600}).sign(holder)
    cases.append((past.to_json(), 422, "grant_expired"))
    for body, status, code in cases:
        r = api.client.post("/api/v1/grants", json={"grant": body})
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (body, r.text)
        assert _rows(api) == (0, 0)
    r = api.client.post("/api/v1/grants", json={"grant": good.to_json()})
    assert r.status_code == 201 and _rows(api) == (1, 1)
    r = api.client.post("/api/v1/grants", json={"grant": good.to_json()})
    assert r.status_code == 409 and r.json()["error"]["code"] == "grant_exists" and _rows(api) == (1, 1)


def test_holder_signed_requests_list_my_certificates_and_grants_and_replays_are_refused(api: Api) -> None:
    holder, someone = HolderKey.generate(), HolderKey.generate()
    cert = _issue_bound(api, holder, seed=14)
    _issue_bound(api, someone, seed=15)
    issuer = cert["document"]["fields"]["颁发机构代码"]["value"]
    grant = _grant(api, holder, cert, Grantee.agency(_grantee_agencies(api, issuer)[0]))
    assert api.client.post("/api/v1/grants", json={"grant": grant.to_json()}).status_code == 201
    path = "/api/v1/holders/me/certificates"
    header = {"Authorization": authorization_header(holder, "GET", path)}
    r = api.client.get(path, headers=header)
    assert r.status_code == 200, r.text
    assert [c["identifier"] for c in r.json()["certificates"]] == [cert["identifier"]]
    assert "持证主体" not in r.text  # no holder data: the server has none
    assert api.client.get(path, headers=header).status_code == 401  # the same signed request again
    r = api.client.get("/api/v1/holders/me/grants",
                       headers={"Authorization": authorization_header(holder, "GET", "/api/v1/holders/me/grants")})
    assert r.status_code == 200 and [g["digest"] for g in r.json()["grants"]] == [grant.digest.hex()]
    stale = authorization_header(holder, "GET", path, now=int(time.time()) - 900)
    other_path = authorization_header(holder, "GET", "/api/v1/holders/me/grants")
    for bad in (stale, other_path, "LianzhengHolder keyId=00", "Bearer x"):
        r = api.client.get(path, headers={"Authorization": bad})
        assert r.status_code == 401 and r.json()["error"]["code"] in ("holder_auth_failed", "unauthenticated"), r.text


def test_an_agencys_exchange_key_is_signed_by_its_ledger_key_and_opens_only_its_wrapped_keys(api: Api) -> None:
    uscc = api.node.seeds.members[1].uscc
    r = api.client.get(f"/api/v1/agencies/{uscc}/exchange-key")
    assert r.status_code == 200, r.text
    statement = r.json()
    public = check_statement(statement, api.node.consortium, agency=uscc)
    assert api.client.get(f"/api/v1/agencies/{uscc}/exchange-key").json()["key_id"] == public.key_id  # stable
    with pytest.raises(ProofError):
        check_statement({**statement, "public_key": HolderKey.generate().public.spki_b64url,
                         "key_id": HolderKey.generate().public.key_id}, api.node.consortium)
    with pytest.raises(ProofError):
        check_statement(statement, api.node.consortium, agency=api.node.seeds.members[2].uscc)
    wrapped = wrap_key(b"d" * 32, public, grant_id="11" * 16)
    assert unwrap_key(wrapped, api.services.exchange_keys.private(uscc), grant_id="11" * 16) == b"d" * 32
    with pytest.raises(ProofError):
        unwrap_key(wrapped, api.services.exchange_keys.private(api.node.seeds.members[2].uscc), grant_id="11" * 16)
    assert api.client.get("/api/v1/agencies/91230104436FUCJP77/exchange-key").status_code == 404


def _fields_of(g: Grant) -> dict[str, Any]:
    return {"certificate": g.certificate, "issuer": g.issuer, "holder_key": g.holder_key, "grantee": g.grantee,
            "purpose": g.purpose, "not_before": g.not_before, "expires": g.expires, "fields": g.fields,
            "wrapped_key": g.wrapped_key}


def _disclose(document: dict[str, Any], *, keep: set[str]) -> dict[str, Any]:
    from registry.certificates.documents import Document

    doc = Document.from_json(document)
    return doc.disclose([p for p in doc.fields if p not in keep]).to_json()


def test_another_node_knows_the_grant_from_the_chain_and_verifies_it_with_the_presented_document(
        api: Api, anvil_template: Any, tmp_path: Any) -> None:
    """The grantee agency's node shares only the chain with the issuer's: it has no row of the certificate or the
    grant, learns the grant's status from GrantRegistry's events (the inbox lane) and checks the presented
    document itself."""
    from registry.certificates.index import ChainIndex
    from registry.certificates.verification import Verifier
    from registry.holders.index import GrantIndex
    from registry.holders.service import GrantService

    holder = HolderKey.generate()
    cert = _issue_bound(api, holder, seed=16)
    issuer = cert["document"]["fields"]["颁发机构代码"]["value"]
    grantee = _grantee_agencies(api, issuer)[0]
    grant = _grant(api, holder, cert, Grantee.agency(grantee), fields=["持证主体"])
    assert api.client.post("/api/v1/grants", json={"grant": grant.to_json()}).status_code == 201
    document = api.client.get(f"/api/v1/certificates/{cert['identifier']}", headers=api.auth(issuer)).json()
    full = {**cert["document"], "anchor": document["anchor"]} if cert["document"].get("anchor") is None \
        else cert["document"]
    shown = _disclose(full, keep={"证照标识", "持证主体", "holderKeyDigest"})

    other = anvil_template.node(tmp_path / "grantee-node")
    try:
        with other.db.session() as s:
            assert s.get(Certificate, cert["identifier"]) is None
        index = GrantIndex(other)
        index.refresh()
        history = index.history(grant.digest.hex())
        assert history is not None and history.status == "active" and history.grantee_digest == \
            Grantee.agency(grantee).digest.hex()
        verifier = Verifier(other, ChainIndex(other))

        def check(doc: Any) -> Any:
            from registry.certificates.documents import Document

            d = Document.from_json(doc)
            r = verifier.verify_document(d)
            return d.identifier, r.verdict, d.holder_key_digest, d.issuer_uscc, list(d.fields)

        service = GrantService(other, index=index, check_document=check)
        label = {"kind": "agency", "uscc": grantee, "name": grantee}
        ok = service.verify(grant.to_json(), party=Grantee.agency(grantee).digest, party_label=label, document=shown)
        assert ok["ok"] is True and ok["certificate"]["verdict"] == "valid", ok
        without = service.verify(grant.to_json(), party=Grantee.agency(grantee).digest, party_label=label)
        assert without["reason"] == "unknown_certificate"  # nothing presented, nothing known here
    finally:
        other.db.engine.dispose()
