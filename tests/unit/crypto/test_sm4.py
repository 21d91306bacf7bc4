"""SM4-CTR (registry/crypto/sm4.py): the AES-NI module (registry/crypto/_sm4.c) against GB/T 32907's example,
OpenSSL's SM4 through `cryptography` and the openssl command line; its version-2 envelope against the one
registry/formats/envelope.py specifies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.crypto import sm4
from registry.formats.envelope import SM4_KEY_LABEL, open_, seal_v2
from tests.unit.crypto._openssl import needs_openssl, openssl, write

_HAS_AES_NI = "aes" in Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else False
needs_module = pytest.mark.skipif(not sm4.ACCELERATED, reason="no AES-NI here: sm4.ctr is OpenSSL's")
needs_sealing = pytest.mark.skipif(sm4.SEAL_V2 is None, reason="no AES-NI or no SM3: envelope.seal_v2 seals")


def test_the_module_is_used_wherever_the_cpu_has_aes_ni() -> None:
    assert sm4.ACCELERATED == _HAS_AES_NI  # a build without the module would fall back unnoticed


@pytest.mark.parametrize("ctr", [sm4.ctr, sm4.openssl_ctr], ids=["sm4.ctr", "openssl"])
def test_the_standards_example(ctr: object) -> None:
    """GB/T 32907-2016 appendix A, example 1: the key and the plaintext 0123456789abcdeffedcba9876543210. The
    first CTR block is the encryption of the counter block: with zeros as data it is the ciphertext."""
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    assert ctr(key, key, bytes(16)).hex() == "681edf34d206965e86b3e94f536e4246"  # type: ignore[operator]


@needs_module
@settings(max_examples=300, deadline=None)
@given(key=st.binary(min_size=16, max_size=16), iv=st.binary(min_size=16, max_size=16),
       data=st.binary(max_size=700))
def test_the_same_key_stream_as_openssl(key: bytes, iv: bytes, data: bytes) -> None:
    assert sm4.ctr(key, iv, data) == sm4.openssl_ctr(key, iv, data)


@needs_module
@pytest.mark.parametrize("iv", [b"\xff" * 16, bytes(8) + b"\xff" * 8, b"\x01" + b"\xff" * 15, bytes(15) + b"\xf9"],
                         ids=["wraps to zero", "carries into the high half", "carries far", "within a call"])
def test_the_counter_carries_over_all_128_bits(iv: bytes) -> None:
    key, data = os.urandom(16), os.urandom(16 * 40 + 5)  # 41 blocks: carries inside an 8-block group and between
    assert sm4.ctr(key, iv, data) == sm4.openssl_ctr(key, iv, data)


@needs_module
def test_large_inputs_and_every_tail_length() -> None:
    key, iv = os.urandom(16), os.urandom(16)
    for n in [*range(0, 300), 4095, 4096, 4097, 1 << 20]:
        data = os.urandom(n)
        assert sm4.ctr(key, iv, data) == sm4.openssl_ctr(key, iv, data), n


@needs_openssl
def test_openssl_enc_decrypts_it(tmp_path: Path) -> None:
    key, iv, plaintext = os.urandom(16), os.urandom(16), "电子证照 SM4-CTR".encode() * 40
    ciphertext = write(tmp_path / "ciphertext.bin", sm4.ctr(key, iv, plaintext))
    out = openssl("enc", "-d", "-sm4-ctr", "-K", key.hex(), "-iv", iv.hex(), "-in", ciphertext).stdout
    assert out == plaintext


@pytest.mark.parametrize(("key", "iv"), [(bytes(15), bytes(16)), (bytes(16), bytes(17)), (b"", b"")])
def test_wrong_sizes_are_refused(key: bytes, iv: bytes) -> None:
    with pytest.raises(ValueError, match="16-byte key and a 16-byte counter block"):
        sm4.ctr(key, iv, b"data")


@needs_sealing
@settings(max_examples=200, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), iv=st.binary(min_size=16, max_size=16), aad=st.binary(max_size=300),
       plaintext=st.binary(max_size=3000))
def test_the_modules_envelope_is_the_specified_one(key: bytes, iv: bytes, aad: bytes, plaintext: bytes) -> None:
    """`sm4.SEAL_V2` (C) makes byte for byte the blob registry/formats/envelope.py specifies step by step; the
    envelope tests check that one against openssl."""
    assert sm4.SEAL_V2 is not None
    assert sm4.SEAL_V2(key, iv, aad, plaintext, SM4_KEY_LABEL) == seal_v2(key, iv, aad, plaintext)
    assert open_(seal_v2(key, iv, aad, plaintext), key, aad=aad) == plaintext


@needs_sealing
@pytest.mark.parametrize(("key", "iv"), [(bytes(31), bytes(16)), (bytes(32), bytes(15))])
def test_the_modules_envelope_refuses_wrong_sizes(key: bytes, iv: bytes) -> None:
    assert sm4.SEAL_V2 is not None
    with pytest.raises(ValueError, match="32-byte key and a 16-byte IV"):
        sm4.SEAL_V2(key, iv, b"", b"data", SM4_KEY_LABEL)
