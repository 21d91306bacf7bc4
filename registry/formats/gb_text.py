"""Text values of offline payloads as GB 18030 bytes (registry/formats/lz2.py's module docstring: 2 bytes per
Hanzi instead of 3 in UTF-8), and what the LZ2 decoder remembers of them. A value that is a CBOR byte string
is always such text, since values are never bytes; the one-encoding rule needs to know whether the encoder
would have packed a decoded text to exactly the bytes it came from (`packs_to`). The compiled decoder
(registry/formats/_lz2.c) shares the memo `GB_TEXTS` and packs by the same character set.
"""

from __future__ import annotations

import re
from typing import Any

from registry.formats._qr_errors import invalid as _invalid
from registry.formats.offline_payload import FieldValue

__all__ = ["GB_SAFE", "GB_TEXTS", "GB_TEXTS_SIZE", "opened", "pack_value", "packs_to", "unpack_value"]

# Text whose characters all lie here is stored as GB 18030 bytes. The set is ASCII, the CJK Unified
# Ideographs of GBK (U+4E00..U+9FA5), CJK punctuation and full-width forms: all 1- or 2-byte GB 18030 codes
# whose mapping is identical in GB 18030-2005, -2022 and the WHATWG decoder (TextDecoder("gb18030")).
GB_SAFE = re.compile("[\x20-\x7e\u00b7\u2014\u2018\u2019\u201c\u201d\u2026\u3000-\u3011\u4e00-\u9fa5\uff01-\uff5e]*")


def pack_value(value: FieldValue) -> Any:
    if isinstance(value, str) and not value.isascii() and GB_SAFE.fullmatch(value):
        try:
            packed = value.encode("gb18030")
        except UnicodeEncodeError:  # pragma: no cover - the character set above is all in GBK
            return value
        if packed.decode("gb18030") == value:
            return packed
    return value


def unpack_value(value: Any, name: str) -> FieldValue:
    if isinstance(value, bytes):
        try:
            return value.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise _invalid(f"disclosed field {name!r} is not GB 18030 text") from exc
    if value is None or isinstance(value, str | int):
        return value
    raise _invalid(f"disclosed field {name!r} has type {type(value).__name__}; expected text, integer, boolean or null")


def opened(packed: Any, name: str) -> tuple[FieldValue, bool]:
    """``(unpack_value(packed), packs_to(value, packed))``, remembered for GB 18030 bytes (`GB_TEXTS`)."""
    known = GB_TEXTS.get(packed) if type(packed) is bytes else None
    if known is not None:
        return known
    value = unpack_value(packed, name)
    packs = packs_to(value, packed)
    if type(packed) is bytes and isinstance(value, str):
        if len(GB_TEXTS) >= GB_TEXTS_SIZE:
            GB_TEXTS.clear()
        GB_TEXTS[packed] = (value, packs)
    return value, packs


def packs_to(value: FieldValue, packed: Any) -> bool:
    """``pack_value(value) == packed`` for the ``value`` that `unpack_value` made of ``packed``, without
    decoding twice: an ASCII text, a number, a boolean or null unpacks to itself, and GB 18030 bytes that
    decoded to ``value`` pack back to themselves when ``value`` is in the packed character set and encodes to
    exactly those bytes (decoding them again gives ``value``: they are the bytes it was decoded from)."""
    if value is packed:
        return not (isinstance(packed, str) and not packed.isascii()) or bool(pack_value(packed) == packed)
    return (isinstance(value, str) and not value.isascii() and GB_SAFE.fullmatch(value) is not None
            and value.encode("gb18030") == packed)


# GB 18030 bytes already decoded -> (their text, whether the encoder packs that text to exactly these bytes):
# an issuer's name, a certificate's and a company type's recur on every payload. Keyed by all the bytes.
GB_TEXTS: dict[bytes, tuple[str, bool]] = {}
GB_TEXTS_SIZE = 4096
