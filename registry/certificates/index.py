"""A follower of the certificate ledger and the consortium: it pulls new events with one eth_getLogs
per refresh (at most every `refresh_interval` seconds), so verifications need no RPC round trip of
their own and still see a revocation within a fraction of a second. It notices a chain that went
backwards (devnet reset, reorg) and rebuilds from the deployment block.

    >>> index = ChainIndex(node)        # doctest: +SKIP
    >>> index.batch(root)               # BatchRecord or None                      # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from chain.artifacts import load_artifact
from chain.contracts import DocStatus, MemberInfo, unpad
from chain.errors import ChainError
from chain.logs import Event, LogReader
from registry.errors import ChainUnavailableError, NotFoundError, chain_boundary
from registry.node import Node

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)  # slots: a record per batch and per changed document, kept in memory
class BatchRecord:
    root: bytes
    issuer: str
    issuer_uscc: str
    count: int
    block_number: int
    block_hash: str
    tx_hash: str
    sm3_root: bytes  # the batch's RFC 6962 root over the documents' SM3 digests, as anchored beside `root`


@dataclass(frozen=True, slots=True)
class DocRecord:
    status: DocStatus
    reason: int
    since_block: int
    root: bytes
    superseded_by: bytes
    tx_hash: str


class ChainIndex:
    def __init__(self, node: Node, *, refresh_interval: float = 0.5, stale_after: float = 15.0,
                 catch_up: float = 0.05) -> None:
        self.node = node
        self.refresh_interval = refresh_interval
        self.catch_up = catch_up  # s: the least age of the last refresh before an unseen batch root refreshes again
        self.stale_after = stale_after
        self._lock = threading.RLock()
        self._reader: LogReader | None = None
        self._deployment_key: tuple[str, str] | None = None
        self.generation = 0  # counts rebuilds from genesis: what was cached from an older chain may be gone
        self._reset_state()

    def _reset_state(self) -> None:
        self.generation += 1
        self.batches: dict[bytes, BatchRecord] = {}
        self.docs: dict[bytes, DocRecord] = {}
        self.members: dict[str, MemberInfo] = {}
        self.account_member: dict[str, str] = {}
        self._timestamps: dict[int, int] = {}
        self.synced_block = -1
        self.synced_hash = ""
        self.synced_at = 0.0  # monotonic time of the last successful refresh
        self._members_dirty = True

    # -- following ---------------------------------------------------------------------------------
    def _ensure_reader(self) -> LogReader:
        deployment = self.node.require_deployment()
        key = (deployment.address("CertificateLedger"), deployment.address("ConsortiumRegistry"))
        if self._reader is None or key != self._deployment_key:
            self._reader = LogReader(self.node.backend, {
                key[0]: load_artifact("CertificateLedger").abi,
                key[1]: load_artifact("ConsortiumRegistry").abi,
            })
            self._deployment_key = key
            self._reset_state()
        return self._reader

    def refresh(self, *, force: bool = False, interval: float | None = None) -> None:
        """Pull events up to the head if the last refresh is older than ``interval`` (default
        `refresh_interval`; ``force``: now). Raises ChainUnavailableError if the chain cannot be read and the
        last successful refresh is older than `stale_after` (answers must not be silently stale)."""
        min_age = 0.0 if force else self.refresh_interval if interval is None else interval
        if time.monotonic() - self.synced_at < min_age:
            return
        with self._lock:
            if time.monotonic() - self.synced_at < min_age:
                return
            try:
                self._refresh_locked()
            except (ChainError, OSError, ValueError) as exc:
                if time.monotonic() - self.synced_at > self.stale_after:
                    raise ChainUnavailableError(f"区块链不可达 / chain unreachable: {exc}") from exc
                log.warning("index refresh failed; serving recent state", error=str(exc))

    def _refresh_locked(self) -> None:
        reader = self._ensure_reader()
        head = reader.head()
        if self.synced_block >= 0:
            if head < self.synced_block or self._block_hash(self.synced_block) != self.synced_hash:
                log.warning("chain went backwards or reorganised; rebuilding the index",
                            synced=self.synced_block, head=head)
                self._reset_state()
        start = self.node.require_deployment().first_block if self.synced_block < 0 else self.synced_block + 1
        if start <= head:
            for event in reader.events(from_block=start, to_block=head):
                self._apply(event)
            self.synced_block = head
            self.synced_hash = self._block_hash(head)
        if self._members_dirty:
            self._load_members()
        self.synced_at = time.monotonic()

    def _block_hash(self, number: int) -> str:
        header = self.node.blocks.header(number)
        return header.hash[2:] if header is not None else ""  # no such block: the chain was reset

    def _load_members(self) -> None:
        infos = self.node.consortium.members()
        self.members = {m.uscc: m for m in infos}
        self.account_member = {a.lower(): m.uscc for m in infos for a in m.accounts}
        self._members_dirty = False

    def _apply(self, e: Event) -> None:
        a = e.args
        if e.name == "BatchAnchored":
            self.batches[a["root"]] = BatchRecord(a["root"], a["issuer"], unpad(a["issuerUscc"]), int(a["count"]),
                                                  e.block_number, e.block_hash, e.tx_hash, bytes(a["sm3Root"]))
        elif e.name in ("DocumentSuspended", "DocumentReinstated", "DocumentRevoked"):
            status = {"DocumentSuspended": DocStatus.SUSPENDED, "DocumentReinstated": DocStatus.ISSUED,
                      "DocumentRevoked": DocStatus.REVOKED}[e.name]
            self.docs[a["doc"]] = DocRecord(status, int(a.get("reason", 0)), e.block_number, a["root"], b"", e.tx_hash)
        elif e.name == "DocumentSuperseded":
            self.docs[a["oldDoc"]] = DocRecord(DocStatus.SUPERSEDED, 0, e.block_number, a["root"], a["newDoc"], e.tx_hash)
        elif e.name.startswith(("Member", "Threshold", "RevokerDelegate")):
            self._members_dirty = True

    def apply_events(self, events: Iterable[Event]) -> None:
        """Apply decoded ledger events as a refresh would (`lianzheng bench verify` measures the index's
        memory per certificate with synthetic ones)."""
        with self._lock:
            for e in events:
                self._apply(e)

    # -- answers -----------------------------------------------------------------------------------
    def batch(self, root: bytes) -> BatchRecord | None:
        """The anchored batch of ``root``. A root not seen yet gets one early refresh (if the last is older than
        `catch_up` s): a receipt this node or the issuer's recorded can be newer than the last refresh, and a
        certificate `lianzheng issue` just reported anchored must not verify as 'not on chain' for up to
        `refresh_interval`. A root that is not on chain costs at most one refresh per `catch_up` s."""
        self.refresh()
        found = self.batches.get(root)
        if found is None:
            self.refresh(interval=self.catch_up)
            found = self.batches.get(root)
        return found

    def doc_state(self, doc: bytes) -> DocRecord | None:
        self.refresh()
        return self.docs.get(doc)

    def member(self, uscc: str) -> MemberInfo | None:
        self.refresh()
        return self.members.get(uscc)

    def member_of_account(self, account: str) -> str | None:
        self.refresh()
        return self.account_member.get(account.lower())

    def block_timestamp(self, number: int) -> int:
        ts = self._timestamps.get(number)
        if ts is None:
            with chain_boundary(f"cannot read the time of block {number}"):
                header = self.node.blocks.header(number)
            if header is None:
                raise NotFoundError(f"block {number} is not on chain (was the chain reset?)", code="block_not_found")
            ts = header.timestamp
            self._timestamps[number] = ts
        return ts
