"""Issuer signatures on offline payloads: recovery, tampering, malformed signatures."""

from __future__ import annotations

import dataclasses
import zlib

import cbor2
import coincurve
import pytest
from eth_account import Account

from registry.errors import PayloadFormatError, ProofError, ValidationError
from registry.formats.qr import PREFIX, OfflinePayload, b45encode, body_bytes, decode_payload, recover_signer, sign_payload
from tests.unit.qr.factories import ISSUER_ADDRESS, ISSUER_KEY, make_payload


def _text(body: bytes, signature: bytes) -> str:
    return PREFIX + b45encode(zlib.compress(cbor2.dumps([body, signature]), 9))


def test_signer_is_the_issuers_ethereum_account(offline_text: str) -> None:
    assert recover_signer(decode_payload(offline_text)) == ISSUER_ADDRESS
    assert Account.from_key(ISSUER_KEY).address == ISSUER_ADDRESS


def test_signature_is_recoverable_ecdsa_over_sha256_of_the_body(signed_payload: OfflinePayload) -> None:
    sig = signed_payload.signature
    assert len(sig) == 65 and sig[64] in (0, 1)
    public = coincurve.PrivateKey(ISSUER_KEY).public_key
    # coincurve's verify() wants the DER/compact signature without the recovery id; SHA-256 is its default hasher.
    compact = coincurve.ecdsa.cdata_to_der(coincurve.ecdsa.recoverable_convert(
        coincurve.ecdsa.deserialize_recoverable(sig)))
    assert public.verify(compact, body_bytes(signed_payload))


def test_changing_one_disclosed_value_changes_the_signer(signed_payload: OfflinePayload) -> None:
    salt, _ = signed_payload.disclosed["持证主体"]
    forged = dataclasses.replace(signed_payload, disclosed={**signed_payload.disclosed, "持证主体": (salt, "别的公司")})
    assert recover_signer(forged) != ISSUER_ADDRESS


def test_one_changed_body_byte_never_recovers_the_issuer(signed_payload: OfflinePayload) -> None:
    """Every single-byte change of the signed body is refused as malformed or recovers another address."""
    body, sig = body_bytes(signed_payload), signed_payload.signature
    outcomes = {"other_signer": 0, "rejected": 0}
    for i in range(len(body)):
        tampered = body[:i] + bytes((body[i] ^ 0x01,)) + body[i + 1:]
        try:
            signer = recover_signer(decode_payload(_text(tampered, sig)))
        except (PayloadFormatError, ProofError):
            outcomes["rejected"] += 1
            continue
        assert signer != ISSUER_ADDRESS, f"byte {i} changed and the issuer still recovers"
        outcomes["other_signer"] += 1
    # Most bytes are salts, hashes and text: those decode fine and just recover another key.
    assert outcomes["other_signer"] > len(body) // 2


def test_tampered_seed_byte_changes_every_salt_and_the_signer(signed_payload: OfflinePayload) -> None:
    body = body_bytes(signed_payload)
    seed = signed_payload.salt_seed
    assert len(seed) == 16 and body.count(seed) == 1
    at = body.index(seed)
    tampered = body[:at] + bytes((body[at] ^ 0xFF,)) + body[at + 1:]
    decoded = decode_payload(_text(tampered, signed_payload.signature))
    assert all(decoded.disclosed[k][0] != salt for k, (salt, _) in signed_payload.disclosed.items())
    assert decoded.batch_root != signed_payload.batch_root  # other salts, other leaves, another root
    assert recover_signer(decoded) != ISSUER_ADDRESS
    assert decoded.issuer_account != signed_payload.issuer_account


def test_tampered_salt_byte_recovers_a_different_address() -> None:
    signed = sign_payload(make_payload(hide=("住所",)), ISSUER_KEY)  # hidden fields: per-field salts travel
    body = body_bytes(signed)
    salt = signed.disclosed["持证主体代码"][0]
    at = body.index(salt)
    tampered = body[:at] + bytes((body[at] ^ 0xFF,)) + body[at + 1:]
    decoded = decode_payload(_text(tampered, signed.signature))
    assert decoded.disclosed["持证主体代码"][0] != salt
    assert decoded.batch_root != signed.batch_root
    assert recover_signer(decoded) != ISSUER_ADDRESS


def test_tampered_proof_byte_yields_another_root_and_another_signer(signed_payload: OfflinePayload) -> None:
    """The root is not on the wire, but every input of it is under the signature: a changed audit path
    gives a root the trust list does not know, and the issuer's signature no longer recovers."""
    body = body_bytes(signed_payload)
    at = body.index(signed_payload.proof[3])
    tampered = body[:at] + bytes((body[at] ^ 0x01,)) + body[at + 1:]
    decoded = decode_payload(_text(tampered, signed_payload.signature))
    assert decoded.proof[3] != signed_payload.proof[3]
    assert decoded.batch_root != signed_payload.batch_root
    assert recover_signer(decoded) != ISSUER_ADDRESS


def test_every_changed_signature_byte_fails_or_recovers_another_address(signed_payload: OfflinePayload) -> None:
    sig = signed_payload.signature
    for i in range(64):
        bad = sig[:i] + bytes((sig[i] ^ 0x80,)) + sig[i + 1:]
        try:
            assert recover_signer(dataclasses.replace(signed_payload, signature=bad)) != ISSUER_ADDRESS
        except ProofError as exc:
            assert exc.code == "bad_signature"


def test_unsigned_payload_has_no_signer() -> None:
    with pytest.raises(ProofError, match="not signed") as err:
        recover_signer(make_payload())
    assert err.value.code == "bad_signature"


@pytest.mark.parametrize("recid", [4, 27, 28])
def test_out_of_range_recovery_id_is_a_bad_signature(signed_payload: OfflinePayload, recid: int) -> None:
    sig = signed_payload.signature[:64] + bytes((recid,))
    with pytest.raises(ProofError, match=f"recovery id must be 0..3, got {recid}") as err:
        recover_signer(dataclasses.replace(signed_payload, signature=sig))
    assert err.value.code == "bad_signature"


def test_signature_that_recovers_no_key_is_a_bad_signature(signed_payload: OfflinePayload) -> None:
    with pytest.raises(ProofError, match="no public key recovers") as err:
        recover_signer(dataclasses.replace(signed_payload, signature=bytes(65)))  # r = s = 0
    assert err.value.code == "bad_signature"


@pytest.mark.parametrize("key", [b"", bytes(32), b"\xff" * 32, bytes(31) + b"\x01" + b"\x00"])
def test_invalid_private_keys_are_refused(key: bytes) -> None:
    with pytest.raises(ValidationError, match="private key must be 32 bytes") as err:
        sign_payload(make_payload(), key)
    assert err.value.code == "invalid_private_key"


def test_signing_is_deterministic_rfc6979(signed_payload: OfflinePayload) -> None:
    assert sign_payload(make_payload(), ISSUER_KEY).signature == signed_payload.signature


def test_offline_verification_is_repeatable_and_keeps_no_state(offline_text: str) -> None:
    """Decoding and recovering the same payload many times gives the same signer every time (no cache keyed on
    mutable state). Its speed (>= 5,000/s target) is measured by `lianzheng bench verify`, not by a timed test:
    CI machines are shared and noisy."""
    signers = {recover_signer(decode_payload(offline_text)) for _ in range(300)}
    assert len(signers) == 1
