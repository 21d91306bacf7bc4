"""Parsing of a ``lianzheng/cert/1`` document from untrusted JSON (`Document.from_json`).

Strict: exact key sets, no duplicate keys, no NaN/Infinity, lower-case hex of the right length, values
within RFC 8785's range; any problem is a PayloadFormatError(code="invalid_document"). The parsed parts
are handed to the caller's constructor (the Document class), which this module cannot import without a
cycle.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from registry.certificates.anchor_proof import AnchorProof
from registry.certificates.fields import COMMON_FIELD_NAMES, SALT_SEED_SIZE, SALT_SIZE, DisclosedField, HiddenField
from registry.errors import PayloadFormatError, RegistryError, ValidationError
from registry.identifiers import CertificateId
from registry.seeds import JsonValue, is_utf8_encodable

__all__ = ["FORMAT_ID", "parse_document"]

FORMAT_ID = "lianzheng/cert/1"
_SALT_HEX = re.compile(r"[0-9a-f]{32}")
_DIGEST_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_SAFE_INT = 2**53 - 1
_D = TypeVar("_D")

_TOP_KEYS = {"format", "identifier", "type", "fields", "hidden", "digest", "anchor"}
_OPTIONAL_KEYS = frozenset({"salt_seed"})


def _bad(message: str) -> PayloadFormatError:
    return PayloadFormatError(f"not a {FORMAT_ID} document: {message}", code="invalid_document")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")  # two values for one field would make the document ambiguous
        out[k] = v
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _exact_keys(obj: Any, keys: set[str], where: str, optional: frozenset[str] = frozenset()) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise _bad(f"{where} must be an object, got {type(obj).__name__}")
    if not keys <= set(obj) <= keys | optional:
        also = f" (optionally {sorted(optional)})" if optional else ""
        raise _bad(f"{where} must have keys {sorted(keys)}{also}, got {sorted(map(str, obj))}")
    return obj


def _hex_field(value: Any, pattern: re.Pattern[str], where: str, size: int) -> bytes:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _bad(f"{where} must be {2 * size} lower-case hex digits, got {str(value)[:80]!r}")
    return bytes.fromhex(value)


def _utf8(text: str, where: str) -> str:
    if not is_utf8_encodable(text):
        raise _bad(f"{where} contains a lone surrogate (not canonicalisable by RFC 8785)")
    return text


def _plain(value: Any) -> bool:
    """What `_json_value` takes as it is: a text without a lone surrogate, null, a boolean, an integer within
    RFC 8785's range."""
    kind = type(value)
    if kind is str:
        return is_utf8_encodable(value)
    return value is None or kind is bool or (kind is int and -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT)


def _json_value(value: Any, where: str) -> JsonValue:
    if isinstance(value, str):
        return _utf8(value, where)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise _bad(f"{where} is outside the RFC 8785 integer range: {value}")
        return value
    raise _bad(f"{where} must be a string, integer, boolean or null, got {type(value).__name__}")


