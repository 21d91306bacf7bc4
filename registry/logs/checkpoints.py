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

    >>> link = connect_backbone(node, main_backend)                                # doctest: +SKIP
    >>> logs = LedgerLogs(node.backend, node.require_deployment())                  # doctest: +SKIP
    >>> gateway = CheckpointGateway(node, logs, link_provider=lambda: link)        # doctest: +SKIP
    >>> [cp.ledger for cp in gateway.run_once(force=True)]                          # doctest: +SKIP
    ['certificates', 'evidence', 'exchanges', 'consortium']
    >>> Witness(node, link, "11230000MB1A00036G", LogProofs(logs)).review()        # doctest: +SKIP
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import to_checksum_address

from chain.artifacts import load_artifact
from chain.backbone import ZERO32, BackboneClient, CheckpointFields, CheckpointHead
from chain.backends import ChainBackend
from chain.contracts import b32, unpad
from chain.deploy import DeployedContract, deploy_contract
from chain.errors import ChainError, ContractRevertError
from chain.logs import Event, LogReader
from chain.sender import TransactionSender
from registry.crypto.merkle import empty_root, verify_consistency
from registry.errors import ConflictError, NotFoundError, ProofError
from registry.identifiers import bid_from_private_key
from registry.logs.log import LEDGERS, LedgerLogs, ledger_id
from registry.node import Node
from registry.store.audit_models import CheckpointRecord
from registry.store.db import KeyValue

log = structlog.get_logger(__name__)


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


def sign_hash(node: Node, uscc: str, digest: bytes) -> tuple[str, str]:
    """EIP-191 signature of a 32-byte hash by the member's key; returns (signer address, 0x signature)."""
    account = node.keys.signing_account(uscc)
    signed = account.sign_message(encode_defunct(primitive=digest))
    return account.address, "0x" + bytes(signed.signature).hex()


def recover_signer(digest: bytes, signature: str) -> str | None:
    try:
        return str(Account.recover_message(encode_defunct(primitive=digest), signature=bytes.fromhex(signature[2:])))
    except Exception:  # malformed signature: nobody signed it
        return None


# -- where the Backbone is --------------------------------------------------------------------------------


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
                     topology: Topology = DEFAULT_TOPOLOGY) -> BackboneLink:
    """The Backbone for this node: from backbone.json if it is live on `main_backend`; else (with `setup`) the
    Backbone of the business-chain deployment when the main chain *is* the business chain, or a new one
    deployed on the main chain by the genesis member (the super-node operator); then the hierarchy and the
    witnesses are registered where missing."""
    backend = main_backend or node.backend
    chain_id = int(backend.w3.eth.chain_id)
    path = backbone_file(node)
    contract: DeployedContract | None = None
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        if int(data["chain_id"]) == chain_id and len(backend.w3.eth.get_code(to_checksum_address(data["address"]))):
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
        _ensure_topology(link)
    path.write_text(json.dumps(link.to_json(), indent=2) + "\n", encoding="utf-8")
    return link


def _main_sender(node: Node, backend: ChainBackend, uscc: str) -> TransactionSender:
    if backend is node.backend:
        return node.sender_for(uscc)
    return TransactionSender(backend, node.keys.signing_account(uscc), decoder=node.decoder)


def _member_bid(node: Node, uscc: str) -> str:
    return bid_from_private_key(bytes(node.keys.signing_account(uscc).key))


def _ensure_topology(link: BackboneLink) -> None:
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
        client.register_subchain(owner, t.subchain_id, t.node_id, int(node.backend.w3.eth.chain_id), gateway,
                                 bid_from_private_key(secrets.token_bytes(32)))
    elif sub.gateway != gateway:
        client.set_gateway(owner, t.subchain_id, gateway)
    allowed = {e.args["account"]: e.args["allowed"] for e in link.reader().events(from_block=link.contract.block)
               if e.name == "WitnessSet"}
    for uscc in witness_usccs(node):
        account = node.keys.signing_account(uscc).address
        if not allowed.get(account):
            client.set_witness(owner, account, b32(uscc), True)


