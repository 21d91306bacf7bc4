"""POST /api/v1/verify answers byte for byte what FastAPI answered when the route returned
``dataclasses.asdict(result)`` through its `-> dict[str, Any]` response model (the route now encodes its
answer once, without FastAPI's validation and jsonable_encoder pass): document and identifier forms, valid and
revoked, and a selectively disclosed copy."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.devtools.samples import sample_values
from registry.certificates.documents import Document
from registry.certificates.verification import VerificationResult
from tests.conftest import Api


def _fastapi_bytes(payload: dict[str, Any]) -> tuple[bytes, str]:
    """What FastAPI itself sends for a route declared `-> dict[str, Any]` returning `payload`."""
    oracle = FastAPI()

    @oracle.post("/")
    async def answer() -> dict[str, Any]:
        return payload

    with TestClient(oracle) as client:
        r = client.post("/")
    return r.content, r.headers["content-type"]


def _same_as_before(api: Api, body: dict[str, Any], expected_verdict: str) -> None:
    verifier = api.services.verifier
    api.services.index.refresh(force=True)
    for _ in range(3):  # a block mined between the two calls changes `as_of`: take both again
        r = api.client.post("/api/v1/verify", json=body)
        if "identifier" in body and len(body) == 1:
            result: VerificationResult = verifier.verify_identifier(body["identifier"])
        else:
            result = verifier.verify_document(Document.from_json(body))
        expected, media = _fastapi_bytes(dataclasses.asdict(result))
        if r.content == expected:
            break
    assert r.status_code == 200
    assert r.json()["verdict"] == expected_verdict
    assert r.content == expected, (r.content[:300], expected[:300])
    assert r.headers["content-type"] == media
    assert int(r.headers["content-length"]) == len(expected)


def test_verify_answers_are_byte_for_byte_what_fastapi_encoded(api: Api) -> None:
    ct = api.node.seeds.certificate_types[0]
    issuer = api.node.seeds.member(ct.issuers[0])
    r = api.client.post("/api/v1/certificates/batch?wait=true", headers=api.auth(issuer.uscc),
                        json={"type": ct.code, "documents": sample_values(ct, 2, issuer=issuer, seed=11)})
    assert r.status_code == 201, r.text
    kept, revoked = r.json()["certificates"]
    _same_as_before(api, kept["document"], "valid")
    _same_as_before(api, {"identifier": kept["identifier"]}, "valid")
    disclosed = Document.from_json(kept["document"]).disclose(["持证主体代码"]).to_json()
    _same_as_before(api, disclosed, "valid")
    change = api.client.post(f"/api/v1/certificates/{revoked['identifier']}/revoke", json={"reason": 4},
                             headers=api.auth(issuer.uscc))
    assert change.status_code == 200, change.text
    _same_as_before(api, revoked["document"], "revoked")
    _same_as_before(api, {"identifier": revoked["identifier"]}, "revoked")
