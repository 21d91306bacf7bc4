"""Where the 星火·链网 Backbone is, and this deployment's place in it (registry.logs.checkpoints).

The Backbone may live on another chain than the sub-chain (`main_backend`); ``backbone.json`` in the data
dir records where, and the node hierarchy: the 省级超级节点 (the Backbone's owner, the genesis member), one
骨干节点 (哈尔滨骨干节点) and the business sub-chain it serves, each with a BID.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from chain.artifacts import load_artifact
from chain.backbone import BackboneClient
from chain.backends import ChainBackend
from chain.blocks import BlockReader
from chain.contracts import b32, unpad
from chain.deploy import DeployedContract, deploy_contract
from chain.logs import Event, LogReader
from chain.sender import TransactionSender
from registry.errors import NotFoundError, PermissionDeniedError, ValidationError, chain_boundary
from registry.identifiers import bid_from_private_key, classify_identifier
from registry.node import Node

__all__ = ["DEFAULT_TOPOLOGY", "BackboneLink", "Topology", "backbone_file", "connect_backbone", "fund_account",
           "gateway_uscc", "load_backbone", "register_witness", "registered_witnesses", "witness_usccs",
           "witnesses_from_events"]

log = structlog.get_logger(__name__)

DEV_FUNDS = 10**21  # devnets only (as registry.consortium.members funds agency accounts)


@dataclass(frozen=True)
class Topology:
    """The 星火·链网 hierarchy this deployment registers: one backbone node serving one business sub-chain."""

    super_node_name: str = "黑龙江省级超级节点"
    node_id: bytes = b32("HLJ-HRB-BACKBONE-01")
    node_name: str = "哈尔滨骨干节点"
    subchain_id: bytes = b32("HLJ-ZWFW-SUBCHAIN-01")
    subchain_name: str = "政务服务业务子链"


DEFAULT_TOPOLOGY = Topology()


def gateway_uscc(node: Node) -> str:
    """The member holding the gateway role (the genesis member in the seeds)."""
    members = node.seeds.members_with_role("gateway")
    if not members:
        raise NotFoundError("no seed member holds the gateway role", code="no_gateway")
    return members[0].uscc


def witness_usccs(node: Node) -> list[str]:
    """Auditor members other than the gateway: they cosign checkpoints."""
    gw = gateway_uscc(node)
    return [m.uscc for m in node.seeds.members_with_role("auditor") if m.uscc != gw]


class BackboneLink:
    """The Backbone contract on the main chain, this sub-chain's id in it, and senders on the main chain."""

    def __init__(self, node: Node, backend: ChainBackend, contract: DeployedContract, *, chain_id: int,
                 topology: Topology = DEFAULT_TOPOLOGY) -> None:
        self.node = node
        self.backend = backend
        self.contract = contract
        self.chain_id = chain_id
        self.topology = topology
        self.subchain_id = topology.subchain_id
        self.client = BackboneClient(backend, contract.address)
        self.same_chain = backend is node.backend
        self._senders: dict[str, TransactionSender] = {}
        self._lock = threading.Lock()

    def sender_for(self, uscc: str) -> TransactionSender:
        if self.same_chain:  # one nonce counter per account and chain: share the business chain's sender
            return self.node.sender_for(uscc)
        account = self.node.keys.signing_account(uscc)
        with self._lock:
            sender = self._senders.get(account.address)
            if sender is None:
                sender = TransactionSender(self.backend, account, decoder=self.node.decoder)
                self._senders[account.address] = sender
            return sender

    def reader(self) -> LogReader:
        return LogReader(self.backend, {self.contract.address: load_artifact("Backbone").abi})

    def to_json(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "address": self.contract.address, "block": self.contract.block,
                "tx_hash": self.contract.tx_hash, "subchain_id": "0x" + self.subchain_id.hex(),
                "node_id": "0x" + self.topology.node_id.hex()}


def backbone_file(node: Node) -> Path:
    return node.deployment_file.parent / "backbone.json"


