"""JSON request bodies: the pre-parse check (api/limits.py) never raises anything but its own refusal, accepts
every well-formed body up to 32 levels and refuses deeper ones, and what it accepts parses without recursion
trouble; the verify body and document parsers (registry/certificates) refuse any JSON value with a
RegistryError."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api.limits import MAX_JSON_DEPTH, JsonBodyError, check_json_body
from registry.certificates.documents import Document
from registry.certificates.verification import parse_verify_body
from registry.errors import RegistryError
from tests.unit.fuzz.strategies import json_values, mutated_bytes

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def nested(value: Any, levels: int, kinds: list[bool]) -> Any:
    for i in range(levels):
        value = [value] if kinds[i % len(kinds)] else {"k\\\"[{": value}
    return value


def _check(body: bytes) -> str | None:
    try:
        check_json_body(body)
    except JsonBodyError as exc:
        assert exc.status in (400, 422) and exc.code
        return exc.code
    return None


@FUZZ
@given(st.binary(max_size=400))
@example(b"[" * 100_000 + b"]" * 100_000)
@example(b'"\\' * 1000)
@example(b'"' + b"\\" * 999)
def test_any_bytes_are_accepted_or_refused_with_a_json_body_error(body: bytes) -> None:
    if _check(body) is None:
        try:
            json.loads(body)
        except ValueError:
            pass  # invalid JSON the parser refuses cleanly; never a RecursionError or a crash


@FUZZ
@given(json_values, st.integers(0, 40), st.lists(st.booleans(), min_size=1, max_size=4))
def test_depth_is_measured_exactly_for_well_formed_json(value: Any, extra: int, kinds: list[bool]) -> None:
    value = nested(value, extra, kinds)
    body = json.dumps(value, ensure_ascii=bool(extra % 2)).encode()
    code = _check(body)
    big_number = any(len(t) > 64 for t in body.decode().replace('"', " ").split() if t.strip("-0123456789.eE+,[]{}:") == "")
    if depth(value) > MAX_JSON_DEPTH:
        assert code in ("json_too_deep", "number_too_large")
    elif code is not None:
        assert code == "number_too_large" and (big_number or "e+" in body.decode() or "e-" in body.decode()), body[:200]


@FUZZ
@given(st.data(), json_values)
def test_mutated_json_is_accepted_or_refused_with_a_json_body_error(data: st.DataObject, value: Any) -> None:
    body = data.draw(mutated_bytes(json.dumps(value).encode()))
    if _check(body) is None:
        try:
            json.loads(body)
        except ValueError:
            pass


@FUZZ
@given(json_values)
def test_the_verify_body_and_document_parsers_refuse_any_json_with_a_registry_error(value: Any) -> None:
    for candidate in (value, {"identifier": value}, {"fields": value}, {"document": value},
                      {"format": "lianzheng/cert/1", "fields": value}):
        try:
            kind, parsed = parse_verify_body(candidate)
        except RegistryError:
            continue
        if kind == "document":
            try:
                Document.from_json(parsed)
            except RegistryError:
                pass
