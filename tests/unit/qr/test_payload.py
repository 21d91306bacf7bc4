"""The LZ2 offline payload codec: round trips, deterministic encoding, error classification."""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.certificates.documents import derive_salt
from registry.errors import PayloadFormatError, ValidationError
from registry.formats.qr import (
    FIELD_CODES,
    PREFIX,
    OfflinePayload,
    b45decode,
    b45encode,
    body_bytes,
    decode_payload,
    encode_payload,
)
from tests.unit.qr.factories import REALISTIC_FIELDS, as_decoded, make_payload

# Positions in the LZ2 body array (registry.qr's module docstring).
SEED, DISCLOSED, HIDDEN, INDEX, SIZE, PROOF, LEDGER = 3, 4, 5, 6, 7, 8, 10


def _text_from(body: Any, signature: bytes = b"", *, raw_body: bytes | None = None) -> str:
    """An LZ2 text around an arbitrary (possibly malformed) body."""
    body_cbor = raw_body if raw_body is not None else cbor2.dumps(body, canonical=True)
    return PREFIX + b45encode(zlib.compress(cbor2.dumps([body_cbor, signature]), 9))


def _body_list(payload: OfflinePayload) -> list[Any]:
    return list(cbor2.loads(body_bytes(payload)))


# --- round trips -----------------------------------------------------------------------------------------


def test_realistic_payload_round_trips(signed_payload: OfflinePayload, offline_text: str) -> None:
    decoded = decode_payload(offline_text)
    assert decoded == as_decoded(signed_payload)
    assert decoded.disclosed == signed_payload.disclosed and decoded.batch_root == signed_payload.batch_root
    assert decoded.issuer_account == signed_payload.issuer_account and decoded.tx_hash == b""
    assert decoded.disclosed["经营范围"][1] == REALISTIC_FIELDS["经营范围"]


def test_payload_with_hidden_fields_round_trips_with_per_field_salts() -> None:
    payload = make_payload(hide=("持证主体代码", "住所"))
    assert payload.salt_seed == b""
    decoded = decode_payload(encode_payload(payload))
    assert decoded == as_decoded(payload)
    assert decoded.hidden == payload.hidden and decoded.batch_root == payload.batch_root


def test_text_is_pure_qr_alphanumeric(offline_text: str) -> None:
    assert offline_text.startswith("LZ2:")
    assert set(offline_text) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


def test_encoding_is_deterministic_whatever_the_dict_order() -> None:
    payload = make_payload()
    shuffled = dataclasses.replace(payload, disclosed=dict(reversed(payload.disclosed.items())))
    assert body_bytes(shuffled) == body_bytes(payload)
    assert encode_payload(shuffled) == encode_payload(payload)


def test_standard_field_names_travel_as_small_integers_and_others_as_text() -> None:
    payload = make_payload(disclosed={"证照名称": (bytes(16), "营业执照"), "自定义字段": (bytes(16), 1)})
    disclosed = _body_list(payload)[DISCLOSED]
    assert set(disclosed) == {FIELD_CODES.index("证照名称"), "自定义字段"}


def test_chinese_text_values_travel_as_gb18030_bytes_and_other_text_as_utf8() -> None:
    values = {"a": "营业执照（副本）", "b": "ASCII only", "c": "生僻字𠀀", "d": "emoji 🙂", "e": "Ａ１・"}
    payload = make_payload(disclosed={k: (bytes(16), v) for k, v in values.items()})
    wire = {k: v[1] for k, v in _body_list(payload)[DISCLOSED].items()}
    assert wire["a"] == "营业执照（副本）".encode("gb18030")
    assert wire["b"] == "ASCII only"
    assert wire["c"] == "生僻字𠀀"  # outside the GBK set: UTF-8 text, not a 4-byte GB 18030 code
    assert wire["d"] == "emoji 🙂"
    assert wire["e"] == "Ａ１・"  # U+30FB is not in the safe set
    assert {k: v[1] for k, v in decode_payload(encode_payload(payload)).disclosed.items()} == values


def test_every_value_type_round_trips() -> None:
    values: dict[str, Any] = {"s": "x", "n": None, "t": True, "f": False, "i": -(2**53) + 1, "j": 2**53 - 1, "z": 0}
    payload = make_payload(disclosed={k: (bytes(16), v) for k, v in values.items()})
    decoded = decode_payload(encode_payload(payload))
    assert {k: v[1] for k, v in decoded.disclosed.items()} == values
    assert decoded.disclosed["t"][1] is True and type(decoded.disclosed["z"][1]) is int


