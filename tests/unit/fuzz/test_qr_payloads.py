"""Offline QR payloads (registry/formats/qr.py) from untrusted scans: any text, any mutation of a real payload
and any CBOR a hostile encoder packs into a well-formed LZ2 frame is refused with a RegistryError, never
anything else; encoding round-trips."""

from __future__ import annotations

import zlib

import cbor2
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from registry.errors import RegistryError
from registry.formats.qr import (
    PREFIX,
    OfflinePayload,
    b45decode,
    b45encode,
    classify_scan,
    decode_payload,
    encode_payload,
    recover_signer,
    sign_payload,
)
from tests.unit.fuzz.strategies import cbor_values, mutated_bytes, mutated_text
from tests.unit.qr.factories import ISSUER_KEY, as_decoded, make_payload

B45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
SIGNED = sign_payload(make_payload(), ISSUER_KEY)
VALID = encode_payload(SIGNED)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode_or_refuse(text: str) -> OfflinePayload | None:
    try:
        payload = decode_payload(text)
    except RegistryError:
        return None
    recover_signer_or_refuse(payload)
    return payload


def recover_signer_or_refuse(payload: OfflinePayload) -> None:
    try:
        recover_signer(payload)
    except RegistryError:
        pass


def _frame(envelope: bytes) -> str:
    return PREFIX + b45encode(zlib.compress(envelope))


@FUZZ
@given(st.text(max_size=300))
@example("LZ2:")
@example("LZ2:" + "%" * 3)
@example("LZ999:AAA")
def test_any_text_is_refused_with_a_registry_error(text: str) -> None:
    _decode_or_refuse(text)
    _decode_or_refuse(PREFIX + text)


@FUZZ
@given(mutated_text(VALID, B45_ALPHABET))
def test_a_mutated_payload_decodes_or_is_refused(text: str) -> None:
    _decode_or_refuse(text)


@FUZZ
@given(st.data())
def test_mutated_cbor_inside_a_valid_frame_is_refused_with_a_registry_error(data: st.DataObject) -> None:
    envelope = zlib.decompress(b45decode(VALID[len(PREFIX):]))
    body, signature = cbor2.loads(envelope)
    mutated_body = data.draw(mutated_bytes(body))
    _decode_or_refuse(_frame(cbor2.dumps([mutated_body, signature])))
    _decode_or_refuse(_frame(data.draw(mutated_bytes(envelope))))


@FUZZ
@given(cbor_values, st.binary(max_size=70))
def test_any_cbor_body_is_refused_with_a_registry_error(body: object, signature: bytes) -> None:
    _decode_or_refuse(_frame(cbor2.dumps([cbor2.dumps(body), signature])))
    _decode_or_refuse(_frame(cbor2.dumps(body)))


@FUZZ
@given(st.binary(max_size=200))
def test_base45_round_trips_and_bad_base45_is_refused(data: bytes) -> None:
    assert b45decode(b45encode(data)) == data
    try:
        b45decode(data.decode("latin-1"))
    except RegistryError:
        pass


@FUZZ
@given(st.text(max_size=200), st.sampled_from([None, "https://lz.example.gov.cn", "http://127.0.0.1:8000/app"]))
def test_classify_scan_refuses_anything_else_with_a_registry_error(text: str, base: str | None) -> None:
    for candidate in (text, "https://lz.example.gov.cn/v/" + text, "LZ2:" + text):
        try:
            classify_scan(candidate, public_base=base)
        except RegistryError:
            pass


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([(), ("持证主体",), ("持证主体", "法定代表人", "住所")]),
       st.integers(0, 12))
def test_signed_payloads_round_trip(seed: int, hide: tuple[str, ...], proof_len: int) -> None:
    payload = sign_payload(make_payload(seed=seed, hide=hide, proof_len=proof_len), ISSUER_KEY)
    text = encode_payload(payload)
    assert decode_payload(text) == as_decoded(payload)
    assert classify_scan(text).payload == as_decoded(payload)
