"""USCC, certificate identifiers (GB/T 36904 style), 星火 BID and account addresses."""

from __future__ import annotations

import base58
import coincurve
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import uscc as stdnum_uscc
from stdnum.iso7064 import mod_37_36

from registry import identifiers as ids
from registry.crypto.hashing import sha256, sm3
from registry.errors import ValidationError

MARKET = "11230000MB1A00028M"  # 省市场监管局 (demo code in seeds/consortium.yaml)
HARBIN_MARKET = "11230100MB1B000456"
LICENCE = MARKET + "001"

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
usccs = st.builds(
    lambda head, tail: head + tail + stdnum_uscc.calc_check_digit(head + tail),
    st.text("0123456789", min_size=8, max_size=8),
    st.text(_USCC_CHARS, min_size=9, max_size=9),
)
serials = st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=20)

# --- USCC ----------------------------------------------------------------------------------------------


def test_valid_uscc_is_returned_compact() -> None:
    assert ids.validate_uscc(" 9111 0000-6000 37341l ") == "91110000600037341L"


@pytest.mark.parametrize(("text", "message"), [
    ("91230100MA1BXXXXXX", "USCC 91230100MA1BXXXXXX has check character X, expected N"),
    ("91230100MA1BXXXXX", "has 17 characters, expected 18"),
    ("9123010AMA1BXXXXXX", "'A' at position 8, expected a digit"),
    ("91110000600037341I", "'I' at position 18, expected a digit or a capital letter other than I, O, S, V, Z"),
])
def test_invalid_uscc_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        ids.validate_uscc(text)
    assert info.value.code == "invalid_uscc"


def test_non_string_uscc_is_refused() -> None:
    with pytest.raises(ValidationError, match="must be a string, got int"):
        ids.validate_uscc(91110000600037341)  # type: ignore[arg-type]


@given(usccs)
def test_uscc_bytes32_round_trip(code: str) -> None:
    raw = ids.uscc_to_bytes32(code)
    assert len(raw) == 32 and raw[18:] == bytes(14)
    assert ids.bytes32_to_uscc(raw) == code


def test_bytes32_that_is_not_a_padded_uscc_is_refused() -> None:
    raw = ids.uscc_to_bytes32(MARKET)
    with pytest.raises(ValidationError, match="zero-padded"):
        ids.bytes32_to_uscc(raw[:31] + b"\x01")
    with pytest.raises(ValidationError, match="must be 32 bytes, got 18 bytes"):
        ids.bytes32_to_uscc(MARKET.encode())
    with pytest.raises(ValidationError, match="check character"):
        ids.bytes32_to_uscc(raw[:17] + b"A" + raw[18:])


# --- certificate identifiers ---------------------------------------------------------------------------


def test_identifier_layout_and_iso7064_check_character() -> None:
    cid = ids.CertificateId.build(LICENCE, HARBIN_MARKET, 42)
    text = str(cid)
    parts = text.split(".")
    assert ".".join(parts[:5]) == "1.2.156.3005.2"
    assert parts[5:9] == [LICENCE, HARBIN_MARKET, "000000000042", "001"]
    assert parts[9] == mod_37_36.calc_check_digit(LICENCE + HARBIN_MARKET + "000000000042" + "001")
    assert mod_37_36.is_valid("".join(parts[5:]))
    assert cid.authority_uscc == MARKET


@given(usccs, usccs, serials, st.integers(1, 999), st.text("0123456789", min_size=3, max_size=3))
def test_identifier_round_trips_through_text(authority: str, issuer: str, serial: str, version: int,
                                             suffix: str) -> None:
    cid = ids.CertificateId.build(authority + suffix, issuer, serial, version)
    assert ids.CertificateId.parse(str(cid)) == cid
    assert ids.classify_identifier(str(cid)) == ("certificate", str(cid))


def test_next_version_bumps_the_version_and_check_character() -> None:
    cid = ids.CertificateId.build(LICENCE, MARKET, 7)
    nxt = cid.next_version()
    assert (nxt.version, nxt.serial, nxt.type_code) == (2, cid.serial, cid.type_code)
    assert str(nxt).split(".")[8] == "002"
    assert ids.CertificateId.parse(str(nxt)) == nxt
    with pytest.raises(ValidationError, match="beyond 999"):
        ids.CertificateId.build(LICENCE, MARKET, 7, version=999).next_version()


