"""Backbone (星火·链网): nodes, sub-chains, hash-chained checkpoints per ledger, witness cosignatures."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from web3 import EthereumTesterProvider, Web3

from tests.unit.contracts.conftest import (
    SM3_ROOT,
    USCC_C,
    USCC_D,
    assert_reverts,
    b32,
    event,
    load_artifact,
)
from tests.unit.contracts.rfc6962 import merkle_root

ZERO32 = b"\0" * 32
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
SUPER_NODE_BID = "did:bid:efSUPERNODE000000000000000"
NODE = b32("node/harbin")
SUBCHAIN = b32("subchain/certificates")
CERTS = b32("ledger/CertificateLedger")
EVIDENCE = b32("ledger/EvidenceLedger")


def checkpoint_hash(subchain, ledger, size, root, prev, from_block, to_block, to_block_hash):
    """keccak256(abi.encode(subchainId, ledgerId, treeSize, root, prevHash, fromBlock, toBlock, toBlockHash))."""
    return Web3.keccak(
        abi_encode(
            ["bytes32", "bytes32", "uint64", "bytes32", "bytes32", "uint64", "uint64", "bytes32"],
            [subchain, ledger, size, root, prev, from_block, to_block, to_block_hash],
        )
    )


@pytest.fixture
def owner(accounts):
    return accounts[0]


@pytest.fixture
def gateway(accounts):
    return accounts[1]


@pytest.fixture
def backbone(deploy, owner, gateway, transact):
    """A backbone with one node and one sub-chain (chain id 1001) whose gateway is accounts[1]."""
    contract, _ = deploy("Backbone", SUPER_NODE_BID, sender=owner)
    transact(contract.functions.registerNode(NODE, "did:bid:efNODE", "哈尔滨骨干节点"), owner)
    transact(contract.functions.registerSubchain(SUBCHAIN, NODE, 1001, gateway, "did:bid:efSUB"), owner)
    return contract


@pytest.fixture
def submit(backbone, gateway, transact):
    """submit(size, root_label, prev, from_block, to_block, ledger=CERTS) -> (hash, receipt)."""

    def run(size, root, prev, from_block, to_block, ledger=CERTS, sender=None):
        to_block_hash = b32(f"block/{to_block}")
        expected = checkpoint_hash(SUBCHAIN, ledger, size, root, prev, from_block, to_block, to_block_hash)
        call = backbone.functions.submitCheckpoint(SUBCHAIN, ledger, size, root, prev, from_block, to_block, to_block_hash)
        assert call.call({"from": sender or gateway}) == expected
        return expected, transact(call, sender or gateway)

    return run


def args(size, root, prev, from_block, to_block, ledger=CERTS):
    return (SUBCHAIN, ledger, size, root, prev, from_block, to_block, b32(f"block/{to_block}"))


# ---------------------------------------------------------------- registration


def test_deployer_is_the_super_node_owner(deploy, accounts):
    contract, _ = deploy("Backbone", SUPER_NODE_BID, sender=accounts[3])
    assert contract.functions.owner().call() == accounts[3]
    assert contract.functions.superNodeBid().call() == SUPER_NODE_BID


def test_register_node_and_subchain(deploy, owner, transact, accounts):
    contract, _ = deploy("Backbone", SUPER_NODE_BID, sender=owner)
    receipt = transact(contract.functions.registerNode(NODE, "did:bid:efNODE", "哈尔滨骨干节点"), owner)
    assert event(receipt, contract, "NodeRegistered") == {"nodeId": NODE, "bid": "did:bid:efNODE", "name": "哈尔滨骨干节点"}
    assert contract.functions.getNode(NODE).call() == ["did:bid:efNODE", "哈尔滨骨干节点", True]
    receipt = transact(contract.functions.registerSubchain(SUBCHAIN, NODE, 1001, accounts[1], "did:bid:efSUB"), owner)
    assert event(receipt, contract, "SubchainRegistered") == {
        "subchainId": SUBCHAIN,
        "nodeId": NODE,
        "chainId": 1001,
        "gateway": accounts[1],
        "bid": "did:bid:efSUB",
    }
    assert contract.functions.getSubchain(SUBCHAIN).call() == [NODE, 1001, accounts[1], "did:bid:efSUB"]
    assert contract.functions.getNode(b32("unknown")).call() == ["", "", False]
    assert contract.functions.getSubchain(b32("unknown")).call() == [ZERO32, 0, ZERO_ADDRESS, ""]


def test_registration_refusals(backbone, owner, accounts):
    f = backbone.functions
    assert_reverts(f.registerNode(NODE, "b", "n"), owner, "BackboneNodeExists", nodeId=NODE)
    assert_reverts(f.registerSubchain(SUBCHAIN, NODE, 1, accounts[1], "b"), owner, "BackboneSubchainExists", subchainId=SUBCHAIN)
    ghost = b32("node/ghost")
    assert_reverts(f.registerSubchain(b32("sub/2"), ghost, 1, accounts[1], "b"), owner, "BackboneUnknownNode", nodeId=ghost)
    assert_reverts(f.setGateway(b32("sub/2"), accounts[2]), owner, "BackboneUnknownSubchain", subchainId=b32("sub/2"))


def test_only_the_owner_administers(backbone, accounts):
    f = backbone.functions
    for sender in (accounts[1], accounts[5]):
        for call in (
            f.registerNode(b32("n2"), "b", "n"),
            f.registerSubchain(b32("s2"), NODE, 1, sender, "b"),
            f.setGateway(SUBCHAIN, sender),
            f.setWitness(sender, USCC_C, True),
        ):
            assert_reverts(call, sender, "BackboneUnauthorized", account=sender)


def test_set_gateway_replaces_the_gateway(backbone, owner, gateway, transact, accounts):
    receipt = transact(backbone.functions.setGateway(SUBCHAIN, accounts[2]), owner)
    assert event(receipt, backbone, "GatewaySet") == {"subchainId": SUBCHAIN, "gateway": accounts[2]}
    assert backbone.functions.getSubchain(SUBCHAIN).call()[2] == accounts[2]
    call = backbone.functions.submitCheckpoint(*args(1, b32("r"), ZERO32, 1, 5))
    assert_reverts(call, gateway, "BackboneNotGateway", subchainId=SUBCHAIN, account=gateway)
    transact(call, accounts[2])


# ---------------------------------------------------------------- checkpoints


def test_first_checkpoint(backbone, submit, w3):
    root = b32("root/3")
    digest, receipt = submit(3, root, ZERO32, 1, 10)
    assert event(receipt, backbone, "CheckpointSubmitted") == {
        "subchainId": SUBCHAIN,
        "ledgerId": CERTS,
        "checkpointHash": digest,
        "treeSize": 3,
        "root": root,
        "prevHash": ZERO32,
        "fromBlock": 1,
        "toBlock": 10,
        "toBlockHash": b32("block/10"),
        "index": 0,
    }
    submitted_at = w3.eth.get_block(receipt.blockNumber).timestamp
    assert backbone.functions.latestCheckpoint(SUBCHAIN, CERTS).call() == [digest, 3, root, 10, 0, submitted_at]
    assert backbone.functions.getCheckpoint(digest).call() == [SUBCHAIN, CERTS, 3, root, 10, submitted_at, 0]


def test_nothing_submitted_reads_as_zero(backbone):
    assert backbone.functions.latestCheckpoint(SUBCHAIN, CERTS).call() == [ZERO32, 0, ZERO32, 0, 0, 0]
    assert backbone.functions.getCheckpoint(b32("x")).call() == [ZERO32, ZERO32, 0, ZERO32, 0, 0, 0]


def test_the_first_checkpoint_must_not_claim_a_predecessor(backbone, gateway):
    call = backbone.functions.submitCheckpoint(*args(3, b32("r"), b32("imaginary"), 1, 10))
    assert_reverts(call, gateway, "BackbonePrevHashMismatch", expected=ZERO32, actual=b32("imaginary"))


def test_checkpoints_extend_each_other(backbone, submit):
    first, _ = submit(3, b32("root/3"), ZERO32, 1, 10)
    second, receipt = submit(8, b32("root/8"), first, 11, 25)
    assert event(receipt, backbone, "CheckpointSubmitted")["index"] == 1
    # no new entries in a later block range: same size, same root
    third, receipt = submit(8, b32("root/8"), second, 26, 26)
    assert event(receipt, backbone, "CheckpointSubmitted")["index"] == 2
    assert backbone.functions.latestCheckpoint(SUBCHAIN, CERTS).call()[:5] == [third, 8, b32("root/8"), 26, 2]
    assert backbone.functions.getCheckpoint(first).call()[2] == 3  # history stays readable


def test_each_ledger_has_its_own_chain_of_checkpoints(backbone, submit):
    certs, _ = submit(3, b32("c/3"), ZERO32, 1, 10)
    evidence, receipt = submit(1, b32("e/1"), ZERO32, 1, 10, ledger=EVIDENCE)
    assert event(receipt, backbone, "CheckpointSubmitted")["index"] == 0
    assert certs != evidence
    assert backbone.functions.latestCheckpoint(SUBCHAIN, CERTS).call()[0] == certs
    assert backbone.functions.latestCheckpoint(SUBCHAIN, EVIDENCE).call()[0] == evidence


def test_only_the_gateway_submits(backbone, owner, accounts):
    call = backbone.functions.submitCheckpoint(*args(3, b32("r"), ZERO32, 1, 10))
    for sender in (owner, accounts[5]):
        assert_reverts(call, sender, "BackboneNotGateway", subchainId=SUBCHAIN, account=sender)
    ghost = b32("subchain/ghost")
    call = backbone.functions.submitCheckpoint(ghost, CERTS, 3, b32("r"), ZERO32, 1, 10, ZERO32)
    assert_reverts(call, accounts[1], "BackboneUnknownSubchain", subchainId=ghost)


def test_a_checkpoint_that_does_not_extend_is_refused(backbone, submit, gateway):
    first, _ = submit(8, b32("root/8"), ZERO32, 1, 10)
    smaller = backbone.functions.submitCheckpoint(*args(7, b32("root/7"), first, 11, 20))
    assert_reverts(smaller, gateway, "BackboneCheckpointNotExtending", subchainId=SUBCHAIN, ledgerId=CERTS, lastSize=8, newSize=7)
    forked = backbone.functions.submitCheckpoint(*args(8, b32("another root/8"), first, 11, 20))
    assert_reverts(forked, gateway, "BackboneCheckpointNotExtending", subchainId=SUBCHAIN, ledgerId=CERTS, lastSize=8, newSize=8)


def test_a_wrong_previous_hash_is_refused(backbone, submit, gateway):
    first, _ = submit(3, b32("root/3"), ZERO32, 1, 10)
    for prev in (ZERO32, b32("wrong")):
        call = backbone.functions.submitCheckpoint(*args(5, b32("root/5"), prev, 11, 20))
        assert_reverts(call, gateway, "BackbonePrevHashMismatch", expected=first, actual=prev)
    second, _ = submit(5, b32("root/5"), first, 11, 20)
    stale = backbone.functions.submitCheckpoint(*args(6, b32("root/6"), first, 21, 30))  # not the latest
    assert_reverts(stale, gateway, "BackbonePrevHashMismatch", expected=second, actual=first)


def test_a_wrong_block_range_is_refused(backbone, submit, gateway):
    inverted = backbone.functions.submitCheckpoint(*args(3, b32("root/3"), ZERO32, 10, 9))
    assert_reverts(inverted, gateway, "BackboneInvalidBlockRange", fromBlock=10, toBlock=9, expectedFrom=10)
    first, _ = submit(3, b32("root/3"), ZERO32, 1, 10)
    for from_block, to_block in ((10, 20), (12, 20), (1, 20), (11, 10)):  # overlap, gap, restart, inverted
        call = backbone.functions.submitCheckpoint(*args(5, b32("root/5"), first, from_block, to_block))
        assert_reverts(call, gateway, "BackboneInvalidBlockRange", fromBlock=from_block, toBlock=to_block, expectedFrom=11)


# ---------------------------------------------------------------- witnesses


def test_witnesses_cosign_once_each(backbone, submit, owner, transact, accounts):
    digest, _ = submit(3, b32("root/3"), ZERO32, 1, 10)
    receipt = transact(backbone.functions.setWitness(accounts[3], USCC_C, True), owner)
    assert event(receipt, backbone, "WitnessSet") == {"account": accounts[3], "uscc": USCC_C, "allowed": True}
    transact(backbone.functions.setWitness(accounts[4], USCC_D, True), owner)
    receipt = transact(backbone.functions.cosign(digest), accounts[3])
    assert event(receipt, backbone, "CheckpointCosigned") == {
        "checkpointHash": digest,
        "witness": accounts[3],
        "uscc": USCC_C,
        "cosignatures": 1,
    }
    assert_reverts(backbone.functions.cosign(digest), accounts[3], "BackboneAlreadyCosigned", hash=digest, witness=accounts[3])
    receipt = transact(backbone.functions.cosign(digest), accounts[4])
    assert event(receipt, backbone, "CheckpointCosigned")["cosignatures"] == 2
    assert backbone.functions.getCheckpoint(digest).call()[6] == 2
    assert backbone.functions.hasCosigned(digest, accounts[3]).call() is True
    assert backbone.functions.hasCosigned(digest, accounts[5]).call() is False


def test_non_witnesses_cannot_cosign(backbone, submit, owner, gateway, transact, accounts):
    digest, _ = submit(3, b32("root/3"), ZERO32, 1, 10)
    for sender in (accounts[5], owner, gateway):
        assert_reverts(backbone.functions.cosign(digest), sender, "BackboneNotWitness", account=sender)
    transact(backbone.functions.setWitness(accounts[3], USCC_C, True), owner)
    transact(backbone.functions.setWitness(accounts[3], USCC_C, False), owner)
    assert_reverts(backbone.functions.cosign(digest), accounts[3], "BackboneNotWitness", account=accounts[3])


def test_cosigning_an_unknown_checkpoint_is_refused(backbone, owner, transact, accounts):
    transact(backbone.functions.setWitness(accounts[3], USCC_C, True), owner)
    assert_reverts(backbone.functions.cosign(b32("nope")), accounts[3], "BackboneUnknownCheckpoint", hash=b32("nope"))


# ---------------------------------------------------------------- across chains


def test_a_subchain_ledger_is_checkpointed_on_another_chain(make_world, transact):
    """The backbone may live on another chain: anchor on the sub-chain, checkpoint its event log on the main chain."""
    world = make_world()  # the sub-chain (certificate ledger)
    receipts = [transact(world.certificates.functions.anchorBatch(b32(f"batch/{i}"), SM3_ROOT, 10), world.b) for i in range(3)]
    # the ledger's event log as RFC 6962 entries: one 32-byte digest per BatchAnchored log
    entries = [Web3.keccak(bytes(log["data"]) + b"".join(bytes(t) for t in log["topics"])) for r in receipts for log in r.logs]
    last = world.w3.eth.get_block(receipts[-1].blockNumber)

    main = Web3(EthereumTesterProvider())  # the main chain
    operator, gateway = main.eth.accounts[0], main.eth.accounts[1]
    artifact = load_artifact("Backbone")
    tx = (
        main.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        .constructor(SUPER_NODE_BID)
        .transact({"from": operator})
    )
    backbone = main.eth.contract(address=main.eth.wait_for_transaction_receipt(tx).contractAddress, abi=artifact["abi"])
    for call in (
        backbone.functions.registerNode(NODE, "did:bid:efNODE", "哈尔滨骨干节点"),
        backbone.functions.registerSubchain(SUBCHAIN, NODE, world.w3.eth.chain_id, gateway, "did:bid:efSUB"),
    ):
        main.eth.wait_for_transaction_receipt(call.transact({"from": operator}))
    call = backbone.functions.submitCheckpoint(
        SUBCHAIN, CERTS, len(entries), merkle_root(entries), ZERO32, 0, last.number, bytes(last.hash)
    )
    main.eth.wait_for_transaction_receipt(call.transact({"from": gateway}))
    digest, size, root, to_block, index, _ = backbone.functions.latestCheckpoint(SUBCHAIN, CERTS).call()
    assert (size, root, to_block, index) == (3, merkle_root(entries), last.number, 0)
    assert digest == checkpoint_hash(SUBCHAIN, CERTS, 3, merkle_root(entries), ZERO32, 0, last.number, bytes(last.hash))
