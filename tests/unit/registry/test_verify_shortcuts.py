"""The document verification's shortcuts give exactly what their plain definitions give, on valid and altered
input: a document's common fields parsed without building their error messages (the checks of
`registry.certificates._parse`, one by one, written out here), an anchor's audit path parsed by one regex over
its digits (per step), an audit path kept as it is when it is one already, the batch inclusion check by
`fields.batch_root` (RFC 9162 through `merkle.verify_inclusion_leaf_hash`), a member's role names remembered by
value, and check details copied without a call per plain value (`dataclasses.asdict`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api.devtools.samples import sample_values
from chain.contracts import Role
from registry.certificates import _parse, anchor_proof, building, fields
from registry.certificates.documents import Document
from registry.certificates.fields import DisclosedField
from registry.certificates.verification import Check, VerificationResult
from registry.crypto import merkle
from registry.errors import PayloadFormatError, ValidationError
from registry.seeds import load_seeds

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = load_seeds(Path(__file__).resolve().parents[3] / "seeds")
_TYPE = SEEDS.certificate_types[0]
_ISSUER = SEEDS.member(_TYPE.issuers[0])
DOCUMENT = building.build_each(SEEDS, _ISSUER.uscc, _TYPE, sample_values(_TYPE, 1, issuer=_ISSUER, seed=3),
                               first_serial=1, today=dt.date(2024, 3, 15), encoded=[])[0][0]


def _document_json() -> dict[str, Any]:
    return json.loads(json.dumps(DOCUMENT.to_json()))


# --- a field of a document ---------------------------------------------------------------------------------------

TEXTS = st.one_of(st.text(max_size=8), st.sampled_from(["住所", "\ud800", "a\udfffb", "x" * 3]))
SALTS = st.one_of(st.binary(min_size=16, max_size=16).map(bytes.hex), st.text(alphabet="0123456789abcdefABCDEF", max_size=34),
                  st.just("0" * 31 + "G"), st.integers(), st.none())
VALUES = st.one_of(TEXTS, st.none(), st.booleans(), st.integers(-(2**54), 2**54),
                   st.sampled_from([2**53 - 1, -(2**53) + 1, 2**53, -(2**53)]), st.floats(allow_nan=False),
                   st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))
GOOD_SALTS = st.binary(min_size=16, max_size=16).map(bytes.hex)
ENTRIES = st.one_of(st.fixed_dictionaries({"salt": GOOD_SALTS, "value": VALUES}),  # all but the value well formed
                    st.fixed_dictionaries({"salt": SALTS, "value": VALUES}),
                    st.dictionaries(st.sampled_from(["salt", "value", "x"]), VALUES, max_size=3), VALUES)


def _field_by_the_checks(path: Any, entry: Any) -> Any:
    """The per-field checks of `_parse_document_unchecked`, one by one, as they read without the shortcut."""
    try:
        if not isinstance(path, str) or not path:
            raise _parse._bad(f"field paths must be non-empty strings, got {path!r}")
        _parse._utf8(path, "a field path")
        entry = _parse._exact_keys(entry, {"salt", "value"}, f"fields[{path!r}]")
        salt = _parse._hex_field(entry["salt"], _parse._SALT_HEX, f"fields[{path!r}].salt", _parse.SALT_SIZE)
        return DisclosedField(salt=salt, value=_parse._json_value(entry["value"], f"fields[{path!r}].value"))
    except PayloadFormatError as exc:
        return ("refused", exc.message)


_SALT = "00" * 16


@FAST
@given(st.one_of(TEXTS, st.just("")), ENTRIES)
@example("新字段", {"salt": "0" * 31 + "G", "value": "x"})  # each example is one condition of the shortcut
@example("新字段", {"salt": "0" * 30, "value": "x"})
@example("新字段", {"salt": _SALT, "value": -(2**53)})
@example("新字段", {"salt": _SALT, "value": 2**53})
@example("新字段", {"salt": _SALT, "value": 1.5})
@example("新字段", {"salt": _SALT, "value": "a\ud800"})
@example("a\udfff", {"salt": _SALT, "value": "x"})
@example("新字段", {"salt": _SALT, "value": "x", "extra": 1})
def test_a_field_parses_as_its_checks_say(path: str, entry: Any) -> None:
    doc = _document_json()
    if path in doc["fields"]:
        return  # a common field: the other checks of the document would see it too
    doc["fields"][path] = entry
    expected = _field_by_the_checks(path, entry)
    try:
        parsed = _parse._parse_document_unchecked(doc)
    except PayloadFormatError as exc:
        assert expected == ("refused", exc.message)
        return
    assert parsed["fields"][path] == expected
    assert type(parsed["fields"][path].value) is type(entry["value"])


def test_a_whole_document_parses_to_itself() -> None:
    parsed = Document.from_json(json.dumps(DOCUMENT.to_json()))
    assert parsed == DOCUMENT


# --- an anchor's audit path ------------------------------------------------------------------------------------

STEPS = st.one_of(st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex()),
                  st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex().upper()),
                  st.binary(min_size=32, max_size=32).map(lambda b: "0X" + b.hex()),
                  st.text(alphabet="0123456789abcdefxg", min_size=64, max_size=67),
                  st.text(alphabet="0123456789abcdefABCDEFgG \n", min_size=64, max_size=64).map(lambda t: "0x" + t),
                  st.integers(), st.none())


def _outcome(f: Any, *args: Any) -> Any:
    try:
        return ("ok", f(*args))
    except ValidationError as exc:
        return ("refused", exc.message, exc.code)


@FAST
@given(st.one_of(st.lists(STEPS, max_size=12), st.lists(STEPS.filter(lambda s: isinstance(s, str)), max_size=12),
                 st.text(max_size=3)))
@example(["0x" + "0" * 63 + "g"])
@example(["0x" + "0" * 64, "0x" + "0" * 62 + " 0"])
@example(["0X" + "0" * 64])
def test_an_audit_path_parses_as_each_step_does(path: Any) -> None:
    by_step = _outcome(lambda p: tuple(anchor_proof._hex32(s, "path") for s in p) if isinstance(p, list) else
                       anchor_proof._hex32_list(p, "path"), path)
    assert _outcome(anchor_proof._hex32_list, path, "path") == by_step


@FAST
@given(st.one_of(st.lists(st.binary(min_size=31, max_size=33), max_size=6).map(tuple),
                 st.lists(st.binary(min_size=32, max_size=32), max_size=6).map(tuple),
                 st.lists(st.binary(min_size=32, max_size=32), max_size=6),
                 st.lists(st.binary(min_size=32, max_size=32).map(bytearray), max_size=3).map(tuple),
                 st.lists(st.integers(), min_size=1, max_size=2)))
def test_an_audit_path_is_kept_when_it_is_one_already(path: Any) -> None:
    by_step = _outcome(lambda p: tuple(anchor_proof._bytes32(s, f"path[{i}]") for i, s in enumerate(p)), path)
    got = _outcome(anchor_proof._steps, path, "path")
    assert got == by_step
    assert got[0] != "ok" or all(type(s) is bytes for s in got[1])


# --- the batch inclusion check ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 40), st.data(), st.sampled_from(["sha256", "sm3"]))
def test_batch_inclusion_is_rfc_9162_on_valid_and_malformed_input(size: int, data: st.DataObject, algorithm: str) -> None:
    digests = [bytes([i]) * 32 for i in range(size)]
    tree = merkle.MerkleTree([merkle.leaf_hash(d, algorithm=algorithm) for d in digests], algorithm=algorithm)
    index = data.draw(st.integers(0, size - 1))
    proof: Any = tree.inclusion_proof(index)
    root: Any = tree.root
    digest: Any = digests[index]
    change = data.draw(st.sampled_from(["none", "index", "size", "step", "root", "types", "short", "tuple"]))
    if change == "index":
        index = data.draw(st.one_of(st.integers(-2, size + 2), st.booleans(), st.just(2**64), st.just(1.0)))
    elif change == "size":
        size = data.draw(st.one_of(st.integers(-1, size + 3), st.booleans(), st.just(2**64 + 1)))
    elif change == "step" and proof:
        proof[0] = bytes(32)
    elif change == "root":
        root = data.draw(st.one_of(st.binary(max_size=33), st.none(), st.just("0x" + tree.root.hex())))
    elif change == "types" and proof:
        proof[-1] = data.draw(st.one_of(st.just(bytearray(proof[-1])), st.just(proof[-1].hex()), st.none()))
    elif change == "short" and proof:
        proof[0] = proof[0][:31]
    elif change == "tuple":
        proof = tuple(proof)
    plain = merkle.verify_inclusion_leaf_hash(merkle.leaf_hash(digest, algorithm=algorithm), index, size, proof, root,
                                              algorithm=algorithm)
    assert fields.batch_includes(root, digest, index, size, proof, algorithm=algorithm) == plain
    with fields.python_only():
        assert fields.batch_includes(root, digest, index, size, proof, algorithm=algorithm) == plain
    if change == "none":
        assert plain


# --- what an answer carries ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", range(128))
def test_role_names_are_the_flags_set(value: int) -> None:
    roles = Role(value)
    assert roles.names() == [r.name.lower() for r in Role if r in roles and r.name]
    assert roles.names() is not roles.names()  # a fresh list each time: callers may change theirs


@dataclasses.dataclass(frozen=True)
class _Point:
    x: int
    y: tuple[int, ...]


def test_answers_are_copied_as_dataclasses_asdict_copies_them() -> None:
    details = {"a": "住", "b": None, "c": True, "d": 1.5, "e": b"x", "f": [1, {"g": (2, 3)}], "h": (4, [5]),
               "i": _Point(1, (2,)), "j": {"k": {"l": [None]}}}
    check = Check("integrity", "valid", "中", "en", details)
    result = VerificationResult("valid", "有效", "valid", "id", [check], issuer={"roles": ["issuer"]},
                                anchor={"path": [b"\x00"]}, fields={"x": "y", "z": [1]}, as_of={"block": 1})
    assert result.to_json() == dataclasses.asdict(result)
    copied = result.to_json()
    copied["checks"][0]["details"]["f"][1]["g"] = None
    copied["fields"]["z"].append(2)
    assert check.details["f"][1]["g"] == (2, 3) and result.fields["z"] == [1]  # nothing shared
