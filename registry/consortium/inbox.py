"""The consortium lane of the chain inbox (registry/outbox/inbox.py): a node's member table follows the chain.
Admissions, role changes, suspensions, key rotations and threshold changes decided from other nodes show in
this node's database (and so in its API, its CLI and its audit) within a pass, without a restart."""

from __future__ import annotations

from collections.abc import Sequence

from chain.logs import Event
from registry.consortium.members import sync_members
from registry.node import Node

__all__ = ["MembersInbox"]


class MembersInbox:
    contract_name = "ConsortiumRegistry"

    def __init__(self, node: Node) -> None:
        self.node = node

    def apply(self, events: Sequence[Event], hosted: frozenset[str]) -> int:
        """Mirror the members again when any member changed (the registry is small: one read of all)."""
        if any(e.name.startswith(("Member", "Threshold", "RevokerDelegate")) for e in events):
            sync_members(self.node)
        return 0  # no step rows: the member table is a mirror, not a ledger of steps

    def forget_lost(self, hosted: frozenset[str]) -> int:
        sync_members(self.node)  # after a reset the chain's members are whatever it has now
        return 0
