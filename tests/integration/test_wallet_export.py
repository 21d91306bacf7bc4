"""The 电子卡包 export end to end on a real anvil through the API (the CLI's own client code over the ASGI app):
certificates as issued (no anchor proof yet) get their anchor from the node, become W3C VC 2.0 credentials that
validate against the W3C schema, and re-import into verification exactly as presented documents: valid, revoked,
and tampered when a claim was edited; the public anchor, status and JSON-LD context endpoints."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from api.cli.client import ApiClient
from api.cli.wallet_cmds import WalletCertificate, export_bundle, verify_credentials, wallet_certificates
from api.devtools.samples import sample_values
from registry.certificates.documents import AnchorProof, Document
from registry.errors import ConflictError, NotFoundError, PayloadFormatError
from registry.formats import envelope
from registry.formats.images import decode_qr_image
from registry.formats.vc import BUNDLE_FORMAT, LIANZHENG_CONTEXT, from_credential
from registry.holders.wallet import Wallet
from registry.identifiers import CertificateId
from registry.node import Node
from tests.conftest import Api
from tests.unit.registry.test_vc import schema_errors

pytestmark = pytest.mark.anvil


def _client(api: Api) -> ApiClient:
    client = ApiClient("http://testserver")
    client.http = api.client  # the TestClient is an httpx.Client: the CLI's code path
    return client


def _issue(api: Api, n: int, *, wait: bool = True) -> tuple[str, list[dict[str, Any]]]:
    ct = api.node.seeds.certificate_types[0]
    issuer = api.node.seeds.member(ct.issuers[0])
    r = api.client.post("/api/v1/certificates/batch" + ("?wait=true" if wait else ""),
                        json={"type": ct.code, "documents": sample_values(ct, n, issuer=issuer, seed=41)},
                        headers=api.auth(issuer.uscc))
    assert r.status_code == 201, r.text
    return issuer.uscc, r.json()["certificates"]


def _offline(api: Api, agency: str, cert: dict[str, Any]) -> str:
    r = api.client.get(f"/api/v1/certificates/{cert['identifier']}/qr", params={"mode": "offline"},
                       headers={**api.auth(agency), "X-Document-Key": cert["qr_url"].split("#", 1)[1]})
    assert r.status_code == 200, r.text
    [text] = decode_qr_image(r.content)
    return str(text)


def _from_link(api: Api, cert: dict[str, Any]) -> Document:
    r = api.client.get(f"/api/v1/certificates/{cert['identifier']}/blob")
    assert r.status_code == 200
    key = envelope.decode_key(cert["qr_url"].split("#", 1)[1])
    return Document.from_json(envelope.open_(r.content, key, aad=envelope.aad_for(cert["identifier"])))


def test_a_wallet_exports_schema_valid_credentials_that_verify_as_presented_documents(api: Api,
                                                                                      tmp_path: Path) -> None:
    agency, certs = _issue(api, 3)
    r = api.client.post(f"/api/v1/certificates/{certs[2]['identifier']}/revoke", json={"reason": 4},
                        headers=api.auth(agency))
    assert r.status_code == 200, r.text
    api.services.index.refresh(force=True)
    offline = _offline(api, agency, certs[0])
    only_offline = _offline(api, agency, certs[2])
    # a CLI wallet (registry/holders/wallet.py) holding each certificate another way: the issuing response's
    # document (anchored: wait=true) with an offline code, the QR link (the blob has no anchor proof: it is
    # sealed at issue), and an offline code alone (the document is rebuilt from it)
    wallet = Wallet.create(tmp_path / "wallet", "pass phrase", scrypt_n=2**10)
    wallet.add_certificate(certs[0]["identifier"], document=certs[0]["document"], offline=offline)
    wallet.add_certificate(certs[1]["identifier"], link=certs[1]["qr_url"])
    wallet.add_certificate(certs[2]["identifier"], offline=only_offline)
    client = _client(api)
    entries = sorted(wallet.certificates(), key=lambda e: [c["identifier"] for c in certs].index(e["identifier"]))
    held = wallet_certificates(client, entries)
    assert [w.document.anchor is not None for w in held] == [True, False, False]
    assert [w.document.digest_sha256.hex() for w in held] == [c["document"]["digest"]["sha256"] for c in certs]
    assert held[1].document == _from_link(api, certs[1]) and held[2].offline_qr == (only_offline,)
    assert held[2].document.fields == Document.from_json(certs[2]["document"]).fields
    now = dt.datetime(2026, 3, 25, 8, 0, tzinfo=dt.UTC)
    exported, results = export_bundle(client, held, holder_key_id=wallet.key_id, now=now)
    assert [r["verdict"] for r in results] == ["valid", "valid", "revoked"]
    assert exported["format"] == BUNDLE_FORMAT and exported["exported"] == "2026-03-25T08:00:00Z"
    assert exported["offlineQr"] == {certs[0]["identifier"]: [offline], certs[2]["identifier"]: [only_offline]}
    assert exported["holderKeyId"] == wallet.key_id
    bid = api.node.keys.bid(agency)
    deployment = api.node.require_deployment()
    for cert, vc in zip(certs, exported["verifiableCredential"], strict=True):
        assert schema_errors(vc) == []
        assert vc["issuer"]["id"] == bid and vc["id"] == f"urn:lianzheng:certificate:{cert['identifier']}"
        assert vc["credentialStatus"]["ledger"] == deployment.address("CertificateLedger")
        assert vc["credentialStatus"]["documentKey"] == "0x" + cert["document"]["digest"]["sha256"]
        imported = from_credential(json.loads(json.dumps(vc, ensure_ascii=False)))
        assert imported.document.anchor is not None and imported.document.anchor.chain_id == deployment.chain_id
        status = api.client.get(vc["credentialStatus"]["id"].removeprefix("http://testserver"))
        assert status.status_code == 200 and status.json()["identifier"] == cert["identifier"]

    result = verify_credentials(client, json.loads(json.dumps(exported)))
    assert result["verdict"] == "revoked"
    assert [r["verdict"] for r in result["credentials"]] == ["valid", "valid", "revoked"]
    assert [r["verdict"] for r in result["offline_qr"]] == ["valid", "revoked"]
    first = result["credentials"][0]
    assert first["checks"][0]["name"] == "credential" and first["checks"][0]["status"] == "VALID"
    assert first["checks"][1]["name"] == "integrity" and first["issuer"]["bid"] == bid

    lone = verify_credentials(client, exported["verifiableCredential"][1])
    assert lone["verdict"] == "valid" and lone["identifier"] == certs[1]["identifier"]

    edited = copy.deepcopy(exported)
    edited["verifiableCredential"][1]["credentialSubject"]["fields"]["持证主体"] = "冒名顶替有限公司"
    result = verify_credentials(client, edited)
    assert result["credentials"][1]["verdict"] == "tampered" and result["verdict"] == "tampered"
    assert "credentialSubject" in result["credentials"][1]["checks"][0]["reason_en"]

    forged = copy.deepcopy(exported["verifiableCredential"][0])
    forged["proof"]["document"]["fields"]["持证主体"]["value"] = "冒名顶替有限公司"
    forged["credentialSubject"]["fields"]["持证主体"] = "冒名顶替有限公司"
    assert verify_credentials(client, forged)["verdict"] == "tampered"

    other_bid = api.node.keys.bid(next(m.uscc for m in api.node.seeds.members if m.uscc != agency))
    impostor = copy.deepcopy(exported["verifiableCredential"][0])
    impostor["issuer"]["id"] = other_bid
    impostor["proof"]["verificationMethod"] = impostor["proof"]["verificationMethod"].replace(bid, other_bid)
    result = verify_credentials(client, impostor)
    assert result["verdict"] == "unknown_issuer" and result["checks"][0]["status"] == "INVALID"

    swapped = copy.deepcopy(exported)
    swapped["offlineQr"] = {certs[1]["identifier"]: [offline]}
    assert verify_credentials(client, swapped)["offline_qr"][0]["verdict"] == "tampered"

    with pytest.raises(PayloadFormatError) as info:
        verify_credentials(client, {"format": BUNDLE_FORMAT, "verifiableCredential": []})
    assert info.value.code == "invalid_bundle"


def test_the_anchor_endpoint_gives_a_proof_that_places_the_document_and_refuses_what_it_cannot(api: Api) -> None:
    _, [cert] = _issue(api, 1)
    doc = Document.from_json(cert["document"])
    r = api.client.get(f"/api/v1/certificates/{cert['identifier']}/anchor")
    assert r.status_code == 200, r.text
    proof = AnchorProof.from_json(r.json())
    anchored = doc.with_anchor(proof)
    verdict = api.client.post("/api/v1/verify", json=anchored.to_json()).json()
    assert verdict["verdict"] == "valid" and verdict["anchor"]["tx_hash"] == "0x" + proof.tx_hash.hex()
    assert proof.sm3_root is not None and proof.includes_sm3(doc.digest_sm3)

    cid = CertificateId.parse(cert["identifier"])
    unknown = str(CertificateId.build(cid.type_code, cid.issuer_uscc, 999_999))
    r = api.client.get(f"/api/v1/certificates/{unknown}/anchor")
    assert r.status_code == 404 and r.json()["error"]["code"] == "certificate_not_found"
    r = api.client.get("/api/v1/certificates/not-an-identifier/anchor")
    assert r.status_code == 422
    with pytest.raises(NotFoundError):
        _client(api).get(f"/api/v1/certificates/{unknown}/anchor")


def test_a_certificate_waiting_for_its_batch_has_no_anchor_yet(anvil_node: Node, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    app = create_app(anvil_node, Settings(data_dir=tmp_path, env="test"), workers=False)  # nothing anchors
    with TestClient(app, raise_server_exceptions=False) as http:
        api = Api(http, anvil_node, app.state.services, {})
        _, [cert] = _issue(api, 1, wait=False)
        r = api.client.get(f"/api/v1/certificates/{cert['identifier']}/anchor")
        assert r.status_code == 409 and r.json()["error"]["code"] == "not_anchored_yet"
        with pytest.raises(ConflictError):
            _client(api).get(f"/api/v1/certificates/{cert['identifier']}/anchor")
        with pytest.raises(ConflictError):
            export_bundle(_client(api), [WalletCertificate(Document.from_json(cert["document"]))], holder_key_id=None)


def test_the_lianzheng_context_is_served_as_json_ld(api: Api) -> None:
    r = api.client.get("/ns/lianzheng/v1")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/ld+json")
    assert r.json() == LIANZHENG_CONTEXT
