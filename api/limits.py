"""What a request body may be: its size (pure ASGI middleware that refuses before the body is read into
memory) and, for JSON, its shape (nesting depth, number sizes, encoding) checked before any parser sees it.

    >>> check_json_body(b'{"identifier": "1.2.156"}')
    >>> check_json_body(b"[" * 100 + b"]" * 100)
    Traceback (most recent call last):
    ...
    api.limits.JsonBodyError: JSON nested deeper than 32 levels

Why before parsing: CPython's json module recurses once per nesting level in C; a 200 KB body of nested
arrays overflows the C stack when the recursion limit is high (issue 10). The check below is linear and
recursion-free, so a hostile body costs a few passes of C-speed byte operations.
"""

from __future__ import annotations

import json
import re
from typing import Any

from api.errors import error_body

Scope = dict[str, Any]

MAX_JSON_DEPTH = 32
# A JSON number longer than this is refused: every number Lianzheng accepts (counts, offsets, reason codes,
# registered capital) fits in far fewer digits, and CPython refuses int literals over 4,300 digits anyway
# (with a ValueError the framework would report as a generic parse failure).
MAX_NUMBER_DIGITS = 64

_ESCAPE = re.compile(rb"\\.", re.DOTALL)  # left to right, non-overlapping: exactly JSON's escape pairs
_BIG_EXPONENT = re.compile(rb"[eE][+-]?0*[1-9][0-9]{2,}")  # |exponent| >= 100: 1e400 would parse as inf
# Outside strings a body is refused for a number of more than MAX_NUMBER_DIGITS digits, an exponent of 100 or
# more, and NaN or Infinity (Python's json accepts them; RFC 8259 does not). Each is found by byte search, at a
# fraction of the regex engine's cost per position, and each exactly as the regex that defines it
# (tests/unit/test_limits.py): a run of that many digits is a run of zeros once every digit reads 0; a big
# exponent needs e or E followed by a sign or a digit, so its regex runs only where such a pair occurs (never in
# a body without numbers in exponent form); the literals are substrings.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * (MAX_NUMBER_DIGITS + 1)
_EXPONENT_STARTS = (b"e0", b"E0", b"e+", b"E+", b"e-", b"E-")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_ESCAPE_TOKEN = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)
# Brackets only, objects read as arrays: depth does not depend on the kind, and a `[` closed by `}` is the
# parser's to refuse (at a depth already known to be small).
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_AS_ARRAY = bytes.maketrans(b"{}", b"[]")


class JsonBodyError(ValueError):
    """A body refused before parsing; `code` and `status` go to the client."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def check_json_body(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise JsonBodyError when `body` is not UTF-8, nests deeper than `max_depth`, has brackets that cannot
    balance, or carries numbers no parser should be asked to build. Exact for valid JSON; for invalid JSON it
    may refuse where the parser would have refused anyway."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonBodyError("invalid_encoding", f"request body is not UTF-8 (byte {exc.start})") from None
    if b"\x00" in body:  # never valid in JSON text; its presence also means UTF-16/32, which we refuse
        raise JsonBodyError("invalid_json", "request body contains a NUL byte", 422)
    if _SURROGATE_ESCAPE.search(body) is not None:
        _check_surrogates(body)
    outside = outside_strings(_ESCAPE.sub(b"", body))  # what is left is the JSON outside strings
    digits = outside.translate(_DIGITS_AS_ZERO)
    if _LONG_RUN in digits:
        raise JsonBodyError("number_too_large", f"a number in the request body has more than {MAX_NUMBER_DIGITS} digits")
    if any(pair in digits for pair in _EXPONENT_STARTS) and _BIG_EXPONENT.search(outside) is not None:
        raise JsonBodyError("number_too_large", "a number in the request body has an exponent of 100 or more")
    if b"NaN" in outside or b"Infinity" in outside:
        raise JsonBodyError("invalid_json", "request body is not valid JSON (NaN and Infinity are not JSON)", 422)
    _check_depth(outside.translate(_AS_ARRAY, _NOT_BRACKETS), max_depth)


def outside_strings(text: bytes) -> bytes:
    """``text`` (without escapes) with every string's content removed: each ``"..."`` becomes ``""``, pairing
    quotes from the left; an unpaired last quote and what follows it stay. The regex ``sub('"[^"]*"', '""')``
    does the same (tests/unit/test_limits.py compares them); splitting at the quotes takes half its time on a
    certificate's body, where most bytes are inside strings."""
    parts = text.split(b'"')
    if len(parts) % 2:  # quotes paired: the even parts are outside
        return b'""'.join(parts[0::2])
    return b'""'.join(parts[0:-1:2]) + b'"' + parts[-1]


def _check_depth(brackets: bytes, max_depth: int) -> None:
    """Each pass removes the innermost level of pairs, so a balanced nesting of depth d is empty after d
    passes; a pass without progress means brackets that cannot balance."""
    for _ in range(max_depth):
        if not brackets:
            return
        reduced = brackets.replace(b"[]", b"")  # one scan: a pair exposed by this pass waits for the next
        if len(reduced) == len(brackets):
            raise JsonBodyError("invalid_json", "request body is not valid JSON (unbalanced brackets)", 422)
        brackets = reduced
    if brackets:
        raise JsonBodyError("json_too_deep", f"JSON nested deeper than {max_depth} levels")


def _check_surrogates(body: bytes) -> None:
    """A `\\uD800`-style escape must be a high surrogate followed by a low one: a lone one decodes to a str
    that cannot be encoded again (it would fail deep inside hashing or storage)."""
    pending_high, pending_end = False, -1
    for match in _ESCAPE_TOKEN.finditer(body):
        unit = int(match.group(1), 16) if match.group(1) else None
        is_high = unit is not None and 0xD800 <= unit <= 0xDBFF
        is_low = unit is not None and 0xDC00 <= unit <= 0xDFFF
        adjacent = pending_high and match.start() == pending_end
        if pending_high and not (is_low and adjacent):
            break
        if is_low and not (pending_high and adjacent):
            break
        pending_high, pending_end = is_high, match.end()
    else:
        if not pending_high:
            return
    raise JsonBodyError("invalid_json", "request body has an unpaired UTF-16 surrogate escape", 422)


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413, whether declared by Content-Length or streamed chunked.

    A chunked body is only found too large while the app reads it; whatever the app makes of the aborted read
    (FastAPI turns it into a 400 "error parsing the body") is discarded and the 413 is sent instead."""

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(send, declared)
                    return
        received = 0
        exceeded = started = False

        async def limited_receive() -> Any:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _TooLarge()
            return message

        async def guarded_send(message: Any) -> None:
            nonlocal started
            if exceeded:
                return  # the app's answer to a body it could not read
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._refuse(send, received)

    async def _refuse(self, send: Any, size: int) -> None:
        body = json.dumps(error_body(
            "payload_too_large",
            f"请求体过大 / request body too large: {size} bytes or more, the limit is {self.max_bytes} bytes",
            {"limit": self.max_bytes},
        )).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
