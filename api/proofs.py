"""The ledger logs kept in step with the sub-chain and the Backbone's checkpoints, for one app: what the
proof routes (api/routes/proofs.py), the checkpoint gateway and the audit routes share.

    >>> proofs = ProofService(node, main_backend(settings, node))      # doctest: +SKIP
    >>> proofs.sync().log("certificates").size                         # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from typing import Any

from chain.backends import ChainBackend
from registry.audit.replay import audit_link
from registry.logs.checkpoints import BackboneLink, Checkpoint, connect_backbone, read_checkpoints
from registry.logs.log import LedgerLogs
from registry.node import Node
from registry.store.audit_models import CheckpointRecord

_SYNC_EVERY = 0.5  # seconds: proofs may lag the head by this much (a checkpoint lags far more)
_CHECKPOINTS_EVERY = 1.0


class ProofService:
    """Built with the app; the logs are created on first use, because a node may be served before its
    contracts are deployed (`lianzheng serve` then `lianzheng deploy`)."""

    def __init__(self, node: Node, main: ChainBackend) -> None:
        self.node = node
        self.main = main
        self._logs: LedgerLogs | None = None
        self._synced_at = 0.0
        self._link: BackboneLink | None = None
        self._set_up = False
        self._checkpoints: dict[str, list[Checkpoint]] = {}
        self._checkpoints_at = 0.0
        self._lock = threading.Lock()

    @property
    def logs(self) -> LedgerLogs:
        with self._lock:
            if self._logs is None:
                self._logs = LedgerLogs(self.node.backend, self.node.require_deployment())
            return self._logs

    def sync(self) -> LedgerLogs:
        logs = self.logs
        if time.monotonic() - self._synced_at >= _SYNC_EVERY:
            logs.sync()
            self._synced_at = time.monotonic()
        return logs

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
