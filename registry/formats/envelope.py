"""By-reference QR codes: the stored document is encrypted under a per-document key that only the QR carries.

The registry stores ``blob`` and forgets ``key``; the key travels in the URL fragment
``<public base>/v/<identifier>#<key>``, which browsers never send to the server, so the server cannot read
holder data without the printed QR.

The first byte of a blob names its construction (`EnvelopeAlgorithm`), so blobs of either kind open
whatever the current crypto profile: ``intl`` seals version 1, ``gm`` version 2. Both use the same 32-byte
URL key, so links and QR codes look alike.

Blob layout (version 1, AES-256-GCM), all of it readable by WebCrypto::

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

Blob layout (version 2, SM4-CTR then HMAC-SM3, encrypt-then-MAC; GB/T 32907 SM4, GB/T 32905 SM3, RFC 2104)::

    key  = the same 32-byte URL key as version 1
    k_enc || k_mac = HMAC-SM3(key, "lianzheng/envelope/2")   (16 + 16 bytes: the SM4 key, the MAC key;
           derived rather than split, so any change of the URL key changes both and fails the tag)
    blob = 0x02 || iv (16 random bytes) || ciphertext || tag (32 bytes)
    ciphertext = SM4-CTR(k_enc, iv, plaintext)   (registry/crypto/sm4.py; the 128-bit counter block starts at iv, big-endian
                 increment: `openssl enc -sm4-ctr` as is)
    tag  = HMAC-SM3(k_mac, 0x02 || iv || len(aad) as 8 bytes big-endian || aad || ciphertext)

Why not SM4-GCM: OpenSSL 3's `enc` has no AEAD modes, so a third party could not check GCM blobs with the
openssl command line, and the browser's SM4 libraries offer CTR/CBC more often than GCM. A check with OpenSSL
alone (hex arguments)::

    printf 'lianzheng/envelope/2' | openssl dgst -sm3 -mac HMAC -macopt hexkey:<key>   # k_enc || k_mac
    openssl dgst -sm3 -mac HMAC -macopt hexkey:<k_mac> mac-input.bin    # equals the tag
    openssl enc -d -sm4-ctr -K <k_enc> -iv <iv> -in ciphertext.bin      # the plaintext

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
import enum
import hmac
import os
import re
from collections.abc import Callable
from urllib.parse import quote, unquote, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from registry.crypto import sm4
from registry.crypto.profiles import CryptoProfile
from registry.errors import PayloadFormatError, ProofError, ValidationError

__all__ = [
    "BLOB_VERSION",
    "EnvelopeAlgorithm",
    "KEY_LEN",
    "NONCE_LEN",
    "aad_for",
    "build_ref_url",
    "decode_key",
    "encode_key",
    "open_",
    "parse_ref_url",
    "seal",
    "seal_v2",
    "sm4_mac_input",
    "sm4_subkeys",
]



class EnvelopeAlgorithm(enum.IntEnum):
    """The construction of a blob; its value is the blob's first byte (see the module docstring)."""

    AES_256_GCM = 1
    SM4_CTR_HMAC_SM3 = 2

    @classmethod
    def for_profile(cls, profile: CryptoProfile) -> EnvelopeAlgorithm:
        return cls.SM4_CTR_HMAC_SM3 if profile is CryptoProfile.GM else cls.AES_256_GCM


BLOB_VERSION = EnvelopeAlgorithm.AES_256_GCM.value  # what seal() writes unless told otherwise
KEY_LEN = 32  # AES-256; for SM4, k_enc || k_mac
NONCE_LEN = 12  # the GCM nonce size WebCrypto and NIST SP 800-38D recommend
TAG_LEN = 16
SM4_IV_LEN = 16
SM4_TAG_LEN = 32  # the whole HMAC-SM3 output, untruncated
SM4_KEY_LABEL = b"lianzheng/envelope/2"
_MIN_LEN = {EnvelopeAlgorithm.AES_256_GCM: 1 + NONCE_LEN + TAG_LEN,
            EnvelopeAlgorithm.SM4_CTR_HMAC_SM3: 1 + SM4_IV_LEN + SM4_TAG_LEN}
_DECRYPT_FAILED = ("解密失败：密钥错误或数据被篡改 / decryption failed: wrong key, wrong certificate identifier or "
                   "tampered ciphertext")
_NOT_OURS = "这不是链证电子证照二维码 / Not a Lianzheng certificate QR code"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_ID_CHARS = re.compile(r"[^\s/#?]{1,256}")


def aad_for(identifier: str) -> bytes:
    """The associated data binding a blob to its certificate identifier."""
    return identifier.encode("utf-8")


