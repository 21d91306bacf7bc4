"""Ledger-log proofs and checkpoints (public: they reveal hashes and chain positions, no personal data).

- ``GET /api/v1/proofs/inclusion?ledger=L&index=I&size=N`` (or ``&key=0x...`` instead of the index: a batch
  root, an evidence or exchange id): the RFC 6962 audit path of entry I in the tree of the first N entries
  of ledger L, the entry itself, and the Backbone checkpoint of size N when there is one (N defaults to the
  latest checkpoint that covers I).
- ``GET /api/v1/proofs/consistency?ledger=L&first=M&second=N``: the RFC 6962 consistency proof between the
  trees of sizes M and N, with the checkpoints of those sizes.
- ``GET /api/v1/proofs/checkpoints?ledger=L`` and ``GET /api/v1/proofs/ledgers``: checkpoints with their
  cosigners, and each log's size and root.

Verify an inclusion proof with RFC 9162 §2.1.3.2 (registry.merkle.verify_inclusion) over the entry's bytes,
and a consistency proof with §2.1.4.2 (registry.merkle.verify_consistency).

    $ curl '127.0.0.1:8000/api/v1/proofs/inclusion?ledger=certificates&index=0'     # doctest: +SKIP

The module's ``start(app)`` runs the checkpoint gateway with the API (unless ``checkpoint_interval`` is 0).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.settings import Settings
from chain.backends import ChainBackend, RpcBackend
from registry.audit.replay import audit_link
from registry.errors import ValidationError
from registry.logs.checkpoints import (
    BackboneLink,
    Checkpoint,
    CheckpointGateway,
    CheckpointService,
    connect_backbone,
    read_checkpoints,
)
from registry.logs.log import LEDGERS, LedgerLogs, check_ledger
from registry.node import Node
from registry.store.audit_models import CheckpointRecord

router = APIRouter(prefix="/api/v1/proofs", tags=["proofs"])

_SYNC_EVERY = 0.5  # seconds: proofs may lag the head by this much (a checkpoint lags far more)
_CHECKPOINTS_EVERY = 1.0


def main_backend(settings: Settings, node: Node) -> ChainBackend:
    """The main chain holding the Backbone: `main_rpc_urls`, else the business chain itself."""
    urls = settings.main_rpc_url_list
    if not urls or urls == settings.rpc_url_list:
        return node.backend
    return RpcBackend(urls, poa=settings.main_poa, timeout=settings.rpc_timeout)


class ProofService:
    """The ledger logs kept in step with the sub-chain, and the Backbone's checkpoints, for one app."""

    def __init__(self, node: Node, settings: Settings) -> None:
        self.node = node
        self.settings = settings
        self.main = main_backend(settings, node)
        self.logs = LedgerLogs(node.backend, node.require_deployment())
        self._synced_at = 0.0
        self._link: BackboneLink | None = None
        self._set_up = False
        self._checkpoints: dict[str, list[Checkpoint]] = {}
        self._checkpoints_at = 0.0
        self._lock = threading.Lock()

    def sync(self) -> LedgerLogs:
        if time.monotonic() - self._synced_at >= _SYNC_EVERY:
            self.logs.sync()
            self._synced_at = time.monotonic()
        return self.logs

    def link(self, *, setup: bool = False) -> BackboneLink | None:
        """The Backbone; with `setup` (the gateway) it is deployed and the hierarchy registered where missing."""
        if setup and not self._set_up:
            self._link, self._set_up = connect_backbone(self.node, self.main), True
        elif self._link is None:
            self._link = audit_link(self.node, None if self.main is self.node.backend else self.main)
        return self._link

    def gateway_link(self) -> BackboneLink:
        link = self.link(setup=True)
        assert link is not None
        return link

    def checkpoints(self, ledger: str) -> list[Checkpoint]:
        with self._lock:
            if time.monotonic() - self._checkpoints_at >= _CHECKPOINTS_EVERY:
                link = self.link()
                self._checkpoints = read_checkpoints(link) if link is not None else {}
                self._checkpoints_at = time.monotonic()
            return sorted(self._checkpoints.get(ledger, []), key=lambda c: c.index)

    def signature(self, cp: Checkpoint) -> dict[str, str] | None:
        with self.node.db.session() as s:
            row = s.get(CheckpointRecord, "0x" + cp.hash.hex())
            return None if row is None else {"signer": row.signer, "uscc": row.signer_uscc, "scheme": "eip191-personal-sign",
                                             "value": row.signature}

    def checkpoint_json(self, cp: Checkpoint | None) -> dict[str, Any] | None:
        if cp is None:
            return None
        out = cp.to_json()
        link = self.link()
        if link is not None:
            out["main_chain_id"] = link.chain_id
            out["backbone"] = link.contract.address
        out["gateway_signature"] = self.signature(cp)
        return out


def service(request: Request) -> ProofService:
    extras = request.app.state.extras
    svc = extras.get("proofs")
    if svc is None:
        svc = extras.setdefault("proofs", ProofService(request.app.state.node, request.app.state.settings))
    return svc  # type: ignore[no-any-return]


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _check_ledger(ledger: str) -> str:
    return check_ledger(ledger)


