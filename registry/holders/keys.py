"""Holder keys (持证人密钥): ECDSA P-256 keys that bind a certificate to its holder and sign presentations,
grants and revocation statements.

Formats (docs/HOLDERS.md, the shared design of issue 15):

- public key: DER SubjectPublicKeyInfo, carried as base64url without padding (``spki_b64url``);
- key id (``holderKeyDigest``): SHA-256 of the DER SPKI, lower-case hex (64 digits);
- signature: ECDSA P-256 with SHA-256, raw ``r || s`` (64 bytes, big-endian, what WebCrypto produces), base64url,
  over the RFC 8785 canonical JSON of the signed object without its ``signature`` member.

P-256 in both crypto profiles: WebCrypto (the browser wallet) has no SM2, and the holder's key must be usable
there, non-extractable.

>>> key = HolderKey.generate()
>>> signed = key.sign_object({"type": "Example", "n": 1})
>>> key.public.verify_object(signed)
True
>>> key.public.verify_object({**signed, "n": 2})
False
>>> HolderPublicKey.from_b64url(key.public.spki_b64url).key_id == key.public.key_id
True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from registry.errors import ValidationError

__all__ = [
    "SIGNATURE_MEMBER",
    "HolderKey",
    "HolderPublicKey",
    "b64url_decode",
    "b64url_encode",
    "key_id_of",
    "signed_bytes",
]

SIGNATURE_MEMBER = "signature"
_CURVE_BYTES = 32
_MAX_SPKI = 200  # a P-256 SPKI is 91 bytes; anything much longer is not one


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: Any, what: str, *, code: str = "invalid_base64url", max_length: int = 1 << 20) -> bytes:
    """Strict base64url (padding optional, no other characters); ValidationError(code) otherwise."""
    if not isinstance(text, str) or len(text) > max_length:
        raise ValidationError(f"{what} must be a base64url string", code=code)
    stripped = text.rstrip("=")
    if any(c not in _B64URL for c in stripped) or len(stripped) % 4 == 1:
        raise ValidationError(f"{what} is not base64url: {text[:40]!r}", code=code)
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError):
        raise ValidationError(f"{what} is not base64url: {text[:40]!r}", code=code) from None


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def signed_bytes(obj: Mapping[str, Any]) -> bytes:
    """The bytes a holder signs: RFC 8785 canonical JSON of ``obj`` without its ``signature`` member."""
    if not isinstance(obj, Mapping):
        raise ValidationError("a signed object must be a JSON object", code="invalid_signed_object")
    try:
        return rfc8785.dumps({k: v for k, v in obj.items() if k != SIGNATURE_MEMBER})
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ValidationError(f"the object cannot be canonicalised (RFC 8785): {exc}",
                              code="invalid_signed_object") from None


def key_id_of(spki_der: bytes) -> str:
    """The holder key id: SHA-256 of the DER SubjectPublicKeyInfo, lower-case hex."""
    return hashlib.sha256(spki_der).hexdigest()


@dataclass(frozen=True)
class HolderPublicKey:
    """A holder's P-256 public key; build with `from_spki` / `from_b64url` (they refuse other curves)."""

    spki_der: bytes
    _key: ec.EllipticCurvePublicKey = field(repr=False, compare=False)

    @classmethod
    def from_spki(cls, der: bytes) -> HolderPublicKey:
        if not isinstance(der, (bytes, bytearray)) or not 0 < len(der) <= _MAX_SPKI:
            raise ValidationError("holder key must be a DER SubjectPublicKeyInfo", code="invalid_holder_key")
        try:
            key = serialization.load_der_public_key(bytes(der))
        except (ValueError, TypeError):
            raise ValidationError("holder key is not a DER SubjectPublicKeyInfo", code="invalid_holder_key") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValidationError("holder key must be an ECDSA P-256 (secp256r1) key", code="invalid_holder_key")
        canonical = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if canonical != bytes(der):  # one key, one id: refuse alternative encodings (compressed points, BER)
            raise ValidationError("holder key must be the DER SPKI with an uncompressed point",
                                  code="invalid_holder_key")
        return cls(canonical, key)

    @classmethod
    def from_b64url(cls, text: Any) -> HolderPublicKey:
        return cls.from_spki(b64url_decode(text, "holder key", code="invalid_holder_key", max_length=400))

    @classmethod
    def from_pem(cls, pem: bytes) -> HolderPublicKey:
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError):
            raise ValidationError("holder key is not a PEM public key", code="invalid_holder_key") from None
        return cls.from_spki(key.public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))

    @property
    def spki_b64url(self) -> str:
        return b64url_encode(self.spki_der)

    @property
    def key_id(self) -> str:
        """SHA-256 of the DER SPKI, hex: the ``holderKeyDigest`` of a bound certificate."""
        return key_id_of(self.spki_der)

    @property
    def crypto_key(self) -> ec.EllipticCurvePublicKey:
        return self._key

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` (raw r||s, 64 bytes) is this key's ECDSA-SHA256 signature of ``message``."""
        if not isinstance(signature, (bytes, bytearray)) or len(signature) != 2 * _CURVE_BYTES:
            return False
        r = int.from_bytes(signature[:_CURVE_BYTES], "big")
        s = int.from_bytes(signature[_CURVE_BYTES:], "big")
        if r == 0 or s == 0:
            return False
        try:
            self._key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def verify_object(self, obj: Mapping[str, Any]) -> bool:
        """True when ``obj["signature"]`` (base64url r||s) signs `signed_bytes(obj)`; False for any defect."""
        try:
            signature = b64url_decode(obj.get(SIGNATURE_MEMBER), "signature", max_length=200)
            message = signed_bytes(obj)
        except (ValidationError, AttributeError):  # AttributeError: not a mapping
            return False
        return self.verify(message, signature)


@dataclass(frozen=True)
class HolderKey:
    """A holder's private P-256 key (the CLI wallet keeps it encrypted: registry/holders/wallet.py)."""

    _key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> HolderKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pkcs8(cls, der: bytes) -> HolderKey:
        try:
            key = serialization.load_der_private_key(der, password=None)
        except (ValueError, TypeError):
            raise ValidationError("not a PKCS#8 private key", code="invalid_holder_key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValidationError("holder key must be an ECDSA P-256 key", code="invalid_holder_key")
        return cls(key)

    def pkcs8(self) -> bytes:
        return self._key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    @property
    def public(self) -> HolderPublicKey:
        pub = self._key.public_key()
        return HolderPublicKey(pub.public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo), pub)

    @property
    def crypto_key(self) -> ec.EllipticCurvePrivateKey:
        return self._key

    def sign(self, message: bytes) -> bytes:
        """ECDSA P-256 SHA-256 signature of ``message``, raw r||s (64 bytes)."""
        r, s = decode_dss_signature(self._key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(_CURVE_BYTES, "big") + s.to_bytes(_CURVE_BYTES, "big")

    def sign_object(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``obj`` with ``signature`` set to this key's signature of `signed_bytes(obj)`."""
        out = {k: v for k, v in obj.items() if k != SIGNATURE_MEMBER}
        out[SIGNATURE_MEMBER] = b64url_encode(self.sign(signed_bytes(out)))
        return out
