"""The LZ2 decoder's common case in C (registry/formats/_lz2.c) against the decoder it shortens, all in Python
(registry/formats/lz2.py within ``fields.python_only()``): on payloads of every shape the encoder writes, and on
altered bytes, ``decode_payload`` gives the same payload or the same error either way. The C answers only for
what the Python accepts and hands everything else back (None); these tests also check that it does answer for
the shapes it is meant to take, and its Base45 against RFC 9285's examples."""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.certificates import fields
from registry.errors import RegistryError
from registry.formats import lz2
from registry.formats.base45 import b45decode, b45encode
from registry.formats.batch_statement import BatchStatement
from registry.formats.qr import OfflinePayload, encode_payload, sign_payload
from tests.unit.qr.factories import ISSUER_KEY, REALISTIC_FIELDS, make_payload

needs_c = pytest.mark.skipif(lz2._lz2 is None, reason="the compiled module is built by `make test`")
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_make_builds_the_compiled_decoder() -> None:
    # `make test` installs the package, which builds it: the suite and `bench offline` measure the C path
    assert lz2._lz2 is not None, "registry/formats/_lz2.c is not built: run `make install`"


def _envelope(text: str) -> bytes:
    return zlib.decompress(b45decode(text[len(lz2.PREFIX):]))


def _text(envelope: bytes) -> str:
    return lz2.PREFIX + b45encode(zlib.compress(envelope, 9))


def _outcome(text: str) -> tuple[Any, ...]:
    try:
        p = lz2.decode_payload(text)
    except RegistryError as exc:
        return ("error", type(exc).__name__, exc.code, exc.message)
    return ("ok", p, list(p.disclosed), list(p.hidden), list(p.sm3_hidden))


def _python(text: str) -> tuple[Any, ...]:
    with fields.python_only():
        return _outcome(text)


def _same_either_way(text: str) -> tuple[Any, ...]:
    """decode_payload with the C and all in Python agree; what the C itself answered for the envelope, if
    anything, is what the Python decodes. Returns the Python's outcome."""
    expected = _python(text)
    assert _outcome(text) == expected
    try:
        envelope = _envelope(text)
    except (zlib.error, RegistryError):
        return expected
    answer = lz2._decoded_in_c(envelope)
    if answer is not None:
        assert expected[0] == "ok", expected
        assert (answer, list(answer.disclosed), list(answer.hidden), list(answer.sm3_hidden)) == expected[1:]
    return expected


# --- payloads of every shape ---------------------------------------------------------------------------------

NAMES = sorted(REALISTIC_FIELDS)
# value -> whether the C takes it (an ASCII text, a text the encoder packs as GB 18030, an integer within
# +-(2**53 - 1), a boolean, null); the others go to the Python: a text beyond the packed set stays UTF-8 text
VALUES: list[tuple[Any, bool]] = [
    ("2024-03-15", True), ("", True), ("a\nb\"c\\", True), ("黑龙江省（冰城）：·—“”…", True), ("伍佰万元整 A1", True),
    (2**53 - 1, True), (-(2**53) + 1, True), (0, True), (-1, True), (23, True), (24, True), (2**32, True),
    (True, True), (False, True), (None, True),
    ("é", False), ("𠀀字", False), ("龍\x00", False), ("€", False), ("\u3012", False),
]
EXTRA_NAMES = ["自定义字段", "x"]  # names without a field code travel spelt out: the Python's


