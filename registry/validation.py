"""Checks of untrusted text and digests from requests: required and optional text with a length limit,
and 32-byte digests as 64 hex digits. Each failure is a `ValidationError` naming the field.

    >>> normalise_digest("0x" + "AB" * 32, "sha256") == "ab" * 32
    True
    >>> required_text("  哈公行罚  ", "case_no", "missing_case_no", max_length=200)
    '哈公行罚'
    >>> optional_text("   ", "filename", max_length=10) is None
    True
"""

from __future__ import annotations

import re
from typing import Any

from registry.errors import ValidationError

__all__ = ["normalise_digest", "optional_text", "required_text"]

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
