"""Witnesses of the ledger logs' checkpoints on the Backbone (registry.logs.checkpoints): auditor members that
cosign a checkpoint only after verifying an RFC 6962 consistency proof (RFC 9162 §2.1.4.2) from the last one they
saw, with their own secp256k1 account (the Backbone's ``cosign`` checks the sender is a registered witness).

A `Witness` is handed its account's sender and a database for its memory: in a witness process
(``lianzheng witness serve``) both are its own (`BackboneCosigner` runs it in the background); in a single dev
node the gateway's in-process witnesses (`local_witnesses`) use the agency keys that data dir holds.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from chain.backbone import ZERO32
from chain.blocks import BlockReader
from chain.errors import ChainError
from chain.sender import TransactionSender
from registry.background import PollingLoop
from registry.crypto.merkle import empty_root, verify_consistency
from registry.errors import RegistryError
from registry.logs.backbone import BackboneLink, registered_witnesses, witness_usccs, witnesses_from_events
from registry.logs.checkpoint_format import Checkpoint, checkpoints_from_events, read_checkpoints
from registry.logs.cosigning import witness_name
from registry.logs.log import LEDGERS, LedgerLogs
from registry.logs.note import SignatureType
from registry.logs.note_keys import NoteKeys
from registry.node import Node
from registry.store.db import Database, KeyValue

__all__ = ["BackboneCosigner", "LogProofs", "ProofSource", "Witness", "WitnessDecision", "WitnessIdentity",
           "local_witnesses", "witness_identity"]

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
class WitnessIdentity:
    """A witness process's two keys: its secp256k1 Backbone account and its C2SP cosignature/v1 vkey."""

    agency: str
    account: str
    vkey: str

    def to_json(self) -> dict[str, str]:
        return {"agency": self.agency, "account": self.account, "vkey": self.vkey}


def witness_identity(node: Node, uscc: str) -> WitnessIdentity:
    """The keys of witness `uscc` in a witness's own data dir, generated on first use and kept like agency keys
    (the secp256k1 one in the key store, encrypted at rest or in its PKCS#11 token; the Ed25519 one sealed)."""
    if not node.keys.has_signing_key(uscc):
        node.keys.create_signing_key(uscc)
    account = node.keys.signing_account(uscc).address
    key = NoteKeys(node).key(uscc, SignatureType.COSIGNATURE_V1, witness_name(uscc))
    return WitnessIdentity(uscc, account, key.verifier.vkey())


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

    def __init__(self, *, db: Database, link: BackboneLink, uscc: str, sender: TransactionSender,
                 proofs: ProofSource) -> None:
        self.db = db  # where the witness remembers the last checkpoint it cosigned per ledger
        self.link = link
        self.uscc = uscc
        self.sender = sender  # the witness's own account on the Backbone's chain
        self.proofs = proofs
        self.account = sender.address
        self._scope: str | None = None
        self._refusals: set[tuple[str, int, str]] = set()  # logged once each: a loop retries them every round

    def _key(self, ledger: str) -> str:
        # per Backbone deployment (its address and the hash of the block it was deployed in: a devnet reset
        # redeploys it at the same address, in a block of another hash), whose checkpoint chains start anew
        if self._scope is None:
            block = self.link.contract.block
            header = BlockReader(self.link.backend).headers([block]).get(block)
            self._scope = f"{self.link.contract.address.lower()}@{header.hash if header else block}"
        return f"witness:{self._scope}:{self.uscc}:{ledger}"

    def last_seen(self, ledger: str) -> _Seen:
        with self.db.session() as s:
            row = s.get(KeyValue, self._key(ledger))
            if row is None:
                return _Seen()
            d = json.loads(row.value)
        return _Seen(d["index"], d["size"], bytes.fromhex(d["root"][2:]), bytes.fromhex(d["hash"][2:]))

    def _remember(self, ledger: str, cp: Checkpoint) -> None:
        value = json.dumps({"index": cp.index, "size": cp.tree_size, "root": "0x" + cp.root.hex(),
                            "hash": "0x" + cp.hash.hex()})
        with self.db.session() as s:
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
                    if (ledger, cp.index, decision.reason) in self._refusals:
                        break
                    self._refusals.add((ledger, cp.index, decision.reason))
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
            self.link.client.cosign(self.sender, cp.hash)
        return WitnessDecision(ledger, cp.index, cp.hash, True, f"consistent from size {seen.size}")