def test_unsigned_payload_round_trips_with_empty_signature_and_no_issuer() -> None:
    payload = make_payload()
    decoded = decode_payload(encode_payload(payload))
    assert decoded.signature == b"" and decoded.issuer_account == b""
    assert decoded == as_decoded(payload)


def _path_len(index: int, size: int) -> int:
    """Length of the RFC 6962 audit path of leaf ``index`` in a tree of ``size`` (§2.1.1 PATH)."""
    n = 0
    while size > 1:
        k = 1 << ((size - 1).bit_length() - 1)  # largest power of two below size
        index, size = (index, k) if index < k else (index - k, size - k)
        n += 1
    return n


_names = st.one_of(st.sampled_from(FIELD_CODES), st.text(min_size=1, max_size=10))
_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), st.text(max_size=30),
    st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), max_size=30),
)


@st.composite
def payloads(draw: st.DrawFn) -> OfflinePayload:
    """Any encodable payload: salts from a seed (then nothing hidden) or per field, an audit path whose length
    fits (index, size) and the batch root it leads to, an empty issuer account (the decoder recovers it)."""
    seed = draw(st.one_of(st.just(b""), st.binary(min_size=16, max_size=16)))
    values = draw(st.dictionaries(_names, _values, max_size=8))
    if seed:
        disclosed, hidden = {k: (derive_salt(seed, k), v) for k, v in values.items()}, {}
    else:
        salts = draw(st.lists(st.binary(min_size=16, max_size=16), min_size=len(values), max_size=len(values)))
        disclosed = {k: (salt, v) for (k, v), salt in zip(values.items(), salts, strict=True)}
        hidden = draw(st.dictionaries(_names, st.binary(min_size=32, max_size=32), max_size=5))
    size = draw(st.one_of(st.integers(1, 2000), st.integers(1, 2**64 - 1)))
    index = draw(st.integers(0, size - 1))
    h32, h20, u64 = st.binary(min_size=32, max_size=32), st.binary(min_size=20, max_size=20), st.integers(0, 2**64 - 1)
    proof = draw(st.lists(h32, min_size=_path_len(index, size), max_size=_path_len(index, size)))
    payload = OfflinePayload(
        identifier=draw(st.text(min_size=1, max_size=80)), type_code=draw(st.text(min_size=1, max_size=21)),
        disclosed=disclosed, hidden={k: v for k, v in hidden.items() if k not in disclosed},
        batch_root=bytes(32), index=index, size=size, proof=proof, chain_id=draw(u64), ledger=draw(h20),
        block_number=draw(u64), block_timestamp=draw(u64), tx_hash=draw(st.one_of(st.just(b""), h32)),
        issuer_account=b"", signature=draw(st.one_of(st.just(b""), st.binary(min_size=65, max_size=65))),
        salt_seed=seed,
    )
    return dataclasses.replace(payload, batch_root=payload.computed_batch_root())


@settings(max_examples=200, deadline=None)
@given(payloads())
def test_any_payload_round_trips(payload: OfflinePayload) -> None:
    text = encode_payload(payload)
    assert decode_payload(text) == as_decoded(payload)
    assert encode_payload(decode_payload(text)) == text


# --- classification of bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "HELLO", "https://example.com/", "lz1:ABC", "LZ:ABC", "XLZ1:ABC"])
def test_text_without_our_prefix_is_not_ours(text: str) -> None:
    with pytest.raises(PayloadFormatError, match="Not a Lianzheng certificate QR code") as err:
        decode_payload(text)
    assert err.value.code == "not_lianzheng_qr"


@pytest.mark.parametrize("prefix", ["LZ1:", "LZ3:", "LZ0:", "LZ12:", "LZ02:"])
def test_other_format_versions_are_unsupported(offline_text: str, prefix: str) -> None:
    with pytest.raises(PayloadFormatError, match=f"expected LZ2, got {prefix[:-1]}") as err:
        decode_payload(prefix + offline_text[4:])
    assert err.value.code == "unsupported_version"


def test_body_version_must_match_the_prefix() -> None:
    body = _body_list(make_payload())
    body[0] = 1
    with pytest.raises(PayloadFormatError, match="body says 1") as err:
        decode_payload(_text_from(body))
    assert err.value.code == "unsupported_version"


def test_every_truncation_is_reported_as_truncated(offline_text: str) -> None:
    for cut in range(len(PREFIX), len(offline_text)):
        with pytest.raises(PayloadFormatError, match="truncated") as err:
            decode_payload(offline_text[:cut])
        assert err.value.code == "truncated_payload", cut


def test_lower_case_text_is_invalid_with_a_clear_message(offline_text: str) -> None:
    with pytest.raises(PayloadFormatError, match=r"not in the Base45 alphabet") as err:
        decode_payload(PREFIX + offline_text[4:].lower())
    assert err.value.code == "invalid_payload"


