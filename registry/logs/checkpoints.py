"""Checkpoints of the ledger logs on the 星火·链网 backbone: the gateway builds, signs and submits them; the
witnesses (auditor members: 省司法厅, 哈尔滨中院, 哈尔滨公证处) cosign a checkpoint only after verifying an
RFC 6962 consistency proof (RFC 9162 §2.1.4.2) from the last checkpoint they saw.

A checkpoint of ledger L (registry/logs/log.py) is ``(subchainId, ledgerId, treeSize, root, prevHash,
fromBlock, toBlock, toBlockHash)``: the log's size and root over every event in sub-chain blocks <= toBlock,
the Backbone hash of the previous checkpoint of L, and the sub-chain block range it adds with the hash of its
last block. Its hash is the Backbone's ``keccak256(abi.encode(...))`` (chain/backbone.py); the gateway
member signs that hash with its key (EIP-191 ``personal_sign``) and sends it on chain from the same
account, the sub-chain's registered gateway. A checkpoint is due every `interval` seconds while events are
waiting, or as soon as `max_events` are.

The Backbone may live on another chain than the sub-chain (`main_backend`); ``backbone.json`` in the data
dir records where, and the node hierarchy: the 省级超级节点 (the Backbone's owner, the genesis member), one
骨干节点 (哈尔滨骨干节点) and the business sub-chain it serves, each with a BID.

The modules: registry.logs.backbone (where the Backbone is, the topology), registry.logs.checkpoint_format
(checkpoints read back, the gateway's signature), registry.logs.gateway (submitting, the background service),
registry.logs.witness (cosigning). Their public names are re-exported here.

    >>> link = connect_backbone(node, main_backend)                                # doctest: +SKIP
    >>> logs = LedgerLogs(node.backend, node.require_deployment())                  # doctest: +SKIP
    >>> gateway = CheckpointGateway(node, logs, link_provider=lambda: link)        # doctest: +SKIP
    >>> [cp.ledger for cp in gateway.run_once(force=True)]                          # doctest: +SKIP
    ['certificates', 'evidence', 'exchanges', 'consortium', 'usage']
    >>> Witness(db=node.db, link=link, uscc=uscc, sender=sender, proofs=LogProofs(logs)).review()  # doctest: +SKIP
"""

from __future__ import annotations

from registry.logs.backbone import (
    DEFAULT_TOPOLOGY,
    BackboneLink,
    Topology,
    backbone_file,
    connect_backbone,
    gateway_uscc,
    witness_usccs,
)
from registry.logs.checkpoint_format import Checkpoint, checkpoints_from_events, read_checkpoints, recover_signer, sign_hash
from registry.logs.gateway import CheckpointGateway, CheckpointService, SubmittedCheckpoint
from registry.logs.witness import LogProofs, ProofSource, Witness, WitnessDecision, local_witnesses

__all__ = [
    "DEFAULT_TOPOLOGY",
    "BackboneLink",
    "Checkpoint",
    "CheckpointGateway",
    "CheckpointService",
    "LogProofs",
    "ProofSource",
    "SubmittedCheckpoint",
    "Topology",
    "Witness",
    "WitnessDecision",
    "backbone_file",
    "checkpoints_from_events",
    "connect_backbone",
    "gateway_uscc",
    "local_witnesses",
    "read_checkpoints",
    "recover_signer",
    "sign_hash",
    "witness_usccs",
]