def seal(plaintext: bytes, *, aad: bytes, key: bytes | None = None,
         algorithm: EnvelopeAlgorithm = EnvelopeAlgorithm.AES_256_GCM,
         randbytes: Callable[[int], bytes] = os.urandom) -> tuple[bytes, bytes]:
    """Encrypt under a fresh random key (or ``key``, to re-seal a document whose QR is already printed).
    ``randbytes`` draws the key and the nonce (a seeded generator only where tests compare two builds).

    A random 96-bit nonce per call is safe: a key seals a handful of versions, far below the 2**32
    messages NIST SP 800-38D §8.3 allows per key with random nonces (and a random 128-bit CTR start for SM4
    makes overlapping counter ranges as unlikely).
    """
    key = randbytes(KEY_LEN) if key is None else _check_key(key)
    if algorithm is EnvelopeAlgorithm.SM4_CTR_HMAC_SM3:
        iv = randbytes(SM4_IV_LEN)
        if sm4.SEAL_V2 is not None:  # the same bytes in one call of registry/crypto/_sm4.c
            return key, sm4.SEAL_V2(key, iv, aad, plaintext, SM4_KEY_LABEL)
        return key, seal_v2(key, iv, aad, plaintext)
    nonce = randbytes(NONCE_LEN)
    return key, bytes((EnvelopeAlgorithm.AES_256_GCM,)) + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_(blob: bytes, key: bytes, *, aad: bytes) -> bytes:
    """Decrypt a blob from :func:`seal`, of either construction (its first byte says which). A wrong key, a
    wrong identifier (aad) or any changed byte raises ``ProofError(code="decrypt_failed")``; a blob of
    another layout raises ``PayloadFormatError``."""
    _check_key(key)
    if not blob:
        raise PayloadFormatError("encrypted document is empty", code="truncated_payload")
    try:
        algorithm = EnvelopeAlgorithm(blob[0])
    except ValueError:
        raise PayloadFormatError(
            f"encrypted document has version {blob[0]}, expected one of {[a.value for a in EnvelopeAlgorithm]}",
            code="unsupported_version") from None
    if len(blob) < _MIN_LEN[algorithm]:
        raise PayloadFormatError(
            f"encrypted document is truncated: expected at least {_MIN_LEN[algorithm]} bytes, got {len(blob)}",
            code="truncated_payload",
        )
    if algorithm is EnvelopeAlgorithm.SM4_CTR_HMAC_SM3:
        k_enc, k_mac = sm4_subkeys(key)
        body, tag = blob[:-SM4_TAG_LEN], blob[-SM4_TAG_LEN:]
        if not hmac.compare_digest(_hmac_sm3(k_mac, sm4_mac_input(body, aad)), tag):  # before decrypting (EtM)
            raise ProofError(_DECRYPT_FAILED, code="decrypt_failed")
        return sm4.ctr(k_enc, body[1:1 + SM4_IV_LEN], body[1 + SM4_IV_LEN:])
    try:
        return AESGCM(key).decrypt(blob[1:1 + NONCE_LEN], blob[1 + NONCE_LEN:], aad)
    except InvalidTag as exc:
        raise ProofError(_DECRYPT_FAILED, code="decrypt_failed") from exc


def seal_v2(key: bytes, iv: bytes, aad: bytes, plaintext: bytes) -> bytes:
    """A version-2 blob of ``plaintext`` under ``key`` from counter block ``iv`` (the module docstring's
    construction, step by step: what `sm4.SEAL_V2` does in C, and where it is not built)."""
    k_enc, k_mac = sm4_subkeys(key)
    body = bytes((EnvelopeAlgorithm.SM4_CTR_HMAC_SM3,)) + iv + sm4.ctr(k_enc, iv, plaintext)
    return body + _hmac_sm3(k_mac, sm4_mac_input(body, aad))


def sm4_mac_input(body: bytes, aad: bytes) -> bytes:
    """What the version-2 tag authenticates: ``0x02 || iv`` (``body`` begins with them, then the ciphertext)
    with the length-prefixed aad between, so aad and ciphertext cannot trade bytes."""
    header = 1 + SM4_IV_LEN
    return body[:header] + len(aad).to_bytes(8, "big") + aad + body[header:]


def sm4_subkeys(key: bytes) -> tuple[bytes, bytes]:
    """``(k_enc, k_mac)`` of a version-2 blob: HMAC-SM3(key, SM4_KEY_LABEL) cut in two halves."""
    derived = _hmac_sm3(key, SM4_KEY_LABEL)
    return derived[:16], derived[16:]


def _hmac_sm3_cryptography(key: bytes, message: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key, hashes.SM3())
    mac.update(message)
    return mac.finalize()


def _hmac_sm3_hashlib(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sm3")


def _pick_hmac_sm3() -> Callable[[bytes, bytes], bytes]:
    # Both are OpenSSL's HMAC-SM3; hashlib's one-shot call costs a fifth of building `cryptography` objects,
    # which counts when every issued document is sealed. OpenSSL builds without SM3 in hashlib use the other.
    try:
        if _hmac_sm3_hashlib(b"k", b"m") == _hmac_sm3_cryptography(b"k", b"m"):
            return _hmac_sm3_hashlib
    except ValueError:
        pass
    return _hmac_sm3_cryptography  # pragma: no cover - OpenSSL without SM3 in hashlib


_hmac_sm3 = _pick_hmac_sm3()


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