def test_valid_base45_that_is_not_zlib_is_invalid() -> None:
    with pytest.raises(PayloadFormatError, match="zlib data is corrupt") as err:
        decode_payload(PREFIX + b45encode(b"not a zlib stream at all"))
    assert err.value.code == "invalid_payload"


def test_trailing_bytes_after_the_zlib_stream_are_invalid(offline_text: str) -> None:
    data = b45decode(offline_text[4:]) + b"\x00"
    with pytest.raises(PayloadFormatError, match="1 unexpected bytes after the compressed stream"):
        decode_payload(PREFIX + b45encode(data))


def test_zlib_bomb_is_refused() -> None:
    with pytest.raises(PayloadFormatError, match="inflates to more than 65536 bytes"):
        decode_payload(PREFIX + b45encode(zlib.compress(bytes(1 << 20), 9)))


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        (b"\xff", "envelope is not valid CBOR"),
        (cbor2.dumps({"a": 1}), "must be a CBOR array"),
        (cbor2.dumps([b"x"]), "must be a CBOR array"),
        (cbor2.dumps([b"\x01", b""]), "body must be a CBOR array of 13 items"),
        (cbor2.dumps(["body", b""]), "must be a CBOR array"),
    ],
)
def test_malformed_envelopes_are_invalid(envelope: bytes, message: str) -> None:
    with pytest.raises(PayloadFormatError, match=message) as err:
        decode_payload(PREFIX + b45encode(zlib.compress(envelope)))
    assert err.value.code == "invalid_payload"


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (SEED, b"\x00" * 15, "salt seed must be 16 bytes or empty"),
        (SEED, "", "salt seed must be 16 bytes or empty"),
        (PROOF, b"\x00" * 33, "proof must be a byte string of 32-byte hashes"),
        (PROOF, b"\x00" * 32 * 9, "proof of 9 hashes does not fit leaf 517 of a batch of 1000"),
        (PROOF, b"\x00" * 32 * 11, "proof of 11 hashes does not fit leaf 517 of a batch of 1000"),
        (INDEX, 5000, "index must be below size 1000"),
        (SIZE, -1, "size must be an integer"),
        (LEDGER, "0x00", "ledger must be 20 bytes"),
        (1, "", "identifier must be a non-empty string"),
        (DISCLOSED, {99: [bytes(16), "x"]}, "unknown field code 99"),
        (DISCLOSED, {0: [bytes(15), "x"]}, "salt must be 16 bytes"),
        (DISCLOSED, {0: [bytes(16)]}, r"must be \[salt, value\] \(no salt seed\)"),
        (DISCLOSED, {0: "营业执照"}, r"must be \[salt, value\] \(no salt seed\)"),
        (DISCLOSED, {0: [bytes(16), 1.5]}, "has type float"),
        (DISCLOSED, {0: [bytes(16), 2**53]}, r"value must be str, int \(±\(2\*\*53-1\)\)"),
        (DISCLOSED, {0: [bytes(16), b"\xff\xff\xff"]}, "is not GB 18030 text"),
        (HIDDEN, {"自定义": bytes(31)}, "must be 32 bytes"),
        (HIDDEN, [], "must be CBOR maps"),
    ],
)
def test_malformed_body_fields_are_invalid(index: int, value: Any, message: str) -> None:
    body = _body_list(make_payload(hide=("住所",)))  # per-field salts on the wire
    body[index] = value
    with pytest.raises(PayloadFormatError, match=message) as err:
        decode_payload(_text_from(body))
    assert err.value.code == "invalid_payload"


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (DISCLOSED, {0: [bytes(16), "营业执照"]}, "has type list"),  # with a seed the salts are not sent
        (DISCLOSED, {0: 1.5}, "has type float"),
        (HIDDEN, {"自定义": bytes(32)}, "hidden fields must not carry a salt_seed"),
    ],
)
def test_malformed_seeded_body_fields_are_invalid(index: int, value: Any, message: str) -> None:
    body = _body_list(make_payload())
    assert len(body[SEED]) == 16
    body[index] = value
    with pytest.raises(PayloadFormatError, match=message) as err:
        decode_payload(_text_from(body))
    assert err.value.code == "invalid_payload"


