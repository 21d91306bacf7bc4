"""The offline verifier's shortcuts give exactly what their plain definitions give, on valid and altered input:
Base45 through bytes.translate (RFC 9285 §4 decoded digit by digit), the decoder's one-encoding rule checked on
the decoded items (the definition: rebuild the body from the payload and compare), salts derived once while
decoding (the definition: the constructor derives them again), accounts of recovered keys memoised by key
(keccak of the key each time), and verify_text (decoder's root and signer) against verify_payload (root and
signer recomputed from the payload object)."""

from __future__ import annotations

import dataclasses
import json
import zlib
from typing import Any

import cbor2
import coincurve
import pytest
from eth_utils.crypto import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.devtools.offline_workload import cpu_rate, offline_workload
from registry.certificates.offline import OfflineVerifier
from registry.consortium.trust_list import TrustList
from registry.crypto.signing import SignatureScheme, recover_account
from registry.errors import PayloadFormatError, RegistryError
from registry.formats import gb_text, lz2
from registry.formats.qr import BASE45_ALPHABET, OfflinePayload, b45decode, b45encode, decode_payload, encode_payload
from tests.unit.fuzz.strategies import mutated_text
from tests.unit.qr.factories import make_payload

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- Base45 -----------------------------------------------------------------------------------------------


def _b45_definition(text: str) -> bytes:
    """RFC 9285 §4.3 digit by digit; ValueError where the fast decoder raises PayloadFormatError."""
    values = []
    for ch in text:
        if ch not in BASE45_ALPHABET:
            raise ValueError("alphabet")
        values.append(BASE45_ALPHABET.index(ch))
    if len(values) % 3 == 1:
        raise ValueError("truncated")
    out = bytearray()
    for i in range(0, len(values) - 2, 3):
        n = values[i] + values[i + 1] * 45 + values[i + 2] * 2025
        if n > 0xFFFF:
            raise ValueError("group")
        out += n.to_bytes(2, "big")
    if len(values) % 3 == 2:
        n = values[-2] + values[-1] * 45
        if n > 0xFF:
            raise ValueError("pair")
        out.append(n)
    return bytes(out)


@FAST
@given(st.one_of(st.text(alphabet=BASE45_ALPHABET, max_size=60), st.text(max_size=20),
                 st.binary(max_size=40).map(b45encode)))
def test_base45_decoding_equals_the_digit_by_digit_definition(text: str) -> None:
    try:
        expected: bytes | None = _b45_definition(text)
    except ValueError:
        expected = None
    try:
        got: bytes | None = b45decode(text)
    except PayloadFormatError as exc:
        assert exc.code in ("invalid_payload", "truncated_payload")
        got = None
    assert got == expected


# --- the one-encoding rule ----------------------------------------------------------------------------------

BASE = make_payload(seed=3)
BASE_HIDDEN = make_payload(seed=4, hide=("住所", "经营范围"))
SM3 = make_payload(seed=5, sm3_hidden={}, sm3_proof=[bytes([7]) * 32] * 10)

# texts with ASCII only, with GB-safe Hanzi, with characters outside GBK's common set (travel as UTF-8 text)
VALUES = st.one_of(st.text(alphabet="ABC 12-", max_size=8), st.text(alphabet="黑龙江省哈尔滨（）：", max_size=8),
                   st.text(alphabet="黑龍𠀀é€", max_size=6), st.integers(-(2**60), 2**60), st.booleans(), st.none())


@st.composite
def altered_bodies(draw: Any) -> tuple[list[Any], bytes]:
    """A decoded body in the wire's item form, altered in the ways an encoder other than ours could write it."""
    payload = draw(st.sampled_from([BASE, BASE_HIDDEN, SM3]))
    raw: list[Any] = cbor2.loads(lz2.body_bytes(payload))
    disclosed = raw[4]
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(sorted(disclosed, key=str)))
        kind = draw(st.sampled_from(["value", "utf8", "gb", "name", "version", "sm3-null"]))
        value = draw(VALUES)
        slot = disclosed[key]
        salted = isinstance(slot, list)
        if kind == "value":  # another value, in the form our encoder writes it
            packed = gb_text.pack_value(value)
        elif kind == "utf8":  # a text as CBOR text even where our encoder writes GB 18030 bytes
            packed = value
        elif kind == "gb" and isinstance(value, str):  # GB 18030 bytes even for ASCII text
            try:
                packed = value.encode("gb18030")
            except UnicodeEncodeError:
                packed = value
        elif kind == "name" and type(key) is int:  # the field's name spelled out instead of its code
            disclosed[lz2.FIELD_CODES[key]] = disclosed.pop(key)
            continue
        elif kind == "version":
            raw[0] = draw(st.sampled_from([2, 2.0]))
            continue
        elif kind == "sm3-null" and len(raw) == 13:
            raw.append(None)
            continue
        else:
            continue
        disclosed[key] = [slot[0], packed] if salted else packed
    body = cbor2.dumps(raw, canonical=True)
    return raw, body


def _text(body: bytes) -> str:
    return lz2.PREFIX + b45encode(zlib.compress(cbor2.dumps([body, b""]), 9))


