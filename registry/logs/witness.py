"""Witnesses of the ledger logs' checkpoints (registry.logs.checkpoints): auditor members that cosign a
checkpoint only after verifying an RFC 6962 consistency proof (RFC 9162 §2.1.4.2) from the last one they saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from chain.backbone import ZERO32
from registry.crypto.merkle import empty_root, verify_consistency
from registry.logs.backbone import BackboneLink, witness_usccs
from registry.logs.checkpoint_format import Checkpoint, read_checkpoints
from registry.logs.log import LEDGERS, LedgerLogs
from registry.node import Node
from registry.store.db import KeyValue

__all__ = ["LogProofs", "ProofSource", "Witness", "WitnessDecision", "local_witnesses"]

log = structlog.get_logger(__name__)


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
