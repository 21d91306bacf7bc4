"""The node's lookup MAC key on its own (`KeyStore.mac_key`, registry/consortium/keys.py).

It is picklable and imports nothing but the standard library, so that the processes building documents in
parallel (registry/certificates/parallel.py) compute the same 证照编号 MACs without loading the key store, the
database layer or web3.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

__all__ = ["MacKey"]


@dataclass(frozen=True)
class MacKey:
    """The key `KeyStore.mac` uses, derived from the node's master key."""

    key: bytes = field(repr=False)

    def mac(self, purpose: str, data: bytes) -> str:
        """HMAC-SHA256 (hex) of ``purpose || 0x00 || data``."""
        return hmac.digest(self.key, purpose.encode() + b"\x00" + data, "sha256").hex()  # OpenSSL's one-shot HMAC