@st.composite
def payloads(draw: st.DrawFn) -> tuple[OfflinePayload, bool]:
    """(a payload as issued, with some values and names changed, and its signing; whether the C takes it)."""
    hide = tuple(draw(st.lists(st.sampled_from(NAMES), max_size=3, unique=True)))
    p = make_payload(seed=draw(st.integers(0, 2**16)), proof_len=draw(st.integers(0, 12)), hide=hide)
    takes = True
    disclosed = dict(p.disclosed)
    for name in draw(st.lists(st.sampled_from(NAMES + EXTRA_NAMES), max_size=4, unique=True)):
        if name in p.hidden:
            continue
        value, c_takes = draw(st.sampled_from(VALUES))
        disclosed[name] = (disclosed.get(name, (fields.derive_salt(b"s" * 16, name), None))[0], value)
        takes = takes and c_takes and name in lz2._CODE_OF
    derived = bool(p.salt_seed) and all(s == fields.derive_salt(p.salt_seed, n) for n, (s, _) in disclosed.items())
    # with the seed the salts derive from, it travels instead of them; otherwise each field's salt travels
    changes: dict[str, Any] = {"disclosed": disclosed, "salt_seed": p.salt_seed if derived and draw(st.booleans()) else b""}
    if draw(st.booleans()):  # the SM3 part
        rng = draw(st.randoms(use_true_random=False))
        changes["sm3_hidden"] = {name: rng.randbytes(32) for name in p.hidden}
        changes["sm3_proof"] = [rng.randbytes(32) for _ in p.proof]
    p = dataclasses.replace(p, issuer_account=b"", **changes)
    p = dataclasses.replace(p, batch_root=p.computed_batch_root())
    signing = draw(st.sampled_from(["signed", "statement", "intl statement", "unsigned"]))
    if signing == "signed":
        p = sign_payload(p, ISSUER_KEY)
    elif signing == "intl statement":
        p = dataclasses.replace(p, statement=BatchStatement(draw(st.integers(0, 2**64 - 1)), b"", draw(
            st.binary(min_size=65, max_size=65))))
    elif signing == "statement":
        der = draw(st.binary(min_size=8, max_size=72))
        p = dataclasses.replace(p, statement=BatchStatement(draw(st.integers(0, 2**64 - 1)), draw(
            st.binary(min_size=8, max_size=8)), der))
    return p, takes


@needs_c
@FAST
@given(payloads())
def test_the_c_decodes_what_the_python_decodes(case: tuple[OfflinePayload, bool]) -> None:
    p, takes = case
    text = encode_payload(p)
    outcome = _same_either_way(text)
    assert outcome[0] == "ok"
    answered = lz2._decoded_in_c(_envelope(text)) is not None
    assert answered == takes, "the C took a shape it should hand back, or handed back one it should take"


@needs_c
def test_an_issued_payload_is_decoded_in_c() -> None:
    p = sign_payload(make_payload(seed=7), ISSUER_KEY)
    answer = lz2._decoded_in_c(_envelope(encode_payload(p)))
    assert answer == dataclasses.replace(p, tx_hash=b"")
    assert answer is not None and answer.issuer_account == p.issuer_account and answer.batch_root == p.batch_root


# --- altered bytes ---------------------------------------------------------------------------------------------

BASES = [encode_payload(sign_payload(make_payload(seed=1), ISSUER_KEY)),
         encode_payload(dataclasses.replace(make_payload(seed=2, hide=("住所", "法定代表人")), issuer_account=b"",
                                            sm3_hidden={"住所": bytes(32), "法定代表人": bytes(range(32))},
                                            sm3_proof=[bytes([i]) * 32 for i in range(10)])),
         encode_payload(dataclasses.replace(make_payload(seed=3, proof_len=0), issuer_account=b"",
                                            statement=BatchStatement(1_718_000_000, bytes(8), bytes(70)))),
         encode_payload(dataclasses.replace(make_payload(seed=4), issuer_account=b"",
                                            statement=BatchStatement(1_718_000_000, b"", bytes(range(65)))))]


@st.composite
def altered(draw: st.DrawFn) -> bytes:
    data = bytearray(_envelope(draw(st.sampled_from(BASES))))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["set", "insert", "delete", "bit"]))
        if kind == "set":
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data.insert(at, draw(st.integers(0, 255)))
        elif kind == "delete":
            del data[at]
        else:
            data[at] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


@needs_c
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(altered())
def test_altered_envelopes_decode_alike(envelope: bytes) -> None:
    _same_either_way(_text(envelope))


def _rewrapped(text: str, change: Any) -> str:
    body, signed = cbor2.loads(_envelope(text))
    return _text(change(body, signed))


