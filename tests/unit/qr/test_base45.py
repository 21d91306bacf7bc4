"""Base45 against RFC 9285 §4.3 examples, its error cases, and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.errors import PayloadFormatError
from registry.formats.qr import BASE45_ALPHABET, b45decode, b45encode

RFC_9285_EXAMPLES = [
    (b"AB", "BB8"),
    (b"Hello!!", "%69 VD92EX0"),
    (b"base-45", "UJCLQE7W581"),
    (b"ietf!", "QED8WEX0"),
    (b"", ""),
]


@pytest.mark.parametrize(("raw", "text"), RFC_9285_EXAMPLES)
def test_rfc_9285_examples_encode_and_decode(raw: bytes, text: str) -> None:
    assert b45encode(raw) == text
    assert b45decode(text) == raw


def test_alphabet_is_the_qr_alphanumeric_set_in_rfc_order() -> None:
    assert len(BASE45_ALPHABET) == 45
    assert BASE45_ALPHABET[36:] == " $%*+-./:"


def test_extreme_byte_values_encode_within_the_alphabet() -> None:
    assert b45encode(b"\xff\xff") == "FGW"  # 65535 = 15 + 45*21 + 2025*32
    assert b45encode(b"\xff") == "U5"  # 255 = 30 + 45*5
    assert b45decode("FGW") == b"\xff\xff"


def test_group_above_65535_is_rejected() -> None:
    # RFC 9285 §4.3: "GGW" would be 65536.
    with pytest.raises(PayloadFormatError, match="65536 > 65535") as err:
        b45decode("GGW")
    assert err.value.code == "invalid_payload"


def test_final_pair_above_255_is_rejected() -> None:
    with pytest.raises(PayloadFormatError, match="final Base45 pair encodes 256 > 255"):
        b45decode("V5")


def test_character_outside_the_alphabet_is_rejected_with_its_position() -> None:
    with pytest.raises(PayloadFormatError, match=r"character 'a' at position 3") as err:
        b45decode("BB8a")
    assert err.value.code == "invalid_payload"


def test_non_ascii_text_is_rejected() -> None:
    with pytest.raises(PayloadFormatError, match="non-ASCII character at position 1"):
        b45decode("B证8")


def test_single_dangling_character_means_truncated() -> None:
    with pytest.raises(PayloadFormatError, match="truncated") as err:
        b45decode("BB8B")
    assert err.value.code == "truncated_payload"


@given(st.binary(max_size=3000))
def test_round_trip_any_bytes(raw: bytes) -> None:
    text = b45encode(raw)
    assert set(text) <= set(BASE45_ALPHABET)
    assert len(text) == len(raw) // 2 * 3 + len(raw) % 2 * 2
    assert b45decode(text) == raw