# -- checkpoints as read back from the Backbone -------------------------------------------------------------


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


# -- the gateway ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmittedCheckpoint:
    ledger: str
    fields: CheckpointFields
    index: int
    signer: str
    signature: str
    tx_hash: str
    main_block: int


class CheckpointGateway:
    """Builds, signs and submits checkpoints of the ledger logs (see the module docstring)."""

    def __init__(self, node: Node, logs: LedgerLogs, *, link_provider: Callable[[], BackboneLink],
                 interval: float = 60.0, max_events: int = 1000, ledgers: Sequence[str] = LEDGERS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.node = node
        self.logs = logs
        self.link_provider = link_provider
        self.interval = interval
        self.max_events = max_events
        self.ledgers = tuple(ledgers)
        self.clock = clock
        self._link: BackboneLink | None = None
        self._heads: dict[str, CheckpointHead] = {}
        self._pending_since: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def link(self) -> BackboneLink:
        if self._link is None:
            self._link = self.link_provider()
        return self._link

    def head(self, ledger: str) -> CheckpointHead:
        head = self._heads.get(ledger)
        if head is None:
            head = self.link.client.latest_checkpoint(self.link.subchain_id, ledger_id(ledger))
            self._heads[ledger] = head
        return head

    def due(self) -> list[str]:
        """Ledgers whose waiting events reached `max_events`, or have waited `interval` seconds."""
        now, due = self.clock(), []
        for ledger in self.ledgers:
            known = self._heads.get(ledger)
            waiting = self.logs.log(ledger).size - (known.tree_size if known else 0)
            if waiting <= 0:
                self._pending_since.pop(ledger, None)
                continue
            since = self._pending_since.setdefault(ledger, now)
            if waiting >= self.max_events or now - since >= self.interval:
                due.append(ledger)
        return due

    def run_once(self, *, force: bool = False) -> list[SubmittedCheckpoint]:
        """Sync the logs and submit what is due (every ledger with new events when `force`)."""
        with self._lock:
            self.logs.sync()
            ledgers = self.ledgers if force else self.due()
            done = []
            for ledger in ledgers:
                submitted = self.checkpoint(ledger)
                if submitted is not None:
                    done.append(submitted)
            return done

    def checkpoint(self, ledger: str) -> SubmittedCheckpoint | None:
        """Submit the next checkpoint of `ledger` up to the synced block; None when nothing is new."""
        link = self.link
        with self.logs.lock:
            lg = self.logs.log(ledger)
            to_block, to_hash = self.logs.synced_block, self.logs.synced_hash
            size = lg.size_at_block(to_block)
            head = self.head(ledger)
            if head.exists:
                if size < head.tree_size or lg.root(head.tree_size) != head.root:
                    raise ConflictError(
                        f"the {ledger} log no longer matches checkpoint #{head.index} (size {head.tree_size}, "
                        f"sub-chain block {head.to_block}): the sub-chain lost or rewrote history; an auditor must look",
                        code="subchain_diverged", details={"ledger": ledger, "checkpoint": "0x" + head.hash.hex()})
                if to_block <= head.to_block or size == head.tree_size:
                    return None
                from_block, prev = head.to_block + 1, head.hash
            else:
                if size == 0:
                    return None
                from_block, prev = self.logs.deployment.first_block, ZERO32
            root = lg.root(size)
        fields = CheckpointFields(link.subchain_id, ledger_id(ledger), size, root, prev, from_block, to_block,
                                  bytes.fromhex(to_hash[2:]))
        uscc = gateway_uscc(self.node)
        signer, signature = sign_hash(self.node, uscc, fields.hash)
        try:
            receipt = link.client.submit_checkpoint(link.sender_for(uscc), fields)
        except ContractRevertError:
            self._heads.pop(ledger, None)  # someone else moved the head: re-read it next time
            raise
        index = head.index + 1 if head.exists else 0
        with self.node.db.session() as s:
            s.merge(CheckpointRecord(
                hash="0x" + fields.hash.hex(), subchain_id="0x" + fields.subchain_id.hex(), ledger=ledger, index=index,
                tree_size=size, root="0x" + root.hex(), prev_hash="0x" + prev.hex(), from_block=from_block,
                to_block=to_block, to_block_hash=to_hash, signer=signer, signer_uscc=uscc, signature=signature,
                main_chain_id=link.chain_id, tx_hash=receipt.tx_hash, main_block=receipt.block_number))
        self._heads[ledger] = CheckpointHead(fields.hash, size, root, to_block, index, 0)
        self._pending_since.pop(ledger, None)
        log.info("checkpoint submitted", ledger=ledger, index=index, size=size, to_block=to_block,
                 tx=receipt.tx_hash)
        return SubmittedCheckpoint(ledger, fields, index, signer, signature, receipt.tx_hash, receipt.block_number)


# -- witnesses --------------------------------------------------------------------------------------------


class ProofSource(Protocol):
    """Where a witness gets proofs: its own ledger logs (LogProofs), or the gateway's proof API."""

    def consistency_proof(self, ledger: str, first: int, second: int) -> list[bytes]: ...

    def root(self, ledger: str, size: int) -> bytes: ...


class LogProofs:
    """Proofs and roots from ledger logs this process rebuilt from the sub-chain itself."""

    def __init__(self, logs: LedgerLogs) -> None:
        self.logs = logs

    def consistency_proof(self, ledger: str, first: int, second: int) -> list[bytes]:
        with self.logs.lock:
            return self.logs.log(ledger).consistency_proof(first, second)

    def root(self, ledger: str, size: int) -> bytes:
        with self.logs.lock:
            return self.logs.log(ledger).root(size)


@dataclass(frozen=True)
class WitnessDecision:
    ledger: str
    index: int
    hash: bytes
    cosigned: bool
    reason: str


@dataclass
class _Seen:
    index: int = -1
    size: int = 0
    root: bytes = field(default_factory=empty_root)
    hash: bytes = ZERO32


class Witness:
    """An auditor member that cosigns a checkpoint only if (1) it chains from the last checkpoint the witness saw,
    (2) a consistency proof from that checkpoint's (size, root) to the new one verifies (RFC 9162 §2.1.4.2: the
    log only grew), and (3) its root is the one the witness's proof source computes for that size (which,
    with LogProofs, is the witness's own replay of the sub-chain: for the very first checkpoint (1) and (2)
    hold trivially, so (3) is what vouches for it). Otherwise it refuses and stops following that ledger."""

    def __init__(self, node: Node, link: BackboneLink, uscc: str, proofs: ProofSource) -> None:
        self.node = node
        self.link = link
        self.uscc = uscc
        self.proofs = proofs
        self.account = node.keys.signing_account(uscc).address

    def _key(self, ledger: str) -> str:
        return f"witness:{self.uscc}:{ledger}"

    def last_seen(self, ledger: str) -> _Seen:
        with self.node.db.session() as s:
            row = s.get(KeyValue, self._key(ledger))
            if row is None:
                return _Seen()
            d = json.loads(row.value)
        return _Seen(d["index"], d["size"], bytes.fromhex(d["root"][2:]), bytes.fromhex(d["hash"][2:]))

    def _remember(self, ledger: str, cp: Checkpoint) -> None:
        value = json.dumps({"index": cp.index, "size": cp.tree_size, "root": "0x" + cp.root.hex(),
                            "hash": "0x" + cp.hash.hex()})
        with self.node.db.session() as s:
            s.merge(KeyValue(key=self._key(ledger), value=value))

    def review(self, checkpoints: dict[str, list[Checkpoint]] | None = None) -> list[WitnessDecision]:
        """Check and cosign every checkpoint after the last one this witness saw, ledger by ledger."""
        if checkpoints is None:
            checkpoints = read_checkpoints(self.link)
        decisions = []
        for ledger, cps in checkpoints.items():
            if ledger not in LEDGERS:
                continue  # the audit-reports log is vouched for by its auditor, not proven from the sub-chain
            seen = self.last_seen(ledger)
            for cp in sorted(cps, key=lambda c: c.index):
                if cp.index <= seen.index:
                    continue
                decision = self._decide(ledger, seen, cp)
                decisions.append(decision)
                if not decision.cosigned:
                    log.warning("witness refuses a checkpoint", witness=self.uscc, ledger=ledger, index=cp.index,
                                reason=decision.reason)
                    break  # later checkpoints chain from this one: nothing after it can be vouched for
                self._remember(ledger, cp)
                seen = _Seen(cp.index, cp.tree_size, cp.root, cp.hash)
        return decisions

    def _decide(self, ledger: str, seen: _Seen, cp: Checkpoint) -> WitnessDecision:
        def refuse(reason: str) -> WitnessDecision:
            return WitnessDecision(ledger, cp.index, cp.hash, False, reason)

        if cp.prev_hash != seen.hash:
            return refuse(f"previous hash 0x{cp.prev_hash.hex()} is not the last checkpoint seen (0x{seen.hash.hex()})")
        try:
            proof = self.proofs.consistency_proof(ledger, seen.size, cp.tree_size)
        except Exception as exc:  # the log cannot prove it (e.g. it is shorter than the checkpoint)
            return refuse(f"no consistency proof from size {seen.size} to {cp.tree_size}: {exc}")
        if not verify_consistency(seen.size, cp.tree_size, seen.root, cp.root, proof):
            return refuse(f"consistency proof from size {seen.size} to {cp.tree_size} does not verify against root "
                          f"0x{cp.root.hex()}")
        expected = self.proofs.root(ledger, cp.tree_size)
        if expected != cp.root:
            return refuse(f"root 0x{cp.root.hex()} of size {cp.tree_size} differs from the log's 0x{expected.hex()}")
        if not self.link.client.has_cosigned(cp.hash, self.account):
            self.link.client.cosign(self.link.sender_for(self.uscc), cp.hash)
        return WitnessDecision(ledger, cp.index, cp.hash, True, f"consistent from size {seen.size}")


def local_witnesses(node: Node, link: BackboneLink, proofs: ProofSource) -> list[Witness]:
    """Witnesses whose keys this data dir holds (in dev: all of them)."""
    out = []
    for uscc in witness_usccs(node):
        if node.keys.has_signing_key(uscc):
            out.append(Witness(node, link, uscc, proofs))
    return out


# -- the background service -------------------------------------------------------------------------------


class CheckpointService:
    """Runs the gateway (and the local witnesses) in a thread; errors are logged and retried with backoff."""

    def __init__(self, gateway: CheckpointGateway, *, poll: float = 1.0) -> None:
        self.gateway = gateway
        self.poll = poll
        self.last_error: str | None = None
        self.submitted = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> CheckpointService:
        self._thread = threading.Thread(target=self._run, name="checkpoint-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self, *, force: bool = False) -> list[SubmittedCheckpoint]:
        done = self.gateway.run_once(force=force)
        if done:
            self.submitted += len(done)
            link = self.gateway.link
            cps = read_checkpoints(link)
            for witness in local_witnesses(self.gateway.node, link, LogProofs(self.gateway.logs)):
                witness.review(cps)
        return done

    def _run(self) -> None:
        backoff = self.poll
        while not self._stop.wait(backoff):
            try:
                self.run_once()
                self.last_error, backoff = None, self.poll
            except (ChainError, OSError, ConflictError, ProofError, NotFoundError) as exc:
                self.last_error = str(exc)
                backoff = min(backoff * 2, 30.0)
                log.warning("checkpoint gateway: will retry", error=str(exc), backoff=backoff)
            except Exception as exc:  # never let the service die
                self.last_error = repr(exc)
                backoff = min(backoff * 2, 30.0)
                log.exception("checkpoint gateway error", error=repr(exc))
