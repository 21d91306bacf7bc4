"""The compiled hot paths (registry/certificates/_leaves.c) against their specification in Python
(registry/certificates/fields.py) and against an RFC 6962 Merkle Tree Hash and an RFC 2104 HMAC written here
from the texts (hashlib, hmac and rfc8785 as the independent parts)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import tracemalloc

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.certificates import fields
from registry.certificates.fields import SALT_SIZE, derive_salt, document_roots, path_key

# the comparisons need the module; test_make_builds_the_compiled_module fails without it
needs_c = pytest.mark.skipif(not fields.COMPILED, reason="the compiled module is built by `make test`")

if fields.COMPILED:
    from registry.certificates import _leaves


def test_make_builds_the_compiled_module() -> None:
    # `make test` installs the package, which builds it: the suite and the benches measure the compiled path
    assert fields.COMPILED, "registry/certificates/_leaves.c is not built: run `make install`"


def _mth(leaves: list[bytes], algorithm: str) -> bytes:
    """RFC 6962 §2.1 MTH over leaf hashes, by its recursive definition (split at the largest power of two
    below n)."""
    if not leaves:
        return hashlib.new(algorithm).digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.new(algorithm, b"\x01" + _mth(leaves[:k], algorithm) + _mth(leaves[k:], algorithm)).digest()


def _leaf(path: str, salt: bytes, value: object, algorithm: str) -> bytes:
    return hashlib.new(algorithm, b"\x00" + rfc8785.dumps({"path": path, "salt": salt.hex(), "value": value})).digest()


texts = st.text(st.characters(codec="utf-8", exclude_categories=()), max_size=12) | st.sampled_from(
    ["住所", "名称", 'a"b\\c', "\x00\x1f\x7f\u2028", "😀", "holderKeyDigest"])
plain_values = (texts | st.none() | st.booleans()
                | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | st.integers())
salts = st.binary(min_size=0, max_size=20)


@st.composite
def documents(draw: st.DrawFn) -> tuple[list[str], list[bytes | None], list[object], list[bytes | None], list[bytes | None]]:
    paths = sorted(set(draw(st.lists(texts, max_size=25))), key=lambda p: p.encode("utf-16-be", "surrogatepass"))
    n = len(paths)
    hidden = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    ss = [None if h else draw(salts) for h in hidden]
    vs = [draw(plain_values) for _ in paths]
    h256 = [draw(st.binary(min_size=32, max_size=32)) if h else None for h in hidden]
    hsm3 = [draw(st.binary(min_size=32, max_size=32)) if h else None for h in hidden]
    return paths, ss, vs, h256, hsm3


@needs_c
@settings(max_examples=300, deadline=None)
@given(documents(), st.booleans())
def test_document_roots_match_the_python_and_the_rfcs(doc: tuple, fields_json: bool) -> None:  # type: ignore[type-arg]
    paths, ss, vs, h256, hsm3 = doc
    try:
        expected = fields._document_roots(paths, ss, vs, h256, hsm3, True, True, fields_json)
    except (ValueError, UnicodeError, TypeError) as exc:  # no canonical leaf: the C hands back, Python raises
        assert _leaves.document_roots(paths, ss, vs, h256, hsm3, True, True, fields_json) is None, exc
        with pytest.raises(type(exc)):
            document_roots(paths, ss, vs, h256, hsm3, fields_json=fields_json)
        return
    got = _leaves.document_roots(paths, ss, vs, h256, hsm3, True, True, fields_json)
    if got is None:  # handed back: only for values it does not write (integers beyond ±2^53)
        assert any(type(v) is int and abs(v) >= 2**53 for v in vs)
        assert document_roots(paths, ss, vs, h256, hsm3, fields_json=fields_json) == expected
        return
    assert got == expected
    for i, algorithm in ((0, "sha256"), (1, "sm3")):
        hidden = h256 if i == 0 else hsm3
        triples = enumerate(zip(paths, ss, vs, strict=True))
        leaves = [hidden[k] if s is None else _leaf(p, s, v, algorithm) for k, (p, s, v) in triples]
        assert got[i] == _mth(leaves, algorithm)  # type: ignore[arg-type]  # hidden: bytes where salt is None
    if fields_json:
        shown = {p: {"salt": s.hex(), "value": v} for p, s, v in zip(paths, ss, vs, strict=True) if s is not None}
        assert got[2] == json.dumps(shown, ensure_ascii=False, separators=(",", ":")).encode()[1:-1]


@needs_c
def test_one_algorithm_and_the_empty_document() -> None:
    paths, ss, vs = ["住所", "名称"], [bytes(16), b"\x01" * 16], ["x", 7]
    both = _leaves.document_roots(paths, ss, vs, None, None, True, True, False)
    assert _leaves.document_roots(paths, ss, vs, None, None, True, False, False) == (both[0], None, None)
    assert _leaves.document_roots(paths, ss, vs, None, None, False, True, False) == (None, both[1], None)
    assert _leaves.document_roots([], [], [], None, None, True, True, True) == (
        hashlib.sha256().digest(), hashlib.new("sm3").digest(), b"")


@needs_c
@pytest.mark.parametrize("value", [1.5, 2**53, -(2**53), [1], {"a": 1}, "\ud800", b"raw"])
def test_values_it_does_not_write_are_handed_back(value: object) -> None:
    assert _leaves.document_roots(["a"], [bytes(16)], [value], None, None, True, True, True) is None


@needs_c
def test_a_path_with_a_lone_surrogate_or_not_text_is_handed_back() -> None:
    assert _leaves.document_roots(["\udc00"], [bytes(16)], ["x"], None, None, True, True, False) is None
    assert _leaves.document_roots([3], [bytes(16)], ["x"], None, None, True, True, False) is None


@needs_c
@pytest.mark.parametrize(("call", "error"), [
    (lambda: _leaves.document_roots(["a", "b"], [bytes(16)], ["x"], None, None, True, True, False), ValueError),
    (lambda: _leaves.document_roots(["a"], [None], ["x"], None, None, True, False, False), ValueError),
    (lambda: _leaves.document_roots(["a"], [None], ["x"], [b"short"], None, True, False, False), ValueError),
    (lambda: _leaves.document_roots(["a"], [None], ["x"], [bytes(32), bytes(32)], None, True, False, False), ValueError),
    (lambda: _leaves.document_roots(5, [], [], None, None, True, True, False), TypeError),
    (lambda: _leaves.derive_salts(bytes(65), b"l", ["a"], 16), ValueError),
    (lambda: _leaves.derive_salts(bytes(16), b"l", ["a"], 33), ValueError),
    (lambda: _leaves.derive_salts(bytes(16), b"l", [b"a"], 16), TypeError),
    (lambda: _leaves.derive_salts(bytes(16), b"l", ["\ud800"], 16), UnicodeEncodeError),
])
def test_bad_arguments_raise_and_do_not_crash(call: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        call()  # type: ignore[operator]


@needs_c
@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=64), st.lists(texts, max_size=30))
def test_salts_are_rfc_2104_hmac_sha256(seed: bytes, paths: list[str]) -> None:
    try:
        expected = [hmac.new(seed, fields._SALT_LABEL + p.encode(), "sha256").digest()[:SALT_SIZE] for p in paths]
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            _leaves.derive_salts(seed, fields._SALT_LABEL, paths, SALT_SIZE)
        return
    assert _leaves.derive_salts(seed, fields._SALT_LABEL, paths, SALT_SIZE) == expected
    assert fields._derive_salts(seed, paths) == expected
    assert [derive_salt(seed, p) for p in paths] == expected


@needs_c
def test_issued_documents_are_the_same_with_and_without_the_compiled_module(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from api.devtools.samples import sample_values
    from registry.certificates._validate import validated_values
    from registry.certificates.documents import Document
    from registry.identifiers import CertificateId
    from registry.seeds import load_seeds
    from tests.conftest import SEEDS

    seeds = load_seeds(SEEDS)
    made = {}
    for compiled in (True, False):
        monkeypatch.setattr(fields, "COMPILED", compiled)
        out = []
        for ct in seeds.certificate_types:
            issuer = seeds.member(ct.issuers[0])
            for i, values in enumerate(sample_values(ct, 3, issuer=issuer, seed=5)):
                cid, norm = validated_values(ct, values, str(CertificateId.build(ct.code, issuer.uscc, i + 1)))
                doc, text = Document.issued(ct, cid, norm, rng=random.Random(i))
                assert doc.integrity_errors() == []
                out.append((doc.digest_sha256, doc.digest_sm3, text))
        made[compiled] = out
    assert made[True] == made[False]
    assert len({d for d, _, _ in made[True]}) == len(made[True])


@needs_c
def test_no_memory_is_kept_per_call() -> None:
    paths = sorted(["住所", "名称", "类型", "有效期"], key=path_key)
    salts = _leaves.derive_salts(bytes(16), b"l", paths, 16)
    values = ["中文" * 10, None, 5, True]

    def work() -> None:
        for _ in range(3000):
            _leaves.derive_salts(bytes(16), b"l", paths, 16)
            _leaves.document_roots(paths, salts, values, None, None, True, True, True)
            _leaves.document_roots(paths, [None, *salts[1:]], values, [bytes(32)] * 4, [bytes(32)] * 4, True, True, False)
            _leaves.document_roots(paths, salts, [1.5, *values[1:]], None, None, True, True, True)

    work()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    work()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if s.size_diff > 0)
    assert grown < 64 * 1024, grown  # 12,000 calls: a leaked result or buffer per call would be far more


@needs_c
def test_offline_payloads_verify_the_same_without_the_compiled_module() -> None:
    from api.devtools.offline_workload import offline_workload
    from registry.certificates.offline import OfflineVerifier
    from registry.consortium.trust_list import TrustList
    from registry.formats.qr import decode_payload

    work = offline_workload(6, batch_size=4, sm3=True, type_index=3, hide=("性别",))  # 学位证书
    trust = TrustList.from_json(work.trust_list)
    seen = {}
    for compiled in (True, False):
        with contextlib.nullcontext() if compiled else fields.python_only():
            assert fields.COMPILED is compiled
            payloads = [decode_payload(t) for t in work.texts]
            results = [OfflineVerifier(trust).verify_text(t) for t in work.texts]
            seen[compiled] = [(p.batch_root, p.computed_sm3_batch_root(), r.verdict, {c.name: c.status for c in r.checks})
                              for p, r in zip(payloads, results, strict=True)]
    assert fields.COMPILED
    assert seen[True] == seen[False]
    assert any(p.hidden for p in payloads)  # hidden leaves came from the payload, not from the fields
    assert all(verdict == "valid" and checks["integrity"] == checks["sm3"] == "VALID" for *_, verdict, checks in seen[True])
