"""Typed client for the UsageLedger contract (用证记录, contracts/UsageLedger.sol). It speaks 32-byte usage
ids, document digests, grant digests and USCCs; what a usage *means* (a matter, a holder's consent) is the
registry's business.

    >>> ledger = node.client(UsageLedgerClient)                                         # doctest: +SKIP
    >>> fn = ledger.record_fn(usage_id, doc, grant, ZERO32, purpose)                    # doctest: +SKIP
    >>> ledger.get_usage(usage_id).agency_uscc                                          # doctest: +SKIP
    '11230000MB1A00044B'
    >>> agency_grantee_digest("11230000MB0000002B").hex()[:16]
    '6d92e889cc2fe4db'
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chain.contracts import unpad
from chain.ledgers import ZERO32, _KeyedLedger
from chain.sender import Receipt, TransactionSender

__all__ = ["AGENCY_GRANTEE_PREFIX", "UsageLedgerClient", "UsageState", "agency_grantee_digest"]

AGENCY_GRANTEE_PREFIX = b"lianzheng/grantee/agency/v1:"


def agency_grantee_digest(uscc: str) -> bytes:
    """SHA-256("lianzheng/grantee/agency/v1:" + USCC): what UsageLedger compares a grant's grantee with."""
    return hashlib.sha256(AGENCY_GRANTEE_PREFIX + uscc.encode("ascii")).digest()


@dataclass(frozen=True)
class UsageState:
    """`UsageLedger.getUsage` for one id (grant / presentation None where zero)."""

    key: bytes
    certificate_doc: bytes
    agency_uscc: str
    grant_digest: bytes | None
    presentation_digest: bytes | None
    purpose_digest: bytes
    recorded_block: int
    timestamp: int


class UsageLedgerClient(_KeyedLedger):
    NAME = "UsageLedger"
    GAS: Mapping[str, int] = {"record": 250_000}

    def record_fn(self, key: bytes, certificate_doc: bytes, grant_digest: bytes, presentation_digest: bytes,
                  purpose_digest: bytes) -> Any:
        return self.fn("recordUsage", key, certificate_doc, grant_digest, presentation_digest, purpose_digest)

    def record(self, sender: TransactionSender, key: bytes, certificate_doc: bytes, grant_digest: bytes,
               presentation_digest: bytes, purpose_digest: bytes) -> Receipt:
        """Send recordUsage and wait (tests; the registry sends through its outbox)."""
        return sender.transact(self.record_fn(key, certificate_doc, grant_digest, presentation_digest, purpose_digest))

    def get_usage(self, key: bytes, *, block: int | str = "latest") -> UsageState | None:
        doc, agency, grant, presentation, purpose, recorded, ts = self._call("getUsage", key, block=block)
        if recorded == 0:
            return None
        return UsageState(bytes(key), bytes(doc), unpad(agency), bytes(grant) if bytes(grant) != ZERO32 else None,
                          bytes(presentation) if bytes(presentation) != ZERO32 else None, bytes(purpose),
                          int(recorded), int(ts))

    def usage_count(self, *, block: int | str = "latest") -> int:
        return int(self._call("usageCount", block=block))
