"""Hash functions used across the registry: SHA-256 and SM3 (GB/T 32905-2016), one-pass file digests
and hex helpers.

Every content digest in Lianzheng is recorded twice, SHA-256 for interoperability and SM3 for 商用密码
compliance, so the file helper computes both in a single streaming pass.

>>> sha256(b"abc").hex()[:16]
'ba7816bf8f01cfea'
>>> sm3(b"abc").hex()[:16]
'66c7f0f462eeedd9'
>>> import io
>>> d = digest_file(io.BytesIO(b"abc"))
>>> (d.size, d.sha256_hex[:8], d.sm3_hex[:8])
(3, 'ba7816bf', '66c7f0f4')
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, NewType, Protocol

import rfc8785
from cryptography.hazmat.primitives import hashes as _crypto_hashes

from registry.errors import ValidationError

__all__ = [
    "ALGORITHMS",
    "DIGEST_SIZE",
    "FileDigests",
    "HashObject",
    "HexStr",
    "canonical_digest",
    "digest_file",
    "from_hex",
    "hash_constructor",
    "hash_function",
    "hex0x",
    "hmac_sha256_pads",
    "sha256",
    "sha256_key",
    "sm3",
    "to_hex",
]

HexStr = NewType("HexStr", str)
"""Lower-case hexadecimal without a ``0x`` prefix."""

ALGORITHMS: tuple[str, ...] = ("sha256", "sm3")
_HEX = re.compile(r"[0-9a-fA-F]*")
DIGEST_SIZE = 32  # both SHA-256 and SM3 produce 256-bit digests


class HashObject(Protocol):
    """The part of the hashlib interface we use."""

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...


class _CryptographySM3:
    """hashlib-style wrapper around `cryptography`'s SM3 (used when OpenSSL's hashlib lacks "sm3")."""

    __slots__ = ("_ctx",)

    def __init__(self, data: bytes = b"") -> None:
        self._ctx = _crypto_hashes.Hash(_crypto_hashes.SM3())
        if data:
            self._ctx.update(data)

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        self._ctx.update(bytes(data))

    def digest(self) -> bytes:
        return self._ctx.copy().finalize()


def _make_sm3_constructor() -> Callable[[bytes], HashObject]:
    # Both paths are OpenSSL's SM3 (GB/T 32905). hashlib's object is ~2x cheaper to create, which
    # matters for Merkle trees with a million nodes; `copy()` of a fresh object skips the name lookup.
    try:
        base = hashlib.new("sm3")
    except ValueError:  # OpenSSL built without SM3: fall back to `cryptography`
        return _CryptographySM3

    def construct(data: bytes = b"") -> HashObject:
        h = base.copy()
        if data:
            h.update(data)
        return h

    if construct(b"abc").digest() != _CryptographySM3(b"abc").digest():  # pragma: no cover - defensive
        return _CryptographySM3
    return construct


_CONSTRUCTORS: dict[str, Callable[[bytes], HashObject]] = {
    "sha256": hashlib.sha256,
    "sm3": _make_sm3_constructor(),
}


def hash_constructor(algorithm: str) -> Callable[[bytes], HashObject]:
    """Return a hashlib-style constructor (``ctor(data).digest()``) for "sha256" or "sm3"."""
    try:
        return _CONSTRUCTORS[algorithm]
    except (KeyError, TypeError):
        raise ValidationError(
            f"unsupported hash algorithm: expected one of {', '.join(ALGORITHMS)}, got {algorithm!r}",
            code="unsupported_algorithm",
            details={"algorithm": str(algorithm)},
        ) from None


def hash_function(algorithm: str) -> Callable[[bytes], bytes]:
    """Return a one-shot ``f(data) -> 32-byte digest`` for "sha256" or "sm3"."""
    ctor = hash_constructor(algorithm)

    def digest(data: bytes) -> bytes:
        return ctor(data).digest()

    return digest


def sha256(data: bytes) -> bytes:
    """SHA-256 (FIPS 180-4) of ``data``."""
    return hashlib.sha256(data).digest()


HMAC_BLOCK = 64  # SHA-256's block size (RFC 2104: B)
# RFC 2104 §2: K ^ ipad and K ^ opad, byte by byte, as translation tables (bytes.translate runs in C)
_IPAD, _OPAD = bytes(b ^ 0x36 for b in range(256)), bytes(b ^ 0x5C for b in range(256))


def hmac_sha256_pads(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 states after absorbing K ^ ipad and K ^ opad (RFC 2104 §2; a key longer than a block is hashed
    first): HMAC-SHA256(key, m) is then ``outer.copy()`` updated with the digest of ``inner.copy()`` updated
    with ``m``, the key's two blocks not hashed again for each message.

    >>> import hmac
    >>> inner, outer = hmac_sha256_pads(b"key")
    >>> i = inner.copy(); i.update(b"m"); o = outer.copy(); o.update(i.digest())
    >>> o.digest() == hmac.digest(b"key", b"m", "sha256")
    True
    """
    block = (key if len(key) <= HMAC_BLOCK else hashlib.sha256(key).digest()).ljust(HMAC_BLOCK, b"\x00")
    return hashlib.sha256(block.translate(_IPAD)), hashlib.sha256(block.translate(_OPAD))