NOT_DETERMINISTIC = {
    "body array head not the shortest": lambda b, s: cbor2.dumps([b"\x98\x0d" + b[1:], s]),
    "body as an indefinite array": lambda b, s: cbor2.dumps([b"\x9f" + b[1:] + b"\xff", s]),
    "envelope head not the shortest": lambda b, s: b"\x98\x02" + cbor2.dumps([b, s])[1:],
    "empty signature head not the shortest": lambda b, s: cbor2.dumps([b, b""])[:-1] + b"\x58\x00",
    "a byte after the body": lambda b, s: cbor2.dumps([b + b"\x00", s]),
    "a byte after the envelope": lambda b, s: cbor2.dumps([b, s]) + b"\x00",
    "codes out of order": lambda b, s: cbor2.dumps([cbor2.dumps(
        [dict(reversed(list(x.items()))) if isinstance(x, dict) else x for x in cbor2.loads(b)]), s]),
    "a code spelt out": lambda b, s: cbor2.dumps([cbor2.dumps(
        [{lz2.FIELD_CODES[k]: v for k, v in x.items()} if i == 4 else x for i, x in enumerate(cbor2.loads(b))],
        canonical=True), s]),
    "version as a float": lambda b, s: cbor2.dumps([cbor2.dumps([2.0, *cbor2.loads(b)[1:]]), s]),
    "a signature of 64 bytes": lambda b, s: cbor2.dumps([b, bytes(64)]),
    "a null SM3 part": lambda b, s: cbor2.dumps([cbor2.dumps([*cbor2.loads(b)[:13], None]), s]),
}


@needs_c
@pytest.mark.parametrize("change", NOT_DETERMINISTIC.values(), ids=NOT_DETERMINISTIC.keys())
def test_what_the_encoder_never_writes_is_left_to_the_python(change: Any) -> None:
    text = _rewrapped(BASES[0], change)
    assert lz2._decoded_in_c(_envelope(text)) is None
    assert _same_either_way(text)[0] == "error"


def _body_changed(change: Any) -> Any:
    def rewrap(body: bytes, signed: Any) -> bytes:
        return cbor2.dumps([cbor2.dumps(change(cbor2.loads(body)), canonical=True), signed])
    return rewrap


def _set(at: int, value: Any) -> Any:
    return _body_changed(lambda items: [value if i == at else x for i, x in enumerate(items)])


def _shown(code: int, value: Any) -> Any:  # a disclosed field's value (BASES[0] carries the salt seed)
    return _body_changed(lambda items: [{**x, code: value} if i == 4 else x for i, x in enumerate(items)])


_HIDDEN = sorted(cbor2.loads(cbor2.loads(_envelope(BASES[1]))[0])[5])  # the codes BASES[1] hides
_UNUSED = next(c for c in range(len(lz2.FIELD_CODES)) if c not in cbor2.loads(cbor2.loads(_envelope(BASES[0]))[0])[4])
REFUSED = {  # (base, change): bodies in the encoder's form that the payload's own checks refuse
    "index not below size": (2, _body_changed(lambda items: [*items[:6], items[7], *items[7:]])),  # a batch of 1
    "hidden codes out of order": (1, lambda b, s: cbor2.dumps([cbor2.dumps(
        [dict(reversed(list(x.items()))) if i == 5 else x for i, x in enumerate(cbor2.loads(b))]), s])),
    "GB 18030 bytes of a text outside the packed set": (0, _shown(0, "é".encode("gb18030"))),
    "GB 18030 bytes of ASCII text": (0, _shown(0, b"abc")),
    "bytes that are no GB 18030": (0, _shown(0, b"\xff\xff")),
    "an integer of 2**53": (0, _shown(0, 2**53)),
    "an integer of -(2**53)": (0, _shown(0, -(2**53))),
    "a seed beside a hidden field": (0, _set(5, {_UNUSED: bytes(32)})),
    "a field both disclosed and hidden": (1, _body_changed(
        lambda items: [{**x, _HIDDEN[0]: [bytes(16), "x"]} if i == 4 else x for i, x in enumerate(items)])),
    "a salt of 15 bytes": (1, _body_changed(lambda items: [
        {k: [v[0][:15], v[1]] for k, v in x.items()} if i == 4 else x for i, x in enumerate(items)])),
    "an SM3 proof one step short": (1, _body_changed(lambda items: [*items[:13], [items[13][0], items[13][1][32:]]])),
    "an SM3 part hiding another field": (1, _body_changed(
        lambda items: [*items[:13], [{_HIDDEN[0]: bytes(32), _HIDDEN[0] + 1: bytes(32)}, items[13][1]]])),
    "an SM3 part with one more field": (1, _body_changed(
        lambda items: [*items[:13], [{**items[13][0], _UNUSED: bytes(32)}, items[13][1]]])),
    "a hidden leaf of 31 bytes": (1, _body_changed(
        lambda items: [{k: v[:31] for k, v in x.items()} if i == 5 else x for i, x in enumerate(items)])),
    "a ledger of 19 bytes": (0, _set(10, bytes(19))),
    "an empty identifier": (0, _set(1, "")),
    "a proof of 33 bytes": (0, _body_changed(lambda items: [*items[:8], items[8] + b"\x00", *items[9:]])),
    "a proof too long for the index": (0, _body_changed(lambda items: [*items[:8], items[8] + bytes(32), *items[9:]])),
    "version 3": (0, _set(0, 3)),
    "a statement key id of 7 bytes": (2, lambda b, s: cbor2.dumps([b, [s[0], s[1][:7], s[2]]])),
    "a statement signature of 73 bytes": (2, lambda b, s: cbor2.dumps([b, [s[0], s[1], bytes(73)]])),
    "an intl statement signature of 64 bytes": (3, lambda b, s: cbor2.dumps([b, [s[0], s[1][:64]]])),
    "an intl statement signature of 66 bytes": (3, lambda b, s: cbor2.dumps([b, [s[0], s[1] + b"\x00"]])),
    "an intl statement with an empty key id": (3, lambda b, s: cbor2.dumps([b, [s[0], b"", s[1]]])),
    "an intl statement without its signing time": (3, lambda b, s: cbor2.dumps([b, [s[1]]])),
    "an intl statement signed at -1": (3, lambda b, s: cbor2.dumps([b, [-1, s[1]]])),
}


