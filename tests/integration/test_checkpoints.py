"""Ledger logs, signed checkpoints on a Backbone on another chain (two anvils: 主链 + 子链), witnesses that
cosign only after a consistency proof, and the Backbone's refusals."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import rfc8785
from eth_utils import to_checksum_address

from chain.artifacts import load_artifact
from chain.backbone import CheckpointFields
from chain.errors import ContractRevertError
from chain.logs import LogReader, WordDecoder
from registry.crypto.merkle import verify_consistency
from registry.logs.checkpoints import (
    CheckpointGateway,
    LogProofs,
    Witness,
    connect_backbone,
    gateway_uscc,
    local_witnesses,
    read_checkpoints,
    recover_signer,
    witness_usccs,
)
from registry.logs.log import (
    LEDGER_CONTRACTS,
    LEDGERS,
    LedgerLogs,
    canonical_entry,
    entry_object,
    ledger_id,
)
from registry.node import Node
from registry.store.audit_models import CheckpointRecord
from tests.conftest import make_api
from tests.support.audit import MAIN_CHAIN_ID, TwoChains, build_two_chains, checkpoint_all, issue, populate

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoChains]:
    built = build_two_chains(tmp_path_factory.mktemp("two-chains"))
    try:
        yield built
    finally:
        built.stop()


def test_every_log_entry_is_the_rfc8785_form_of_its_event(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, _):
        populate(node)
        deployment = node.require_deployment()
        abis = {deployment.address(c): load_artifact(c).abi for c in LEDGER_CONTRACTS.values()}
        reader = LogReader(node.backend, abis)
        words = WordDecoder(abis)
        logs = LedgerLogs(node.backend, deployment)
        seen = set()
        for raw in reader.raw_logs(deployment.first_block, reader.head()):
            event = reader.decoder.decode(raw)
            assert event is not None and words.decode(raw) == event  # the audit's fast decoder agrees with eth_abi
            ledger = logs.ledger_of(event)
            assert ledger is not None
            entry = canonical_entry(ledger, deployment.chain_id, event)
            assert entry == rfc8785.dumps(entry_object(ledger, deployment.chain_id, event))
            parsed = json.loads(entry)
            assert parsed["event"] == event.name and parsed["block"] == event.block_number and parsed["ledger"] == ledger
            seen.add(ledger)
        assert seen == set(LEDGERS)  # Chinese member names, address lists, bools and digests all went through


def test_the_gateway_checkpoints_every_ledger_on_the_main_chain_and_witnesses_cosign(chains: TwoChains,
                                                                                     tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        populate(node)
        submitted = checkpoint_all(node, link)
        # the consortium's bootstrap was checkpointed when the chains were built; nothing new happened there
        assert {s.ledger for s in submitted} == {"certificates", "evidence", "exchanges", "usage"}
        # 62 bootstrap events and one MemberSm2KeySet per seed member (13)
        assert [c.tree_size for c in read_checkpoints(link)["consortium"]] == [75]
        assert link.chain_id == MAIN_CHAIN_ID != node.require_deployment().chain_id
        assert not link.same_chain

        logs = LedgerLogs(node.backend, node.require_deployment())
        logs.sync()
        checkpoints = read_checkpoints(link)
        gateway = node.keys.signing_account(gateway_uscc(node)).address
        witnesses = {node.keys.signing_account(u).address for u in witness_usccs(node)}
        assert len(witnesses) == 3  # 省司法厅, 哈尔滨中院, 哈尔滨公证处
        for s in submitted:
            cps = checkpoints[s.ledger]
            latest = cps[-1]
            lg = logs.log(s.ledger)
            assert (latest.hash, latest.tree_size, latest.root) == (s.fields.hash, lg.size, lg.root())
            assert latest.to_block == logs.synced_block and latest.from_block == (cps[-2].to_block + 1 if len(cps) > 1
                                                                                   else node.require_deployment().first_block)
            assert latest.prev_hash == (cps[-2].hash if len(cps) > 1 else b"\0" * 32)
            assert {a for a, _ in latest.cosigners} == witnesses
            assert link.client.get_checkpoint(latest.hash).cosignatures == 3
            # the gateway member signed the checkpoint hash, and sent it from the same (registered) account
            assert recover_signer(s.fields.hash, s.signature) == gateway == s.signer
            with node.db.session() as db:
                row = db.get(CheckpointRecord, "0x" + s.fields.hash.hex())
                assert row is not None and row.signature == s.signature and row.tx_hash == s.tx_hash
        assert link.client.get_subchain(link.subchain_id).gateway == gateway


def test_the_node_hierarchy_is_registered_on_the_backbone(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        client, topology = link.client, link.topology
        assert client.owner() == node.keys.signing_account(node.seeds.genesis.uscc).address  # 省级超级节点 operator
        assert client.super_node_bid().startswith("did:bid:")
        backbone_node = client.get_node(topology.node_id)
        assert backbone_node is not None and backbone_node.name == "哈尔滨骨干节点" and backbone_node.bid.startswith("did:bid:")
        sub = client.get_subchain(topology.subchain_id)
        assert sub is not None and sub.node_id == topology.node_id and sub.chain_id == node.require_deployment().chain_id
        assert sub.bid.startswith("did:bid:")


def test_a_later_checkpoint_extends_the_earlier_one_by_a_verified_consistency_proof(chains: TwoChains,
                                                                                    tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        issue(node, 2, seed=21)
        [first] = checkpoint_all(node, link)
        issue(node, 3, seed=22)
        issue(node, 1, type_index=1, seed=23)
        [second] = checkpoint_all(node, link)
        assert (first.ledger, second.ledger) == ("certificates", "certificates")
        assert second.index == first.index + 1 and second.fields.prev_hash == first.fields.hash
        assert second.fields.from_block == first.fields.to_block + 1
        logs = LedgerLogs(node.backend, node.require_deployment())
        logs.sync()
        proof = logs.log("certificates").consistency_proof(first.fields.tree_size, second.fields.tree_size)
        assert verify_consistency(first.fields.tree_size, second.fields.tree_size, first.fields.root, second.fields.root,
                                  proof)
        for witness in local_witnesses(node, link, LogProofs(logs)):
            seen = witness.last_seen("certificates")
            assert (seen.index, seen.size, seen.root) == (second.index, second.fields.tree_size, second.fields.root)
            assert link.client.has_cosigned(second.fields.hash, witness.account)
        assert checkpoint_all(node, link) == []  # nothing new: no checkpoint


def _next_fields(node, link, **changes) -> CheckpointFields:  # type: ignore[no-untyped-def]
    head = link.client.latest_checkpoint(link.subchain_id, ledger_id("consortium"))
    block = node.backend.w3.eth.get_block("latest")
    fields = {"subchain_id": link.subchain_id, "ledger_id": ledger_id("consortium"), "tree_size": head.tree_size + 1,
              "root": b"\x11" * 32, "prev_hash": head.hash, "from_block": head.to_block + 1,
              "to_block": int(block["number"]), "to_block_hash": bytes(block["hash"])}
    fields.update(changes)
    return CheckpointFields(**fields)


def test_the_backbone_refuses_a_checkpoint_that_does_not_extend_the_previous_one(chains: TwoChains,
                                                                                 tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        node.backend.raw("anvil_mine", ["0x2"])  # new sub-chain blocks to cover
        head = link.client.latest_checkpoint(link.subchain_id, ledger_id("consortium"))
        gateway = link.sender_for(gateway_uscc(node))
        cases = [
            ({"prev_hash": b"\x22" * 32}, "BackbonePrevHashMismatch"),
            ({"tree_size": head.tree_size - 1}, "BackboneCheckpointNotExtending"),
            ({"tree_size": head.tree_size}, "BackboneCheckpointNotExtending"),  # same size, another root
            ({"from_block": head.to_block + 2}, "BackboneInvalidBlockRange"),
        ]
        for change, error in cases:
            with pytest.raises(ContractRevertError) as info:
                link.client.submit_checkpoint(gateway, _next_fields(node, link, **change))
            assert info.value.name == error, change
        assert info.value.args_by_name == {"fromBlock": head.to_block + 2, "toBlock": _next_fields(node, link).to_block,
                                           "expectedFrom": head.to_block + 1}
        assert link.client.latest_checkpoint(link.subchain_id, ledger_id("consortium")) == head


def test_the_backbone_refuses_a_checkpoint_from_an_account_that_is_not_the_gateway(chains: TwoChains,
                                                                                   tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        node.backend.raw("anvil_mine", ["0x1"])
        justice = link.sender_for("11230000MB1A00036G")  # an auditor, a witness, not the gateway
        with pytest.raises(ContractRevertError) as info:
            link.client.submit_checkpoint(justice, _next_fields(node, link))
        assert info.value.name == "BackboneNotGateway"
        assert info.value.args_by_name["account"] == justice.address
        assert info.value.args_by_name["subchainId"] == link.subchain_id


def test_a_witness_refuses_to_cosign_a_checkpoint_whose_root_the_log_does_not_prove(chains: TwoChains,
                                                                                    tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        issue(node, 2, seed=31)
        logs = LedgerLogs(node.backend, node.require_deployment())
        logs.sync()
        lg = logs.log("certificates")
        block = node.backend.w3.eth.get_block(logs.synced_block)
        forged = CheckpointFields(link.subchain_id, ledger_id("certificates"), lg.size, b"\x33" * 32, b"\0" * 32,
                                  node.require_deployment().first_block, logs.synced_block, bytes(block["hash"]))
        link.client.submit_checkpoint(link.sender_for(gateway_uscc(node)), forged)  # the Backbone cannot tell
        witness = Witness(db=node.db, link=link, uscc="11230000MB1A00036G", sender=link.sender_for("11230000MB1A00036G"),
                          proofs=LogProofs(logs))
        decisions = [d for d in witness.review() if d.ledger == "certificates"]
        assert len(decisions) == 1 and not decisions[0].cosigned
        assert "differs from the log's" in decisions[0].reason
        assert not link.client.has_cosigned(forged.hash, witness.account)
        assert witness.last_seen("certificates").index == -1  # it will not vouch for anything built on it


def test_a_checkpoint_is_due_after_the_interval_or_once_enough_events_wait(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path) as (node, link):
        now = [1000.0]
        logs = LedgerLogs(node.backend, node.require_deployment())
        gateway = CheckpointGateway(node, logs, link_provider=lambda: link, interval=60, max_events=3,
                                    clock=lambda: now[0])
        for ledger in LEDGERS:
            gateway.head(ledger)  # what the Backbone already has (the bootstrap checkpoint of the consortium)
        assert gateway.run_once() == []
        issue(node, 1, seed=41)
        assert gateway.run_once() == []  # one event waits: not due yet
        now[0] += 61
        [by_time] = gateway.run_once()
        assert (by_time.ledger, by_time.fields.tree_size) == ("certificates", 1)
        for i in range(3):
            issue(node, 1, seed=42 + i)
        [by_count] = gateway.run_once()  # three events waiting: due at once, whatever the clock
        assert (by_count.ledger, by_count.fields.tree_size) == ("certificates", 4)


def test_the_api_runs_the_gateway_in_the_background(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path / "node") as (node, link):
        before = len(read_checkpoints(link).get("certificates", []))
        for api in make_api(node, tmp_path / "api", main_rpc_urls=chains.main.url, checkpoint_interval=0.3):
            issue(node, 2, seed=51)
            deadline = time.monotonic() + 20
            while len(read_checkpoints(link).get("certificates", [])) == before:
                assert time.monotonic() < deadline, api.services.checkpoints.last_error
                time.sleep(0.1)
            body = api.client.get("/api/v1/proofs/checkpoints", params={"ledger": "certificates"}).json()
            assert body["count"] == before + 1
            latest = body["checkpoints"][-1]
            assert latest["tree_size"] == 1 and latest["main_chain_id"] == MAIN_CHAIN_ID
            assert to_checksum_address(latest["gateway_signature"]["signer"]) == link.sender_for(gateway_uscc(node)).address


def test_the_backbone_can_live_on_the_business_chain_itself(anvil_node: Node) -> None:
    """The single-chain setup (`make run`): the Backbone deployed with the ledgers serves as the main chain."""
    from registry.audit.replay import Auditor, audit_link

    link = connect_backbone(anvil_node)
    assert link.same_chain and link.contract.address == anvil_node.require_deployment().address("Backbone")
    issue(anvil_node, 2, seed=81)
    submitted = checkpoint_all(anvil_node, link)
    assert {s.ledger for s in submitted} == {"certificates", "consortium"}
    assert all(len(cps[-1].cosigners) == 3 for cps in read_checkpoints(link).values())
    # bootstrap events of the shared template chain may be older than any deadline: judge roots, not timing
    report = Auditor(anvil_node, link=audit_link(anvil_node)).run(deadline=10**9)
    assert report.findings == [] and report.counts["checkpoints"] == 2