def connect_backbone(node: Node, main_backend: ChainBackend | None = None, *, setup: bool = True,
                     topology: Topology = DEFAULT_TOPOLOGY,
                     witness_accounts: Mapping[str, str] | None = None) -> BackboneLink:
    """The Backbone for this node: from backbone.json if it is live on `main_backend`; else (with `setup`) the
    Backbone of the business-chain deployment when the main chain *is* the business chain, or a new one
    deployed on the main chain by the genesis member (the super-node operator); then the hierarchy and the
    witnesses are registered where missing: `witness_accounts` (USCC -> account of a witness process, each
    replacing that agency's earlier witness account), and for every other witness agency without an allowed
    account, the agency key this data dir holds (the single-node dev default: witnesses cosign in process)."""
    backend = main_backend or node.backend
    main = node.blocks if backend is node.backend else BlockReader(backend)
    with chain_boundary("cannot reach the Backbone's chain"):
        chain_id = main.chain_id()
    path = backbone_file(node)
    contract: DeployedContract | None = None
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        if int(data["chain_id"]) == chain_id and main.code_at(data["address"]):
            contract = DeployedContract("Backbone", data["address"], int(data["block"]), data.get("tx_hash", ""),
                                        load_artifact("Backbone").digest)
    if contract is None:
        if not setup:
            raise NotFoundError(f"no live Backbone on chain {chain_id}; run `lianzheng audit checkpoint`",
                                code="no_backbone")
        deployment = node.require_deployment()
        if backend is node.backend and "Backbone" in deployment.contracts:
            contract = deployment.contracts["Backbone"]
        else:
            genesis = node.seeds.genesis.uscc
            sender = _main_sender(node, backend, genesis)
            contract = deploy_contract(sender, "Backbone", _member_bid(node, genesis))
            log.info("Backbone deployed on the main chain", chain_id=chain_id, address=contract.address)
    link = BackboneLink(node, backend, contract, chain_id=chain_id, topology=topology)
    if setup:
        _ensure_topology(link, witness_accounts or {})
    path.write_text(json.dumps(link.to_json(), indent=2) + "\n", encoding="utf-8")
    return link


def _main_sender(node: Node, backend: ChainBackend, uscc: str) -> TransactionSender:
    if backend is node.backend:
        return node.sender_for(uscc)
    return TransactionSender(backend, node.keys.signing_account(uscc), decoder=node.decoder)


def _member_bid(node: Node, uscc: str) -> str:
    return node.keys.bid(uscc)


def _ensure_topology(link: BackboneLink, witness_accounts: Mapping[str, str]) -> None:
    node, client, t = link.node, link.client, link.topology
    owner = link.sender_for(node.seeds.genesis.uscc)
    if owner.address != client.owner():
        return  # another operator runs this Backbone: it registers us, not we ourselves
    if client.get_node(t.node_id) is None:
        # Node and sub-chain BIDs name infrastructure, not agencies; their keys belong to the node operators.
        client.register_node(owner, t.node_id, bid_from_private_key(secrets.token_bytes(32)), t.node_name)
    gateway = node.keys.signing_account(gateway_uscc(node)).address
    sub = client.get_subchain(t.subchain_id)
    if sub is None:
        client.register_subchain(owner, t.subchain_id, t.node_id, node.blocks.chain_id(), gateway,
                                 bid_from_private_key(secrets.token_bytes(32)))
    elif sub.gateway != gateway:
        client.set_gateway(owner, t.subchain_id, gateway)
    for uscc, account in witness_accounts.items():
        register_witness(link, uscc, account)
    registered = set(registered_witnesses(link).values())
    for uscc in witness_usccs(node):
        if uscc not in registered and uscc not in witness_accounts and node.keys.has_signing_key(uscc):
            client.set_witness(owner, node.keys.signing_account(uscc).address, b32(uscc), True)