@needs_c
@pytest.mark.parametrize("text", BASES)
def test_the_bases_as_encoded_are_decoded_in_c(text: str) -> None:
    assert lz2._decoded_in_c(_envelope(text)) is not None
    assert _same_either_way(_rewrapped(text, _body_changed(lambda items: items)))[0] == "ok"


@needs_c
@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_what_the_payload_checks_refuse_the_c_hands_back(case: tuple[int, Any]) -> None:
    base, change = case
    text = _rewrapped(BASES[base], change)
    assert lz2._decoded_in_c(_envelope(text)) is None
    assert _same_either_way(text)[0] == "error"


@needs_c
def test_the_c_shares_the_pythons_bounded_memo_of_gb18030_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    text = BASES[0]
    lz2._GB_TEXTS.clear()
    assert lz2._decoded_in_c(_envelope(text)) is not None
    packed = "哈尔滨市南岗区市场监督管理局".encode("gb18030")
    assert lz2._GB_TEXTS[packed] == ("哈尔滨市南岗区市场监督管理局", True)
    lz2._GB_TEXTS[packed] = ("哈尔滨市南岗区市场监督管理局", False)  # remembered as not packing back: the Python's
    assert lz2._decoded_in_c(_envelope(text)) is None
    lz2._GB_TEXTS.clear()
    monkeypatch.setattr(lz2, "_GB_TEXTS_SIZE", 2)
    assert lz2._decoded_in_c(_envelope(text)) is not None
    assert 0 < len(lz2._GB_TEXTS) <= 2
    lz2._GB_TEXTS.clear()


# --- Base45 ------------------------------------------------------------------------------------------------------


@needs_c
@pytest.mark.parametrize(("text", "data"), [("BB8", b"AB"), ("%69 VD92EX0", b"Hello!!"), ("UJCLQE7W581", b"base-45"),
                                            ("QED8WEX0", b"ietf!"), ("", b"")])
def test_base45_decodes_the_rfc_9285_examples(text: str, data: bytes) -> None:
    assert lz2._lz2.b45decode(text) == data


@needs_c
@FAST
@given(st.one_of(st.binary(max_size=40).map(b45encode),
                 st.text(alphabet="0123456789ABCXYZ $%*+-./:a~é", max_size=12),
                 st.sampled_from(["GGW", "GGW0", ":::", "::", "FGW", "Z:", "0:"])))
def test_base45_in_c_is_the_strict_decoder(text: str) -> None:
    try:
        expected = b45decode(text)
    except RegistryError:
        assert lz2._lz2.b45decode(text) is None
        return
    assert lz2._lz2.b45decode(text) == expected
