"""The key-backend protocol, its value types and its one error root."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

import coincurve

from registry.errors import RegistryError

# secp256k1 group order: a signature's s above N/2 is replaced by N - s (EIP-2 "low s", which the chain
# requires of transactions and libsecp256k1 of every signature it verifies)
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class KeyBackendError(RegistryError):
    """A key backend cannot generate, find or use a key (token missing, wrong PIN, unknown key ...)."""

    default_code = "key_backend_error"


class KeyBackendKind(enum.StrEnum):
    FILE = "file"  # encrypted under the master key in the node's database
    PKCS11 = "pkcs11"  # inside a PKCS#11 token


@dataclass(frozen=True)
class KeyRef:
    """One key a backend holds: the agency it belongs to, its account and its uncompressed public key."""

    uscc: str
    address: str
    public_key: bytes  # 65 bytes 0x04 || x || y
    backend: KeyBackendKind


@dataclass(frozen=True)
class RecoverableSignature:
    r: int
    s: int  # always low-s
    recovery_id: int  # 0 or 1

    def to_bytes(self) -> bytes:
        """65 bytes r || s || recid (libsecp256k1's compact recoverable form)."""
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes([self.recovery_id])


class KeyBackend(Protocol):
    @property
    def kind(self) -> KeyBackendKind: ...

    def generate(self, uscc: str) -> KeyRef:
        """A new secp256k1 key for the agency, generated where it will stay."""
        ...

    def public_key(self, address: str) -> bytes:
        """The 65-byte uncompressed public key of the key with this account."""
        ...

    def sign_digest(self, address: str, digest: bytes) -> RecoverableSignature:
        """ECDSA over the 32-byte ``digest`` as is (no further hashing)."""
        ...

    def list_keys(self) -> list[KeyRef]: ...


def recoverable_from_raw(digest: bytes, raw: bytes, public_key: bytes) -> RecoverableSignature:
    """A raw PKCS#11 ECDSA signature (r || s, 64 bytes) made low-s, with the recovery id found by recovering
    both candidates and keeping the one that gives ``public_key`` (ids 2 and 3 need r >= N - p, which has
    probability ~2^-127: not worth a branch)."""
    if len(raw) != 64:
        raise KeyBackendError(f"an ECDSA signature over secp256k1 is 64 bytes r || s, got {len(raw)}",
                              code="invalid_token_signature")
    r = int.from_bytes(raw[:32], "big")
    s = int.from_bytes(raw[32:], "big")
    if s > SECP256K1_N // 2:
        s = SECP256K1_N - s
    for recovery_id in (0, 1):
        candidate = RecoverableSignature(r, s, recovery_id)
        try:
            found = coincurve.PublicKey.from_signature_and_message(candidate.to_bytes(), digest, hasher=None)
        except Exception:  # coincurve raises a bare Exception when nothing recovers
            continue
        if found.format(compressed=False) == public_key:
            return candidate
    raise KeyBackendError("the token's signature does not recover to the key's public key",
                          code="invalid_token_signature")
