"""Certificates in every state the verifier page must tell apart, issued through the real API of a LocalStack.

>>> certs = issue_roles(stack)                    # doctest: +SKIP
>>> certs["revoked"]["qr_url"]                    # doctest: +SKIP
'http://127.0.0.1:4711/v/1.2.156.3005.2...#Kx9...'
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any

import httpx

from api.devtools.samples import sample_values
from api.stack import LocalStack
from registry.formats.images import decode_qr_image
from tests.support import plain_http

# one 营业执照 (no expiry) each, in one anchored batch; revoked / suspended / superseded change state afterwards
BASIC_ROLES = ("valid", "revoked", "suspended", "superseded", "offline", "privacy", "upload", "camera", "print")
REVOCATION_REASON = 5  # 违法违规 / violation
# business-scope lengths giving offline QR codes of versions 20..25 at level M (measured: about two Base45
# characters per Hanzi on top of ~750 for a 营业执照 with a short scope)
DENSE = (100, 170, 240, 290)
_HANZI = ("道路货物运输国内代理仓储服务食品销售餐饮技术开发咨询交流转让推广软件信息系统集成"
          "批发零售进出口贸易建筑工程施工设计安装维修租赁")


def issue_roles(stack: LocalStack, roles: Sequence[str] = BASIC_ROLES) -> dict[str, dict[str, Any]]:
    """{role: the issuing response (identifier, qr_url, document)} for ``roles`` plus ``expired`` (a type with
    a validity period, valid 2019-2020), ``not_yet_valid`` (valid from 60 days ahead) and ``dense-<n>`` for each
    n in ``DENSE`` (long business scopes: offline QR codes of versions 20-25); the superseded one has its replacement under
    ``replacement``."""
    ct = stack.node.seeds.certificate_types[0]
    issuer = stack.node.seeds.member(ct.issuers[0])
    out: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=stack.url, headers=stack.auth(issuer.uscc), timeout=60) as http:
        r = http.post("/api/v1/certificates/batch?wait=true",
                      json={"type": ct.code, "documents": sample_values(ct, len(roles), issuer=issuer, seed=21)})
        assert r.status_code == 201, r.text
        out.update(zip(roles, r.json()["certificates"], strict=True))
        for role, action, body in (("revoked", "revoke", {"reason": REVOCATION_REASON}), ("suspended", "suspend", {})):
            if role in out:
                r = http.post(f"/api/v1/certificates/{out[role]['identifier']}/{action}", json=body)
                assert r.status_code == 200, r.text
        if "superseded" in out:
            fields = {k: f["value"] for k, f in out["superseded"]["document"]["fields"].items() if k != "证照标识"}
            fields["住所"] = str(fields["住所"]) + "（更正）"
            r = http.post(f"/api/v1/certificates/{out['superseded']['identifier']}/supersede", json={"fields": fields})
            assert r.status_code == 200, r.text
            out["superseded"]["replacement"] = r.json()["replacement"]
        [ahead] = sample_values(ct, 1, issuer=issuer, seed=22)
        start = (dt.date.today() + dt.timedelta(days=60)).isoformat()
        ahead.update({"有效期起始": start})
        out["not_yet_valid"] = _issue(http, ct.code, ahead)
        rng = random.Random(24)
        for n in DENSE:  # a business scope of n random Hanzi (they barely compress): larger offline QR codes
            [dense] = sample_values(ct, 1, issuer=issuer, seed=24 + n)
            dense["经营范围"] = "".join(rng.choice(_HANZI) for _ in range(n))
            out[f"dense-{n}"] = _issue(http, ct.code, dense)
    timed = next(t for t in stack.node.seeds.certificate_types if t.validity_years)
    timed_issuer = stack.node.seeds.member(timed.issuers[0])
    with httpx.Client(base_url=stack.url, headers=stack.auth(timed_issuer.uscc), timeout=60) as http:
        [old] = sample_values(timed, 1, issuer=timed_issuer, seed=23)
        old.update({"颁发日期": "2019-01-01", "有效期起始": "2019-01-01", "有效期截止": "2020-12-31"})
        out["expired"] = _issue(http, timed.code, old)
    stack.services.index.refresh(force=True)
    return out


def _issue(http: httpx.Client, type_code: str, fields: dict[str, Any]) -> dict[str, Any]:
    r = http.post("/api/v1/certificates?wait=true", json={"type": type_code, "fields": fields})
    assert r.status_code == 201, r.text
    return dict(r.json())


def offline_text(stack: LocalStack, cert: dict[str, Any], **params: Any) -> str:
    """The LZ2 text of ``cert``'s offline QR (decoded from the PNG the API draws, as a scanner would)."""
    png = offline_png(stack, cert, **params)
    [text] = decode_qr_image(png)
    return text


def offline_png(stack: LocalStack, cert: dict[str, Any], **params: Any) -> bytes:
    issuer = cert["identifier"].split(".")[6]
    r = plain_http.get(f"{stack.url}/api/v1/certificates/{cert['identifier']}/qr",
                       params={"mode": "offline", **params},
                       headers={**stack.auth(issuer), "X-Document-Key": cert["qr_url"].split("#", 1)[1]}, timeout=60)
    assert r.status_code == 200, r.text
    return r.content
