"""Crypto profiles: `gm` (SM2, SM3, SM4: GB/T 32918, 32905, 32907) and `intl` (secp256k1, SHA-256,
AES-GCM). A profile chooses what new records are made with; every format names its algorithm, so a verifier
reads both and a profile change strands nothing (docs/CRYPTO.md).

The chain's transaction key stays secp256k1 in both (the EVM needs it); a profile governs the
application-level signatures, digests and encryption around it.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # registry.crypto.signing loads eth-account: the document builders read profiles without it
    from registry.crypto.signing import SignatureAlgorithm

__all__ = ["CryptoProfile"]


class CryptoProfile(enum.StrEnum):
    GM = "gm"
    INTL = "intl"

    @property
    def signature_algorithm(self) -> SignatureAlgorithm:
        """The algorithm of the application-level signatures (proofs) made under this profile."""
        from registry.crypto.signing import SignatureAlgorithm

        return SignatureAlgorithm.SM2 if self is CryptoProfile.GM else SignatureAlgorithm.SECP256K1
