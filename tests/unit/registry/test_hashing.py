"""SHA-256 / SM3 helpers and the one-pass streaming file digest."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from hypothesis import given
from hypothesis import strategies as st

from registry.crypto import hashing
from registry.errors import ValidationError


def _sm3_reference(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def test_sm3_matches_the_gb_t_32905_examples() -> None:
    # GB/T 32905-2016 appendix A: "abc" and "abcd" * 16
    assert hashing.sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert hashing.sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_sha256_matches_fips_180_example() -> None:
    assert hashing.sha256(b"abc").hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@given(st.binary(max_size=300))
def test_sm3_fast_path_agrees_with_cryptography(data: bytes) -> None:
    assert hashing.sm3(data) == _sm3_reference(data)
    assert hashing._CryptographySM3(data).digest() == _sm3_reference(data)
    assert hashing.hash_function("sm3")(data) == _sm3_reference(data)
    assert hashing.hash_function("sha256")(data) == hashlib.sha256(data).digest()


def test_streaming_digest_of_a_generated_file_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 12345)  # several chunks plus a ragged tail
    path = tmp_path / "evidence.bin"
    path.write_bytes(data)
    for source in (path, str(path)):
        d = hashing.digest_file(source, chunk=1 << 16)
        assert d.size == len(data)
        assert d.sha256 == hashlib.sha256(data).digest()
        assert d.sm3 == _sm3_reference(data)
    with path.open("rb") as fh:
        assert hashing.digest_file(fh) == hashing.digest_file(path, chunk=7)
        assert not fh.closed


def test_streaming_digest_reads_a_file_object_from_its_position() -> None:
    buf = io.BytesIO(b"header|payload")
    buf.seek(7)
    d = hashing.digest_file(buf, chunk=3)
    assert (d.size, d.sha256) == (7, hashlib.sha256(b"payload").digest())
    assert d.to_json() == {"sha256": d.sha256_hex, "sm3": d.sm3_hex, "size": 7}


def test_streaming_digest_of_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    d = hashing.digest_file(tmp_path / "empty")
    assert d.size == 0 and d.sha256_hex == hashlib.sha256(b"").hexdigest()


def test_streaming_digest_refuses_a_non_positive_chunk() -> None:
    with pytest.raises(ValidationError, match="chunk size must be positive, got 0"):
        hashing.digest_file(io.BytesIO(b"x"), chunk=0)


@given(st.binary(max_size=64))
def test_hex_round_trip(data: bytes) -> None:
    text = hashing.to_hex(data)
    assert hashing.from_hex(text) == data
    assert hashing.from_hex("0x" + text.upper(), length=len(data)) == data


@pytest.mark.parametrize(("text", "length", "message"), [
    ("abc", None, "not hexadecimal"),
    ("zz", None, "not hexadecimal"),
    ("ab cd", None, "not hexadecimal"),
    ("abcd\n", None, "not hexadecimal"),
    ("abcd", 3, r"expected 3 bytes \(6 hex digits\), got 2"),
])
def test_from_hex_says_what_is_wrong(text: str, length: int | None, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        hashing.from_hex(text, length=length)
    assert info.value.code == "invalid_hex"


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValidationError, match="expected one of sha256, sm3"):
        hashing.hash_constructor("sha1")
