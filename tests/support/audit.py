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
from tests.support.usage import record_usages

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
    usages: list[str] = field(default_factory=list)


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
    case, a data exchange through all four steps, and two usages of a bound certificate (a grant anchored on
    GrantRegistry, an in-person presentation): each through its service (database first, then chain)."""
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
    act.usages = record_usages(node)  # a bound certificate used under a grant and after a presentation
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


# -- e-seals ----------------------------------------------------------------------------------------------------

POLICE = "11230000MB1A00044B"  # 省公安厅: evidence and issuer roles (seals its evidence)


@dataclass
class SealActivity:
    cert_seal: str = ""  # the certificate issuer's seal: sealed a batch, then revoked
    evidence_seal: str = ""  # 省公安厅's seal: sealed evidence, suspended and reinstated
    certificates: list[str] = field(default_factory=list)  # sealed certificates
    evidence: list[str] = field(default_factory=list)  # sealed evidence records
    issuer: str = ""


def seal_image(color: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (96, 96), (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((4, 4, 92, 92), outline=(*color, 255), width=6)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def seal_history(node: Node) -> SealActivity:
    """Two seals (gm) through their services: a sealed certificate batch under the issuer's seal (then revoked),
    sealed evidence under 省公安厅's (suspended and reinstated after), and the seal index refreshed at the end."""
    import datetime as dt

    from registry.crypto.profiles import CryptoProfile
    from registry.seals.index import SealIndex
    from registry.seals.sealing import Sealer
    from registry.seals.service import SealRequest, SealService

    index = SealIndex(node)
    seals = SealService(node, profile=CryptoProfile.GM, index=index)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    ct = node.seeds.certificate_types[0]
    act = SealActivity(issuer=ct.issuers[0])
    act.cert_seal = seals.create(act.issuer, SealRequest("行政许可专用章", "permit", seal_image((200, 0, 0)), None,
                                                         until)).id
    act.evidence_seal = seals.create(POLICE, SealRequest("执法专用章", "business", seal_image((0, 0, 200)), None,
                                                         until)).id
    sealer = Sealer(node, index)
    worker = OutboxWorker([BatchAnchoring(node, batch_size=1000, max_age=0)])
    certs = CertificateService(node, public_base="http://lianzheng.test", worker=worker, sealer=sealer)
    issued = certs.issue(act.issuer, ct.code, sample_values(ct, 2, issuer=node.seeds.member(act.issuer), seed=77),
                         seal=act.cert_seal)
    worker.flush()
    act.certificates = [i.identifier for i in issued]
    evidence = EvidenceService(node, sealer=sealer)
    for i in range(2):
        content = f"封存前的执法记录 {i}".encode()
        sub = EvidenceSubmission(case_no="黑公(哈)行罚决字〔2026〕077号", scenario="行政执法",
                                 sha256=hashlib.sha256(content).hexdigest(), sm3=sm3(content).hex(), size=len(content),
                                 media_type="image/jpeg", authority="黑龙江省公安厅", legal_basis="《行政处罚法》第四十七条",
                                 operator_id="HLJ-0077", seal=act.evidence_seal)
        act.evidence.append(evidence.register(POLICE, sub).id)
    seals.change(POLICE, act.evidence_seal, "suspend", reason="印章送检")
    seals.change(POLICE, act.evidence_seal, "reinstate")
    seals.change(act.issuer, act.cert_seal, "revoke", reason="机构更名")
    index.refresh()
    return act


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


@contextmanager
def open_consortium(node: Node, uscc: str) -> Iterator[None]:
    """For the transactions sent inside the block, the ConsortiumRegistry's code is swapped (anvil_setCode)
    for a test-only OpenConsortium that says yes to every role check and names `uscc` as every account's
    member; the real code is put back after. Storage is untouched, so the registry is exactly as before, and
    the chain then holds what a compromised or buggy contract could have let through."""
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
        yield
    finally:
        node.backend.raw("anvil_setCode", [consortium, "0x" + bytes(real_code).hex()])


def anchor_without_issuer_role(node: Node, uscc: str, root: bytes, count: int = 10) -> str:
    """Anchor `root` from the account of member `uscc`, which lacks the issuer role, on the real ledger (the
    CertificateLedger would refuse: `open_consortium` lets it through). Returns the transaction hash."""
    with open_consortium(node, uscc):
        tx = node.certificate_ledger.anchor_batch(node.sender_for(uscc), root, sm3(root), count)  # any SM3 root
    return tx.tx_hash