def parse_document(obj: Mapping[str, Any] | str | bytes, build: Callable[..., _D]) -> _D:
    """Parse ``obj`` and call ``build(identifier=..., type_code=..., fields=..., hidden=..., digest_sha256=...,
    digest_sm3=..., anchor=..., salt_seed=...)``; errors of ``build`` are reported as invalid documents too."""
    try:
        return build(**_parse_document_unchecked(obj))
    except PayloadFormatError:
        raise
    except (RegistryError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:  # safety net
        raise _bad(getattr(exc, "message", None) or str(exc) or type(exc).__name__) from exc


def _parse_document_unchecked(obj: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
    if isinstance(obj, (str, bytes, bytearray)):
        try:
            obj = json.loads(obj, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise _bad(f"invalid JSON: {exc}") from None
    data = _exact_keys(obj, _TOP_KEYS, "document", _OPTIONAL_KEYS)
    if data["format"] != FORMAT_ID:
        raise _bad(f"format must be {FORMAT_ID!r}, got {data['format']!r}")
    identifier, type_code = data["identifier"], data["type"]
    if not isinstance(identifier, str):
        raise _bad(f"identifier must be a string, got {type(identifier).__name__}")
    try:
        CertificateId.parse(identifier)
    except ValidationError as exc:
        raise _bad(f"identifier: {exc.message}") from None
    if not isinstance(type_code, str):
        raise _bad(f"type must be a string, got {type(type_code).__name__}")

    raw_fields = data["fields"]
    if not isinstance(raw_fields, Mapping):
        raise _bad(f"fields must be an object, got {type(raw_fields).__name__}")
    fields: dict[str, DisclosedField] = {}
    for path, entry in raw_fields.items():
        # the common field at once (the checks below, without building their messages): a text path, an entry of
        # exactly salt and value, lower-case hex salt, a plain value; anything else is named by the checks below
        if type(path) is str and path and type(entry) is dict and len(entry) == 2 and "salt" in entry \
                and "value" in entry:
            salt, value = entry["salt"], entry["value"]
            if type(salt) is str and _SALT_HEX.fullmatch(salt) and _plain(value) and is_utf8_encodable(path):
                fields[path] = DisclosedField(salt=bytes.fromhex(salt), value=value)
                continue
        if not isinstance(path, str) or not path:
            raise _bad(f"field paths must be non-empty strings, got {path!r}")
        _utf8(path, "a field path")
        entry = _exact_keys(entry, {"salt", "value"}, f"fields[{path!r}]")
        salt = _hex_field(entry["salt"], _SALT_HEX, f"fields[{path!r}].salt", SALT_SIZE)
        fields[path] = DisclosedField(salt=salt, value=_json_value(entry["value"], f"fields[{path!r}].value"))

    raw_hidden = data["hidden"]
    if not isinstance(raw_hidden, Mapping):
        raise _bad(f"hidden must be an object, got {type(raw_hidden).__name__}")
    hidden: dict[str, HiddenField] = {}
    for path, entry in raw_hidden.items():
        if not isinstance(path, str) or not path:
            raise _bad(f"hidden paths must be non-empty strings, got {path!r}")
        if path in fields:
            raise _bad(f"field {path!r} is both shown and hidden")
        entry = _exact_keys(entry, {"sha256", "sm3"}, f"hidden[{path!r}]")
        hidden[path] = HiddenField(sha256=_hex_field(entry["sha256"], _DIGEST_HEX, f"hidden[{path!r}].sha256", 32),
                                   sm3=_hex_field(entry["sm3"], _DIGEST_HEX, f"hidden[{path!r}].sm3", 32))
    missing = [n for n in COMMON_FIELD_NAMES if n not in fields and n not in hidden]
    if missing:
        raise _bad(f"common fields missing: {', '.join(missing)}")
    seed = None
    if "salt_seed" in data:
        seed = _hex_field(data["salt_seed"], _SALT_HEX, "salt_seed", SALT_SEED_SIZE)
        if hidden:  # see Document.disclose: the seed would reveal the hidden fields' salts
            raise _bad(f"a document with hidden fields must not carry salt_seed (it reveals their salts): "
                       f"hidden {', '.join(hidden)}")
        # A salt that does not derive from the seed is not refused here but reported by integrity_errors():
        # changing a salt changes the digest too, and the verifier must answer "tampered" for that (as for a
        # changed value), not refuse the document as malformed.

    digest = _exact_keys(data["digest"], {"sha256", "sm3"}, "digest")
    d256 = _hex_field(digest["sha256"], _DIGEST_HEX, "digest.sha256", 32)
    dsm3 = _hex_field(digest["sm3"], _DIGEST_HEX, "digest.sm3", 32)
    anchor = None
    if data["anchor"] is not None:
        try:
            anchor = AnchorProof.from_json(data["anchor"])
        except PayloadFormatError as exc:
            raise _bad(exc.message) from None
    return {"identifier": identifier, "type_code": type_code, "fields": fields, "hidden": hidden,
            "digest_sha256": d256, "digest_sm3": dsm3, "anchor": anchor, "salt_seed": seed}
