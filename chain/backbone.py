"""Typed client for the Backbone contract (星火·链网 on the main chain): the node hierarchy (省级超级节点 ->
骨干节点 -> business sub-chains), per-ledger hash-chained checkpoints submitted by each sub-chain's gateway,
and witness cosignatures. The main chain may be another chain than the sub-chain: the client is bound to
whatever backend it is given.

    >>> from chain.backbone import checkpoint_hash
    >>> h = checkpoint_hash(b"s".ljust(32, b"\\0"), b"l".ljust(32, b"\\0"), 0, b"\\0" * 32, b"\\0" * 32, 1, 1, b"\\0" * 32)
    >>> len(h)
    32
    >>> client = BackboneClient(main_backend, address)                      # doctest: +SKIP
    >>> client.submit_checkpoint(gateway_sender, CheckpointFields(...))     # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chain.contracts import ContractClient, unpad
from chain.sender import Receipt, TransactionSender

ZERO32 = b"\0" * 32


def checkpoint_hash(subchain_id: bytes, ledger_id: bytes, tree_size: int, root: bytes, prev_hash: bytes,
                    from_block: int, to_block: int, to_block_hash: bytes) -> bytes:
    """keccak256(abi.encode(...)) exactly as Backbone.submitCheckpoint computes it (docs/CONTRACTS.md)."""
    return keccak(abi_encode(
        ["bytes32", "bytes32", "uint64", "bytes32", "bytes32", "uint64", "uint64", "bytes32"],
        [subchain_id, ledger_id, tree_size, root, prev_hash, from_block, to_block, to_block_hash],
    ))


@dataclass(frozen=True)
class CheckpointFields:
    """The arguments of submitCheckpoint; `hash` is what the contract will return for them."""

    subchain_id: bytes
    ledger_id: bytes
    tree_size: int
    root: bytes
    prev_hash: bytes
    from_block: int
    to_block: int
    to_block_hash: bytes

    @property
    def hash(self) -> bytes:
        return checkpoint_hash(self.subchain_id, self.ledger_id, self.tree_size, self.root, self.prev_hash,
                               self.from_block, self.to_block, self.to_block_hash)


@dataclass(frozen=True)
class CheckpointHead:
    """latestCheckpoint(): the newest checkpoint of a (sub-chain, ledger); `hash` is zero when there is none."""

    hash: bytes
    tree_size: int
    root: bytes
    to_block: int
    index: int
    submitted_at: int

    @property
    def exists(self) -> bool:
        return self.hash != ZERO32


@dataclass(frozen=True)
class StoredCheckpoint:
    subchain_id: bytes
    ledger_id: bytes
    tree_size: int
    root: bytes
    to_block: int
    submitted_at: int
    cosignatures: int


@dataclass(frozen=True)
class SubchainInfo:
    subchain_id: bytes
    node_id: bytes
    chain_id: int
    gateway: str
    bid: str


@dataclass(frozen=True)
class NodeInfo:
    node_id: bytes
    bid: str
    name: str


class BackboneClient(ContractClient):
    NAME = "Backbone"
    SUBMIT_GAS = 300_000  # ~150k for a first checkpoint of a ledger (new slots), ~90k afterwards
    COSIGN_GAS = 120_000

    # -- owner (the 省级超级节点 operator) ---------------------------------------------------------------
    def register_node(self, sender: TransactionSender, node_id: bytes, bid: str, name: str) -> Receipt:
        return self._tx(sender, "registerNode", node_id, bid, name)

    def register_subchain(self, sender: TransactionSender, subchain_id: bytes, node_id: bytes, chain_id: int,
                          gateway: str, bid: str) -> Receipt:
        return self._tx(sender, "registerSubchain", subchain_id, node_id, chain_id, to_checksum_address(gateway), bid)

    def set_gateway(self, sender: TransactionSender, subchain_id: bytes, gateway: str) -> Receipt:
        return self._tx(sender, "setGateway", subchain_id, to_checksum_address(gateway))

    def set_witness(self, sender: TransactionSender, account: str, uscc: bytes, allowed: bool) -> Receipt:
        return self._tx(sender, "setWitness", to_checksum_address(account), uscc, allowed)

    # -- gateway and witnesses -------------------------------------------------------------------------
    def submit_checkpoint(self, sender: TransactionSender, cp: CheckpointFields) -> Receipt:
        """Raises ContractRevertError (BackboneNotGateway, BackbonePrevHashMismatch,
        BackboneCheckpointNotExtending, BackboneInvalidBlockRange ...) when the contract refuses."""
        return self._tx(sender, "submitCheckpoint", cp.subchain_id, cp.ledger_id, cp.tree_size, cp.root,
                        cp.prev_hash, cp.from_block, cp.to_block, cp.to_block_hash)

    def submit_checkpoint_fn(self, cp: CheckpointFields) -> object:
        return self.fn("submitCheckpoint", cp.subchain_id, cp.ledger_id, cp.tree_size, cp.root, cp.prev_hash,
                       cp.from_block, cp.to_block, cp.to_block_hash)

    def cosign(self, sender: TransactionSender, checkpoint: bytes) -> Receipt:
        return self._tx(sender, "cosign", checkpoint)

    # -- views -----------------------------------------------------------------------------------------
    def latest_checkpoint(self, subchain_id: bytes, ledger_id: bytes, *, block: int | str = "latest") -> CheckpointHead:
        h, size, root, to_block, index, at = self._call("latestCheckpoint", subchain_id, ledger_id, block=block)
        return CheckpointHead(bytes(h), int(size), bytes(root), int(to_block), int(index), int(at))

    def get_checkpoint(self, checkpoint: bytes) -> StoredCheckpoint | None:
        sid, lid, size, root, to_block, at, cosigs = self._call("getCheckpoint", checkpoint)
        if at == 0:
            return None
        return StoredCheckpoint(bytes(sid), bytes(lid), int(size), bytes(root), int(to_block), int(at), int(cosigs))

    def get_subchain(self, subchain_id: bytes) -> SubchainInfo | None:
        node_id, chain_id, gateway, bid = self._call("getSubchain", subchain_id)
        if bytes(node_id) == ZERO32 and int(chain_id) == 0:
            return None
        return SubchainInfo(subchain_id, bytes(node_id), int(chain_id), to_checksum_address(gateway), bid)

    def get_node(self, node_id: bytes) -> NodeInfo | None:
        bid, name, exists = self._call("getNode", node_id)
        return NodeInfo(node_id, bid, name) if exists else None

    def has_cosigned(self, checkpoint: bytes, witness: str) -> bool:
        return bool(self._call("hasCosigned", checkpoint, to_checksum_address(witness)))

    def owner(self) -> str:
        return to_checksum_address(self._call("owner"))

    def super_node_bid(self) -> str:
        return str(self._call("superNodeBid"))


def label(value: bytes) -> str:
    """A readable form of a short bytes32 key ("certificates"), else its hex."""
    try:
        text = unpad(value)
    except UnicodeDecodeError:
        return "0x" + value.hex()
    return text if text.isprintable() and text else "0x" + value.hex()
