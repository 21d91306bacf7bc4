"""Wrapping a certificate's document key for a grantee agency (免证办): ECIES over P-256.

A grant for an agency carries the by-reference document key (the AES key in the QR URL fragment) encrypted to
the grantee agency's exchange public key, so that agency's node — and no other, nor the chain, nor the server
that stores the sealed document — can open the document. Construction:

1. an ephemeral P-256 key pair (e, E); shared secret Z = ECDH(e, exchange public key) (SEC 1 §3.3.1, the x
   coordinate);
2. K = HKDF-SHA256(IKM = Z, salt = E as an uncompressed point (65 bytes), info = "lianzheng/wrap/v1", 32 bytes)
   (RFC 5869);
3. C = AES-256-GCM(K, nonce N (12 random bytes), plaintext = the document key, AAD = "lianzheng/wrap/v1:" +
   the grant id) — binding the wrapped key to its grant, so it cannot be lifted into another grant.

Wire form (``wrapped_key``): base64url( 0x01 || E (65) || N (12) || C (key length + 16-byte tag) ).

>>> from registry.holders.keys import HolderKey
>>> exchange = HolderKey.generate()               # an agency's exchange key is a P-256 key like a holder's
>>> w = wrap_key(b"k" * 32, exchange.public, grant_id="00" * 16)
>>> unwrap_key(w, exchange, grant_id="00" * 16) == b"k" * 32
True
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from registry.errors import ProofError, ValidationError
from registry.holders.keys import HolderKey, HolderPublicKey, b64url_decode, b64url_encode

__all__ = ["WRAP_VERSION", "unwrap_key", "wrap_key"]

WRAP_VERSION = 1
_INFO = b"lianzheng/wrap/v1"
_POINT, _NONCE, _TAG = 65, 12, 16


def _kek(shared: bytes, ephemeral_point: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_point, info=_INFO).derive(shared)


def _aad(grant_id: str) -> bytes:
    return _INFO + b":" + grant_id.encode("ascii")


def wrap_key(key: bytes, recipient: HolderPublicKey, *, grant_id: str) -> str:
    """``key`` (the document key) encrypted to ``recipient`` (an agency's exchange key), bound to ``grant_id``."""
    if not isinstance(key, (bytes, bytearray)) or not 16 <= len(key) <= 64:
        raise ValidationError("the key to wrap must be 16..64 bytes", code="invalid_document_key")
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    point = ephemeral.public_key().public_bytes(serialization.Encoding.X962,
                                                serialization.PublicFormat.UncompressedPoint)
    shared = ephemeral.exchange(ec.ECDH(), recipient.crypto_key)
    nonce = secrets.token_bytes(_NONCE)
    sealed = AESGCM(_kek(shared, point)).encrypt(nonce, bytes(key), _aad(grant_id))
    return b64url_encode(bytes([WRAP_VERSION]) + point + nonce + sealed)


def unwrap_key(wrapped: str, recipient: HolderKey, *, grant_id: str) -> bytes:
    """The document key; ProofError(code="unwrap_failed") when this key cannot open it (another recipient,
    another grant, altered bytes)."""
    raw = b64url_decode(wrapped, "wrapped_key", code="invalid_wrapped_key", max_length=400)
    if len(raw) < 1 + _POINT + _NONCE + _TAG + 16 or raw[0] != WRAP_VERSION:
        raise ValidationError(f"wrapped_key is not a version-{WRAP_VERSION} ECIES wrap", code="invalid_wrapped_key")
    point, nonce, sealed = raw[1:1 + _POINT], raw[1 + _POINT:1 + _POINT + _NONCE], raw[1 + _POINT + _NONCE:]
    try:
        ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise ValidationError("wrapped_key has no valid ephemeral P-256 point", code="invalid_wrapped_key") from None
    shared = recipient.crypto_key.exchange(ec.ECDH(), ephemeral)
    try:
        return AESGCM(_kek(shared, point)).decrypt(nonce, sealed, _aad(grant_id))
    except InvalidTag:
        raise ProofError("the wrapped key does not open with this exchange key for this grant",
                         code="unwrap_failed") from None
