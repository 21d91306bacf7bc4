"""The one signing module: an agency's or the operator's `Signer`, and `recover` / `verify` for whoever
checks a signature. Every signed artifact of the registry goes through here.

A `SignatureScheme` names exactly which bytes are signed and how the signature is laid out; its
`SignatureAlgorithm` names the curve. Today every scheme is secp256k1 (the key that also signs the
agency's Ethereum transactions, so a recovered signer is an account the consortium knows):

- ``RECOVERABLE``: ECDSA over a 32-byte digest as is (no further hashing), 65 bytes ``r || s || recid``
  with recid 0..3 (libsecp256k1's compact recoverable form, via coincurve). The trust list signs
  SHA-256(RFC 8785 body), offline QR payloads SHA-256(CBOR body), evidence packages SHA-256(manifest.json).
- ``EIP191``: Ethereum ``personal_sign`` (EIP-191 version 0x45) of a 32-byte digest, i.e. ECDSA over
  keccak256("\\x19Ethereum Signed Message:\\n32" || digest), 65 bytes ``r || s || v`` with v 27/28
  (eth-account). Checkpoints and audit reports use it, so a wallet or Solidity's ``ecrecover`` checks them.

The second algorithm, SM2 with SM3 (GB/T 32918, BID crypto type ``z``), is the `SignatureAlgorithm.SM2`
member; it recovers no key, so it signs whole messages with the key beside the signature: see
registry.crypto.sm2 (keys, sign, verify) and registry.crypto.proofs (signed JSON in either profile).

>>> signer = Signer.from_private_key(bytes(31) + b"\\x01")
>>> digest = bytes(range(32))
>>> sig = signer.sign(digest, SignatureScheme.RECOVERABLE)
>>> recover(digest, sig, SignatureScheme.RECOVERABLE) == signer.address
True
>>> verify(digest, signer.sign(digest, SignatureScheme.EIP191), SignatureScheme.EIP191, signer.address)
True
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from typing import Protocol

import coincurve
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.crypto import keccak

from registry.errors import SignatureError, ValidationError

__all__ = [
    "DIGEST_SIZE",
    "SIGNATURE_SIZE",
    "SignatureAlgorithm",
    "SignatureScheme",
    "RecoverableKey",
    "Signer",
    "address_of_public_key",
    "checksum_address",
    "recover",
    "recover_account",
    "recover_or_none",
    "verify",
]

DIGEST_SIZE = 32
SIGNATURE_SIZE = 65


class SignatureAlgorithm(enum.StrEnum):
    """The curve and hash family of a key."""

    SECP256K1 = "secp256k1"
    # GB/T 32918.2 with SM3 and the default distinguishing id; no recovery, so it has no SignatureScheme
    # here: registry.crypto.sm2 signs and verifies messages with the key beside the signature.
    SM2 = "sm2"


class SignatureScheme(enum.StrEnum):
    """What exactly is signed, and the byte layout of the signature (see the module docstring)."""

    RECOVERABLE = "secp256k1-recoverable"
    EIP191 = "secp256k1-eip191"

    @property
    def algorithm(self) -> SignatureAlgorithm:
        return SignatureAlgorithm.SECP256K1


def address_of_public_key(public: coincurve.PublicKey) -> str:
    """EIP-55 address of a secp256k1 key: the last 20 bytes of keccak-256 of the uncompressed key without
    its 0x04 prefix (Ethereum yellow paper, eq. 284)."""
    return checksum_address(keccak(public.format(compressed=False)[1:])[-20:])


def checksum_address(account: bytes) -> str:
    """EIP-55: upper-case a hex letter where the matching nibble of keccak(lower-case hex) is >= 8.

    The same as eth_utils' to_checksum_address (tests check it on random accounts) at half the cost, which
    is a tenth of an offline QR verification: that input is already 20 bytes and needs no validation."""
    hex_addr = account.hex()
    digest = keccak(hex_addr.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if d >= "8" else c for c, d in zip(hex_addr, digest[:40], strict=True))


class RecoverableKey(Protocol):
    """A secp256k1 key held elsewhere (registry/consortium/key_backends: an HSM token): coincurve's
    PrivateKey shape, restricted to what a `Signer` needs, so the private key never has to be in hand."""

    @property
    def public_key(self) -> coincurve.PublicKey: ...

    def sign_recoverable(self, message: bytes, hasher: None = None) -> bytes: ...


@dataclass(frozen=True)
class Signer:
    """A private key that signs digests; `address` is its account (the identity a verifier recovers)."""

    algorithm: SignatureAlgorithm
    _key: coincurve.PrivateKey | RecoverableKey = field(repr=False)

    @classmethod
    def from_key(cls, key: RecoverableKey) -> Signer:
        """A signer whose key stays in its backend (every signature is made there)."""
        return cls(algorithm=SignatureAlgorithm.SECP256K1, _key=key)

    @classmethod
    def from_private_key(cls, private_key: bytes,
                         algorithm: SignatureAlgorithm = SignatureAlgorithm.SECP256K1) -> Signer:
        """ValidationError(code="invalid_private_key") unless ``private_key`` is 32 bytes in 1..n-1."""
        try:
            if not isinstance(private_key, (bytes, bytearray)) or len(private_key) != 32:
                raise ValueError("wrong length")  # coincurve would accept other lengths (b"" even means random)
            key = coincurve.PrivateKey(bytes(private_key))
        except (ValueError, TypeError) as exc:
            raise ValidationError(f"private key must be 32 bytes in 1..n-1 of {algorithm}",
                                  code="invalid_private_key") from exc
        return cls(algorithm=algorithm, _key=key)

    # Derived lazily (cached_property writes the instance dict, which a frozen dataclass allows): a signer
    # built to sign one QR payload that already names its account never pays for keccak and EIP-55.
    @functools.cached_property
    def account(self) -> bytes:
        """The 20-byte account (Ethereum address) of the key."""
        return bytes(keccak(self._key.public_key.format(compressed=False)[1:])[-20:])

    @functools.cached_property
    def address(self) -> str:
        """The EIP-55 checksummed account."""
        return checksum_address(self.account)

    @property
    def public_key(self) -> bytes:
        """The 65-byte uncompressed public key (0x04 || x || y)."""
        return bytes(self._key.public_key.format(compressed=False))

    def sign(self, digest: bytes, scheme: SignatureScheme) -> bytes:
        """The 65-byte signature of the 32-byte ``digest`` under ``scheme``."""
        _check_scheme(scheme, self.algorithm)
        _check_digest(digest)
        if scheme is SignatureScheme.RECOVERABLE:
            # hasher=None: sign the digest as is (coincurve would otherwise SHA-256 it once more)
            return bytes(self._key.sign_recoverable(digest, hasher=None))
        if not isinstance(self._key, coincurve.PrivateKey):
            # EIP-191 by hand for a key held elsewhere: sign keccak(prefix || digest), v = 27 + recid
            raw = self._key.sign_recoverable(keccak(b"\x19Ethereum Signed Message:\n32" + digest), hasher=None)
            return raw[:64] + bytes([raw[64] + 27])
        signed = Account.sign_message(encode_defunct(primitive=digest), private_key=self._key.secret)
        return bytes(signed.signature)


def recover(digest: bytes, signature: bytes, scheme: SignatureScheme) -> str:
    """The EIP-55 address whose key made ``signature`` over ``digest``; SignatureError if none recovers.

    Any change to the digest or the signature yields another address (or none): whether that address may
    sign is the caller's trust decision."""
    return checksum_address(recover_account(digest, signature, scheme))


