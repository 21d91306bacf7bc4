"""Checks of untrusted text and digests: which characters stored text may hold, required and optional text
with a length limit, and 32-byte digests as 64 hex digits. Each failure is a `ValidationError` naming the field.

Holder names, addresses and every other free-text value of a document end up printed on certificates, shown on
verifier pages and written to terminals and logs, so characters that change how the text *looks* rather than
what it says are refused by `check_text`:

- C0 and C1 control characters (Unicode category Cc): NUL truncates strings in C libraries and databases,
  ESC starts ANSI terminal escape sequences, CR/LF forge extra lines in logs;
- bidirectional formatting characters (Unicode TR #9 §2: LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI, LRM,
  RLM, ALM), which reorder what a reader sees ("Trojan Source", CVE-2021-42574), and U+FEFF, an invisible
  byte order mark.

>>> unsafe_characters("哈尔滨新运商贸有限公司")
[]
>>> unsafe_characters("张三\u202eevil")
['U+202E RIGHT-TO-LEFT OVERRIDE']
>>> normalise_digest("0x" + "AB" * 32, "sha256") == "ab" * 32
True
>>> required_text("  哈公行罚  ", "case_no", "missing_case_no", max_length=200)
'哈公行罚'
>>> optional_text("   ", "filename", max_length=10) is None
True
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from registry.errors import ValidationError

__all__ = ["UnsafeTextError", "check_text", "hex_or_empty", "normalise_digest", "optional_text", "plain_text",
           "required_text", "unsafe_characters"]

_HEX64 = re.compile(r"[0-9a-f]{64}")


def normalise_digest(value: Any, what: str) -> str:
    """64 lower-case hex digits (an optional 0x prefix is accepted)."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be 64 hex digits, got {type(value).__name__}", code="invalid_digest",
                              details={"field": what})
    text = value.strip().lower().removeprefix("0x")
    if not _HEX64.fullmatch(text):
        raise ValidationError(f"{what} must be 64 hex digits (32 bytes), got {value[:80]!r}", code="invalid_digest",
                              details={"field": what})
    return text


def required_text(value: Any, what: str, code: str, *, max_length: int) -> str:
    """Stripped text that must not be empty (`code` names the missing field) nor longer than `max_length`."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValidationError(f"{what} is required", code=code, details={"field": what})
    if len(text) > max_length:
        raise ValidationError(f"{what} is {len(text)} characters long, at most {max_length} allowed",
                              code="field_too_long", details={"field": what})
    return text


def optional_text(value: Any, what: str, *, max_length: int) -> str | None:
    """Stripped text or None (empty counts as absent); a non-string is refused, not coerced."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}", code="invalid_field",
                              details={"field": what})
    text = value.strip()
    if len(text) > max_length:
        raise ValidationError(f"{what} is {len(text)} characters long, at most {max_length} allowed",
                              code="field_too_long", details={"field": what})
    return text or None


_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_INVISIBLE = frozenset("\ufeff")


class UnsafeTextError(ValidationError):
    """Text holds control, bidirectional-formatting or invisible characters."""

    default_code = "unsafe_characters"


def _is_unsafe(ch: str) -> bool:
    return ch in _BIDI_CONTROLS or ch in _INVISIBLE or unicodedata.category(ch) == "Cc"


def _describe(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'CONTROL CHARACTER')}"


# The same set as _is_unsafe as one character class (category Cc is exactly U+0000-001F and U+007F-009F):
# one C-level scan finds clean text, which is nearly all text, without a Python call per character.
_UNSAFE_CLASS = re.compile("[\x00-\x1f\x7f-\x9f" + re.escape("".join(sorted(_BIDI_CONTROLS | _INVISIBLE))) + "]")


# ... and any surrogate code point: a str holding one has no UTF-8 encoding (a lone surrogate from a JSON escape)
_UNSAFE_OR_SURROGATE = re.compile("[\ud800-\udfff" + _UNSAFE_CLASS.pattern[1:])


def plain_text(text: str) -> bool:
    """True when ``text`` has neither an unsafe character nor a surrogate (nearly all text): one C-level scan,
    where a check of each (`unsafe_characters`, an encoding to UTF-8) takes twice as long."""
    return _UNSAFE_OR_SURROGATE.search(text) is None


def unsafe_characters(text: str) -> list[str]:
    """The distinct unsafe characters of ``text``, described, in order of first appearance."""
    if _UNSAFE_CLASS.search(text) is None:
        return []
    seen: dict[str, None] = {}
    for ch in text:
        if _is_unsafe(ch):
            seen.setdefault(_describe(ch), None)
    return list(seen)


def check_text(text: str, what: str) -> str:
    """``text`` unchanged, or UnsafeTextError naming the field and the characters found."""
    found = unsafe_characters(text)
    if found:
        raise UnsafeTextError(f"{what} contains characters that are not allowed (control or bidirectional "
                              f"formatting): {', '.join(found[:5])}", details={"field": what, "characters": found[:20]})
    return text


def hex_or_empty(text: str | None) -> bytes:
    """A hex column's bytes (0x optional); b"" when it is not hex (an edited row: it then matches nothing)."""
    try:
        return bytes.fromhex((text or "").removeprefix("0x"))
    except ValueError:
        return b""
