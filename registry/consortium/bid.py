"""星火 BID (BIF RFC-003/005): ``did:bid:`` + optional 4-character AC + crypto type (``s`` secp256k1, ``z``
SM2/SM3, ``e`` Ed25519) + encoding (``f`` Base58) + the last 22 bytes of the public key's hash; and the
Ethereum account of the same secp256k1 key. registry.identifiers re-exports these names.

>>> parse_bid(bid_from_private_key(bytes(31) + b"\\x01")).crypto
's'
>>> eth_address_from_private_key(bytes(31) + b"\\x01")
'0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import base58
import coincurve

from registry.crypto.hashing import sha256, sm3
from registry.errors import ValidationError

__all__ = [
    "BID_PREFIX",
    "Bid",
    "bid_from_ed25519_public_key",
    "bid_from_private_key",
    "bid_from_secp256k1_public_key",
    "bid_from_sm2_public_key",
    "eth_address_from_private_key",
    "eth_address_from_public_key",
    "is_bid",
    "parse_bid",
]

BID_PREFIX = "did:bid:"
_BID_CRYPTO = {"s": "secp256k1", "z": "SM2", "e": "Ed25519"}
_BID_ENCODINGS = {"f": "Base58", "s": "Base64", "t": "Bech32"}
_BID_HASH_LEN = 22
_AC = re.compile(r"[a-z0-9]{4}")


@dataclass(frozen=True, slots=True)
class Bid:
    """A parsed BID: ``did:bid:[<ac>:]<crypto><encoding><Base58(last 22 bytes of H(public key))>``."""

    ac: str | None
    crypto: str
    encoding: str
    hash22: bytes

    def __post_init__(self) -> None:
        if self.ac is not None and not (isinstance(self.ac, str) and _AC.fullmatch(self.ac)):
            raise ValidationError(f"BID AC code must be 4 lower-case letters or digits, got {self.ac!r}",
                                  code="invalid_bid")
        if self.crypto not in _BID_CRYPTO:
            raise ValidationError(f"BID crypto type must be one of s, z, e, got {self.crypto!r}", code="invalid_bid")
        if self.encoding != "f":
            raise ValidationError(f"BID encoding must be 'f' (Base58), got {self.encoding!r}", code="invalid_bid")
        if not isinstance(self.hash22, bytes) or len(self.hash22) != _BID_HASH_LEN:
            found = len(self.hash22) if isinstance(self.hash22, (bytes, bytearray)) else type(self.hash22).__name__
            raise ValidationError(f"BID hash must be {_BID_HASH_LEN} bytes, got {found}", code="invalid_bid")

    def __str__(self) -> str:
        ac = f"{self.ac}:" if self.ac else ""
        return f"{BID_PREFIX}{ac}{self.crypto}{self.encoding}{base58.b58encode(self.hash22).decode('ascii')}"


def parse_bid(text: str) -> Bid:
    """Parse a BID; ValidationError(code="invalid_bid") says which part is wrong."""
    if not isinstance(text, str):
        raise ValidationError(f"BID must be a string, got {type(text).__name__}", code="invalid_bid")
    if not text.startswith(BID_PREFIX):
        raise ValidationError(f"BID must start with {BID_PREFIX!r}, got {text[:12]!r}", code="invalid_bid")
    rest = text[len(BID_PREFIX) :]
    ac: str | None = None
    if ":" in rest:
        ac, rest = rest.split(":", 1)
        if not _AC.fullmatch(ac):
            raise ValidationError(f"BID AC code must be 4 lower-case letters or digits, got {ac!r}", code="invalid_bid")
    if len(rest) < 3:
        raise ValidationError(f"BID {text!r} is too short after the prefix", code="invalid_bid")
    crypto, encoding, body = rest[0], rest[1], rest[2:]
    if crypto not in _BID_CRYPTO:
        raise ValidationError(
            f"BID crypto type must be s (secp256k1), z (SM2) or e (Ed25519), got {crypto!r}", code="invalid_bid"
        )
    if encoding != "f":
        name = _BID_ENCODINGS.get(encoding, "unknown")
        raise ValidationError(f"BID encoding must be 'f' (Base58), got {encoding!r} ({name})", code="invalid_bid")
    try:
        hash22 = base58.b58decode(body)
    except ValueError as exc:
        raise ValidationError(f"BID suffix is not Base58: {exc}", code="invalid_bid") from None
    if len(hash22) != _BID_HASH_LEN:
        raise ValidationError(
            f"BID suffix decodes to {len(hash22)} bytes, expected {_BID_HASH_LEN}", code="invalid_bid"
        )
    if base58.b58encode(hash22).decode("ascii") != body:  # pragma: no cover - Base58 is canonical
        raise ValidationError("BID suffix is not in canonical Base58", code="invalid_bid")
    return Bid(ac=ac, crypto=crypto, encoding=encoding, hash22=hash22)


def is_bid(text: object) -> bool:
    try:
        parse_bid(text)  # type: ignore[arg-type]
    except ValidationError:
        return False
    return True


def _secp256k1_pub64(public_key: bytes) -> bytes:
    """Accept 64 raw bytes (x||y), 65 bytes with 0x04, or a 33-byte compressed key."""
    if not isinstance(public_key, (bytes, bytearray)):
        raise ValidationError(f"public key must be bytes, got {type(public_key).__name__}", code="invalid_public_key")
    pk = bytes(public_key)
    if len(pk) == 64:
        pk = b"\x04" + pk
    if len(pk) not in (33, 65):
        raise ValidationError(
            f"secp256k1 public key must be 64, 65 or 33 bytes, got {len(pk)}", code="invalid_public_key"
        )
    try:
        return coincurve.PublicKey(pk).format(compressed=False)[1:]
    except ValueError as exc:
        raise ValidationError(f"not a secp256k1 curve point: {exc}", code="invalid_public_key") from None


def _bid(crypto: str, digest: bytes, ac: str | None) -> str:
    return str(Bid(ac=ac, crypto=crypto, encoding="f", hash22=digest[-_BID_HASH_LEN:]))


def bid_from_secp256k1_public_key(public_key: bytes, ac: str | None = None) -> str:
    """BID type ``s``: last 22 bytes of SHA-256 over the 64-byte uncompressed key (no 0x04)."""
    return _bid("s", sha256(_secp256k1_pub64(public_key)), ac)


def bid_from_ed25519_public_key(public_key: bytes, ac: str | None = None) -> str:
    """BID type ``e``: last 22 bytes of SHA-256 over the 32-byte Ed25519 key."""
    if not isinstance(public_key, (bytes, bytearray)) or len(public_key) != 32:
        raise ValidationError("Ed25519 public key must be 32 bytes", code="invalid_public_key")
    return _bid("e", sha256(bytes(public_key)), ac)


def bid_from_sm2_public_key(public_key: bytes, ac: str | None = None) -> str:
    """BID type ``z`` as 星火·链网 derives it for SM2 keys: the last 22 bytes of SM3 over the *uncompressed*
    public key ``0x04 || x || y`` (65 bytes), Base58. The BIF SDKs hash the key as sm-crypto returns it
    (bif-core-sdk-js ``crypto_sm2._createAddress(rawPublicKey)`` with ``rawPublicKey`` from
    ``sm2.generateKeyPairHex().publicKey``, which is ``"04" || x || y``). 64 bytes x || y are accepted too."""
    pk = bytes(public_key) if isinstance(public_key, (bytes, bytearray)) else b""
    if len(pk) == 64:
        pk = b"\x04" + pk
    if len(pk) != 65 or pk[0] != 4:
        raise ValidationError("SM2 public key must be 64 bytes x || y (or 65 with 0x04)", code="invalid_public_key")
    return _bid("z", sm3(pk), ac)


def _secp256k1_private(private_key: bytes) -> coincurve.PrivateKey:
    if not isinstance(private_key, (bytes, bytearray)) or len(private_key) != 32:
        raise ValidationError("secp256k1 private key must be 32 bytes", code="invalid_private_key")
    try:
        return coincurve.PrivateKey(bytes(private_key))
    except ValueError as exc:
        raise ValidationError(f"not a valid secp256k1 private key: {exc}", code="invalid_private_key") from None


def bid_from_private_key(private_key: bytes, ac: str | None = None) -> str:
    """BID of the secp256k1 key (the same key signs Ethereum transactions)."""
    pub = _secp256k1_private(private_key).public_key.format(compressed=False)[1:]
    return bid_from_secp256k1_public_key(pub, ac)


def eth_address_from_public_key(public_key: bytes) -> str:
    """EIP-55 checksummed address: last 20 bytes of Keccak-256 over the 64-byte public key."""
    # eth-utils loads here, not with this module (registry/identifiers.py re-exports BIDs; the CLI parses those)
    from eth_utils.address import to_checksum_address
    from eth_utils.crypto import keccak

    return to_checksum_address(keccak(_secp256k1_pub64(public_key))[-20:])


def eth_address_from_private_key(private_key: bytes) -> str:
    return eth_address_from_public_key(_secp256k1_private(private_key).public_key.format(compressed=False))