def recover_account(digest: bytes, signature: bytes, scheme: SignatureScheme) -> bytes:
    """`recover` as the raw 20-byte account (for wire formats that carry accounts as bytes)."""
    _check_digest(digest)
    if not isinstance(signature, (bytes, bytearray)) or len(signature) != SIGNATURE_SIZE:
        found = f"{len(signature)} bytes" if isinstance(signature, (bytes, bytearray)) else type(signature).__name__
        raise SignatureError(f"signature must be {SIGNATURE_SIZE} bytes, got {found}")
    signature = bytes(signature)
    if scheme is SignatureScheme.RECOVERABLE:
        if signature[64] > 3:
            raise SignatureError(f"recovery id must be 0..3, got {signature[64]}")
        try:
            public = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
        except Exception as exc:  # coincurve raises a bare Exception for unrecoverable signatures
            raise SignatureError(f"no public key recovers from the signature ({exc})") from exc
        return _account_of(public.format(compressed=False))
    _check_scheme(scheme, SignatureAlgorithm.SECP256K1)
    try:
        address = Account.recover_message(encode_defunct(primitive=digest), signature=signature)
    except Exception as exc:  # eth-keys raises several types (BadSignature, ValidationError, ValueError)
        raise SignatureError(f"no public key recovers from the signature ({exc})") from exc
    return bytes.fromhex(address[2:])


@functools.lru_cache(maxsize=1024)
def _account_of(public_key: bytes) -> bytes:
    """The account of a 65-byte uncompressed key (yellow paper eq. 284). Memoised by key: the signatures a
    verifier meets come from a few agencies' keys, so each key is hashed once (keccak is a sixth of a
    signature recovery)."""
    return bytes(keccak(public_key[1:])[-20:])


def recover_or_none(digest: bytes, signature: bytes, scheme: SignatureScheme) -> str | None:
    """`recover`, with None where no key recovers (a malformed signature: nobody signed it)."""
    try:
        return recover(digest, signature, scheme)
    except SignatureError:
        return None


def verify(digest: bytes, signature: bytes, scheme: SignatureScheme, address: str) -> bool:
    """True when ``signature`` over ``digest`` recovers ``address`` (compared case-insensitively)."""
    signer = recover_or_none(digest, signature, scheme)
    return signer is not None and signer.lower() == address.lower()


def _check_digest(digest: bytes) -> None:
    if not isinstance(digest, (bytes, bytearray)) or len(digest) != DIGEST_SIZE:
        found = f"{len(digest)} bytes" if isinstance(digest, (bytes, bytearray)) else type(digest).__name__
        raise ValidationError(f"a signed digest must be {DIGEST_SIZE} bytes, got {found}", code="invalid_digest")


def _check_scheme(scheme: SignatureScheme, algorithm: SignatureAlgorithm) -> None:
    if not isinstance(scheme, SignatureScheme) or scheme.algorithm is not algorithm:
        raise ValidationError(f"signature scheme {scheme!r} is not one of the {algorithm} schemes",
                              code="unsupported_algorithm")