def _swap(text: str, index: int, value: str) -> str:
    parts = text.split(".")
    parts[index] = value
    return ".".join(parts)


GOOD = str(ids.CertificateId.build(LICENCE, MARKET, 7))


@pytest.mark.parametrize(("text", "part", "message"), [
    ("2.16.156." + GOOD[15:], "prefix", "must start with 1.2.156.3005.2."),
    (GOOD + ".X", "structure", "must have 5 parts after the prefix"),
    (_swap(GOOD, 5, MARKET + "01"), "type_code", "证照类型代码 must be 21 characters"),
    (_swap(GOOD, 5, MARKET + "0A1"), "type_code", "must end in 3 digits"),
    (_swap(GOOD, 5, MARKET[:-1] + "X001"), "type_code", "defining authority USCC .* has check character X"),
    (_swap(GOOD, 6, MARKET[:-1] + "X"), "issuer_uscc", "颁发机构代码: USCC .* has check character X"),
    (_swap(GOOD, 7, "abc"), "serial", "流水号 must be 1-20 characters of 0-9 A-Z"),
    (_swap(GOOD, 7, "1" * 21), "serial", "流水号 must be 1-20 characters"),
    (_swap(GOOD, 8, "01"), "version", "版本号 must be 3 digits"),
    (_swap(GOOD, 8, "000"), "version", "版本号 must be an integer from 1 to 999"),
    (_swap(GOOD, 9, "AB"), "check", "校验位 must be one character"),
])
def test_malformed_identifier_says_which_part_is_wrong(text: str, part: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        ids.CertificateId.parse(text)
    assert info.value.code == "invalid_identifier"
    assert info.value.details["part"] == part


def test_wrong_check_character_is_refused_with_the_expected_one() -> None:
    good_check = GOOD[-1]
    bad = GOOD[:-1] + ("A" if good_check != "A" else "B")
    with pytest.raises(ValidationError, match=f"expected '{good_check}'"):
        ids.CertificateId.parse(bad)


def test_build_refuses_bad_serials() -> None:
    with pytest.raises(ValidationError, match="between 0 and 999999999999"):
        ids.CertificateId.build(LICENCE, MARKET, 10**12)
    with pytest.raises(ValidationError, match="流水号 must be an integer or a string"):
        ids.CertificateId.build(LICENCE, MARKET, 1.5)  # type: ignore[arg-type]


# --- BID ---------------------------------------------------------------------------------------------


def test_ed25519_bid_hash_matches_the_bif_rfc_003_example() -> None:
    # RFC-003 §5.1 example: SHA-256 of this raw Ed25519 public key, last 22 bytes.
    pub = bytes.fromhex("d308378e6b5ff0c2b4be3da741538004525d6388e5df32deb79e2b0c02f133c7")
    bid = ids.bid_from_ed25519_public_key(pub)
    parsed = ids.parse_bid(bid)
    assert parsed.hash22.hex() == "c6fd8f46575a3b142f16691b522e07a3cb1d5c1a16da"
    assert (parsed.ac, parsed.crypto, parsed.encoding) == (None, "e", "f")
    assert bid.startswith("did:bid:ef")


def test_secp256k1_bid_from_private_key_matches_the_public_key_forms() -> None:
    priv = bytes(31) + b"\x07"
    key = coincurve.PrivateKey(priv)
    uncompressed = key.public_key.format(compressed=False)
    bid = ids.bid_from_private_key(priv)
    assert bid == ids.bid_from_secp256k1_public_key(uncompressed[1:])
    assert bid == ids.bid_from_secp256k1_public_key(uncompressed)
    assert bid == ids.bid_from_secp256k1_public_key(key.public_key.format())
    assert ids.parse_bid(bid).hash22 == sha256(uncompressed[1:])[-22:]
    assert bid.startswith("did:bid:sf")


def test_sm2_bid_uses_sm3_over_the_uncompressed_key_as_bif_does() -> None:
    # BIF's SDK hashes the key as sm-crypto prints it, "04" || x || y (registry/consortium/bid.py)
    pub = bytes(range(64))
    bid = ids.bid_from_sm2_public_key(pub, ac="hlj1")
    parsed = ids.parse_bid(bid)
    assert bid.startswith("did:bid:hlj1:zf")
    assert parsed.hash22 == sm3(b"\x04" + pub)[-22:]
    assert ids.bid_from_sm2_public_key(b"\x04" + pub, ac="hlj1") == bid
    with pytest.raises(ValidationError):
        ids.bid_from_sm2_public_key(b"\x02" + pub)


@given(st.binary(min_size=32, max_size=32), st.one_of(st.none(), st.text("abcdefghijklmnopqrstuvwxyz0123456789",
                                                                      min_size=4, max_size=4)))
def test_bid_round_trip(seed: bytes, ac: str | None) -> None:
    pub = ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    bid = ids.bid_from_ed25519_public_key(pub, ac=ac)
    parsed = ids.parse_bid(bid)
    assert str(parsed) == bid and parsed.ac == ac
    assert ids.is_bid(bid)
    assert ids.classify_identifier(bid) == ("bid", bid)


def test_bid_whose_body_decodes_to_the_wrong_length_is_refused() -> None:
    for size in (21, 23, 32):
        text = "did:bid:ef" + base58.b58encode(bytes([1]) * size).decode()
        with pytest.raises(ValidationError, match=f"decodes to {size} bytes, expected 22") as info:
            ids.parse_bid(text)
        assert info.value.code == "invalid_bid"


@pytest.mark.parametrize(("text", "message"), [
    ("did:web:example.com", "must start with 'did:bid:'"),
    ("did:bid:HLJ1:efw1UbaZMy3uG4u6goPKYMMRC5iqbFZs", "AC code must be 4 lower-case"),
    ("did:bid:hl1:efw1UbaZMy3uG4u6goPKYMMRC5iqbFZs", "AC code must be 4 lower-case"),
    ("did:bid:xfw1UbaZMy3uG4u6goPKYMMRC5iqbFZs", "crypto type must be s .*got 'x'"),
    ("did:bid:etw1UbaZMy3uG4u6goPKYMMRC5iqbFZs", r"encoding must be 'f' \(Base58\), got 't' \(Bech32\)"),
    ("did:bid:ef0OIl", "not Base58"),
    ("did:bid:e", "too short"),
])
def test_malformed_bid_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ids.parse_bid(text)
    assert not ids.is_bid(text)


def test_bad_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="must be 64, 65 or 33 bytes, got 10"):
        ids.bid_from_secp256k1_public_key(bytes(10))
    with pytest.raises(ValidationError, match="not a secp256k1 curve point"):
        ids.bid_from_secp256k1_public_key(b"\x04" + bytes(64))
    with pytest.raises(ValidationError, match="Ed25519 public key must be 32 bytes"):
        ids.bid_from_ed25519_public_key(bytes(31))
    with pytest.raises(ValidationError, match="not a valid secp256k1 private key"):
        ids.bid_from_private_key(bytes(32))