def registered_witnesses(link: BackboneLink) -> dict[str, str]:
    """Every account the Backbone allows to cosign now, with its agency's USCC (replayed from WitnessSet)."""
    return witnesses_from_events(link.reader().events(from_block=link.contract.block))


def witnesses_from_events(events: Iterable[Event], into: dict[str, str] | None = None) -> dict[str, str]:
    """`into` (account -> USCC of the allowed witnesses) updated by the WitnessSet events among `events`."""
    allowed = {} if into is None else into
    for e in events:
        if e.name == "WitnessSet":
            if e.args["allowed"]:
                allowed[e.args["account"]] = unpad(e.args["uscc"])
            else:
                allowed.pop(e.args["account"], None)
    return allowed


def register_witness(link: BackboneLink, uscc: str, account: str) -> bool:
    """Allow `account` (a witness process's own key) to cosign checkpoints as agency `uscc`, and disallow that
    agency's other witness accounts: one account per witness agency, so a quorum counts agencies. Sent by the
    Backbone owner (the genesis member, whose key this data dir must hold); a devnet account is funded for
    its cosign transactions. False when the account was already the agency's only witness account."""
    node, client = link.node, link.client
    kind, account = classify_identifier(account)
    if kind != "address":
        raise ValidationError(f"a witness account is an address (0x + 40 hex), got a {kind}", code="invalid_address")
    if uscc not in witness_usccs(node):
        raise ValidationError(f"{uscc} is not a witness agency (an auditor member other than the gateway): "
                              f"expected one of {', '.join(witness_usccs(node))}", code="not_a_witness_agency")
    owner = link.sender_for(node.seeds.genesis.uscc)
    if owner.address != client.owner():
        raise PermissionDeniedError(f"only the Backbone owner {client.owner()} registers witnesses; this data dir "
                                    f"holds {owner.address}", code="not_backbone_owner")
    current = registered_witnesses(link)
    changed = False
    for other, holder in current.items():
        if holder == uscc and other.lower() != account.lower():
            client.set_witness(owner, other, b32(uscc), False)
            changed = True
    if current.get(account) != uscc:
        client.set_witness(owner, account, b32(uscc), True)
        changed = True
    fund_account(link.backend, account)
    if changed:
        log.info("witness registered on the Backbone", uscc=uscc, account=account)
    return changed


def fund_account(backend: ChainBackend, address: str) -> None:
    """Give an account gas money on a devnet (anvil_setBalance); a production chain runs with gas price 0."""
    fund = getattr(backend, "fund", None)
    if fund is None:
        return
    try:
        if BlockReader(backend).balance(address) < DEV_FUNDS // 10:
            fund(address, DEV_FUNDS)
    except Exception as exc:  # an external chain without anvil_setBalance: its operator funds accounts
        log.info("cannot fund account (not a devnet?)", account=address, error=str(exc))


def load_backbone(node: Node, backend: ChainBackend, path: Path) -> BackboneLink:
    """The Backbone a backbone.json (written by the gateway's node) names, on `backend`, for a process that is
    not the gateway (a witness): nothing is deployed or registered."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        address, block, chain_id = str(data["address"]), int(data["block"]), int(data["chain_id"])
        subchain = bytes.fromhex(str(data["subchain_id"]).removeprefix("0x"))
    except (OSError, ValueError, KeyError) as exc:
        raise NotFoundError(f"cannot read the Backbone's location from {path}: {exc}", code="no_backbone") from exc
    main = BlockReader(backend)
    with chain_boundary("cannot reach the Backbone's chain"):
        if main.chain_id() != chain_id or not main.code_at(address):
            raise NotFoundError(f"no Backbone at {address} on chain {chain_id} (from {path})", code="no_backbone")
    contract = DeployedContract("Backbone", address, block, str(data.get("tx_hash", "")), load_artifact("Backbone").digest)
    topology = Topology(subchain_id=subchain, node_id=bytes.fromhex(str(data.get("node_id", "0x" + "00" * 32))[2:]))
    return BackboneLink(node, backend, contract, chain_id=chain_id, topology=topology)
