"""Hypothesis strategies for untrusted input: arbitrary JSON and CBOR values, and byte/text mutations of valid
inputs (the shapes a truncated scan, a bit flip or a hostile client produce)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=12), inner, max_size=6)),
    max_leaves=30,
)
# Values a JSON signer can canonicalise (RFC 8785 allows integers up to 2**53 - 1 only)
safe_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40)),
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=12), inner, max_size=6)),
    max_leaves=30,
)
cbor_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(),
                         st.binary(max_size=70), st.text(max_size=40))
cbor_values = st.recursive(
    cbor_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=25),
                            st.dictionaries(st.one_of(st.integers(-2, 30), st.text(max_size=8)), inner, max_size=8)),
    max_leaves=60,
)


@st.composite
def mutated_bytes(draw: Any, valid: bytes) -> bytes:
    """`valid` with 1-6 edits: a flipped bit, a replaced, inserted or deleted byte, or a cut at the end."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "replace", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "replace" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[at]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


@st.composite
def mutated_text(draw: Any, valid: str, alphabet: str) -> str:
    """`valid` with 1-6 character edits drawn from `alphabet` (plus any character now and then)."""
    chars = list(valid)
    any_char = st.one_of(st.sampled_from(alphabet), st.characters())
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(chars) - 1)))
        if op == "replace" and chars:
            chars[at] = draw(any_char)
        elif op == "insert":
            chars.insert(at, draw(any_char))
        elif op == "delete" and chars:
            del chars[at]
        elif op == "truncate":
            del chars[at:]
    return "".join(chars)
