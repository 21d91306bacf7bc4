"""Offline payloads with the issuer's batch statement (registry/formats/batch_statement.py) -- SM2 in gm,
secp256k1 in intl -- and trust list v2 (registry/consortium/trust_list.py) without a chain: round trip, size,
the verifier's checks and refusals, v1 lists and payloads of the first intl form (a signature over the body)
still accepted."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import coincurve
import pytest
from eth_utils.crypto import keccak

from api.devtools.offline_workload import offline_workload
from registry.certificates import offline
from registry.certificates.offline import OfflineVerifier
from registry.consortium.trust_list import FORMAT_ID, FORMAT_V2, TrustList, sign_trust_list, sign_trust_list_v2
from registry.crypto.proofs import ES256KSigner
from registry.crypto.sm2 import SM2Signer, raw_public_key
from registry.errors import PayloadFormatError, ProofError, ValidationError
from registry.formats.batch_statement import BatchStatement, sign_statement, statement_bytes, statement_signer
from registry.formats.qr import decode_payload, encode_payload, sign_payload
from tests.unit.qr.factories import ISSUER_ADDRESS, ISSUER_KEY, REALISTIC_FIELDS, TYPE_CODE, make_payload

P = make_payload()
ISSUER, OPERATOR = SM2Signer.generate(), SM2Signer.generate()
USCC, OP_USCC = REALISTIC_FIELDS["颁发机构代码"], "11230000MB1A0001XM"
T = P.block_timestamp + 10
OP_KEY = bytes(31) + b"\x07"
OP_ACCOUNT = "0xd41c057fd1c78805AAC12B0A94a405c0461A6FBb"


def _gm(payload: Any = P, signer: SM2Signer = ISSUER, at: int = T, sm3_root: bytes | None = None) -> str:
    st = sign_statement(signer, chain_id=payload.chain_id, ledger=payload.ledger, batch_root=payload.batch_root,
                        sm3_root=sm3_root, signed_at=at)
    return encode_payload(dataclasses.replace(payload, statement=st))


def _intl(payload: Any = P, key: bytes = ISSUER_KEY, at: int = T, sm3_root: bytes | None = None) -> str:
    st = sign_statement(key, chain_id=payload.chain_id, ledger=payload.ledger, batch_root=payload.batch_root,
                        sm3_root=sm3_root, signed_at=at)
    return encode_payload(dataclasses.replace(payload, statement=st, issuer_account=b""))


def _body(issuer_keys: list[dict[str, int | str]] | None = None, fmt: str = FORMAT_V2) -> dict[str, Any]:
    keys = issuer_keys if issuer_keys is not None else [
        {"key": raw_public_key(ISSUER.public_key).hex(), "since": 0, "until": 0}]
    members = [{"uscc": USCC, "name": REALISTIC_FIELDS["颁发机构"], "bid": "did:bid:zf1", "roles": ["issuer"],
                "status": "active", "accounts": [ISSUER_ADDRESS], "sm2_keys": keys},
               {"uscc": OP_USCC, "name": "省政务服务局", "bid": "did:bid:zf2", "roles": ["admin"], "status": "active",
                "accounts": [OP_ACCOUNT],
                "sm2_keys": [{"key": raw_public_key(OPERATOR.public_key).hex(), "since": 0, "until": 0}]}]
    if fmt == FORMAT_ID:
        for m in members:
            del m["sm2_keys"]
    return {"format": fmt, "chain_id": P.chain_id, "contracts": {"CertificateLedger": "0x" + P.ledger.hex()},
            "as_of": {"block": P.block_number + 100, "block_hash": "0x" + "ab" * 32, "timestamp": T + 1000,
                      "time": "2024-06-10T06:30:00Z"}, "generated_at": "2024-06-10T06:30:01Z",
            "operator": {"uscc": OP_USCC, "name": "省政务服务局", "account": OP_ACCOUNT}, "members": members,
            "certificate_types": [{"code": TYPE_CODE, "name": "营业执照", "issuers": [USCC]}],
            "batches": {P.batch_root.hex(): [P.block_number, USCC, "0x" + "cd" * 32]}, "documents": {}}


def _verdict(text: str, trust: TrustList) -> tuple[str, dict[str, str]]:
    result = OfflineVerifier(trust).verify_text(text)
    return result.verdict, {c.name: c.status for c in result.checks}


def test_a_gm_payload_round_trips_and_costs_about_30_characters_more_than_intl() -> None:
    text, intl = _gm(), encode_payload(sign_payload(P, ISSUER_KEY))
    decoded = decode_payload(text)
    assert decoded.statement is not None and decoded.signature == b"" and decoded.issuer_account == b""
    assert decoded.statement.signed_at == T and 0 < len(text) - len(intl) <= 45
    assert len(statement_bytes(1, bytes(20), bytes(32), None, 0)) == 110


def test_gm_and_intl_payloads_verify_against_a_v2_list_signed_with_sm2() -> None:
    trust = TrustList.from_json(sign_trust_list_v2(_body(), OPERATOR))
    assert trust.format == FORMAT_V2 and trust.signer == raw_public_key(OPERATOR.public_key).hex()
    for text in (_gm(), encode_payload(sign_payload(P, ISSUER_KEY))):
        verdict, checks = _verdict(text, trust)
        assert verdict == "valid" and checks["signature"] == "VALID", checks
    again = TrustList.from_json(trust.to_json(), operator=trust.signer)  # pinned; to_json keeps the proof
    assert again.signer == trust.signer


def test_a_forged_statement_an_unknown_key_and_a_rotated_key_are_refused() -> None:
    trust = TrustList.from_json(sign_trust_list_v2(_body(), OPERATOR))
    st = decode_payload(_gm()).statement
    assert st is not None
    forged = dataclasses.replace(st, signed_at=st.signed_at + 1)  # another statement under the same signature
    assert _verdict(encode_payload(dataclasses.replace(P, statement=forged)), trust)[0] == "tampered"
    assert _verdict(_gm(signer=SM2Signer.generate()), trust)[0] == "unknown_issuer"
    assert _verdict(_gm(sm3_root=bytes([1]) * 32), trust)[0] == "tampered"  # the list says no SM3 root
    key = raw_public_key(ISSUER.public_key).hex()
    rotated = TrustList.from_json(sign_trust_list_v2(_body([{"key": key, "since": 0, "until": T}]), OPERATOR))
    assert _verdict(_gm(at=T), rotated)[0] == "valid"  # the rotation's own second counts for the old key
    verdict, checks = _verdict(_gm(at=T + 1), rotated)
    assert verdict == "unknown_issuer" and checks["signature"] == "INVALID"
    with pytest.raises(PayloadFormatError):
        decode_payload(encode_payload(dataclasses.replace(P, statement=BatchStatement(1, bytes(8), bytes(8))))[:-9])


def test_a_v2_list_must_be_signed_by_its_operators_key_and_unaltered() -> None:
    signed = sign_trust_list_v2(_body(), OPERATOR)
    with pytest.raises(ProofError) as by_issuer:  # a member's valid key, but not the operator's
        TrustList.from_json(sign_trust_list_v2(_body(), ISSUER))
    assert by_issuer.value.code == "bad_trust_list_signature"
    altered = {**signed, "members": [{**signed["members"][0], "name": "伪造"}, signed["members"][1]]}
    with pytest.raises(ProofError):
        TrustList.from_json(altered)
    with pytest.raises(ProofError) as pinned:
        TrustList.from_json(signed, operator="0x" + "22" * 20)
    assert pinned.value.code == "untrusted_trust_list"


def test_a_v1_list_still_verifies_intl_payloads_and_refuses_gm_ones() -> None:
    trust = TrustList.from_json(sign_trust_list(_body(fmt=FORMAT_ID), OP_KEY))
    assert _verdict(encode_payload(sign_payload(P, ISSUER_KEY)), trust)[0] == "valid"
    assert _verdict(_gm(), trust)[0] == "unknown_issuer"  # a v1 list registers no SM2 keys


def test_an_intl_v2_list_is_signed_es256k_by_an_operator_account() -> None:
    trust = TrustList.from_json(sign_trust_list_v2(_body(), ES256KSigner.from_private_key(OP_KEY)))
    assert trust.signer == OP_ACCOUNT and trust.proof is not None and trust.proof["alg"] == "ES256K"
    assert _verdict(_gm(), trust)[0] == "valid"


# --- intl statements ------------------------------------------------------------------------------------------


def test_an_intl_statement_round_trips_and_costs_a_few_characters_more_than_a_signed_body() -> None:
    text, first_form = _intl(), encode_payload(sign_payload(P, ISSUER_KEY))
    decoded = decode_payload(text)
    st = decoded.statement
    assert st is not None and st.scheme == "secp256k1" and st.key_id == b"" and len(st.signature) == 65
    assert decoded.signature == b"" and decoded.issuer_account == b""  # the verifier recovers the signer
    assert st.signed_at == T and 0 < len(text) - len(first_form) <= 12


def test_an_intl_statement_is_plain_recoverable_ecdsa_over_sha256_of_the_110_bytes() -> None:
    """Checked with coincurve and keccak directly, not through registry.crypto.signing."""
    st = decode_payload(_intl()).statement
    assert st is not None
    message = statement_bytes(P.chain_id, P.ledger, P.batch_root, None, T)
    assert message[:10] == b"LZ-BATCH-1" and message[10:18] == P.chain_id.to_bytes(8, "big")
    public = coincurve.PublicKey.from_signature_and_message(st.signature, hashlib.sha256(message).digest(),
                                                            hasher=None)
    account = keccak(public.format(compressed=False)[1:])[-20:]
    assert "0x" + account.hex() == ISSUER_ADDRESS.lower() == statement_signer(st, message).lower()  # type: ignore[union-attr]


def test_an_intl_statement_verifies_against_v1_and_v2_lists_naming_the_account() -> None:
    for trust in (TrustList.from_json(sign_trust_list_v2(_body(), OPERATOR)),
                  TrustList.from_json(sign_trust_list(_body(fmt=FORMAT_ID), OP_KEY))):
        result = OfflineVerifier(trust).verify_text(_intl())
        assert result.verdict == "valid", result.checks
        signature = next(c for c in result.checks if c.name == "signature")
        assert signature.status == "VALID" and "签署批次声明" in signature.reason_zh
        assert ISSUER_ADDRESS in signature.reason_en and signature.details["signer"] == ISSUER_ADDRESS
        assert result.issuer is not None and result.issuer["account"] == ISSUER_ADDRESS
        assert "sm2_key_id" not in result.issuer


def test_an_altered_or_foreign_intl_statement_is_refused_with_the_reason() -> None:
    trust = TrustList.from_json(sign_trust_list_v2(_body(), OPERATOR))
    st = decode_payload(_intl()).statement
    assert st is not None
    cases = {
        "signed at another time": dataclasses.replace(st, signed_at=st.signed_at + 1),
        "by an outsider": decode_payload(_intl(key=bytes(31) + b"\x09")).statement,
        "over an SM3 root the list does not have": decode_payload(_intl(sm3_root=bytes([1]) * 32)).statement,
    }
    for why, statement in cases.items():
        result = OfflineVerifier(trust).verify_text(encode_payload(dataclasses.replace(P, statement=statement,
                                                                                       issuer_account=b"")))
        signature = next(c for c in result.checks if c.name == "signature")
        assert result.verdict == "unknown_issuer" and signature.status == "INVALID", why
        assert "altered or signed by a non-member" in signature.reason_en and "声明被改动" in signature.reason_zh, why
    nobody = dataclasses.replace(st, signature=bytes(64) + b"\x01")  # r = s = 0: no key recovers
    verdict, checks = _verdict(encode_payload(dataclasses.replace(P, statement=nobody, issuer_account=b"")), trust)
    assert verdict == "tampered" and checks["signature"] == "INVALID"
    with pytest.raises(ValidationError, match="65 bytes"):  # (test_lz2_c.py: such wire bytes do not decode)
        BatchStatement(1, b"", bytes(64))


def test_a_batch_of_intl_payloads_costs_one_signature_recovery(monkeypatch: pytest.MonkeyPatch) -> None:
    work = offline_workload(6, batch_size=3)  # two batches of three
    calls: list[bytes] = []

    def counted(statement: BatchStatement, message: bytes) -> str | None:
        calls.append(message)
        return statement_signer(statement, message)

    monkeypatch.setattr(offline, "statement_signer", counted)
    verifier = OfflineVerifier(TrustList.from_json(work.trust_list))
    assert [verifier.verify_text(t).verdict for t in work.texts * 2] == ["valid"] * 12
    assert len(calls) == 2 and len(set(calls)) == 2


def test_a_statement_beside_an_audit_path_that_leads_to_no_root_is_refused_as_tampered() -> None:
    trust = TrustList.from_json(sign_trust_list_v2(_body(), OPERATOR))
    for text in (_intl(), _gm()):
        p = decode_payload(text)
        long_path = dataclasses.replace(p, proof=[*p.proof, bytes(32)])  # one step more than the size allows
        with pytest.raises(ValidationError):
            long_path.computed_batch_root()
        result = OfflineVerifier(trust).verify_payload(long_path)
        signature = next(c for c in result.checks if c.name == "signature")
        assert result.verdict == "tampered" and signature.status == "INVALID"
        assert "does not fit the batch size" in signature.reason_en and "默克尔证明与批次大小不符" in signature.reason_zh
