"""The optional SM3 part of an LZ2 offline payload (issue 13, item 3): the hidden fields' SM3 leaf hashes and the
SM3 audit path, so an offline verifier recomputes the SM3 batch root too.

Size, measured on the realistic 营业执照 of ``factories.REALISTIC_FIELDS`` in a 1,000-document batch (10-hash
proofs): 1,359..1,365 characters without the SM3 part (version 25 at M), +501..514 with it (1,866..1,873: the
320 bytes of the SM3 path do not compress, ~1.5 Base45 characters per byte) -> version 30 at M. So the builder
carries it by default only when it costs no disclosed field (`make_offline_qr(sm3=None)`): a 3-hash path (a
batch of <= 8 documents) gives 1,158 characters, version 23.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from registry.certificates.fields import leaf_entry
from registry.crypto import merkle
from registry.errors import PayloadFormatError, ValidationError
from registry.formats.images import qr_version
from registry.formats.qr import decode_payload, encode_payload, sign_payload
from tests.unit.qr.factories import ISSUER_KEY, REALISTIC_FIELDS, as_decoded, make_payload


def _with_sm3(payload, proof_len: int = 10):  # type: ignore[no-untyped-def]
    """The payload with an SM3 part: real SM3 leaf hashes of its hidden fields and a random SM3 path."""
    salts = {k: s for k, (s, _) in payload.disclosed.items()}
    hidden = {}
    for name in payload.hidden:
        # the factory's hidden fields use the seed-derived salts of the realistic document
        salt = make_payload(seed=0).disclosed[name][0] if name not in salts else salts[name]
        hidden[name] = merkle.leaf_hash(leaf_entry(name, salt, REALISTIC_FIELDS[name]), algorithm="sm3")
    rng = random.Random(proof_len)  # hashes do not compress: random bytes, as real ones
    return dataclasses.replace(payload, sm3_hidden=hidden, sm3_proof=[rng.randbytes(32) for _ in range(proof_len)])


def test_the_sm3_part_round_trips_and_rebuilds_the_sm3_document_digest() -> None:
    plain = make_payload(seed=3)
    p = sign_payload(_with_sm3(plain), ISSUER_KEY)
    decoded = decode_payload(encode_payload(p))
    assert decoded == as_decoded(p)
    assert decoded.sm3_proof == p.sm3_proof and decoded.computed_sm3_batch_root() == p.computed_sm3_batch_root()
    expected = merkle.merkle_root([leaf_entry(k, s, v) for k, (s, v) in sorted(
        p.disclosed.items(), key=lambda kv: kv[0].encode("utf-16-be"))], algorithm="sm3")
    assert decoded.document_digest("sm3") == expected != decoded.document_digest()
    # a payload without it decodes with none: the verifier reports SM3 as not available
    assert decode_payload(encode_payload(sign_payload(plain, ISSUER_KEY))).sm3_proof is None


def test_hidden_fields_need_their_sm3_leaf_hashes_and_the_paths_one_shape() -> None:
    p = make_payload(seed=4, hide=("住所",))
    good = _with_sm3(p)
    assert set(good.sm3_hidden) == {"住所"}
    with pytest.raises(ValidationError, match="sm3_hidden must hold"):
        dataclasses.replace(good, sm3_hidden={})
    with pytest.raises(ValidationError, match="as many hashes as proof"):
        dataclasses.replace(good, sm3_proof=good.sm3_proof[:-1])  # type: ignore[index]
    with pytest.raises(ValidationError, match="needs sm3_proof"):
        dataclasses.replace(p, sm3_hidden={"住所": bytes(32)})
    text = encode_payload(sign_payload(good, ISSUER_KEY))
    assert decode_payload(text).sm3_hidden == good.sm3_hidden


def test_a_changed_sm3_hash_changes_the_sm3_root_only() -> None:
    p = _with_sm3(make_payload(seed=5))
    steps = list(p.sm3_proof or [])
    steps[3] = bytes([steps[3][0] ^ 1]) + steps[3][1:]
    forged = dataclasses.replace(p, sm3_proof=steps)
    assert forged.computed_batch_root() == p.computed_batch_root()
    assert forged.computed_sm3_batch_root() != p.computed_sm3_batch_root()


def test_a_malformed_sm3_part_is_refused() -> None:
    import zlib

    import cbor2

    from registry.formats.base45 import b45decode, b45encode

    text = encode_payload(sign_payload(_with_sm3(make_payload(seed=6)), ISSUER_KEY))
    body, signature = cbor2.loads(zlib.decompress(b45decode(text[4:])))
    items = cbor2.loads(body)
    items[13] = [items[13][0], items[13][1][:-1]]  # a path that is not whole hashes
    bad = "LZ2:" + b45encode(zlib.compress(cbor2.dumps([cbor2.dumps(items, canonical=True), signature]), 9))
    with pytest.raises(PayloadFormatError, match="SM3 proof") as info:
        decode_payload(bad)
    assert info.value.code == "invalid_payload"


def test_size_growth_of_the_sm3_part_is_measured() -> None:
    """The figures of the module docstring (a regression shows here first)."""
    for seed in range(5):
        plain = len(encode_payload(sign_payload(make_payload(seed=seed), ISSUER_KEY)))
        with_sm3 = len(encode_payload(sign_payload(_with_sm3(make_payload(seed=seed)), ISSUER_KEY)))
        assert 495 <= with_sm3 - plain <= 525, (plain, with_sm3)
        assert qr_version("A" * with_sm3, error="m") == 30
    small = encode_payload(sign_payload(_with_sm3(make_payload(seed=1, proof_len=3), 3), ISSUER_KEY))
    assert qr_version(small, error="m") <= 25  # a batch of <= 8 documents carries it within version 25
