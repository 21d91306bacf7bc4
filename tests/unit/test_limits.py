"""The JSON body guard's byte searches (api/limits.py) decide exactly as the regular expressions that define
them: removing string contents, and finding over-long numbers, big exponents and NaN/Infinity outside strings.
The reference below is the guard as it was written with those expressions; bodies are drawn from pieces that
make every refusal likely (long digit runs, exponents with and without signs and leading zeros, the literals,
quotes, escapes and brackets), and each must get the same answer (accepted, or the same code and message)."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from api.limits import (
    _AS_ARRAY,
    _ESCAPE,
    _NOT_BRACKETS,
    _SURROGATE_ESCAPE,
    MAX_JSON_DEPTH,
    MAX_NUMBER_DIGITS,
    JsonBodyError,
    _check_depth,
    _check_surrogates,
    check_json_body,
    outside_strings,
)

STRING = re.compile(rb'"[^"]*"')
LONG_DIGITS = re.compile(rb"[0-9]{%d,}" % (MAX_NUMBER_DIGITS + 1))
BIG_EXPONENT = re.compile(rb"[eE][+-]?0*[1-9][0-9]{2,}")
NON_JSON_LITERAL = re.compile(rb"NaN|Infinity")


def reference_check(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonBodyError("invalid_encoding", f"request body is not UTF-8 (byte {exc.start})") from None
    if b"\x00" in body:
        raise JsonBodyError("invalid_json", "request body contains a NUL byte", 422)
    if _SURROGATE_ESCAPE.search(body) is not None:
        _check_surrogates(body)
    outside = STRING.sub(b'""', _ESCAPE.sub(b"", body))
    if LONG_DIGITS.search(outside) is not None:
        raise JsonBodyError("number_too_large", f"a number in the request body has more than {MAX_NUMBER_DIGITS} digits")
    if BIG_EXPONENT.search(outside) is not None:
        raise JsonBodyError("number_too_large", "a number in the request body has an exponent of 100 or more")
    if NON_JSON_LITERAL.search(outside) is not None:
        raise JsonBodyError("invalid_json", "request body is not valid JSON (NaN and Infinity are not JSON)", 422)
    _check_depth(outside.translate(_AS_ARRAY, _NOT_BRACKETS), max_depth)


def outcome(check: object, body: bytes) -> tuple[str, str, int] | None:
    try:
        check(body)  # type: ignore[operator]
    except JsonBodyError as exc:
        return exc.code, exc.message, exc.status
    return None


PIECES = [b'"', b'\\"', b"\\\\", b"\\u00e9", b"\\ud83d\\ude00", b"\\ud800", b"0" * 64, b"9", b"12", b"e", b"E",
          b"e+", b"E-", b"e0", b"00", b"1e99", b"1e100", b"2E+0100", b"-3e-100", b"NaN", b"Infinity", b"Na", b"N",
          b"true", b"false", b"null", b"[", b"]", b"{", b"}", b",", b":", b" ", b"x", "链证".encode(), b"\xff",
          b"\x00"]
bodies = st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join)


@settings(max_examples=3000, deadline=None)
@given(bodies)
@example(b'{"a": ' + b"1" * 65 + b"}")
@example(b'{"a": ' + b"1" * 64 + b"}")
@example(b'["' + b"1" * 65 + b'"]')
@example(b"[1e100, NaN]")
@example(b"[true, 1e99]")
@example(b'["x", "NaN"]')
@example(b'["\\"NaN"]')
@example(b'"unpaired ' + b"1" * 65)
def test_the_byte_searches_decide_as_the_regular_expressions(body: bytes) -> None:
    assert outcome(check_json_body, body) == outcome(reference_check, body)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from([b'"', b"a", b"1", b"[", b"}", "证".encode(), b""]), max_size=50).map(b"".join))
@example(b"")
@example(b'"')
@example(b'""')
@example(b'a"b"c"d')
def test_outside_strings_is_the_string_removing_substitution(text: bytes) -> None:
    assert outside_strings(text) == STRING.sub(b'""', text)


@pytest.mark.parametrize(("body", "code"), [
    (b"[" + b"7" * 65 + b"]", "number_too_large"),
    (b"[1E+100]", "number_too_large"),
    (b"[Infinity]", "invalid_json"),
    (b'["' + b"7" * 65 + b'", 1e99, "NaN"]', None),
])
def test_each_refusal_still_refuses_and_strings_are_exempt(body: bytes, code: str | None) -> None:
    assert (outcome(check_json_body, body) or (None,))[0] == code
