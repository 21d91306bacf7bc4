"""registry.crypto.signing: the one signer. Its bytes must equal what each artifact was signed with before
(coincurve's recoverable form over SHA-256, eth-account's personal_sign), so old artifacts keep verifying."""

from __future__ import annotations

import hashlib

import coincurve
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.address import to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from registry.crypto.signing import (
    SignatureAlgorithm,
    SignatureScheme,
    Signer,
    checksum_address,
    recover,
    recover_or_none,
    verify,
)
from registry.errors import SignatureError, ValidationError

KEY = bytes(31) + b"\x01"
ADDRESS = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"  # the well-known account of private key 1
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # the group order (SEC 2 §2.4.1)
keys = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))


def test_signer_address_is_the_ethereum_account_of_the_key() -> None:
    signer = Signer.from_private_key(KEY)
    assert signer.address == ADDRESS == Account.from_key(KEY).address
    assert signer.algorithm is SignatureAlgorithm.SECP256K1
    assert signer.public_key[0] == 4 and len(signer.public_key) == 65


@given(key=keys, body=st.binary(max_size=200))
def test_recoverable_signature_is_coincurves_over_sha256_of_the_body(key: bytes, body: bytes) -> None:
    # What offline QR payloads were signed with: coincurve's default hasher is SHA-256.
    old = coincurve.PrivateKey(key).sign_recoverable(body)
    new = Signer.from_private_key(key).sign(hashlib.sha256(body).digest(), SignatureScheme.RECOVERABLE)
    assert new == old


@given(key=keys, digest=st.binary(min_size=32, max_size=32))
def test_eip191_signature_is_eth_accounts_personal_sign(key: bytes, digest: bytes) -> None:
    # What checkpoints and audit reports were signed with.
    old = Account.sign_message(encode_defunct(primitive=digest), private_key=key).signature
    signer = Signer.from_private_key(key)
    new = signer.sign(digest, SignatureScheme.EIP191)
    assert new == bytes(old)
    assert recover(digest, new, SignatureScheme.EIP191) == signer.address


@pytest.mark.parametrize("scheme", list(SignatureScheme))
def test_a_changed_digest_recovers_another_account(scheme: SignatureScheme) -> None:
    digest = hashlib.sha256(b"manifest").digest()
    sig = Signer.from_private_key(KEY).sign(digest, scheme)
    assert verify(digest, sig, scheme, ADDRESS.lower())
    other = bytes([digest[0] ^ 1]) + digest[1:]
    assert recover_or_none(other, sig, scheme) != ADDRESS
    assert not verify(other, sig, scheme, ADDRESS)


def test_malformed_signatures_are_signature_errors() -> None:
    digest = bytes(32)
    sig = Signer.from_private_key(KEY).sign(digest, SignatureScheme.RECOVERABLE)
    with pytest.raises(SignatureError, match="must be 65 bytes, got 64 bytes") as err:
        recover(digest, sig[:64], SignatureScheme.RECOVERABLE)
    assert err.value.code == "bad_signature"
    with pytest.raises(SignatureError, match="recovery id must be 0..3, got 4"):
        recover(digest, sig[:64] + b"\x04", SignatureScheme.RECOVERABLE)
    with pytest.raises(SignatureError, match="no public key recovers"):
        recover(digest, bytes(64) + b"\x00", SignatureScheme.RECOVERABLE)
    assert recover_or_none(digest, bytes(65), SignatureScheme.EIP191) is None


@pytest.mark.parametrize("key", [b"", bytes(32), bytes(31), b"\xff" * 32, "00" * 32])
def test_invalid_private_keys_are_refused(key: bytes) -> None:
    with pytest.raises(ValidationError, match="private key must be 32 bytes") as err:
        Signer.from_private_key(key)
    assert err.value.code == "invalid_private_key"


def test_only_32_byte_digests_are_signed() -> None:
    with pytest.raises(ValidationError, match="must be 32 bytes, got 31 bytes") as err:
        Signer.from_private_key(KEY).sign(bytes(31), SignatureScheme.RECOVERABLE)
    assert err.value.code == "invalid_digest"


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValidationError, match="not one of the secp256k1 schemes") as err:
        Signer.from_private_key(KEY).sign(bytes(32), "sm2-sm3")  # type: ignore[arg-type]
    assert err.value.code == "unsupported_algorithm"


@given(account=st.binary(min_size=20, max_size=20))
def test_checksum_address_is_eip55(account: bytes) -> None:
    assert checksum_address(account) == to_checksum_address(account)