def inclusion(svc: ProofService, ledger: str, index: int | None, size: int | None, key: str | None) -> dict[str, Any]:
    _check_ledger(ledger)
    logs = svc.sync()
    with logs.lock:
        lg = logs.log(ledger)
        if index is None:
            if not key:
                raise ValidationError("give the entry's index or its key (a batch root, an evidence or exchange id)",
                                      code="missing_index")
            index = lg.index_of(key)
        if size is None:
            covering = [c for c in svc.checkpoints(ledger) if c.tree_size > index]
            size = covering[0].tree_size if covering else lg.size
        proof = lg.inclusion_proof(index, size)
        entry = lg.entry(index)
        root = lg.root(size)
        leaf = lg.leaf_hashes[index]
        block = lg.block_of(index)
    checkpoint = next((c for c in svc.checkpoints(ledger) if c.tree_size == size), None)
    return {"ledger": ledger, "index": index, "size": size, "block": block, "entry": json.loads(entry),
            "entry_hex": _hex(entry), "leaf_hash": _hex(leaf), "proof": [_hex(p) for p in proof], "root": _hex(root),
            "algorithm": "RFC 6962 SHA-256; verify with RFC 9162 §2.1.3.2", "checkpoint": svc.checkpoint_json(checkpoint)}


def consistency(svc: ProofService, ledger: str, first: int, second: int | None) -> dict[str, Any]:
    _check_ledger(ledger)
    logs = svc.sync()
    cps = svc.checkpoints(ledger)
    with logs.lock:
        lg = logs.log(ledger)
        if second is None:
            second = cps[-1].tree_size if cps else lg.size
        proof = lg.consistency_proof(first, second)
        first_root, second_root = lg.root(first), lg.root(second)
    by_size = {c.tree_size: c for c in cps}
    return {"ledger": ledger, "first": first, "second": second, "first_root": _hex(first_root),
            "second_root": _hex(second_root), "proof": [_hex(p) for p in proof],
            "algorithm": "RFC 6962 SHA-256; verify with RFC 9162 §2.1.4.2",
            "first_checkpoint": svc.checkpoint_json(by_size.get(first)),
            "second_checkpoint": svc.checkpoint_json(by_size.get(second))}


LedgerQ = Annotated[str, Query(description=f"one of {', '.join(LEDGERS)}", max_length=32)]
SizeQ = Annotated[int | None, Query(ge=0, le=2**53, description="tree size (default: the latest checkpoint's)")]


@router.get("/inclusion")
async def get_inclusion(request: Request, ledger: LedgerQ,
                        index: Annotated[int | None, Query(ge=0, le=2**53)] = None,
                        size: SizeQ = None,
                        key: Annotated[str | None, Query(max_length=66, pattern=r"^0x[0-9a-fA-F]{1,64}$")] = None,
                        ) -> dict[str, Any]:
    """RFC 6962 inclusion proof of one ledger-log entry, and the checkpoint of that tree size."""
    return await run_in_threadpool(inclusion, service(request), ledger, index, size, key)


@router.get("/consistency")
async def get_consistency(request: Request, ledger: LedgerQ, first: Annotated[int, Query(ge=0, le=2**53)],
                          second: SizeQ = None) -> dict[str, Any]:
    """RFC 6962 consistency proof between two sizes of a ledger log."""
    return await run_in_threadpool(consistency, service(request), ledger, first, second)


@router.get("/checkpoints")
async def get_checkpoints(request: Request, ledger: LedgerQ) -> dict[str, Any]:
    """A ledger's checkpoints on the Backbone, oldest first, with their cosigners."""
    _check_ledger(ledger)
    svc = service(request)
    cps = await run_in_threadpool(svc.checkpoints, ledger)
    return {"ledger": ledger, "count": len(cps), "checkpoints": [svc.checkpoint_json(c) for c in cps]}


@router.get("/ledgers")
async def get_ledgers(request: Request) -> dict[str, Any]:
    """Every ledger log's size and root, its latest checkpoint, and where the Backbone is."""
    svc = service(request)

    def work() -> dict[str, Any]:
        logs = svc.sync()
        link = svc.link()
        out: dict[str, Any] = {"subchain": {"chain_id": logs.chain_id, "block": logs.synced_block},
                               "backbone": link.to_json() if link is not None else None, "ledgers": {}}
        for name in LEDGERS:
            cps = svc.checkpoints(name)
            with logs.lock:
                lg = logs.log(name)
                out["ledgers"][name] = {"size": lg.size, "root": _hex(lg.root()),
                                        "latest_checkpoint": svc.checkpoint_json(cps[-1] if cps else None)}
        return out

    return await run_in_threadpool(work)


def start(app: FastAPI) -> list[Any]:
    """The checkpoint gateway (and the witnesses whose keys this data dir holds), unless disabled."""
    settings: Settings = app.state.settings
    node: Node = app.state.node
    if settings.checkpoint_interval <= 0 or node.deployment is None:
        return []
    svc = app.state.extras.setdefault("proofs", ProofService(node, settings))
    gateway = CheckpointGateway(node, svc.logs, link_provider=svc.gateway_link,
                                interval=settings.checkpoint_interval, max_events=settings.checkpoint_events)
    checkpoints = CheckpointService(gateway)
    app.state.extras["checkpoints"] = checkpoints
    return [checkpoints.start()]