@FAST
@given(altered_bodies())
def test_the_one_encoding_check_on_decoded_items_equals_rebuilding_the_body(case: tuple[list[Any], bytes]) -> None:
    raw, body = case
    try:  # the definition: build the payload, re-encode it, compare
        reference, _ = lz2._payload_from_body(cbor2.loads(body), b"")
        accepted = lz2.body_bytes(reference) == body
    except RegistryError:
        reference, accepted = None, False
    try:
        decoded: OfflinePayload | None = decode_payload(_text(body))
    except PayloadFormatError:
        decoded = None
    assert (decoded is not None) == accepted
    if decoded is not None:
        assert decoded == reference


def test_each_alteration_kind_is_refused() -> None:
    raw = cbor2.loads(lz2.body_bytes(BASE))
    code = next(k for k, v in raw[4].items() if isinstance(v, bytes))
    cases = []
    for change in ("utf8", "name", "version", "sm3-null", "gb-ascii"):
        altered = cbor2.loads(lz2.body_bytes(BASE))
        if change == "utf8":
            altered[4][code] = altered[4][code].decode("gb18030")
        elif change == "name":
            altered[4][lz2.FIELD_CODES[code]] = altered[4].pop(code)
        elif change == "version":
            altered[0] = 2.0
        elif change == "sm3-null":
            altered.append(None)
        else:
            ascii_code = next(k for k, v in altered[4].items() if isinstance(v, str) and v.isascii())
            altered[4][ascii_code] = altered[4][ascii_code].encode("gb18030")
        cases.append(cbor2.dumps(altered, canonical=True))
    for body in cases:
        with pytest.raises(PayloadFormatError, match="deterministic LZ2 encoding") as err:
            decode_payload(_text(body))
        assert err.value.code == "invalid_payload"
    assert decode_payload(_text(lz2.body_bytes(BASE))) == dataclasses.replace(BASE, tx_hash=b"", issuer_account=b"")


# --- salts derived once -------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000))
def test_a_decoded_payload_equals_the_constructed_one_whose_salts_are_checked(seed: int) -> None:
    payload = make_payload(seed=seed, issuer_account=b"")
    decoded = decode_payload(encode_payload(payload))
    rebuilt = OfflinePayload(**{f.name: getattr(decoded, f.name) for f in dataclasses.fields(OfflinePayload)})
    assert decoded == rebuilt == dataclasses.replace(payload, tx_hash=b"")


def test_the_constructor_still_refuses_a_salt_that_does_not_derive_from_the_seed() -> None:
    name = next(iter(BASE.disclosed))
    wrong = {**BASE.disclosed, name: (bytes(16), BASE.disclosed[name][1])}
    with pytest.raises(RegistryError, match="does not derive from salt_seed"):
        dataclasses.replace(BASE, disclosed=wrong)


# --- accounts memoised by key -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32), st.integers(0, 64))
def test_a_recovered_account_is_keccak_of_the_recovered_key_also_for_altered_signatures(
        secret: bytes, digest: bytes, flip: int) -> None:
    try:
        key = coincurve.PrivateKey(secret)
    except ValueError:
        return
    signature = bytearray(key.sign_recoverable(digest, hasher=None))
    if flip < 64:
        signature[flip] ^= 0x01  # another signature: another key or none
    try:
        public = coincurve.PublicKey.from_signature_and_message(bytes(signature), digest, hasher=None)
    except Exception:  # noqa: BLE001 - coincurve raises a bare Exception when nothing recovers
        with pytest.raises(RegistryError):
            recover_account(digest, bytes(signature), SignatureScheme.RECOVERABLE)
        return
    expected = bytes(keccak(public.format(compressed=False)[1:])[-20:])
    for _ in range(2):  # the second call is answered from the memo
        assert recover_account(digest, bytes(signature), SignatureScheme.RECOVERABLE) == expected


# --- the decoder's root and signer against the payload's ----------------------------------------------------

WORKLOADS = [offline_workload(4, batch_size=4), offline_workload(3, profile="gm", batch_size=2),
             offline_workload(3, profile="intl-body", batch_size=3)]
VERIFIERS = {w.profile: OfflineVerifier(TrustList.from_json(w.trust_list)) for w in WORKLOADS}
B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([(w.profile, t) for w in WORKLOADS for t in w.texts]), st.data())
def test_verify_text_equals_verify_payload_on_valid_and_altered_payloads(case: tuple[str, str],
                                                                        data: st.DataObject) -> None:
    profile, valid = case
    text = data.draw(st.one_of(st.just(valid), mutated_text(valid, B45)))
    verifier = VERIFIERS[profile]
    try:
        payload = decode_payload(text)
    except RegistryError:
        return
    fast, plain = verifier.verify_text(text).to_json(), verifier.verify_payload(payload).to_json()
    assert json.dumps(fast, sort_keys=True, ensure_ascii=False) == json.dumps(plain, sort_keys=True, ensure_ascii=False)
    if text == valid:
        assert fast["verdict"] == "valid"


def test_the_workload_makes_distinct_payloads_that_all_verify() -> None:
    for work in WORKLOADS:
        assert len(set(work.texts)) == len(work.texts) > 0
        rate = cpu_rate(VERIFIERS[work.profile], work.texts)
        assert rate["count"] == len(work.texts) and rate["cpu_us"] > 0
    statements = {w.profile: {decode_payload(t).statement is not None for t in w.texts} for w in WORKLOADS}
    assert statements == {"intl": {True}, "gm": {True}, "intl-body": {False}}
