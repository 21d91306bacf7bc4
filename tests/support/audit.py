"""Two real chains for the checkpoint, proof and audit tests: a business sub-chain (anvil, chain id 1337) with
the bootstrapped consortium, and a main chain (another anvil, chain id 1338) holding the Backbone, as 骨干节点
anchor sub-chains into the 星火 主链. Built once per test module; each test runs on snapshots of both chains
(reverted afterwards) with its own copy of the database.

    chains = build_two_chains(tmp_path_factory.mktemp("two-chains"))
    with chains.node(tmp_path) as (node, link):
        populate(node)
        checkpoint_all(node, link)
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import solcx

from api.devtools.samples import sample_values
from chain.backends import RpcBackend
from chain.compile import SOLC_SHIM
from chain.contracts import b32
from chain.devnet import Devnet
from registry.certificates.anchoring import BatchAnchoring
from registry.certificates.changes import StatusChanges
from registry.certificates.service import CertificateService
from registry.consortium.members import bootstrap
from registry.crypto.hashing import sm3
from registry.evidence.service import EvidenceService, EvidenceSubmission
from registry.exchanges.service import ExchangeService, ExchangeSubmission
from registry.logs.checkpoints import (
    BackboneLink,
    CheckpointGateway,
    CheckpointService,
    SubmittedCheckpoint,
    connect_backbone,
)
from registry.logs.log import LedgerLogs
from registry.node import Node
from registry.outbox.worker import OutboxWorker
from registry.store.db import Database
from tests.conftest import MASTER_KEY, SEEDS
from tests.support import postgres
from tests.support.anvil import make_devnet

MAIN_CHAIN_ID = 1338


@dataclass
class TwoChains:
    sub: Devnet
    main: Devnet
    sub_backend: RpcBackend
    main_backend: RpcBackend
    where: Path
    db_url: str  # the bootstrapped database, copied for each node (tests/support/postgres.py)

    def _snapshot(self) -> tuple[Any, Any]:
        return self.sub_backend.raw("evm_snapshot", []), self.main_backend.raw("evm_snapshot", [])

    def _revert(self, snaps: tuple[Any, Any]) -> None:
        self.sub_backend.raw("evm_revert", [snaps[0]])
        self.main_backend.raw("evm_revert", [snaps[1]])

    def open_node(self, tmp: Path) -> Node:
        """A node on the sub-chain with its own copy of the template database, deployment and backbone.json."""
        tmp.mkdir(parents=True, exist_ok=True)
        for name in ("deployment.json", "backbone.json"):
            shutil.copy(self.where / name, tmp / name)
        return Node.open(db=Database(postgres.copy_database(self.db_url, tmp)), master_key=MASTER_KEY, seeds_dir=SEEDS,
                         backend=self.sub_backend, deployment_file=tmp / "deployment.json")

    @contextmanager
    def node(self, tmp: Path) -> Iterator[tuple[Node, BackboneLink]]:
        snaps = self._snapshot()
        node = self.open_node(tmp)
        try:
            yield node, connect_backbone(node, self.main_backend, setup=False)
        finally:
            node.db.engine.dispose()
            self._revert(snaps)

    def stop(self) -> None:
        for net in (self.sub, self.main):
            try:
                net.stop()
            except Exception:
                net.kill()


def build_two_chains(where: Path) -> TwoChains:
    """Start both anvils, bootstrap the consortium on the sub-chain, deploy and populate the Backbone on the
    main chain, and checkpoint the bootstrap history (so it is never late in later tests)."""
    sub = make_devnet(where)
    main = make_devnet(where, chain_id=MAIN_CHAIN_ID)
    sub.start()
    main.start()
    chains = TwoChains(sub, main, RpcBackend(sub.url), RpcBackend(main.url), where, postgres.database_url(where))
    node = Node.open(db=Database(chains.db_url), master_key=MASTER_KEY, seeds_dir=SEEDS,
                     backend=chains.sub_backend, deployment_file=where / "deployment.json")
    try:
        bootstrap(node)
        link = connect_backbone(node, chains.main_backend)
        checkpoint_all(node, link)
    except BaseException:
        chains.stop()
        raise
    finally:
        node.db.close()  # nobody connected: PostgreSQL copies a template only then
    return chains


def checkpoint_all(node: Node, link: BackboneLink) -> list[SubmittedCheckpoint]:
    """Checkpoint every ledger with new events now, and let the local witnesses review them."""
    logs = LedgerLogs(node.backend, node.require_deployment())
    service = CheckpointService(CheckpointGateway(node, logs, link_provider=lambda: link))
    return service.run_once(force=True)


# -- a realistic history ------------------------------------------------------------------------------------


@dataclass
class Activity:
    certificates: list[str] = field(default_factory=list)
    revoked: str = ""
    suspended_then_reinstated: str = ""
    superseded: str = ""
    evidence: list[str] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)


def issue(node: Node, n: int, *, type_index: int = 0, seed: int = 1) -> list[str]:
    """Issue and anchor `n` certificates of one type (one batch); returns their identifiers."""
    ct = node.seeds.certificate_types[type_index]
    issuer = node.seeds.member(ct.issuers[0])
    worker = OutboxWorker([BatchAnchoring(node, batch_size=1000, max_age=0)])
    service = CertificateService(node, public_base="http://lianzheng.test", worker=worker)
    issued = service.issue(issuer.uscc, ct.code, sample_values(ct, n, issuer=issuer, seed=seed))
    worker.flush()
    return [i.identifier for i in issued]


def populate(node: Node) -> Activity:
    """Certificates of two agencies with every lifecycle change, evidence with a custody transfer and a sealed
    case, and a data exchange through all four steps: each through its service (database first, then chain)."""
    act = Activity()
    act.certificates = issue(node, 4, type_index=0, seed=3) + issue(node, 3, type_index=1, seed=4)
    worker = OutboxWorker([BatchAnchoring(node, batch_size=1000, max_age=0.05), StatusChanges(node)], poll=0.05)
    service = CertificateService(node, public_base="http://lianzheng.test", worker=worker)
    worker.start()
    try:
        first = act.certificates[0]
        agency = service.get(None, first).issuer_uscc
        act.revoked = first
        service.change_status(agency, first, "revoke", reason=1)
        act.suspended_then_reinstated = act.certificates[1]
        service.change_status(agency, act.certificates[1], "suspend")
        service.change_status(agency, act.certificates[1], "reinstate")
        act.superseded = act.certificates[2]
        ct = node.seeds.certificate_types[0]
        [values] = sample_values(ct, 1, issuer=node.seeds.member(agency), seed=9)
        service.supersede(agency, act.superseded, values)
    finally:
        worker.stop()
    act.evidence = _evidence(node)
    act.exchanges = _exchange(node)
    return act


def _evidence(node: Node) -> list[str]:
    police = "11230000MB1A00044B"  # 省公安厅: evidence role
    justice = "11230000MB1A00036G"  # 省司法厅: evidence role
    service = EvidenceService(node)
    ids = []
    for i in range(2):
        content = f"执法记录 {i}".encode()
        sub = EvidenceSubmission(case_no="黑公(哈)行罚决字〔2026〕001号", scenario="行政执法",
                                 sha256=hashlib.sha256(content).hexdigest(), sm3=hashlib.sha256(b"sm3" + content).hexdigest(),
                                 size=len(content), media_type="image/jpeg", authority="黑龙江省公安厅",
                                 legal_basis="《行政处罚法》第四十七条", operator_id="HLJ-0001")
        ids.append(service.register(police, sub).id)
    service.transfer(police, ids[0], justice, "移送法制审核")
    service.accept(justice, ids[0])
    return ids


def _exchange(node: Node) -> list[str]:
    consumer = "11230000MB1A00044B"  # 省公安厅 asks 省市场监管局 for enterprise registrations
    provider = "11230000MB1A00028M"
    service = ExchangeService(node)
    x = service.request(consumer, ExchangeSubmission(item="SCJG-001", purpose="核查涉案企业登记信息",
                                                     legal_basis="《行政处罚法》第五十五条"))
    service.authorise(provider, x.id, granted=True, reason="依法予以共享")
    payload = hashlib.sha256(b"enterprise rows").hexdigest()
    service.deliver(provider, x.id, sha256=payload, size=15, records=1)
    service.acknowledge(consumer, x.id, sha256=payload)
    return [x.id]


# -- forcing what the contracts refuse ------------------------------------------------------------------------

_OPEN_CONSORTIUM = """// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;
/// Test only: a consortium that says yes to everyone and names one fixed member for every account.
contract OpenConsortium {
    bytes32 private immutable _uscc;
    constructor(bytes32 uscc) { _uscc = uscc; }
    function hasRole(address, uint64) external pure returns (bool) { return true; }
    function memberOf(address) external view returns (bytes32) { return _uscc; }
    function canRevokeFor(address, bytes32) external pure returns (bool) { return true; }
}
"""


def _compile_open_consortium() -> tuple[list[Any], str]:
    out = solcx.compile_standard({
        "language": "Solidity", "sources": {"OpenConsortium.sol": {"content": _OPEN_CONSORTIUM}},
        "settings": {"evmVersion": "paris", "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
    }, solc_binary=SOLC_SHIM)
    c = out["contracts"]["OpenConsortium.sol"]["OpenConsortium"]
    return c["abi"], "0x" + c["evm"]["bytecode"]["object"]


def anchor_without_issuer_role(node: Node, uscc: str, root: bytes, count: int = 10) -> str:
    """Anchor `root` from the account of member `uscc`, which lacks the issuer role, on the real ledger.

    The CertificateLedger asks its consortium `hasRole(sender, ISSUER)` and refuses; so for one transaction
    the ConsortiumRegistry's code is swapped (anvil_setCode) for a test-only OpenConsortium that says yes and
    names `uscc` as the sender's member, then the real code is put back. Storage is untouched, so the
    registry is exactly as before, and the chain now holds what a compromised or buggy ledger could have
    let through: a BatchAnchored by an account without the role. Returns the transaction hash.
    """
    abi, bytecode = _compile_open_consortium()
    w3 = node.backend.w3
    sender = node.sender_for(uscc)
    factory = w3.eth.contract(abi=abi, bytecode=bytecode)
    pending = sender.send_raw_params({"to": None, "data": factory.constructor(b32(uscc)).data_in_transaction,
                                      "gas": 500_000})
    receipt = w3.eth.get_transaction_receipt(sender.wait(pending).tx_hash)
    open_code = w3.eth.get_code(receipt["contractAddress"])
    consortium = node.require_deployment().address("ConsortiumRegistry")
    real_code = w3.eth.get_code(consortium)
    node.backend.raw("anvil_setCode", [consortium, "0x" + bytes(open_code).hex()])
    try:
        tx = node.certificate_ledger.anchor_batch(sender, root, sm3(root), count)  # any non-zero SM3 root
    finally:
        node.backend.raw("anvil_setCode", [consortium, "0x" + bytes(real_code).hex()])
    return tx.tx_hash
