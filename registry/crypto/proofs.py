"""Signed JSON: a ``proof`` member that any third party checks with OpenSSL alone (docs/CRYPTO.md).

    {..., "proof": {"type": "LianzhengSignature2026", "alg": "SM2-SM3" | "ES256K",
                    "key": "-----BEGIN PUBLIC KEY-----\\n...", "signature": "<base64 DER>"}}

The signed bytes are the RFC 8785 (JCS) form of the object without its ``proof`` member, UTF-8, as is
(no prior hashing: each algorithm hashes them itself):

- ``SM2-SM3`` (the `gm` profile): GB/T 32918.2 SM2 with SM3 and distinguishing id ``1234567812345678``
  (registry.crypto.sm2); ``openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678``.
- ``ES256K`` (the `intl` profile): ECDSA on secp256k1 over SHA-256 of the bytes, DER, low-S (libsecp256k1
  signs low-S and refuses high-S, so a signature has one spelling); ``openssl pkeyutl -verify -rawin
  -digest sha256`` (OpenSSL accepts both S forms).

``key`` is the signer's PEM SubjectPublicKeyInfo: neither algorithm recovers the key from a signature, so the
key travels with it and the verifier decides whether that key may sign (a trust list, the consortium
registry). `verify_json` returns it for that decision.

>>> from registry.crypto.sm2 import SM2Signer
>>> signed = sign_json({"b": 1, "a": "证"}, SM2Signer.generate())
>>> verify_json(signed).alg
<ProofAlgorithm.SM2_SM3: 'SM2-SM3'>
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import coincurve
import rfc8785
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from registry.crypto import sm2
from registry.crypto.signing import RecoverableKey, SignatureAlgorithm
from registry.errors import SignatureError, ValidationError

__all__ = [
    "PROOF_MEMBER",
    "PROOF_TYPE",
    "ES256KSigner",
    "ProofAlgorithm",
    "ProofSigner",
    "SignedBy",
    "signed_bytes",
    "sign_json",
    "verify_json",
]

PROOF_MEMBER = "proof"
PROOF_TYPE = "LianzhengSignature2026"


class ProofAlgorithm(enum.StrEnum):
    """The ``alg`` of a proof: signature algorithm and the hash it applies to the signed bytes."""

    SM2_SM3 = "SM2-SM3"
    ES256K = "ES256K"


_ALG_OF = {SignatureAlgorithm.SM2: ProofAlgorithm.SM2_SM3, SignatureAlgorithm.SECP256K1: ProofAlgorithm.ES256K}


class ProofSigner(Protocol):
    """What `sign_json` needs of a key: `sm2.SM2Signer` and `ES256KSigner` are two."""

    @property
    def algorithm(self) -> SignatureAlgorithm: ...

    @property
    def public_key_pem(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class ES256KSigner:
    """A secp256k1 key signing messages as ES256K (SHA-256, DER): the `intl` profile's proofs."""

    _key: coincurve.PrivateKey | RecoverableKey = field(repr=False)
    algorithm: SignatureAlgorithm = SignatureAlgorithm.SECP256K1

    @classmethod
    def from_recoverable_key(cls, key: RecoverableKey) -> ES256KSigner:
        """A key held elsewhere (a PKCS#11 token, registry/consortium/key_backends): it signs SHA-256 digests."""
        return cls(key)

    @classmethod
    def from_private_key(cls, private_key: bytes) -> ES256KSigner:
        if not isinstance(private_key, (bytes, bytearray)) or len(private_key) != 32:
            raise ValidationError("a secp256k1 private key must be 32 bytes", code="invalid_private_key")
        try:
            return cls(coincurve.PrivateKey(bytes(private_key)))
        except ValueError as exc:
            raise ValidationError("a secp256k1 private key must lie in 1..n-1",
                                  code="invalid_private_key") from exc

    @property
    def public_key_pem(self) -> bytes:
        point = self._key.public_key.format(compressed=False)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), point)
        return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, message: bytes) -> bytes:
        if isinstance(self._key, coincurve.PrivateKey):
            return bytes(self._key.sign(bytes(message), hasher=_sha256))
        raw = self._key.sign_recoverable(_sha256(bytes(message)), hasher=None)  # low-s r || s || recid
        return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"))