def test_field_both_disclosed_and_hidden_is_invalid() -> None:
    body = _body_list(make_payload(hide=("住所",)))
    body[HIDDEN] = {0: bytes(32)}
    with pytest.raises(PayloadFormatError, match="both disclosed and hidden"):
        decode_payload(_text_from(body))


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda b: b.__setitem__(DISCLOSED, {"证照名称": "x"}), id="name-spelled-instead-of-code"),
        pytest.param(lambda b: b.__setitem__(DISCLOSED, {0: "营业执照"}), id="chinese-as-utf8-text"),
        pytest.param(lambda b: b.__setitem__(DISCLOSED, {0: b"ABC"}), id="ascii-as-bytes"),
    ],
)
def test_non_canonical_bodies_are_rejected(mutate: Any) -> None:
    body = _body_list(make_payload())
    mutate(body)
    with pytest.raises(PayloadFormatError, match="not in the deterministic LZ2 encoding"):
        decode_payload(_text_from(body))


def test_body_with_unsorted_map_keys_is_rejected() -> None:
    payload = make_payload()
    body = _body_list(payload)
    body[DISCLOSED] = dict(reversed(list(body[DISCLOSED].items())))
    raw = cbor2.dumps(body)  # not canonical: the disclosed map keeps its (reversed) insertion order
    assert raw != body_bytes(payload)
    with pytest.raises(PayloadFormatError, match="not in the deterministic LZ2 encoding"):
        decode_payload(_text_from(None, raw_body=raw))


def test_trailing_bytes_after_the_body_are_rejected() -> None:
    raw = body_bytes(make_payload()) + b"\x00"
    with pytest.raises(PayloadFormatError, match="not in the deterministic LZ2 encoding"):
        decode_payload(_text_from(None, raw_body=raw))


# --- the dataclass ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_root": b"\x00" * 31}, "batch_root must be 32 bytes, got bytes of length 31"),
        ({"issuer_account": "0x" + "00" * 20}, "issuer_account must be 20 bytes or empty, got str"),
        ({"tx_hash": b"\x00" * 31}, "tx_hash must be 32 bytes or empty"),
        ({"signature": b"\x00" * 64}, "signature must be 65 bytes or empty"),
        ({"signature": None}, "signature must be 65 bytes or empty, got NoneType"),
        ({"signature": bytearray()}, "signature must be 65 bytes or empty, got bytearray"),
        ({"salt_seed": b"\x00" * 15}, "salt_seed must be 16 bytes or empty"),
        ({"salt_seed": bytes(16)}, r"disclosed\['证照名称'\] salt does not derive from salt_seed"),
        ({"hidden": {"自定义": bytes(32)}, "salt_seed": bytes(16)}, "hidden fields must not carry a salt_seed"),
        ({"index": 1000}, "index must be below size 1000, got 1000"),
        ({"block_number": -1}, "block_number must be an integer in 0..2\\*\\*64-1"),
        ({"chain_id": True}, "chain_id must be an integer"),
        ({"proof": [b"\x00" * 32, b"\x00"]}, r"proof\[1\] must be 32 bytes"),
        ({"disclosed": {"a": (b"\x00" * 16, 1.5)}}, "value must be str, int"),
        ({"disclosed": {"a": (b"\x00" * 16, 2**64)}}, "value must be str, int"),
        ({"disclosed": {"a": (b"\x00" * 16, -(2**53))}}, "value must be str, int"),
        ({"disclosed": {"a": [b"\x00" * 16, "x"]}}, r"must be a \(salt, value\) tuple"),
        ({"hidden": {"证照名称": b"\x00" * 32}}, "both disclosed and hidden"),
        ({"type_code": ""}, "type_code must be a non-empty string"),
    ],
)
def test_invalid_payloads_cannot_be_constructed(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as err:
        make_payload(**overrides)
    assert err.value.code == "invalid_payload_field"


def test_unencodable_text_is_a_validation_error() -> None:
    payload = make_payload(disclosed={"a": (bytes(16), "lone \ud800 surrogate")}, batch_root=bytes(32))
    with pytest.raises(ValidationError, match="cannot be encoded as CBOR"):
        encode_payload(payload)
    with pytest.raises(ValidationError, match="field 'a' has no canonical leaf") as err:
        payload.computed_batch_root()
    assert err.value.code == "invalid_payload_field"


def test_repr_does_not_leak_holder_data(signed_payload: OfflinePayload) -> None:
    shown = repr(signed_payload)
    assert "冰城" not in shown and "19 fields" in shown and "signed=True" in shown


def test_field_codes_are_unique_and_start_with_the_common_metadata() -> None:
    from registry.certificates.documents import COMMON_FIELD_NAMES

    assert len(set(FIELD_CODES)) == len(FIELD_CODES)
    assert FIELD_CODES[: len(COMMON_FIELD_NAMES)] == COMMON_FIELD_NAMES  # one CBOR byte each
    assert set(REALISTIC_FIELDS) <= set(FIELD_CODES[:24])
