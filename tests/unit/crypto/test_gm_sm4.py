"""SM4 envelopes (version 2: SM4-CTR + HMAC-SM3) checked with the openssl command line, and tampering."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.crypto.profiles import CryptoProfile
from registry.errors import PayloadFormatError, ProofError
from registry.formats.envelope import (
    SM4_IV_LEN,
    SM4_TAG_LEN,
    EnvelopeAlgorithm,
    aad_for,
    open_,
    seal,
    sm4_mac_input,
    sm4_subkeys,
)
from tests.unit.crypto._openssl import needs_openssl, openssl, write

SM4 = EnvelopeAlgorithm.SM4_CTR_HMAC_SM3
AAD = aad_for("1.2.156.3005.2.X.Y.1.001.A")
DOC = '{"name":"张三","证照编号":"HLJ-2026-0001"}'.encode()


def test_profiles_choose_the_construction_and_old_blobs_still_open() -> None:
    assert EnvelopeAlgorithm.for_profile(CryptoProfile.GM) is SM4
    assert EnvelopeAlgorithm.for_profile(CryptoProfile.INTL) is EnvelopeAlgorithm.AES_256_GCM
    key, aes_blob = seal(DOC, aad=AAD)
    _, sm4_blob = seal(DOC, aad=AAD, key=key, algorithm=SM4)
    assert (aes_blob[0], sm4_blob[0]) == (1, 2)
    assert open_(aes_blob, key, aad=AAD) == open_(sm4_blob, key, aad=AAD) == DOC
    assert len(sm4_blob) == 1 + SM4_IV_LEN + len(DOC) + SM4_TAG_LEN


@needs_openssl
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plaintext=st.binary(max_size=300), aad=st.binary(max_size=40))
def test_openssl_checks_the_tag_and_decrypts(tmp_path: Path, plaintext: bytes, aad: bytes) -> None:
    key, blob = seal(plaintext, aad=aad, algorithm=SM4)
    k_enc, k_mac = _openssl_subkeys(tmp_path, key)
    body, tag = blob[:-SM4_TAG_LEN], blob[-SM4_TAG_LEN:]
    mac_input = write(tmp_path / "mac-input.bin", sm4_mac_input(body, aad))
    mac = openssl("dgst", "-sm3", "-mac", "HMAC", "-macopt", f"hexkey:{k_mac.hex()}", "-r", mac_input).stdout
    assert mac.split()[0].decode() == tag.hex()
    ciphertext = write(tmp_path / "ciphertext.bin", body[1 + SM4_IV_LEN:])
    out = openssl("enc", "-d", "-sm4-ctr", "-K", k_enc.hex(), "-iv", body[1:1 + SM4_IV_LEN].hex(),
                  "-in", ciphertext).stdout
    assert out == plaintext


@needs_openssl
def test_what_openssl_encrypts_opens_in_lianzheng(tmp_path: Path) -> None:
    key, iv = bytes(range(32)), bytes(range(100, 116))
    k_enc, k_mac = _openssl_subkeys(tmp_path, key)
    assert (k_enc, k_mac) == sm4_subkeys(key)
    plain = write(tmp_path / "plain", DOC * 7)
    ciphertext = openssl("enc", "-sm4-ctr", "-K", k_enc.hex(), "-iv", iv.hex(), "-in", plain).stdout
    body = bytes((SM4,)) + iv + ciphertext
    mac_input = write(tmp_path / "mac-input.bin", sm4_mac_input(body, AAD))
    tag = openssl("dgst", "-sm3", "-mac", "HMAC", "-macopt", f"hexkey:{k_mac.hex()}", "-binary", mac_input).stdout
    assert open_(body + tag, key, aad=AAD) == DOC * 7


def test_tampering_wrong_key_and_wrong_identifier_are_refused() -> None:
    key, blob = seal(DOC, aad=AAD, algorithm=SM4)
    for i in (1, 1 + SM4_IV_LEN, len(blob) - SM4_TAG_LEN - 1, len(blob) - 1):  # iv, ciphertext, tag
        flipped = blob[:i] + bytes([blob[i] ^ 0x01]) + blob[i + 1:]
        with pytest.raises(ProofError) as err:
            open_(flipped, key, aad=AAD)
        assert err.value.code == "decrypt_failed"
    for other_key, aad in ((key[:16] + bytes(16), AAD), (bytes(16) + key[16:], AAD), (key, aad_for("other"))):
        with pytest.raises(ProofError):
            open_(blob, other_key, aad=aad)
    with pytest.raises(ProofError):  # an SM4 blob relabelled as AES does not open either
        open_(b"\x01" + blob[1:], key, aad=AAD)
    with pytest.raises(PayloadFormatError) as fmt:
        open_(blob[:1 + SM4_IV_LEN + SM4_TAG_LEN - 1], key, aad=AAD)
    assert fmt.value.code == "truncated_payload"


def _openssl_subkeys(tmp_path: Path, key: bytes) -> tuple[bytes, bytes]:
    """k_enc, k_mac as the module docstring tells a third party to derive them, with OpenSSL alone."""
    label = write(tmp_path / "label", b"lianzheng/envelope/2")
    derived = openssl("dgst", "-sm3", "-mac", "HMAC", "-macopt", f"hexkey:{key.hex()}", "-binary", label).stdout
    return derived[:16], derived[16:]
