"""Which characters stored text may hold. Holder names, addresses and every other free-text value of a
document end up printed on certificates, shown on verifier pages and written to terminals and logs, so
characters that change how the text *looks* rather than what it says are refused:

- C0 and C1 control characters (Unicode category Cc): NUL truncates strings in C libraries and databases,
  ESC starts ANSI terminal escape sequences, CR/LF forge extra lines in logs;
- bidirectional formatting characters (Unicode TR #9 §2: LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI, LRM,
  RLM, ALM), which reorder what a reader sees ("Trojan Source", CVE-2021-42574), and U+FEFF, an invisible
  byte order mark.

>>> unsafe_characters("哈尔滨新运商贸有限公司")
[]
>>> unsafe_characters("张三\u202eevil")
['U+202E RIGHT-TO-LEFT OVERRIDE']
"""

from __future__ import annotations

import unicodedata

from registry.errors import ValidationError

__all__ = ["UnsafeTextError", "check_text", "unsafe_characters"]

_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_INVISIBLE = frozenset("\ufeff")


class UnsafeTextError(ValidationError):
    """Text holds control, bidirectional-formatting or invisible characters."""

    default_code = "unsafe_characters"


def _is_unsafe(ch: str) -> bool:
    return ch in _BIDI_CONTROLS or ch in _INVISIBLE or unicodedata.category(ch) == "Cc"


def _describe(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'CONTROL CHARACTER')}"


def unsafe_characters(text: str) -> list[str]:
    """The distinct unsafe characters of ``text``, described, in order of first appearance."""
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
