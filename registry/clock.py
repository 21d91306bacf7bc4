"""Time as the registry shows it: block timestamps as ISO 8601 UTC, and the agencies' day (UTC+8), which
dates the identifiers of evidence records and exchanges.

    >>> iso_time(1773563400)
    '2026-03-15T08:30:00Z'
    >>> iso_time(None) is None
    True
"""

from __future__ import annotations

import datetime as dt

__all__ = ["CHINA", "iso_time"]

CHINA = dt.timezone(dt.timedelta(hours=8))  # identifiers carry the date as the agencies see it (UTC+8)


def iso_time(timestamp: int | None) -> str | None:
    """A block timestamp as ISO 8601 UTC (``2026-03-15T08:30:00Z``)."""
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(int(timestamp), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
