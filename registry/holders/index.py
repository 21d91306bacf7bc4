"""The grant index: every GrantRegistry event (grants relayed by any node), as the chain shows it, in this
node's database (`grant_chain_events`) — so every node knows every grant's status, whoever relayed it.

Fed as every contract event index is (registry/outbox/event_index.py): `refresh()` from the grant routes, so
they see the chain as it is now, and the inbox thread's `apply`; a reset is rescanned.

    >>> index = GrantIndex(node)                                        # doctest: +SKIP
    >>> index.refresh(); index.history("ab" * 32).status                # doctest: +SKIP
    'active'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from chain.blocks import Header
from chain.contracts import unpad
from chain.logs import Event
from registry.outbox.event_index import ChainEventIndex, plain_arg
from registry.store.holder_models import GrantChainEvent

__all__ = ["GrantHistory", "GrantIndex"]


@dataclass(frozen=True)
class GrantHistory:
    """One grant as the chain shows it."""

    digest: str
    certificate_doc: str  # hex, no 0x
    grantee_digest: str
    not_before: int
    expires_at: int
    relay_uscc: str
    anchored_block: int
    anchored_at: int
    revoked_block: int | None
    revoked_at: int | None
    revocation_digest: str | None

    @property
    def status(self) -> str:
        return "revoked" if self.revoked_block is not None else "active"

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "status": self.status}


class GrantIndex(ChainEventIndex):
    contract_name = "GrantRegistry"
    row_model = GrantChainEvent
    event_names = frozenset({"GrantAnchored", "GrantRevoked"})

    def row(self, event: Event, header: Header) -> GrantChainEvent:
        return GrantChainEvent(tx_hash=event.tx_hash, log_index=event.log_index, name=event.name,
                               grant_digest=bytes(event.args["grantDigest"]).hex(),
                               relay_uscc=unpad(event.args["relayUscc"]),
                               args={k: plain_arg(v) for k, v in event.args.items()},
                               block_number=event.block_number, block_hash=header.hash,
                               block_timestamp=header.timestamp)

    def history(self, digest: str) -> GrantHistory | None:
        """A grant by its digest (hex), or None if the chain never anchored it (as far as this index knows)."""
        with self.node.db.session() as s:
            rows = s.scalars(select(GrantChainEvent).where(GrantChainEvent.grant_digest == digest.lower())
                             .order_by(GrantChainEvent.block_number, GrantChainEvent.log_index)).all()
        anchored = next((r for r in rows if r.name == "GrantAnchored"), None)
        if anchored is None:
            return None
        revoked = next((r for r in rows if r.name == "GrantRevoked"), None)
        a = anchored.args
        return GrantHistory(digest.lower(), str(a["certificateDoc"]).removeprefix("0x"),
                            str(a["granteeDigest"]).removeprefix("0x"), int(a["notBefore"]), int(a["expiresAt"]),
                            anchored.relay_uscc, anchored.block_number, anchored.block_timestamp,
                            None if revoked is None else revoked.block_number,
                            None if revoked is None else revoked.block_timestamp,
                            None if revoked is None else str(revoked.args["revocationDigest"]))
