"""Offline verification (registry/certificates/offline.py) and the trust list it trusts
(registry/consortium/trust_list.py) on untrusted input: a scanned text, however mangled, gets a verdict or a
RegistryError; a cached trust list, however altered, is accepted only as signed or refused with a
RegistryError. The unaltered payload verifies `valid`, so the mutations start from a real success."""

from __future__ import annotations

import copy
import json
from typing import Any

import coincurve
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.certificates.offline import OfflineVerifier
from registry.consortium.trust_list import FORMAT_ID, TrustList, sign_trust_list
from registry.errors import RegistryError
from registry.formats.qr import encode_payload, sign_payload
from tests.unit.fuzz.strategies import json_values, mutated_bytes, mutated_text, safe_json_values
from tests.unit.qr.factories import ISSUER_ADDRESS, ISSUER_KEY, REALISTIC_FIELDS, TYPE_CODE, make_payload

B45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
OPERATOR_KEY = bytes(31) + b"\x07"
ISSUER_USCC = REALISTIC_FIELDS["颁发机构代码"]
PAYLOAD = sign_payload(make_payload(), ISSUER_KEY)
VALID = encode_payload(PAYLOAD)
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _operator_account() -> str:
    return to_checksum_address(keccak(coincurve.PrivateKey(OPERATOR_KEY).public_key.format(False)[1:])[-20:])


OPERATOR = _operator_account()
BODY: dict[str, Any] = {
    "format": FORMAT_ID, "chain_id": PAYLOAD.chain_id,
    "contracts": {"CertificateLedger": "0x" + PAYLOAD.ledger.hex()},
    "as_of": {"block": PAYLOAD.block_number + 100, "block_hash": "0x" + "ab" * 32, "timestamp": PAYLOAD.block_timestamp + 1000,
              "time": "2024-06-10T06:30:00Z"},
    "generated_at": "2024-06-10T06:30:01Z",
    "operator": {"uscc": "11230000MB1A0001XM", "name": "省政务服务局", "account": OPERATOR},
    "members": [{"uscc": ISSUER_USCC, "name": REALISTIC_FIELDS["颁发机构"], "bid": "did:bid:sf0000", "roles": ["issuer"],
                 "status": "active", "accounts": [ISSUER_ADDRESS]}],
    "certificate_types": [{"code": TYPE_CODE, "name": "营业执照", "issuers": [ISSUER_USCC]}],
    "batches": {PAYLOAD.batch_root.hex(): [PAYLOAD.block_number, ISSUER_USCC, "0x" + "cd" * 32]},
    "documents": {},
}
SIGNED = sign_trust_list(BODY, OPERATOR_KEY)
VERIFIER = OfflineVerifier(TrustList.from_json(SIGNED, operator=OPERATOR))


def test_the_unaltered_payload_verifies_valid() -> None:
    result = VERIFIER.verify_text(VALID)
    assert result.verdict == "valid", [c for c in result.to_json()["checks"] if c["status"] != "valid"]


@FUZZ
@given(mutated_text(VALID, B45_ALPHABET))
def test_a_mangled_scan_gets_a_verdict_or_a_registry_error(text: str) -> None:
    try:
        result = VERIFIER.verify_text(text)
    except RegistryError:
        return
    json.dumps(result.to_json(), ensure_ascii=False)  # whatever it says can be served
    if text != VALID:
        assert result.verdict != "valid" or text.rstrip("\r\n") == VALID


@FUZZ
@given(st.text(max_size=200))
def test_any_text_gets_a_registry_error_or_a_verdict(text: str) -> None:
    try:
        VERIFIER.verify_text(text)
    except RegistryError:
        pass


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@FUZZ
@given(st.data(), json_values)
def test_an_altered_trust_list_is_refused_with_a_registry_error(data: st.DataObject, replacement: Any) -> None:
    altered = copy.deepcopy(SIGNED)
    path = data.draw(st.sampled_from(_paths(altered)[1:]))
    target = altered
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = replacement
    try:
        TrustList.from_json(altered, operator=OPERATOR)
    except RegistryError:
        return
    # only an unchanged list is accepted ("signer" is a hint: the signer is recovered from the signature)
    assert path == ("signature", "signer") or replacement == _original(path)


def _original(path: tuple[Any, ...]) -> Any:
    value: Any = SIGNED
    for step in path:
        value = value[step]
    return value


@FUZZ
@given(safe_json_values)
def test_a_re_signed_trust_list_with_any_content_is_refused_or_indexed(members: Any) -> None:
    """The operator's own signature over nonsense (a buggy operator): still only RegistryError."""
    body = {**BODY, "members": members}
    try:
        body_signed = sign_trust_list(body, OPERATOR_KEY)
        OfflineVerifier(TrustList.from_json(body_signed, operator=OPERATOR)).verify_text(VALID)
    except RegistryError:
        pass


@FUZZ
@given(st.data())
def test_a_mangled_trust_list_file_is_refused_with_a_registry_error(data: st.DataObject) -> None:
    raw = json.dumps(SIGNED, ensure_ascii=False).encode()
    mangled = data.draw(mutated_bytes(raw))
    try:
        obj = json.loads(mangled)
    except ValueError:
        return  # not JSON: the file reader refuses it before the trust list sees it
    try:
        TrustList.from_json(obj, operator=OPERATOR)
    except RegistryError:
        pass
