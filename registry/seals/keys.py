"""Seal keys: each seal's own signing key, and the seal maker's (制章方) key that signs SESeal structures.

Both are application keys of the crypto profile — SM2 (GB/T 32918 with SM3) in `gm`, secp256k1 ECDSA with
SHA-256 in `intl` — kept in this node's database encrypted under the master key exactly as agency keys are
(`KeyStore.seal_secret`: AES-256-GCM, the associated data naming what the key belongs to). Their public
halves travel as DER SubjectPublicKeyInfo; the chain holds their SHA-256 (``keyDigest``).

>>> key, secret = new_key("sm2")
>>> verify_raw("sm2", key.spki, b"m", key.signer.sign(b"m"))
>>> loaded = load_key("sm2", secret)
>>> loaded.digest == key.digest
True
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from tongsuopy.crypto import serialization as gm_serialization

from registry.crypto import sm2
from registry.crypto.proofs import ES256KSigner, ProofSigner
from registry.errors import SignatureError, ValidationError
from registry.node import Node
from registry.store.seal_models import SealMakerKey

__all__ = ["SealKey", "load_key", "maker_key", "new_key", "spki_of", "verify_raw"]

ALGORITHMS = ("sm2", "secp256k1")


@dataclass(frozen=True)
class SealKey:
    algorithm: str
    signer: ProofSigner
    spki: bytes  # DER SubjectPublicKeyInfo

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.spki).digest()


def spki_of(signer: ProofSigner) -> bytes:
    """The DER SubjectPublicKeyInfo of a signer (from its PEM)."""
    pem = signer.public_key_pem
    if isinstance(signer, sm2.SM2Signer):
        return bytes(signer.public_key.public_bytes(gm_serialization.Encoding.DER,
                                                    gm_serialization.PublicFormat.SubjectPublicKeyInfo))
    public = serialization.load_pem_public_key(pem)
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _signer(algorithm: str, secret: bytes) -> ProofSigner:
    if algorithm == "sm2":
        return sm2.SM2Signer.from_private_key(secret)
    if algorithm == "secp256k1":
        return ES256KSigner.from_private_key(secret)
    raise ValidationError(f"unknown seal key algorithm {algorithm!r}", code="invalid_key_algorithm")


def new_key(algorithm: str) -> tuple[SealKey, bytes]:
    """A fresh key and its 32-byte secret (to be stored encrypted)."""
    while True:
        secret = secrets.token_bytes(32)
        try:
            signer = _signer(algorithm, secret)
        except ValidationError as exc:
            if exc.code == "invalid_private_key":
                continue  # out of range (probability ~2^-32): draw again
            raise
        return SealKey(algorithm, signer, spki_of(signer)), secret


def load_key(algorithm: str, secret: bytes) -> SealKey:
    signer = _signer(algorithm, secret)
    return SealKey(algorithm, signer, spki_of(signer))


def verify_raw(algorithm: str, spki: bytes, message: bytes, signature: bytes) -> None:
    """SignatureError unless ``signature`` (DER) over ``message`` verifies under the DER SPKI ``spki``."""
    if algorithm == "sm2":
        try:
            key = gm_serialization.load_der_public_key(bytes(spki))
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SignatureError(f"the signer's key is not a public key ({exc})", code="invalid_public_key") from exc
        sm2.verify_sm2(message, signature, sm2.public_key_pem(key))
        return
    if algorithm != "secp256k1":
        raise SignatureError(f"unsupported seal signature algorithm {algorithm!r}", code="unsupported_algorithm")
    try:
        public = serialization.load_der_public_key(bytes(spki))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"the signer's key is not a public key ({exc})", code="invalid_public_key") from exc
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(public.curve, ec.SECP256K1):
        raise SignatureError("the signer's key is not on secp256k1", code="invalid_public_key")
    try:
        public.verify(bytes(signature), bytes(message), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise SignatureError("ECDSA 签名无效 / the ECDSA signature does not verify") from exc


def maker_key(node: Node, uscc: str, algorithm: str) -> tuple[SealKey, bool]:
    """The seal maker's key for ``algorithm`` (created the first time). Returns (key, created now)."""
    with node.db.session() as s:
        row = s.scalars(select(SealMakerKey).where(SealMakerKey.uscc == uscc, SealMakerKey.algorithm == algorithm)
                        .order_by(SealMakerKey.created_at.desc())).first()
        if row is not None:
            secret = node.keys.open_secret(row.key_blob, f"seal-maker:{uscc}:{row.key_digest}".encode())
            return load_key(algorithm, secret), False
        key, secret = new_key(algorithm)
        digest = "0x" + key.digest.hex()
        s.add(SealMakerKey(key_digest=digest, uscc=uscc, algorithm=algorithm, public_key=key.spki,
                           key_blob=node.keys.seal_secret(secret, f"seal-maker:{uscc}:{digest}".encode())))
        return key, True
