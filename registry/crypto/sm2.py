"""SM2 signatures (GB/T 32918.2-2016 with SM3, GM/T 0009-2012 DER encoding) for the `gm` crypto profile.

The algorithm is not written here: tongsuopy binds Tongsuo (the OpenSSL 3 fork maintained for the Chinese
algorithms), chosen by measurement over the pure-Python candidates (docs/CRYPTO.md, `lianzheng bench crypto`).

What is signed and how, exactly as `openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt
distid:1234567812345678` does it:

- ``Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA)`` with the default distinguishing identifier
  ``ID = "1234567812345678"`` (GM/T 0009-2012 §10: ENTL = 0x0080, its length in bits);
- ``e = SM3(Z || message)``; the signature ``(r, s)`` is DER ``SEQUENCE { INTEGER r, INTEGER s }``.

tongsuopy exposes no call to set the identifier: Tongsuo's default is the one above. The unit tests pin it
twice, with the GB/T 32918.5-2017 appendix A example and with OpenSSL given ``distid`` explicitly, so a
library that changed its default would fail them rather than sign under another identifier.

SM2 signatures do not recover the key: the public key travels beside the signature (as a PEM
SubjectPublicKeyInfo, id-ecPublicKey with the named curve 1.2.156.10197.1.301), and the verifier decides
whether that key may sign.

>>> signer = SM2Signer.generate()
>>> sig = signer.sign(b"message")
>>> public_key_pem(verify_sm2(b"message", sig, signer.public_key_pem)) == signer.public_key_pem
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from tongsuopy.crypto import hashes, serialization
from tongsuopy.crypto.asymciphers import ec
from tongsuopy.crypto.exceptions import InternalError, InvalidSignature, UnsupportedAlgorithm

from registry.crypto.signing import SignatureAlgorithm
from registry.errors import SignatureError, ValidationError

__all__ = [
    "DEFAULT_DISTINGUISHING_ID",
    "PRIVATE_KEY_SIZE",
    "SM2PublicKey",
    "SM2Signer",
    "load_public_key",
    "public_key_pem",
    "public_key_from_raw",
    "raw_public_key",
    "verify_sm2",
    "verify_with_key",
]

DEFAULT_DISTINGUISHING_ID = b"1234567812345678"
PRIVATE_KEY_SIZE = 32
# GB/T 32918.5-2017 recommended curve order; a private key d must lie in [1, n-2] (GB/T 32918.1 §6.1:
# d = n-1 would make 1 + d non-invertible in the signature).
_ORDER = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_SM3_SM2 = ec.ECDSA(hashes.SM3())  # tongsuopy names the EVP signature call "ECDSA"; on an SM2 key it is SM2

SM2PublicKey: TypeAlias = ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class SM2Signer:
    """An SM2 private key that signs messages (the SM3 hashing with Z is part of the signature)."""

    _key: ec.EllipticCurvePrivateKey = field(repr=False)
    algorithm: SignatureAlgorithm = SignatureAlgorithm.SM2

    @classmethod
    def generate(cls) -> SM2Signer:
        return cls(ec.generate_private_key(ec.SM2()))

    @classmethod
    def from_private_key(cls, private_key: bytes) -> SM2Signer:
        """ValidationError(code="invalid_private_key") unless ``private_key`` is 32 bytes in 1..n-2."""
        if not isinstance(private_key, (bytes, bytearray)) or len(private_key) != PRIVATE_KEY_SIZE:
            raise ValidationError(f"an SM2 private key must be {PRIVATE_KEY_SIZE} bytes",
                                  code="invalid_private_key")
        value = int.from_bytes(private_key, "big")
        if not 1 <= value <= _ORDER - 2:
            raise ValidationError("an SM2 private key must lie in 1..n-2 (GB/T 32918.1 §6.1)",
                                  code="invalid_private_key")
        return cls(ec.derive_private_key(value, ec.SM2()))

    @classmethod
    def from_pem(cls, pem: bytes, password: bytes | None = None) -> SM2Signer:
        """A PKCS#8 (or SEC1) PEM private key on the SM2 curve, as `openssl genpkey -algorithm SM2` writes."""
        try:
            key = serialization.load_pem_private_key(pem, password=password)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ValidationError(f"not an SM2 private key in PEM: {exc}", code="invalid_private_key") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != ec.SM2.name:
            raise ValidationError("the PEM private key is not on the SM2 curve", code="invalid_private_key")
        return cls(key)

    def private_key_pem(self, password: bytes | None = None) -> bytes:
        """PKCS#8 PEM (encrypted with ``password`` when given), readable by `openssl pkey`."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption())
        return bytes(self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             encryption))

    @property
    def public_key(self) -> SM2PublicKey:
        return self._key.public_key()

    @property
    def public_key_pem(self) -> bytes:
        """The PEM SubjectPublicKeyInfo of the key (what a signed object's ``proof.key`` carries)."""
        return public_key_pem(self._key.public_key())

    def sign(self, message: bytes) -> bytes:
        """The DER signature of ``message`` (hashed with SM3 after Z, see the module docstring)."""
        return bytes(self._key.sign(bytes(message), _SM3_SM2))


def public_key_pem(key: SM2PublicKey) -> bytes:
    return bytes(key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def raw_public_key(key: SM2PublicKey) -> bytes:
    """The 64 bytes x || y of a public key (the uncompressed point without 0x04: what ConsortiumRegistry
    holds and what a ``z`` BID hashes)."""
    numbers = key.public_numbers()
    return numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


def public_key_from_raw(raw: bytes) -> SM2PublicKey:
    """The public key of 64 bytes x || y (or 65 with 0x04); SignatureError for a point off the curve."""
    raw = bytes(raw)
    if len(raw) == 64:
        raw = b"\x04" + raw
    if len(raw) != 65 or raw[0] != 4:
        raise SignatureError(f"an SM2 public key is 64 bytes x || y, got {len(raw)} bytes", code="invalid_public_key")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SM2(), raw)
    except (ValueError, InternalError) as exc:
        raise SignatureError(f"not a point on the SM2 curve ({exc})", code="invalid_public_key") from exc


def load_public_key(pem: bytes) -> SM2PublicKey:
    """An SM2 public key from a PEM SubjectPublicKeyInfo; SignatureError for anything else (another curve,
    a point off the curve, not PEM): the key comes with the signature, so it is part of what is checked."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"the signing key is not an SM2 public key in PEM: {exc}",
                             code="invalid_public_key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != ec.SM2.name:
        raise SignatureError("the signing key is not on the SM2 curve", code="invalid_public_key")
    return key


def verify_sm2(message: bytes, signature: bytes, key_pem: bytes) -> SM2PublicKey:
    """The public key of ``key_pem`` when ``signature`` (DER) over ``message`` is valid under it;
    SignatureError otherwise. Whether that key may sign is the caller's trust decision."""
    key = load_public_key(key_pem)
    verify_with_key(message, signature, key)
    return key


def verify_with_key(message: bytes, signature: bytes, key: SM2PublicKey) -> None:
    """`verify_sm2` with a key already loaded (a verifier that caches the keys of a trust list)."""
    _check_der(signature)
    try:
        key.verify(bytes(signature), bytes(message), _SM3_SM2)
    except InvalidSignature as exc:
        raise SignatureError("SM2 签名无效 / the SM2 signature does not verify") from exc
    except (ValueError, InternalError) as exc:  # Tongsuo's error queue, should _check_der miss a case
        raise SignatureError(f"the SM2 signature is malformed ({exc})") from exc


def _check_der(signature: bytes) -> None:
    """Strict DER with r, s in 1..n-1 (GB/T 32918.2 §7.1 B1-B2), checked before Tongsuo sees the bytes:
    its ASN.1 errors surface as an opaque InternalError, and BER variants would make one signature
    spellable several ways."""
    if not isinstance(signature, (bytes, bytearray)):
        raise SignatureError(f"an SM2 signature must be bytes, got {type(signature).__name__}")
    try:
        r, s = decode_dss_signature(bytes(signature))  # pyca's DER parser refuses BER and trailing bytes
    except ValueError as exc:
        raise SignatureError(f"the SM2 signature is not DER SEQUENCE {{r, s}} ({exc})") from exc
    if not (1 <= r < _ORDER and 1 <= s < _ORDER):
        raise SignatureError("the SM2 signature's r or s is out of range 1..n-1")
