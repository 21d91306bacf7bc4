"""By-reference envelopes and links (registry/formats/envelope.py) from untrusted scans and storage: any blob,
key text or URL is refused with a RegistryError or opens to exactly what was sealed; seal/open and
build/parse round-trip."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.errors import ProofError, RegistryError
from registry.formats.envelope import aad_for, build_ref_url, decode_key, encode_key, open_, parse_ref_url, seal
from tests.unit.fuzz.strategies import mutated_bytes, mutated_text

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
IDENTIFIER = "1.2.156.3005.2.11100000MB0143028R001.11230103MB1921544F.000000202403.001.K"
BASE = "https://lz.example.gov.cn"
KEY, BLOB = seal('{"fields": {"持证主体": "黑龙江省冰城数字科技有限公司"}}'.encode(), aad=aad_for(IDENTIFIER))
URL = build_ref_url(BASE, IDENTIFIER, KEY)
identifiers = st.text(alphabet=st.characters(blacklist_characters="/#?", blacklist_categories=("Zs", "Cc", "Zl", "Zp", "Cs")),
                      min_size=1, max_size=60).filter(lambda s: not any(c.isspace() for c in s))


@FUZZ
@given(st.binary(max_size=200), st.binary(min_size=0, max_size=40), st.binary(max_size=40))
def test_any_blob_key_and_aad_are_refused_with_a_registry_error(blob: bytes, key: bytes, aad: bytes) -> None:
    try:
        open_(blob, key, aad=aad)
    except RegistryError:
        return
    raise AssertionError("a random blob opened")


@FUZZ
@given(st.data())
def test_a_mutated_blob_never_opens(data: st.DataObject) -> None:
    blob = data.draw(mutated_bytes(BLOB))
    try:
        plain = open_(blob, KEY, aad=aad_for(IDENTIFIER))
    except (ProofError, RegistryError):
        return
    assert blob == BLOB and plain  # AES-GCM: only the sealed bytes open


@FUZZ
@given(st.text(max_size=80))
def test_any_key_text_is_refused_or_is_the_canonical_encoding(text: str) -> None:
    try:
        key = decode_key(text)
    except RegistryError:
        return
    assert encode_key(key) == text


@FUZZ
@given(st.one_of(st.text(max_size=200), mutated_text(URL, "abcxyz:/#?%.-_0123456789")))
def test_any_link_is_refused_with_a_registry_error_or_parsed(text: str) -> None:
    for base in (None, BASE):
        try:
            identifier, key = parse_ref_url(text, public_base=base)
        except RegistryError:
            continue
        assert len(key) == 32 and identifier


@FUZZ
@given(identifiers, st.binary(min_size=32, max_size=32), st.binary(max_size=300))
def test_seal_open_and_build_parse_round_trip(identifier: str, key: bytes, plaintext: bytes) -> None:
    sealed_key, blob = seal(plaintext, aad=aad_for(identifier), key=key)
    assert sealed_key == key and open_(blob, key, aad=aad_for(identifier)) == plaintext
    assert parse_ref_url(build_ref_url(BASE, identifier, key), public_base=BASE) == (identifier, key)
    assert decode_key(encode_key(key)) == key
