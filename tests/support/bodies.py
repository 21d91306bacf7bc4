"""Pathological request bodies from a seeded generator: what a hostile or broken client sends to JSON endpoints.

    >>> bodies = list(pathological_bodies(random.Random(1), 20, base={"identifier": "1.2.156"}))
    >>> len(bodies), all(isinstance(b.content, bytes) for b in bodies)
    (20, True)

Each body has a kind (for the failure message), its bytes and the Content-Type it is sent with. Kinds cycle,
so any 1,000 consecutive bodies hold every kind many times; sizes stay under a few MiB so a run takes seconds.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

JSON = "application/json"


@dataclass(frozen=True)
class Body:
    kind: str
    content: bytes
    content_type: str | None = JSON


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _deep(rng: random.Random, depth: int) -> bytes:
    opens, closes = [], []
    for _ in range(depth):
        key = json.dumps(rng.choice(["a", "fields", "identifier", "持证主体", ""]))
        opening, closing = ("[", "]") if rng.random() < 0.5 else ("{" + key + ":", "}")
        opens.append(opening)
        closes.append(closing)
    return ("".join(opens) + "0" + "".join(reversed(closes))).encode()


def _scalar(rng: random.Random) -> Any:
    return rng.choice([None, True, False, 0, -1, 2**63, -(2**63) - 1, 1.5e300, "", "x", "1.2.156", [], {}])


def _kinds(base: dict[str, Any]) -> list[tuple[str, Callable[[random.Random], Body]]]:
    valid = _dump(base)

    def wrap(value: Any) -> dict[str, Any]:
        return {k: value for k in base} or {"value": value}

    return [
        ("deep arrays", lambda r: Body("deep arrays", b"[" * r.choice([33, 100, 1000, 100_000]) + b"]" * 100_000)),
        ("deep mixed", lambda r: Body("deep mixed", _deep(r, r.choice([33, 64, 500, 20_000])))),
        ("deep inside a valid body", lambda r: Body("deep inside", _dump(wrap(None)).replace(b"null", _deep(r, 50_000)))),
        ("shallow nesting", lambda r: Body("shallow nesting", _deep(r, r.randint(1, 32)))),
        ("huge integer", lambda r: Body("huge integer", _dump(wrap(0)).replace(b"0", b"9" * r.choice([65, 4301, 100_000])))),
        ("huge exponent", lambda r: Body("huge exponent",
                                         _dump(wrap(0)).replace(b"0", r.choice([b"1e400", b"-1E999", b"1e-99999"])))),
        ("big but allowed numbers", lambda r: Body("big numbers", _dump(wrap(r.choice([2**200, -(2**63), 1e308, -0.0]))))),
        ("NaN and Infinity", lambda r: Body("nan", _dump(wrap(0)).replace(b"0", r.choice([b"NaN", b"Infinity", b"-Infinity"])))),
        ("long string", lambda r: Body("long string", _dump(wrap("证" * r.choice([10_000, 300_000]))))),
        ("long string in a list", lambda r: Body("long list", _dump(wrap(["x" * 1000] * r.choice([10, 2000]))))),
        ("invalid UTF-8", lambda r: Body("invalid utf-8", _corrupt(r, valid, [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88"]))),
        ("UTF-16", lambda r: Body("utf-16", json.dumps(base).encode(r.choice(["utf-16", "utf-16-le", "utf-32"])))),
        ("BOM", lambda r: Body("bom", b"\xef\xbb\xbf" + valid)),
        ("NUL bytes", lambda r: Body("nul", _corrupt(r, valid, [b"\x00"]))),
        ("escaped NUL and controls", lambda r: Body("controls", _dump(wrap("a\u0000b\u001b[31m\u202e\r\n")))),
        ("raw control characters", lambda r: Body("raw controls", _dump(wrap("X")).replace(b"X", b"a\x01\x1fb"))),
        ("lone surrogate", lambda r: Body("surrogate", _dump(wrap("X")).replace(b"X", r.choice([b"\\ud800", b"\\udfff",
                                                                                              b"a\\ud83d", b"\\ude00x"])))),
        ("paired surrogate", lambda r: Body("emoji", _dump(wrap("X")).replace(b"X", b"\\ud83d\\ude00"))),
        ("truncated", lambda r: Body("truncated", valid[: r.randint(0, max(0, len(valid) - 1))])),
        ("trailing garbage", lambda r: Body("trailing", valid + r.choice([b"x", b"}", b"]]", b",", b"\x00", b" {}"]))),
        ("enormous key", lambda r: Body("enormous key", _dump({**base, "k" * r.choice([1000, 500_000]): 1}))),
        ("many keys", lambda r: Body("many keys", _dump({**base, **{f"k{i}": i for i in range(r.choice([100, 50_000]))}}))),
        ("duplicate keys", lambda r: Body("duplicate keys", b"{" + b",".join([valid[1:-1]] * 2 + [b'"a":1,"a":2']) + b"}"
                                          if len(valid) > 2 else b'{"a":1,"a":2}')),
        ("wrong types", lambda r: Body("wrong types", _dump(wrap(_scalar(r))))),
        ("scalar body", lambda r: Body("scalar", _dump(_scalar(r)))),
        ("empty body", lambda r: Body("empty", r.choice([b"", b" ", b"\n\t"]))),
        ("wrong content type", lambda r: Body("content type", r.choice([valid, b"a=1&b=2", b"<x/>", b"\x00\xff"]),
                                              r.choice(["text/plain", "application/xml", "multipart/form-data",
                                                        "application/x-www-form-urlencoded", "application/json; charset=latin-1",
                                                        "application/problem+json", None, "*/*"]))),
        ("random bytes", lambda r: Body("random bytes", r.randbytes(r.choice([1, 100, 10_000])))),
        ("mutated valid body", lambda r: Body("mutated", _mutate(r, valid))),
    ]


def _corrupt(rng: random.Random, valid: bytes, insertions: list[bytes]) -> bytes:
    at = rng.randint(0, len(valid))
    return valid[:at] + rng.choice(insertions) + valid[at:]


def _mutate(rng: random.Random, valid: bytes) -> bytes:
    data = bytearray(valid)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        at = rng.randrange(len(data) + 1)
        if op < 0.4 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif op < 0.7:
            data[at:at] = rng.choice([b"[", b"{", b'"', b"\\", b",", b":", b"-", b"1e", b"\\u"])
        elif data:
            del data[min(at, len(data) - 1)]
    return bytes(data)


def pathological_body(rng: random.Random, index: int, *, base: dict[str, Any]) -> Body:
    """Body number `index` (kinds in turn) built around `base`, a well-formed body of the target endpoint."""
    kinds = _kinds(base)
    return kinds[index % len(kinds)][1](rng)


def pathological_bodies(rng: random.Random, count: int, *, base: dict[str, Any]) -> Iterator[Body]:
    """`count` bodies built around `base`, every kind in turn."""
    for i in range(count):
        yield pathological_body(rng, i, base=base)
