"""Typed client for the SealRegistry contract (e-seals: 制章 / 用章 / 验章). It speaks 32-byte seal ids and
digests; what a seal *is* (a GB/T 38540 SESeal, an image, a key) is the registry's business.

    >>> registry = node.client(SealRegistryClient)                                # doctest: +SKIP
    >>> registry.get_seal(seal_key).status                                        # doctest: +SKIP
    <SealStatus.ACTIVE: 1>
    >>> SealStatus(3).name
    'REVOKED'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from chain.contracts import b32, unpad
from chain.ledgers import _KeyedLedger
from chain.sender import Receipt, TransactionSender

__all__ = ["SealRegistryClient", "SealState", "SealStatus"]


class SealStatus(IntEnum):
    """SealRegistry's status enum (contracts/SealRegistry.sol)."""

    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2
    REVOKED = 3


@dataclass(frozen=True)
class SealState:
    """`SealRegistry.getSeal` for one id."""

    key: bytes
    agency_uscc: str
    image_digest: bytes
    key_digest: bytes
    seal_info_digest: bytes
    valid_from: int
    valid_until: int
    status: SealStatus
    created_block: int
    updated_block: int


class SealRegistryClient(_KeyedLedger):
    NAME = "SealRegistry"
    GAS: Mapping[str, int] = {"maker_key": 100_000, "create": 250_000, "suspend": 80_000, "reinstate": 80_000,
                              "revoke": 80_000}

    def publish_maker_key_fn(self, key_digest: bytes) -> Any:
        return self.fn("publishMakerKey", key_digest)

    def create_fn(self, key: bytes, image_digest: bytes, key_digest: bytes, seal_info_digest: bytes,
                  valid_from: int, valid_until: int) -> Any:
        return self.fn("create", key, image_digest, key_digest, seal_info_digest, valid_from, valid_until)

    def suspend_fn(self, key: bytes, reason_digest: bytes) -> Any:
        return self.fn("suspend", key, reason_digest)

    def reinstate_fn(self, key: bytes) -> Any:
        return self.fn("reinstate", key)

    def revoke_fn(self, key: bytes, reason_digest: bytes) -> Any:
        return self.fn("revoke", key, reason_digest)

    def transact(self, sender: TransactionSender, fn: Any) -> Receipt:
        """Send one of the `*_fn` calls and wait for it (tests; the registry sends through its outbox)."""
        return sender.transact(fn)

    def get_seal(self, key: bytes, *, block: int | str = "latest") -> SealState | None:
        agency, image, key_digest, info, valid_from, valid_until, status, created, updated = self._call(
            "getSeal", key, block=block)
        if status == SealStatus.NONE:
            return None
        return SealState(bytes(key), unpad(agency), bytes(image), bytes(key_digest), bytes(info), int(valid_from),
                         int(valid_until), SealStatus(status), int(created), int(updated))

    def maker_key_since(self, key_digest: bytes, *, block: int | str = "latest") -> int:
        return int(self._call("makerKeySince", key_digest, block=block))

    def maker(self) -> str:
        return unpad(self._call("maker"))

    @staticmethod
    def uscc_key(uscc: str) -> bytes:
        return b32(uscc)