def local_witnesses(node: Node, link: BackboneLink, proofs: ProofSource) -> list[Witness]:
    """Witnesses whose registered Backbone account is an agency key this data dir holds (in a single dev node:
    all of them; none once witness processes with keys of their own are registered)."""
    registered = {account.lower(): uscc for account, uscc in registered_witnesses(link).items()}
    out = []
    for uscc in witness_usccs(node):
        if node.keys.has_signing_key(uscc):
            sender = link.sender_for(uscc)
            if registered.get(sender.address.lower()) == uscc:
                out.append(Witness(db=node.db, link=link, uscc=uscc, sender=sender, proofs=proofs))
    return out


class BackboneCosigner(PollingLoop):
    """A witness process's Backbone loop: every `poll` seconds it syncs its own ledger logs from the sub-chain,
    reads the Backbone's new events (incrementally, from a cursor) and lets its `Witness` review every
    checkpoint after the last one it cosigned. `status()` says what it cosigned last and, if it stopped, why
    (not registered on the Backbone, a checkpoint it refuses, a chain it cannot reach)."""

    thread_name = "backbone-cosigner"
    outages = (ChainError, RegistryError, OSError)
    clear_error_on_success = False  # a refused checkpoint stays in `status()` until another error replaces it

    def __init__(self, witness: Witness, logs: LedgerLogs, *, poll: float = 1.0) -> None:
        super().__init__(poll=poll, max_backoff=10.0)
        self.witness = witness
        self.logs = logs
        self.cosigned = 0
        self._next_block = witness.link.contract.block
        self._registered: dict[str, str] = {}
        self._pending: dict[str, dict[int, Checkpoint]] = {}
        self._lock = threading.Lock()

    def _read(self) -> None:
        link = self.witness.link
        reader = link.reader()
        head = reader.head()
        if head < self._next_block:
            return
        events = list(reader.events(from_block=self._next_block, to_block=head))
        witnesses_from_events(events, self._registered)
        for ledger, cps in checkpoints_from_events(events, link.subchain_id).items():
            self._pending.setdefault(ledger, {}).update({cp.index: cp for cp in cps})
        self._next_block = head + 1

    def registered(self) -> bool:
        """Whether the Backbone allows this witness's account to cosign for its agency (as of the last read)."""
        mine = self.witness.account.lower()
        return any(a.lower() == mine and u == self.witness.uscc for a, u in self._registered.items())

    def run_once(self) -> list[WitnessDecision]:
        """One round; raises what the chains raise (the background loop records it)."""
        with self._lock:
            self._read()
            w = self.witness
            if not self.registered():
                self.last_error = (f"account {w.account} is not a registered witness of {w.uscc} on the Backbone "
                                   f"{w.link.contract.address}: the Backbone owner runs `lianzheng witness register "
                                   f"--agency {w.uscc} --account {w.account}`")
                return []
            if not any(self._pending.values()):
                self.last_error = None
                return []
            self.logs.sync()  # its own rebuild of the sub-chain's logs, up to the head
            decisions = w.review({ledger: list(cps.values()) for ledger, cps in self._pending.items()})
            for ledger, cps in self._pending.items():
                seen = w.last_seen(ledger).index
                for index in [i for i in cps if i <= seen]:
                    del cps[index]
            self.cosigned += sum(1 for d in decisions if d.cosigned)
            refused = [f"{d.ledger} #{d.index}: {d.reason}" for d in decisions if not d.cosigned]
            self.last_error = "refused " + "; ".join(refused) if refused else None
            return decisions

    def status(self) -> dict[str, Any]:
        w = self.witness
        seen = {ledger: w.last_seen(ledger) for ledger in LEDGERS}
        return {"agency": w.uscc, "account": w.account, "backbone": w.link.contract.address,
                "main_chain_id": w.link.chain_id, "registered": self.registered(), "cosigned": self.cosigned,
                "error": self.last_error,
                "ledgers": {ledger: {"index": s.index, "tree_size": s.size, "hash": "0x" + s.hash.hex()}
                            for ledger, s in seen.items() if s.index >= 0}}

    def run_pass(self) -> bool:
        self.run_once()
        return False

    def error_text(self, exc: BaseException) -> str:
        return getattr(exc, "message", None) or str(exc)
