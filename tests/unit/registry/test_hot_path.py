"""The issuing and offline-verification hot path's shortcuts give exactly what the plain definitions give:
precomputed HMAC pads, one-pass document building, the one-regex unsafe-character scan, cached identifier
parsing, hashlib's HMAC-SM3 and the per-request stage timer."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import unicodedata
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from hypothesis import given, settings
from hypothesis import strategies as st

from api.devtools.samples import sample_values
from registry.certificates._validate import validated_values
from registry.certificates.documents import Document
from registry.certificates.fields import derive_salt, derive_salts, leaf_entry, path_key
from registry.certificates.timing import STAGES, StageTimer
from registry.crypto import merkle
from registry.errors import ValidationError
from registry.formats import envelope
from registry.identifiers import CertificateId
from registry.seeds import is_utf8_encodable, load_seeds
from registry.validation import plain_text, unsafe_characters

SEEDS = load_seeds(Path(__file__).resolve().parents[3] / "seeds")


@settings(max_examples=200, deadline=None)
@given(seed=st.binary(min_size=0, max_size=100), path=st.text(max_size=40))
def test_derived_salts_are_hmac_sha256_of_the_label_and_path(seed: bytes, path: str) -> None:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return  # field paths are UTF-8 text (lone surrogates are refused before salts are derived)
    expected = hmac.new(seed, b"lianzheng/salt/1" + path.encode("utf-8"), hashlib.sha256).digest()[:16]
    assert derive_salts(seed, [path]) == [derive_salt(seed, path)] == [expected]


@pytest.mark.parametrize("cert_type", SEEDS.certificate_types, ids=lambda t: t.name_en)
def test_one_pass_building_gives_the_leaves_and_digests_of_the_definition(cert_type) -> None:  # type: ignore[no-untyped-def]
    issuer = SEEDS.member(cert_type.issuers[0])
    [values] = sample_values(cert_type, 1, issuer=issuer, seed=5)
    identifier = str(CertificateId.build(cert_type.code, issuer.uscc, 42))
    doc = Document.from_validated(cert_type, *validated_values(cert_type, values, identifier), rng=random.Random(3))
    assert doc == Document.create(cert_type, values, identifier=identifier, rng=random.Random(3))
    entries = [leaf_entry(p, f.salt, f.value) for p, f in sorted(doc.fields.items(), key=lambda kv: path_key(kv[0]))]
    assert doc.digest_sha256 == merkle.root_from_leaf_hashes([merkle.leaf_hash(e) for e in entries])
    assert doc.digest_sm3 == merkle.root_from_leaf_hashes([merkle.leaf_hash(e, algorithm="sm3") for e in entries],
                                                          algorithm="sm3")
    assert doc.salt_seed is not None and all(f.salt == derive_salt(doc.salt_seed, p) for p, f in doc.fields.items())
    assert doc.integrity_errors() == []


@pytest.mark.parametrize("cert_type", SEEDS.certificate_types, ids=lambda t: t.name_en)
def test_issued_documents_encode_as_json_dumps_of_to_json(cert_type) -> None:  # type: ignore[no-untyped-def]
    # the document's JSON is made from the texts of its leaf entries: it must be what the general encoder
    # writes (stored in the envelope, sent in the answer), for every type, bound or not, with odd text
    issuer = SEEDS.member(cert_type.issuers[0])
    values_list = sample_values(cert_type, 20, issuer=issuer, seed=8)
    texts = ['引号" 反斜杠\\ 斜杠/', "\u2028\u2029 é 😀 𠀀", "</script> &amp; \\u0000"]
    odd = 0
    for k, values in enumerate(values_list):
        identifier = str(CertificateId.build(cert_type.code, issuer.uscc, 100 + k))
        cid, norm = validated_values(cert_type, values, identifier)
        strings = [f for f, v in norm.items() if isinstance(v, str) and f not in ("证照标识", "证照类型代码",
                                                                                   "颁发机构代码", "持证主体代码")]
        if k < len(texts) and strings:
            for name in strings:
                try:
                    cid, norm = validated_values(cert_type, {**values, name: texts[k]}, identifier)
                    odd += 1
                    break
                except ValidationError:
                    continue
        bound = hashlib.sha256(bytes([k])).hexdigest() if k % 2 else None
        doc, text = Document.issued(cert_type, cid, norm, rng=random.Random(k), bound=bound)
        assert text == json.dumps(doc.to_json(), ensure_ascii=False, separators=(",", ":")).encode()
        assert doc == Document.from_validated(cert_type, cid, norm, rng=random.Random(k), bound=bound)
        assert Document.from_json(json.loads(text)) == doc and doc.integrity_errors() == []
        assert list(doc.fields) == sorted(doc.fields, key=path_key) and doc.bound == (bound is not None)
    assert odd == len(texts)


def test_the_unsafe_character_scan_agrees_with_the_per_character_rule_on_every_code_point() -> None:
    bidi = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff")
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        expected = ch in bidi or unicodedata.category(ch) == "Cc"
        assert bool(unsafe_characters(f"营业执照{ch}x")) == expected, hex(cp)


def test_plain_text_is_neither_unsafe_nor_a_surrogate_on_every_code_point() -> None:
    """The one scan `FieldSpec` takes first says "plain" exactly when neither of its two checks finds anything."""
    for cp in range(0x110000):
        text = f"营业执照{chr(cp)}x"
        assert plain_text(text) == (is_utf8_encodable(text) and not unsafe_characters(text)), hex(cp)


def test_parsed_identifiers_are_shared_values_and_bad_ones_are_still_refused_each_time() -> None:
    text = str(CertificateId.build("11230000MB1A00028M001", "11230000MB1A00028M", 7))
    assert CertificateId.parse(text) is CertificateId.parse(text) == CertificateId.parse(f" {text} ")
    bad = text[:-1] + ("A" if text[-1] != "A" else "B")
    for _ in range(2):  # errors are not cached
        with pytest.raises(ValidationError, match="校验位"):
            CertificateId.parse(bad)


def test_hmac_sm3_of_hashlib_is_the_hmac_of_cryptography() -> None:
    for key, message in ((b"k" * 32, b""), (b"\x00" * 16, b"m" * 1000), (bytes(range(70)), b"abc")):
        mac = crypto_hmac.HMAC(key, hashes.SM3())
        mac.update(message)
        assert envelope._hmac_sm3(key, message) == mac.finalize()
    key, blob = envelope.seal(b"document", aad=b"id", algorithm=envelope.EnvelopeAlgorithm.SM4_CTR_HMAC_SM3)
    assert envelope.open_(blob, key, aad=b"id") == b"document"


def test_the_stage_timer_adds_up_each_stage_and_names_them_for_a_log_line() -> None:
    timer = StageTimer()
    with timer.stage("validate"):
        pass
    timer.add("validate", 0.5)
    timer.add("store", 0.25)
    assert timer.seconds["validate"] >= 0.5 and timer.as_ms()["store_ms"] == 250.0
    assert set(timer.seconds) <= set(STAGES)
