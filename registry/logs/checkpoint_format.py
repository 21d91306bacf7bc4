"""Checkpoints as the Backbone records them (registry.logs.checkpoints), and the gateway's signature over a
checkpoint hash: EIP-191 ``personal_sign`` by the member's key (registry.crypto.signing, scheme EIP191).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from chain.contracts import unpad
from chain.logs import Event
from registry.crypto.signing import SignatureScheme, recover_or_none
from registry.logs.backbone import BackboneLink
from registry.node import Node

__all__ = ["Checkpoint", "checkpoints_from_events", "read_checkpoints", "recover_signer", "sign_hash"]


def sign_hash(node: Node, uscc: str, digest: bytes) -> tuple[str, str]:
    """EIP-191 signature of a 32-byte hash by the member's key; returns (signer address, 0x signature)."""
    signer = node.keys.signer(uscc)
    return signer.address, "0x" + signer.sign(digest, SignatureScheme.EIP191).hex()


def recover_signer(digest: bytes, signature: str) -> str | None:
    """The account whose EIP-191 signature (0x hex) over ``digest`` this is; None when malformed."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except (ValueError, AttributeError):
        return None
    return recover_or_none(digest, raw, SignatureScheme.EIP191)


@dataclass(frozen=True)
class Checkpoint:
    ledger: str
    index: int
    hash: bytes
    tree_size: int
    root: bytes
    prev_hash: bytes
    from_block: int
    to_block: int
    to_block_hash: bytes
    main_block: int
    main_tx: str
    submitted_at: int | None = None
    cosigners: tuple[tuple[str, str], ...] = ()  # (witness account, USCC)

    def to_json(self) -> dict[str, Any]:
        return {"ledger": self.ledger, "index": self.index, "hash": "0x" + self.hash.hex(),
                "tree_size": self.tree_size, "root": "0x" + self.root.hex(), "prev_hash": "0x" + self.prev_hash.hex(),
                "from_block": self.from_block, "to_block": self.to_block, "to_block_hash": "0x" + self.to_block_hash.hex(),
                "main_block": self.main_block, "main_tx": self.main_tx, "submitted_at": self.submitted_at,
                "cosignatures": len(self.cosigners), "cosigners": [{"account": a, "uscc": u} for a, u in self.cosigners]}


def checkpoints_from_events(events: Iterable[Event], subchain_id: bytes,
                            block_time: Callable[[int], int] | None = None) -> dict[str, list[Checkpoint]]:
    """Checkpoints per ledger (in index order) from Backbone events, with their cosigners."""
    submitted: list[Event] = []
    cosigned: dict[bytes, list[tuple[str, str]]] = {}
    for e in events:
        if e.name == "CheckpointSubmitted" and e.args["subchainId"] == subchain_id:
            submitted.append(e)
        elif e.name == "CheckpointCosigned":
            cosigned.setdefault(e.args["checkpointHash"], []).append((e.args["witness"], unpad(e.args["uscc"])))
    out: dict[str, list[Checkpoint]] = {}
    for e in submitted:
        a = e.args
        ledger = unpad(a["ledgerId"])
        out.setdefault(ledger, []).append(Checkpoint(
            ledger=ledger, index=int(a["index"]), hash=a["checkpointHash"], tree_size=int(a["treeSize"]), root=a["root"],
            prev_hash=a["prevHash"], from_block=int(a["fromBlock"]), to_block=int(a["toBlock"]),
            to_block_hash=a["toBlockHash"], main_block=e.block_number, main_tx=e.tx_hash,
            submitted_at=block_time(e.block_number) if block_time else None,
            cosigners=tuple(cosigned.get(a["checkpointHash"], ())),
        ))
    return out


def read_checkpoints(link: BackboneLink, *, block_time: Callable[[int], int] | None = None) -> dict[str, list[Checkpoint]]:
    return checkpoints_from_events(link.reader().events(from_block=link.contract.block), link.subchain_id, block_time)
