"""POST /api/v1/verify answers byte for byte what FastAPI answered when the route returned
``dataclasses.asdict(result)`` through its `-> dict[str, Any]` response model (the route now encodes its
answer once, without FastAPI's validation and jsonable_encoder pass): document and identifier forms, valid and
revoked, and a selectively disclosed copy; and the shortcut past the router (api/routes/verify.py) answers every
body, good or bad, as the FastAPI route does."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.devtools.samples import sample_values
from api.settings import Settings
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


# Bodies the shortcut past the router (api/routes/verify.py) must refuse exactly as FastAPI's route does: the
# body parsing rules (empty, not JSON, a non-JSON media type, no media type, trailing garbage, a BOM), the dict
# check, and the route's own checks. (A body api/middleware.JsonGuard refuses never reaches either.)
_BAD_BODIES: list[tuple[bytes, str | None, str]] = [
    (b"", "application/json", "invalid_request"),
    (b"[1,2]", "application/json", "invalid_request"),
    (b'"x"', "application/json", "invalid_request"),
    (b"null", "application/json", "invalid_request"),
    (b'{"identifier":"1.2.3"}garbage', "application/json", "invalid_json"),
    (b'{"identifier": "1.2.3"}', "text/plain", "invalid_request"),
    (b'{"identifier": "1.2.3"}', None, "invalid_request"),
    (b'{"identifier": "1.2.3"}', "application/x-www-form-urlencoded", "invalid_request"),
    (b'{"identifier": "1.2.3"}', "application/vnd.api+json", "invalid_identifier"),
    (b'{"identifier": "1.2.3"}', "application/json; charset=utf-8", "invalid_identifier"),
    (b'\xef\xbb\xbf{"identifier": "1.2.3"}', "application/json", "invalid_identifier"),
    (b'{"identifier": 5}', "application/json", "invalid_identifier"),
    (b'{"identifier": "1.2.156.3005.2.nope"}', "application/json", "invalid_identifier"),
    (b"{}", "application/json", "invalid_document"),
    (b'{"document": 5}', "application/json", "invalid_document"),
    (b'{"identifier": "x", "y": 1}', "application/json", "invalid_document"),
    (b'{"fields": 5}', "application/json", "invalid_document"),
    (b'{"document": {}, "presentation": 5}', "application/json", "invalid_document"),
]


def test_the_shortcut_answers_every_body_as_the_fastapi_route_does(api: Api, tmp_path: Path) -> None:
    ct = api.node.seeds.certificate_types[0]
    issuer = api.node.seeds.member(ct.issuers[0])
    r = api.client.post("/api/v1/certificates/batch?wait=true", headers=api.auth(issuer.uscc),
                        json={"type": ct.code, "documents": sample_values(ct, 1, issuer=issuer, seed=12)})
    assert r.status_code == 201, r.text
    [cert] = r.json()["certificates"]
    disclosed = Document.from_json(cert["document"]).disclose(["持证主体代码"]).to_json()
    good = [json.dumps(b).encode() for b in (cert["document"], {"identifier": cert["identifier"]},
                                             {"document": disclosed})]
    # the same node, the route reached through FastAPI's router: the reference the shortcut must match
    routed_app = create_app(api.node, Settings(data_dir=tmp_path / "routed", env="test"), workers=False,
                            verify_shortcut=False)
    with TestClient(routed_app, raise_server_exceptions=False) as routed:
        api.services.index.refresh(force=True)
        routed_app.state.services.index.refresh(force=True)
        cases = [(body, "application/json", None) for body in good] + _BAD_BODIES
        for body, media, code in cases:
            headers = {"content-type": media} if media else {}
            for _ in range(3):  # a block mined between the two calls changes `as_of`: ask both again
                fast = api.client.post("/api/v1/verify", content=body, headers=headers)
                slow = routed.post("/api/v1/verify", content=body, headers=headers)
                if fast.content == slow.content:
                    break
            assert (fast.status_code, fast.content) == (slow.status_code, slow.content), body
            assert fast.headers["content-type"] == slow.headers["content-type"]
            if code is None:
                assert fast.status_code == 200 and fast.json()["verdict"] == "valid", fast.text
            else:
                assert fast.status_code == 422 and fast.json()["error"]["code"] == code, (body, fast.text)
    # the bodies the route refuses through the app's handlers carry FastAPI's details too
    missing = api.client.post("/api/v1/verify", content=b"", headers={"content-type": "application/json"}).json()
    assert missing["error"]["details"]["errors"] == [{"loc": ["body"], "msg": "Field required", "type": "missing"}]
    garbage = api.client.post("/api/v1/verify", content=b'{"a":1}x', headers={"content-type": "application/json"})
    assert garbage.json()["error"]["details"]["errors"][0]["loc"] == ["body", 7]
