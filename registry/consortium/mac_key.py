"""The node's lookup MAC key on its own (`KeyStore.mac_key`, registry/consortium/keys.py).

It is picklable and imports only registry.crypto.hashing, so that the processes building documents in parallel
(registry/certificates/parallel.py) compute the same 证照编号 MACs without loading the key store, the database
layer or web3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from registry.crypto.hashing import hmac_sha256_pads

__all__ = ["MacKey"]


@dataclass(frozen=True)
class MacKey:
    """The key `KeyStore.mac` uses, derived from the node's master key."""

    key: bytes = field(repr=False)
    # SHA-256 with the key's inner and outer pad absorbed (RFC 2104): each MAC copies them instead of hashing
    # the key's two blocks again (0.7 us a MAC against 1.5 for OpenSSL's one-shot HMAC; two per issued document)
    _pads: tuple[Any, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pads", hmac_sha256_pads(self.key))

    def __reduce__(self) -> tuple[type[MacKey], tuple[bytes]]:
        return MacKey, (self.key,)  # to the build processes: the key (hash states do not pickle)

    def mac(self, purpose: str, data: bytes) -> str:
        """HMAC-SHA256 (hex) of ``purpose || 0x00 || data``."""
        inner_pad, outer_pad = self._pads
        inner = inner_pad.copy()
        inner.update(purpose.encode())
        inner.update(b"\x00")
        inner.update(data)
        outer = outer_pad.copy()
        outer.update(inner.digest())
        return str(outer.hexdigest())