# --- accounts and the resolver ------------------------------------------------------------------------


def test_eth_address_of_private_key_one_is_the_well_known_address() -> None:
    assert ids.eth_address_from_private_key(bytes(31) + b"\x01") == "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"


def test_classify_normalises_each_kind() -> None:
    assert ids.classify_identifier(" 0x7e5f4552091a69125d5dfcb7b8c2659029395bdf ") == (
        "address", "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf")
    assert ids.classify_identifier("11230000mb1a00028m") == ("uscc", MARKET)


@pytest.mark.parametrize(("text", "kind", "message"), [
    ("0x7E5f4552091a69125d5dfcb7b8c2659029395bdf", "address", "fails its EIP-55 checksum"),
    ("0x1234", "address", "0x \\+ 40 hex digits"),
    ("did:bid:ef1", "bid", "decodes to 1 bytes"),
    ("11230000MB1A00028X", "uscc", "check character X, expected M"),
    ("1.2.156.3005.2.x", "certificate", "5 parts"),
])
def test_classify_refuses_malformed_identifiers_of_a_known_kind(text: str, kind: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        ids.classify_identifier(text)
    assert info.value.code == "invalid_identifier"
    assert info.value.details["kind"] == kind


def test_classify_refuses_text_of_no_known_kind() -> None:
    with pytest.raises(ValidationError, match="is none of: BID") as info:
        ids.classify_identifier("hello")
    assert info.value.code == "invalid_identifier"
