"""By-reference QR codes: the stored document is encrypted under a per-document key that only the QR carries.

The registry stores ``blob`` and forgets ``key``; the key travels in the URL fragment
``<public base>/v/<identifier>#<key>``, which browsers never send to the server, so the server cannot read
holder data without the printed QR.

Blob layout (version 1), all of it readable by WebCrypto::

    blob = 0x01 || nonce (12 bytes) || AES-256-GCM ciphertext || tag (16 bytes)
    aad  = the certificate identifier, UTF-8 (binds the ciphertext to its URL: a blob moved to another
           identifier no longer decrypts)
    key  = 32 random bytes, in the URL as base64url without padding (RFC 4648 §5), 43 characters

In the browser::

    const raw = Uint8Array.from(atob(k.replace(/-/g, "+").replace(/_/g, "/")), c => c.charCodeAt(0));
    const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["decrypt"]);
    const plain = await crypto.subtle.decrypt(
        {name: "AES-GCM", iv: blob.slice(1, 13), additionalData: new TextEncoder().encode(identifier)},
        key, blob.slice(13));   // WebCrypto takes ciphertext || tag, as produced here

>>> aad = aad_for("1.2.156.3005.2.X.Y.1.001.A")
>>> key, blob = seal(b'{"a":1}', aad=aad)
>>> open_(blob, key, aad=aad)
b'{"a":1}'
>>> url = build_ref_url("https://lz.example.gov.cn", "1.2.156.3005.2.X.Y.1.001.A", key)
>>> parse_ref_url(url, public_base="https://lz.example.gov.cn") == ("1.2.156.3005.2.X.Y.1.001.A", key)
True
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from urllib.parse import quote, unquote, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from registry.errors import PayloadFormatError, ProofError, ValidationError

__all__ = [
    "BLOB_VERSION",
    "KEY_LEN",
    "NONCE_LEN",
    "aad_for",
    "build_ref_url",
    "decode_key",
    "encode_key",
    "open_",
    "parse_ref_url",
    "seal",
]

BLOB_VERSION = 1
KEY_LEN = 32  # AES-256
NONCE_LEN = 12  # the GCM nonce size WebCrypto and NIST SP 800-38D recommend
TAG_LEN = 16
_NOT_OURS = "这不是链证电子证照二维码 / Not a Lianzheng certificate QR code"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_ID_CHARS = re.compile(r"[^\s/#?]{1,256}")


def aad_for(identifier: str) -> bytes:
    """The associated data binding a blob to its certificate identifier."""
    return identifier.encode("utf-8")


def seal(plaintext: bytes, *, aad: bytes, key: bytes | None = None) -> tuple[bytes, bytes]:
    """Encrypt under a fresh random key (or ``key``, to re-seal a document whose QR is already printed).

    A random 96-bit nonce per call is safe: a key seals a handful of versions, far below the 2**32
    messages NIST SP 800-38D §8.3 allows per key with random nonces.
    """
    key = AESGCM.generate_key(bit_length=256) if key is None else _check_key(key)
    nonce = os.urandom(NONCE_LEN)
    return key, bytes((BLOB_VERSION,)) + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_(blob: bytes, key: bytes, *, aad: bytes) -> bytes:
    """Decrypt a blob from :func:`seal`. A wrong key, a wrong identifier (aad) or any changed byte raises
    ``ProofError(code="decrypt_failed")``; a blob of another layout raises ``PayloadFormatError``."""
    _check_key(key)
    if len(blob) < 1 + NONCE_LEN + TAG_LEN:
        raise PayloadFormatError(
            f"encrypted document is truncated: expected at least {1 + NONCE_LEN + TAG_LEN} bytes, got {len(blob)}",
            code="truncated_payload",
        )
    if blob[0] != BLOB_VERSION:
        raise PayloadFormatError(f"encrypted document has version {blob[0]}, expected {BLOB_VERSION}",
                                 code="unsupported_version")
    try:
        return AESGCM(key).decrypt(blob[1:1 + NONCE_LEN], blob[1 + NONCE_LEN:], aad)
    except InvalidTag as exc:
        raise ProofError(
            "解密失败：密钥错误或数据被篡改 / decryption failed: wrong key, wrong certificate identifier or "
            "tampered ciphertext",
            code="decrypt_failed",
        ) from exc


def encode_key(key: bytes) -> str:
    """base64url without padding (RFC 4648 §5): 43 URL-safe characters for a 32-byte key."""
    return base64.urlsafe_b64encode(_check_key(key)).rstrip(b"=").decode("ascii")


def decode_key(text: str) -> bytes:
    """Strict inverse of :func:`encode_key`: only the base64url alphabet, exactly 32 bytes, canonical."""
    if not _B64URL.fullmatch(text):
        raise ValidationError("document key must be base64url (A-Z a-z 0-9 - _) without padding",
                              code="invalid_key")
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValidationError(f"document key is not valid base64url ({exc})", code="invalid_key") from exc
    if len(key) != KEY_LEN:
        raise ValidationError(f"document key must be {KEY_LEN} bytes, got {len(key)}", code="invalid_key")
    if encode_key(key) != text:  # non-zero padding bits: another spelling of the same key
        raise ValidationError("document key is not in canonical base64url form", code="invalid_key")
    return key


def build_ref_url(public_base: str, identifier: str, key: bytes) -> str:
    """``<public_base>/v/<identifier>#<key>``; ``public_base`` is an http(s) origin with an optional path."""
    base = _check_base(public_base)
    if not _ID_CHARS.fullmatch(identifier):
        raise ValidationError(f"identifier cannot appear in a URL path: {identifier!r}", code="invalid_identifier")
    return f"{base}/v/{quote(identifier, safe='')}#{encode_key(key)}"