@dataclass(frozen=True)
class SignedBy:
    """Who signed a verified object: the algorithm and the PEM public key, for the caller's trust check."""

    alg: ProofAlgorithm
    key_pem: bytes


def signed_bytes(obj: Mapping[str, Any]) -> bytes:
    """The bytes a proof signs: RFC 8785 of ``obj`` without its ``proof`` member."""
    return bytes(rfc8785.dumps({k: v for k, v in obj.items() if k != PROOF_MEMBER}))


def sign_json(obj: Mapping[str, Any], signer: ProofSigner) -> dict[str, Any]:
    """A copy of ``obj`` with a ``proof`` by ``signer``; ValidationError if it already carries one (which
    proof would a verifier check?)."""
    if PROOF_MEMBER in obj:
        raise ValidationError("the object already carries a proof", code="already_signed")
    alg = _ALG_OF[signer.algorithm]
    signature = signer.sign(signed_bytes(obj))
    proof = {"type": PROOF_TYPE, "alg": alg.value, "key": signer.public_key_pem.decode("ascii"),
             "signature": base64.b64encode(signature).decode("ascii")}
    return {**obj, PROOF_MEMBER: proof}


def verify_json(obj: Mapping[str, Any]) -> SignedBy:
    """The signer of ``obj`` when its proof verifies; SignatureError (a ProofError) otherwise, with code
    ``missing_proof``, ``malformed_proof``, ``unsupported_algorithm``, ``invalid_public_key`` or
    ``bad_signature``."""
    proof = obj.get(PROOF_MEMBER)
    if not isinstance(proof, Mapping):
        raise SignatureError("the object carries no proof", code="missing_proof")
    if proof.get("type") != PROOF_TYPE or set(proof) != {"type", "alg", "key", "signature"}:
        raise SignatureError(f"the proof must be {{type: {PROOF_TYPE!r}, alg, key, signature}}",
                             code="malformed_proof")
    try:
        alg = ProofAlgorithm(proof["alg"])
    except ValueError as exc:
        raise SignatureError(f"unsupported proof algorithm {proof['alg']!r}", code="unsupported_algorithm") from exc
    key, signature = proof["key"], proof["signature"]
    if not isinstance(key, str) or not isinstance(signature, str):
        raise SignatureError("the proof's key and signature must be strings", code="malformed_proof")
    try:
        der = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"the proof's signature is not base64 ({exc})", code="malformed_proof") from exc
    message = signed_bytes(obj)
    if alg is ProofAlgorithm.SM2_SM3:
        return SignedBy(alg, sm2.public_key_pem(sm2.verify_sm2(message, der, key.encode("ascii"))))
    return SignedBy(alg, _verify_es256k(message, der, key.encode("ascii")))


def _verify_es256k(message: bytes, der: bytes, key_pem: bytes) -> bytes:
    try:
        public = serialization.load_pem_public_key(key_pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"the signing key is not a public key in PEM: {exc}", code="invalid_public_key") from exc
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(public.curve, ec.SECP256K1):
        raise SignatureError("the ES256K signing key is not on secp256k1", code="invalid_public_key")
    try:
        decode_dss_signature(der)  # strict DER before libsecp256k1, whose parser is laxer (BIP 66 aside)
        point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        valid = coincurve.PublicKey(point).verify(der, message, hasher=_sha256)
    except ValueError as exc:
        raise SignatureError(f"the ES256K signature is malformed ({exc})") from exc
    if not valid:
        raise SignatureError("ES256K 签名无效 / the ES256K signature does not verify")
    return bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def _sha256(message: bytes) -> bytes:
    return hashlib.sha256(message).digest()
