"""What ``lianzheng verify`` does with a QR photo, a verification link or an offline payload.

- A photo is decoded with zxing-cpp (registry.images: rotated, scaled, blurred and noisy photos).
- A by-reference link ``<base>/v/<identifier>#<key>``: the encrypted document is fetched from the API, decrypted
  here (AES-256-GCM), its fields, SHA-256 and SM3 roots checked here, and only ``{"identifier", "digest"}`` is
  sent for the chain checks (``POST /api/v1/verify/digest``) -- the same privacy as the verifier page.
- An offline payload ``LZ2:...`` is verified against the trust list cached by ``lianzheng trust-list pull``
  (``<data dir>/trust-list.json``, operator pinned in ``<data dir>/trust-anchor.json``): no network at all.

Both return the API's verification shape plus ``mode`` (``reference`` or ``offline``); offline results carry
``as_of`` ``{"block", "time"}`` of the trust list. Text that is not ours raises
``PayloadFormatError(code="not_lianzheng_qr")`` ("这不是链证电子证照二维码 / Not a Lianzheng certificate QR code").

    >>> verify_text(state, "LZ2:6BF...", client)["verdict"]         # doctest: +SKIP
    'valid'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from registry.certificates.documents import Document
from registry.certificates.offline import OfflineVerifier
from registry.certificates.verification import INVALID, VALID, VERDICT_TEXT, Check, VerificationResult
from registry.consortium.trust_list import TrustList
from registry.errors import (
    ChainUnavailableError,
    NotFoundError,
    PayloadFormatError,
    ProofError,
    RegistryError,
    ValidationError,
)
from registry.formats import envelope
from registry.formats.images import decode_qr_image
from registry.formats.qr import ScanResult, classify_scan

__all__ = ["TRUST_ANCHOR_FILE", "TRUST_LIST_FILE", "load_trust_list", "save_trust_list", "verify_photo",
           "verify_reference", "verify_text"]

TRUST_LIST_FILE = "trust-list.json"
TRUST_ANCHOR_FILE = "trust-anchor.json"
NOT_OURS = "这不是链证电子证照二维码 / Not a Lianzheng certificate QR code"


def verify_photo(state: Any, data: bytes, client: Any) -> dict[str, Any]:
    """Decode every QR code in the photo and verify the first one that is ours."""
    texts = decode_qr_image(data)
    for text in texts:
        try:
            scan = classify_scan(text)
        except PayloadFormatError as exc:
            if exc.code == "not_lianzheng_qr":
                continue
            raise
        return _verify_scan(state, scan, client)
    shown = texts[0][:60] + ("…" if len(texts[0]) > 60 else "")
    raise PayloadFormatError(f"{NOT_OURS}: the image holds {shown!r}", code="not_lianzheng_qr",
                             details={"texts": len(texts)})


def verify_text(state: Any, text: str, client: Any) -> dict[str, Any]:
    """Verify a scanned text: a verification link or an ``LZ2:`` payload."""
    return _verify_scan(state, classify_scan(text), client)


def _verify_scan(state: Any, scan: ScanResult, client: Any) -> dict[str, Any]:
    if scan.kind == "offline":
        assert scan.payload is not None
        trust = load_trust_list(Path(state.settings.data_dir))
        return {**OfflineVerifier(trust).verify_payload(scan.payload).to_json(), "mode": "offline"}
    assert scan.key is not None
    return verify_reference(client, scan.identifier, scan.key)


# --- by reference ------------------------------------------------------------------------------------------


def verify_reference(client: Any, identifier: str, key: bytes) -> dict[str, Any]:
    """Fetch, decrypt and check a by-reference document here; ask the API only about its digest.

    ``client`` is an api.cli.client.ApiClient (anything with ``.http``, an ``httpx.Client``, and ``.post``).
    """
    try:
        response = client.http.get(f"/api/v1/certificates/{quote(identifier, safe='')}/blob")
    except httpx.HTTPError as exc:
        raise ChainUnavailableError(f"cannot reach the Lianzheng API ({exc})", code="api_unreachable") from exc
    if response.status_code in (404, 422):
        return {**client.post("/api/v1/verify", {"identifier": identifier}), "mode": "reference"}
    if response.status_code >= 400:
        raise RegistryError(f"fetching the encrypted document failed: HTTP {response.status_code}", code="http_error")
    try:
        plaintext = envelope.open_(response.content, key, aad=envelope.aad_for(identifier))
    except (ProofError, PayloadFormatError) as exc:
        return _local(identifier, "tampered", [Check("decrypt", INVALID, "解密失败：二维码中的密钥与证照不匹配，或数据被篡改",
                                                      f"decryption failed: {exc.message}")])
    try:
        doc = Document.from_json(plaintext)
    except PayloadFormatError as exc:
        return _local(identifier, "tampered", [Check("integrity", INVALID, "解密后的内容不是链证证照",
                                                      f"the decrypted content is not a certificate: {exc.message}")])
    problems = doc.integrity_errors()  # SHA-256 and SM3 roots, identifier binding (registry.documents)
    if doc.identifier != identifier:
        problems.append(f"document identifier {doc.identifier} differs from the link's {identifier}")
    if problems:
        return _local(identifier, "tampered", [Check("integrity", INVALID, "本机核验失败：字段内容与摘要不符",
                                                      "checked locally: " + "; ".join(problems))], doc)
    result = client.post("/api/v1/verify/digest", {"identifier": identifier, "digest": doc.digest_sha256.hex()})
    local = Check("integrity", VALID,
                  f"本机已核验 {len(doc.fields)} 个字段、{len(doc.hidden)} 个隐藏字段（SHA-256 与 SM3 摘要一致）",
                  f"checked locally: {len(doc.fields)} fields, {len(doc.hidden)} hidden (SHA-256 and SM3 digests match)",
                  {"sha256": doc.digest_sha256.hex(), "sm3": doc.digest_sm3.hex()})
    server = next((c for c in result["checks"] if c["name"] == "integrity"), None)
    if server is None or server["status"] != INVALID:  # INVALID: the digest is not the registered one; keep that
        result["checks"] = [_check_json(local), *(c for c in result["checks"] if c["name"] != "integrity")]
    result.update(fields={p: f.value for p, f in doc.fields.items()}, disclosed_fields=list(doc.fields),
                  hidden_fields=list(doc.hidden), mode="reference")
    return result  # type: ignore[no-any-return]


def _check_json(c: Check) -> dict[str, Any]:
    return {"name": c.name, "status": c.status, "reason_zh": c.reason_zh, "reason_en": c.reason_en, "details": c.details}


def _local(identifier: str, verdict: str, checks: list[Check], doc: Document | None = None) -> dict[str, Any]:
    zh, en = VERDICT_TEXT[verdict]
    result = VerificationResult(verdict=verdict, verdict_zh=zh, verdict_en=en, identifier=identifier, checks=checks,
                                disclosed_fields=list(doc.fields) if doc else [],
                                hidden_fields=list(doc.hidden) if doc else [])
    return {**result.to_json(), "mode": "reference"}


# --- the cached trust list ---------------------------------------------------------------------------------


def save_trust_list(data_dir: Path, signed: dict[str, Any], *, operator: str | None = None) -> TrustList:
    """Verify and cache a pulled trust list. The operator account is pinned the first time (or set with
    ``operator``); a later list signed by anyone else is refused."""
    anchor_file = data_dir / TRUST_ANCHOR_FILE
    pinned = operator
    if pinned is None and anchor_file.exists():
        pinned = _read_json(anchor_file).get("operator")
    trust = TrustList.from_json(signed, operator=pinned)
    data_dir.mkdir(parents=True, exist_ok=True)
    if operator is not None or not anchor_file.exists():
        anchor_file.write_text(json.dumps({"operator": trust.signer, "chain_id": trust.chain_id}, indent=2))
    (data_dir / TRUST_LIST_FILE).write_text(json.dumps(signed, ensure_ascii=False, separators=(",", ":")),
                                            encoding="utf-8")
    return trust


def load_trust_list(data_dir: Path) -> TrustList:
    """The cached trust list, its signature checked against the pinned operator."""
    path = data_dir / TRUST_LIST_FILE
    if not path.exists():
        raise NotFoundError(f"没有信任列表 / no cached trust list in {data_dir}: run `lianzheng trust-list pull` "
                            "while online", code="no_trust_list")
    anchor = data_dir / TRUST_ANCHOR_FILE
    operator = _read_json(anchor).get("operator") if anchor.exists() else None
    return TrustList.from_json(_read_json(path), operator=operator)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}", code="invalid_file") from exc
    if not isinstance(data, dict):
        raise ValidationError(f"{path} must hold a JSON object", code="invalid_file")
    return data

