"""Typed client for the GrantRegistry contract (grants, 授权他人用证). It speaks 32-byte digests and times; what a
grant *is* (the holder-signed JSON, its purpose and scope) is the registry's business (registry/holders/).

    >>> registry = node.client(GrantRegistryClient)                                 # doctest: +SKIP
    >>> registry.grant_of(grant_digest).status                                      # doctest: +SKIP
    <GrantStatus.ACTIVE: 1>
    >>> GrantStatus(2).name
    'REVOKED'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from chain.ledgers import _KeyedLedger
from chain.sender import Receipt, TransactionSender

__all__ = ["GrantRegistryClient", "GrantState", "GrantStatus"]


class GrantStatus(IntEnum):
    """GrantRegistry's status (contracts/GrantRegistry.sol)."""

    UNKNOWN = 0
    ACTIVE = 1
    REVOKED = 2


@dataclass(frozen=True)
class GrantState:
    """`GrantRegistry.grantOf(grantDigest)`."""

    certificate_doc: bytes
    grantee_digest: bytes
    not_before: int
    expires_at: int
    status: GrantStatus


class GrantRegistryClient(_KeyedLedger):
    NAME = "GrantRegistry"
    # measured (tests/unit/contracts/test_grant_registry.py): anchor ~118k, revoke ~55k
    GAS: Mapping[str, int] = {"anchor": 200_000, "revoke": 100_000}

    def anchor_fn(self, grant_digest: bytes, certificate_doc: bytes, grantee_digest: bytes, not_before: int,
                  expires_at: int) -> Any:
        return self.fn("anchorGrant", grant_digest, certificate_doc, grantee_digest, not_before, expires_at)

    def revoke_fn(self, grant_digest: bytes, revocation_digest: bytes) -> Any:
        return self.fn("revokeGrant", grant_digest, revocation_digest)

    def transact(self, sender: TransactionSender, fn: Any) -> Receipt:
        """Send one of the `*_fn` calls and wait for it (tests; the registry sends through its outbox)."""
        return sender.transact(fn)

    def grant_of(self, grant_digest: bytes, *, block: int | str = "latest") -> GrantState:
        doc, grantee, not_before, expires_at, status = self._call("grantOf", grant_digest, block=block)
        return GrantState(bytes(doc), bytes(grantee), int(not_before), int(expires_at), GrantStatus(status))

    def anchored_block(self, grant_digest: bytes, *, block: int | str = "latest") -> int:
        return int(self._call("anchoredBlock", grant_digest, block=block))