def sm3(data: bytes) -> bytes:
    """SM3 (GB/T 32905-2016) of ``data``."""
    return _CONSTRUCTORS["sm3"](data).digest()


@dataclass(frozen=True, slots=True)
class FileDigests:
    """SHA-256 and SM3 of a file's content, and its size in bytes."""

    sha256: bytes
    sm3: bytes
    size: int

    @property
    def sha256_hex(self) -> HexStr:
        return to_hex(self.sha256)

    @property
    def sm3_hex(self) -> HexStr:
        return to_hex(self.sm3)

    def to_json(self) -> dict[str, str | int]:
        return {"sha256": self.sha256_hex, "sm3": self.sm3_hex, "size": self.size}


def digest_file(source: str | os.PathLike[str] | BinaryIO, chunk: int = 1 << 20) -> FileDigests:
    """Stream ``source`` (a path or a binary file object) once, in constant memory, computing both digests.

    A file object is read from its current position and is not closed.
    """
    if chunk <= 0:
        raise ValidationError(f"chunk size must be positive, got {chunk}", code="invalid_chunk_size")
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            return _digest_stream(fh, chunk)
    return _digest_stream(source, chunk)


def _digest_stream(fh: BinaryIO, chunk: int) -> FileDigests:
    h256 = hashlib.sha256()
    hsm3 = _CONSTRUCTORS["sm3"](b"")
    size = 0
    buf = bytearray(chunk)
    view = memoryview(buf)
    readinto = getattr(fh, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(view)
            if not n:
                break
            piece: bytes | memoryview = view[:n]
        else:  # pragma: no cover - objects without readinto (rare)
            data = fh.read(chunk)
            if not data:
                break
            n, piece = len(data), data
        h256.update(piece)
        hsm3.update(piece)
        size += n
    return FileDigests(sha256=h256.digest(), sm3=hsm3.digest(), size=size)


def to_hex(data: bytes) -> HexStr:
    """Lower-case hex without ``0x``."""
    return HexStr(bytes(data).hex())


def from_hex(text: str, *, length: int | None = None, what: str = "hex string") -> bytes:
    """Parse hex (an optional ``0x`` prefix is accepted); ``length`` is the expected size in bytes.

    Raises ValidationError(code="invalid_hex") saying what was expected and what was found.
    """
    if not isinstance(text, str):
        raise ValidationError(f"{what} must be a string, got {type(text).__name__}", code="invalid_hex")
    body = text[2:] if text[:2] in ("0x", "0X") else text
    if len(body) % 2 or not _HEX.fullmatch(body):
        raise ValidationError(f"{what} is not hexadecimal: {text[:80]!r}", code="invalid_hex")
    data = bytes.fromhex(body)
    if length is not None and len(data) != length:
        raise ValidationError(
            f"{what} has wrong length: expected {length} bytes ({2 * length} hex digits), got {len(data)}",
            code="invalid_hex",
        )
    return data


def hex0x(data: bytes) -> str:
    """Lower-case hex with ``0x`` (how keys and digests are shown next to the chain's values)."""
    return "0x" + bytes(data).hex()


def sha256_key(text: str) -> bytes:
    """The on-chain key of an identifier or case number: SHA-256 of its UTF-8 bytes.

    >>> hex0x(sha256_key("EV-1"))[:10]
    '0x6f50f0dd'
    """
    return hashlib.sha256(text.encode("utf-8")).digest()


def canonical_digest(obj: Any) -> bytes:
    """SHA-256 of the RFC 8785 (JCS) canonical JSON of `obj` (what metaDigest and purposeDigest are)."""
    return hashlib.sha256(rfc8785.dumps(obj)).digest()