def parse_ref_url(text: str, *, public_base: str | None = None) -> tuple[str, bytes]:
    """Return ``(identifier, key)`` from a verification link.

    Any http(s) URL whose path ends in ``/v/<identifier>`` counts; when ``public_base`` is given the
    scheme, host, port and path prefix must equal it. Anything else raises
    ``PayloadFormatError(code="not_lianzheng_qr")``; a link of ours without a usable key raises code
    ``missing_key`` or ``invalid_key``. Error messages never repeat the key.
    """
    try:
        url = urlsplit(text.strip())
        port = url.port
    except ValueError as exc:
        raise PayloadFormatError(f"{_NOT_OURS}: not a valid URL ({exc})", code="not_lianzheng_qr") from exc
    shown = text.split("#", 1)[0][:80]
    segments = url.path.split("/")
    if url.scheme.lower() not in ("http", "https") or not url.hostname or len(segments) < 3 or segments[-2] != "v":
        raise PayloadFormatError(f"{_NOT_OURS}: {shown!r} is not a /v/<identifier> link", code="not_lianzheng_qr")
    identifier = unquote(segments[-1])
    if not _ID_CHARS.fullmatch(identifier):
        raise PayloadFormatError(f"{_NOT_OURS}: {shown!r} has no certificate identifier", code="not_lianzheng_qr")
    if public_base is not None:
        base = urlsplit(_check_base(public_base))
        theirs = (url.scheme.lower(), url.hostname, port or _DEFAULT_PORT[url.scheme.lower()], "/".join(segments[:-2]))
        ours = (base.scheme.lower(), base.hostname, base.port or _DEFAULT_PORT[base.scheme.lower()], base.path)
        if theirs != ours:
            raise PayloadFormatError(
                f"{_NOT_OURS}: {shown!r} does not belong to {public_base!r}",
                code="not_lianzheng_qr", details={"reason": "foreign_origin"},
            )
    if not url.fragment:
        raise PayloadFormatError(
            "验证链接缺少解密密钥（# 之后的部分）/ the verification link has no decryption key after '#'",
            code="missing_key", details={"identifier": identifier},
        )
    try:
        key = decode_key(url.fragment)
    except ValidationError as exc:
        raise PayloadFormatError(f"验证链接中的解密密钥无效 / the link's decryption key is invalid: {exc.message}",
                                 code="invalid_key", details={"identifier": identifier}) from exc
    return identifier, key


_DEFAULT_PORT = {"http": 80, "https": 443}


def _check_base(public_base: str) -> str:
    base = public_base.rstrip("/")
    parts = urlsplit(base)
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise ValidationError(f"public base has an invalid port: {public_base!r}", code="invalid_public_base") from exc
    if parts.scheme.lower() not in _DEFAULT_PORT or not parts.hostname or parts.query or parts.fragment:
        raise ValidationError(f"public base must be an http(s) URL without query or fragment, got {public_base!r}",
                              code="invalid_public_base")
    return base


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_LEN:
        found = f"{len(key)} bytes" if isinstance(key, bytes) else type(key).__name__
        raise ValidationError(f"document key must be {KEY_LEN} bytes, got {found}", code="invalid_key")
    return key
