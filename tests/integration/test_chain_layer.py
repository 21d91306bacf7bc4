"""The chain layer on a real anvil: nonce recovery, endpoint failover, chunked log reading, and the
devnet/deploy/compile CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from eth_account import Account
from web3.middleware import ExtraDataToPOAMiddleware

from chain.artifacts import ErrorDecoder, load_artifact
from chain.backends import RpcBackend
from chain.devnet import free_port
from chain.errors import ChainUnavailableError
from chain.logs import LogReader
from chain.sender import TransactionSender
from registry.crypto.hashing import sm3
from registry.node import Node
from tests.support.cli import FirstCallReal

SM3_ROOT = sm3(b"an SM3 batch root")  # anchorBatch records it beside the SHA-256 root

# each command family's first call is a real process (`devnet start` among them: anvil is never this process's
# child), later ones run in this process
CLI = FirstCallReal()


def test_sender_recovers_when_another_process_used_its_nonce(anvil_node: Node) -> None:
    account = anvil_node.keys.signing_account(anvil_node.seeds.genesis.uscc)
    ledger = anvil_node.certificate_ledger
    first = TransactionSender(anvil_node.backend, account, decoder=ErrorDecoder.for_all_contracts())
    second = TransactionSender(anvil_node.backend, account, decoder=ErrorDecoder.for_all_contracts())
    first.transact(ledger.anchor_batch_fn(os.urandom(32), SM3_ROOT, 3), gas=ledger.ANCHOR_GAS)  # both counters start here
    second.transact(ledger.anchor_batch_fn(os.urandom(32), SM3_ROOT, 3), gas=ledger.ANCHOR_GAS)
    receipt = first.transact(ledger.anchor_batch_fn(os.urandom(32), SM3_ROOT, 3), gas=ledger.ANCHOR_GAS)  # stale counter
    assert receipt.status == 1


def test_failover_to_the_next_rpc_endpoint(anvil_template) -> None:  # type: ignore[no-untyped-def]
    good = anvil_template.devnet.url
    dead = f"http://127.0.0.1:{free_port()}"
    backend = RpcBackend([dead, good], timeout=2)
    assert backend.w3.eth.chain_id == 1337
    assert backend.provider.active_url == good
    with pytest.raises(ChainUnavailableError, match="no JSON-RPC endpoint answered"):
        _ = RpcBackend([dead], timeout=1).w3.eth.block_number


def test_poa_chains_get_the_extradata_middleware() -> None:
    backend = RpcBackend("http://127.0.0.1:1", poa=True)
    assert "extradata_to_poa" in backend.w3.middleware_onion
    assert "extradata_to_poa" not in RpcBackend("http://127.0.0.1:1").w3.middleware_onion
    assert ExtraDataToPOAMiddleware


def test_log_reader_pages_and_decodes_like_web3(anvil_node: Node) -> None:
    ledger = anvil_node.certificate_ledger
    sender = anvil_node.sender_for(anvil_node.seeds.certificate_types[0].issuers[0])
    roots = [os.urandom(32) for _ in range(12)]
    pending = [sender.send(ledger.anchor_batch_fn(r, SM3_ROOT, 7), gas=ledger.ANCHOR_GAS) for r in roots]
    receipts = [sender.wait(p) for p in pending]
    start = receipts[0].block_number
    reader = LogReader(anvil_node.backend, {ledger.address: load_artifact("CertificateLedger").abi}, chunk=2)
    progress: list[int] = []
    events = list(reader.events(from_block=start, progress=lambda done, last, n: progress.append(done)))
    assert [e.args["root"] for e in events] == roots
    assert len(progress) >= len(roots) // 2
    reference = ledger.contract.events.BatchAnchored().get_logs(from_block=start)
    for mine, theirs in zip(events, reference, strict=True):
        assert mine.args["issuer"] == theirs["args"]["issuer"]
        assert mine.args["issuerUscc"] == theirs["args"]["issuerUscc"]
        assert mine.args["count"] == theirs["args"]["count"] == 7
        assert mine.block_number == theirs["blockNumber"] and mine.log_index == theirs["logIndex"]


def _lz(data_dir: Path, *args: str, port: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIANZHENG_DATA_DIR": str(data_dir), "LIANZHENG_DEVNET_PORT": str(port)}
    return CLI(args, env=env)


def test_devnet_deploy_seed_and_resolve_commands(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "var"
    try:
        assert "devnet started" in _lz(data, "devnet", "start", port=port).stdout
        assert "already running" in _lz(data, "devnet", "start", port=port).stdout
        status = json.loads(_lz(data, "devnet", "status", "--json", port=port).stdout)
        assert status["running"] and status["chain_id"] == 1337
        first = _lz(data, "deploy", port=port)
        assert first.returncode == 0 and "deployed ConsortiumRegistry" in first.stdout, first.stderr
        again = _lz(data, "deploy", port=port)
        assert "reused ConsortiumRegistry" in again.stdout
        seeded = _lz(data, "seed", port=port)
        assert seeded.returncode == 0, seeded.stderr
        members = json.loads(_lz(data, "members", "--json", port=port).stdout)
        assert len(members) >= 8 and all(m["status"] == "active" for m in members)
        bid = members[0]["bid"]
        assert json.loads(_lz(data, "resolve", bid, port=port).stdout)["member"]["uscc"] == members[0]["uscc"]
        bad = _lz(data, "resolve", "did:bid:sf1", port=port)
        assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1
    finally:
        assert "devnet stopped" in _lz(data, "devnet", "stop", port=port).stdout
    stopped = _lz(data, "devnet", "status", port=port)
    assert stopped.returncode == 1 and "not running" in stopped.stdout
    # `lianzheng compile --check`: tests/unit/chain/test_artifacts.py (the suite's one compile of the contracts)


def test_key_material_is_encrypted_at_rest(anvil_node: Node) -> None:
    from sqlalchemy import select

    from registry.store.db import AgencyKey

    account = anvil_node.keys.signing_account(anvil_node.seeds.genesis.uscc)
    with anvil_node.db.session() as s:
        blob = s.scalars(select(AgencyKey.ciphertext).where(AgencyKey.address == account.address)).one()
    assert bytes(account.key) not in blob and bytes(account.key).hex().encode() not in blob
    assert Account.from_key(account.key).address == account.address
