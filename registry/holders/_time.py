"""RFC 3339 UTC timestamps as the holder formats carry them: ``YYYY-MM-DDTHH:MM:SSZ`` (seconds, ``Z``).

>>> parse_time("2026-12-02T01:00:00Z", "expires")
1796173200
>>> format_time(1796173200)
'2026-12-02T01:00:00Z'
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from registry.errors import ValidationError

__all__ = ["format_time", "parse_time"]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


def parse_time(text: Any, what: str, *, code: str = "invalid_time") -> int:
    """Seconds since the epoch of an RFC 3339 UTC time (``Z`` only; fractions are truncated)."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise ValidationError(f"{what} must be an RFC 3339 UTC time like 2026-12-02T01:00:00Z, got "
                              f"{str(text)[:40]!r}", code=code, details={"field": what})
    try:
        value = dt.datetime.fromisoformat(text[:19]).replace(tzinfo=dt.UTC)
    except ValueError:
        raise ValidationError(f"{what} is not a calendar time: {text!r}", code=code,
                              details={"field": what}) from None
    return int(value.timestamp())


def format_time(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(int(timestamp), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
