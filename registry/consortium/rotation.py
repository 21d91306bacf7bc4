"""Rotating an agency's SM2 signing key through governance (M-of-N approvals on chain, ConsortiumRegistry
action ROTATE_SM2_KEY): a new key is made inactive, proposed with the BID it implies, approved by enough
admins, executed, and only then made the agency's active key here. Records signed with the old key before
the execution keep verifying; the old key is refused for anything signed after it (registry.consortium.signers).

    >>> new_key = rotate_sm2_key(node, "11230000MB0000001X")      # doctest: +SKIP
"""

from __future__ import annotations

from chain.contracts import Action, ConsortiumClient
from registry.consortium.bid import bid_from_sm2_public_key
from registry.consortium.keys import sm2_raw_public_key
from registry.crypto.profiles import CryptoProfile
from registry.errors import ConflictError
from registry.node import Node

__all__ = ["propose_sm2_rotation", "rotate_sm2_key"]


def propose_sm2_rotation(node: Node, uscc: str, *, proposer: str) -> tuple[int, bytes]:
    """Make a new, inactive SM2 key for ``uscc`` and propose it from admin member ``proposer``. Returns the
    proposal id and the new 64-byte public key (activate it with `KeyStore.activate_sm2_key` once executed)."""
    public = sm2_raw_public_key(node.keys.create_sm2_key(uscc, active=False))
    bid = bid_from_sm2_public_key(public) if node.keys.profile is CryptoProfile.GM else ""
    data = ConsortiumClient.rotate_sm2_key_data(public, bid)
    return node.consortium.propose(node.sender_for(proposer), Action.ROTATE_SM2_KEY, uscc, data), public


def rotate_sm2_key(node: Node, uscc: str) -> bytes:
    """Propose, approve (by as many seed admins of this node as the chain requires) and execute a rotation of
    ``uscc``'s SM2 key, then activate the new key here. Returns the new public key."""
    admins = [m.uscc for m in node.seeds.members if "admin" in m.roles and node.keys.has_signing_key(m.uscc)]
    if not admins:
        raise ConflictError("this node holds no admin member's key to propose the rotation", code="no_admin")
    proposal, public = propose_sm2_rotation(node, uscc, proposer=admins[0])
    need = node.consortium.required_approvals()
    for other in admins[1:need]:
        node.consortium.approve(node.sender_for(other), proposal)
    node.consortium.execute(node.sender_for(admins[0]), proposal)
    node.keys.activate_sm2_key(public)
    return public
