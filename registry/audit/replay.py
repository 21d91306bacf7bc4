"""Audit replay: rebuild everything from the chain and compare it with the checkpoints and the database.

The steps, each in its own module:

1. registry/audit/fetch.py reads every ledger event and block header from the deployment block (parent links,
   event block hashes);
2. registry/audit/rules.py replays the events in chain order into the typed state of registry/audit/state.py,
   judging each by the rights its actor held at that block (SealRegistry's by registry/audit/_seal_rules.py);
3. registry/audit/checkpoints.py checks every Backbone checkpoint against the rebuilt ledger logs;
4. registry/audit/compare.py compares the database with the chain both ways, ledger by ledger
   (registry/audit/sources.py lists them).

`Auditor.replay` does 1-2 (and reads the Backbone); `Auditor.report` does 3-4 on a replay and may be called
again on the same replay after the database changed (the tamper matrix does; so could a service comparing
often). `Auditor.run` is both. The replayed state is saved (registry/audit/snapshot.py) so ``resume=True``
reads only new blocks. The report is signed by the auditor member and can be anchored (registry/audit/report.py).

    >>> auditor = Auditor(node, link=connect_backbone(node, main_backend, setup=False))   # doctest: +SKIP
    >>> report = auditor.run(deadline=600)                                                   # doctest: +SKIP
    >>> report.ok, report.counts["events"]                                                   # doctest: +SKIP
    (True, 1234)
    >>> signed = sign_report(node, report, "11230000MB1A00036G")     # registry/audit/report.py  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chain.backends import ChainBackend
from chain.blocks import Header
from chain.logs import DEFAULT_CHUNK
from registry.audit._context import CompareContext
from registry.audit.checkpoints import CheckpointChecker
from registry.audit.compare import compare_database
from registry.audit.fetch import ProgressFn, SubchainReader
from registry.audit.report import AuditReport, Finding
from registry.audit.rules import Rules, hex0x
from registry.audit.snapshot import Snapshot, clear_cursor, load_snapshot, save_snapshot
from registry.audit.state import ReplayState
from registry.errors import NotFoundError
from registry.logs.checkpoints import BackboneLink, Checkpoint, connect_backbone
from registry.logs.log import AUDIT_LEDGER, LEDGER_CONTRACTS, LEDGERS, LedgerLogs
from registry.node import Node

REPORT_FORMAT = "lianzheng/audit-report/1"


@dataclass
class Replay:
    """The chain side of one audit: the replayed state, ledger logs and Backbone checkpoints at `head`."""

    state: ReplayState
    logs: LedgerLogs
    checkpoints: dict[str, list[Checkpoint]]
    head: int
    head_header: Header | None
    start: int
    resumed_from: int | None
    partial: bool
    events_read: int
    read_seconds: float
    notes: list[Finding] = field(default_factory=list)  # findings of this run's reading (never in the snapshot)
    started: float = field(default_factory=time.perf_counter)


class Auditor:
    """Runs the replay (see the module docstring). `link` is the Backbone (None: no checkpoints to check)."""

    def __init__(self, node: Node, *, link: BackboneLink | None, chunk: int = DEFAULT_CHUNK,
                 progress: ProgressFn | None = None, witness_quorum: int = 2) -> None:
        self.node = node
        self.link = link
        self.witness_quorum = witness_quorum  # Backbone cosignatures by distinct witness agencies per checkpoint
        self.chunk = chunk
        self.progress = progress

    def _progress(self, phase: str, done: int, total: int, events: int) -> None:
        if self.progress is not None:
            self.progress(phase, done, total, events)

    def run(self, *, from_block: int | None = None, resume: bool = False, deadline: float = 600.0,
            now: float | None = None, save: bool = True) -> AuditReport:
        """Replay and compare. `from_block` > the deployment block makes a window audit (see `partial`);
        `resume` continues from the saved cursor; `deadline` (seconds) bounds how long an event may wait for
        a checkpoint and a record for its anchor; `now` defaults to the later of the clock and the head block."""
        replayed = self.replay(from_block=from_block, resume=resume, save=save)
        return self.report(replayed, deadline=deadline, now=now)

    def replay(self, *, from_block: int | None = None, resume: bool = False, save: bool = True) -> Replay:
        """Read and replay the sub-chain (from the saved cursor with `resume`) and read the Backbone."""
        started = time.perf_counter()
        deployment = self.node.require_deployment()
        first = deployment.first_block
        history = SubchainReader(self.node, chunk=self.chunk, progress=self.progress)
        head = history.head()
        notes: list[Finding] = []
        logs = LedgerLogs(self.node.backend, deployment, keep_entries=False)
        state, start, resumed_from, prev_hash = ReplayState(), first, None, None
        partial = from_block is not None and from_block > first
        if resume:
            loaded = load_snapshot(self.node, logs, notes)
            if loaded is not None:
                state, resumed_from, prev_hash, partial = loaded.state, loaded.block, loaded.block_hash, loaded.partial
                start = resumed_from + 1
        if resumed_from is None and from_block is not None:
            start = from_block
        rules = Rules(state, partial=partial)
        if partial and resumed_from is None:  # a window audit still needs the roles at its first block
            for e in history.consortium_events(first, start - 1):
                rules.apply("consortium", e, 0)
            state.events.clear()  # counted, timed and filed by transaction only inside the window
            state.block_times.clear()
            state.txs.clear()

        t_read = time.perf_counter()
        result = history.read(logs, start, head, prev_hash, on_event=rules.apply, on_finding=rules.finding,
                              on_seal=rules.apply_seal)
        read_seconds = time.perf_counter() - t_read
        if save and result.head_header is not None:
            save_snapshot(self.node, Snapshot(state, head, result.head_header.hash, partial), logs)
        checkpoints: dict[str, list[Checkpoint]] = {}
        if self.link is not None:
            checkpoints = CheckpointChecker(self.node, self.link).read(notes)
        self._progress("checkpoints", 1, 1, result.events)
        return Replay(state, logs, checkpoints, head, result.head_header, start, resumed_from, partial, result.events,
                      read_seconds, notes, started)

    def report(self, replayed: Replay, *, deadline: float = 600.0, now: float | None = None) -> AuditReport:
        """Check the checkpoints and compare the database with a replay; the replay itself is not changed."""
        r = replayed
        head_time = r.head_header.timestamp if r.head_header is not None else 0
        at = max(time.time() if now is None else now, head_time)
        notes = list(r.notes)
        consistency = 0
        if self.link is not None:
            checker = CheckpointChecker(self.node, self.link)
            if not r.partial:
                consistency = checker.check(r.logs, r.state, r.checkpoints, r.head, deadline=deadline, now=at,
                                            findings=notes, witness_quorum=self.witness_quorum)
            checker.check_audit_log(r.checkpoints.get(AUDIT_LEDGER, []), notes)
            checker.compare_records(r.checkpoints, notes)
        ctx = CompareContext(self.node, r.state, notes, r.start if r.partial else None, deadline, at, head=r.head)
        db_records = compare_database(ctx)
        self._progress("database", 1, 1, r.events_read)
        findings = [*r.state.findings, *notes]
        return self._report(r, findings, db_records, consistency, deadline)

    def _report(self, r: Replay, findings: list[Finding], db_records: int, consistency: int,
                deadline: float) -> AuditReport:
        state, checkpoints = r.state, r.checkpoints
        deployment = self.node.require_deployment()
        docs = Counter(d.status.name.lower() for d in state.docs.values())
        all_cps = [c for cps in checkpoints.values() for c in cps]
        counts: dict[str, Any] = {
            "findings": len(findings),
            "events": sum(state.events.values()),
            "events_read": r.events_read,
            "events_by_ledger": {name: state.events.get(name, 0) for name in LEDGERS},
            "seal_events": state.events.get("seals", 0),  # SealRegistry: replayed, not a ledger log
            "blocks": max(r.head - r.start + 1, 0),
            "batches": len(state.batches),
            "certificates_anchored": sum(b.count for b in state.batches.values()),
            "certificates_revoked": docs.get("revoked", 0),
            "certificates_suspended": docs.get("suspended", 0),
            "certificates_superseded": docs.get("superseded", 0),
            "evidence_records": len(state.evidence),
            "cases": len(state.cases),
            "exchanges": len(state.exchanges),
            "usages": len(state.usages),
            "members": len(state.members),
            "seals": len(state.seals),
            "seals_revoked": sum(1 for x in state.seals.values() if x.status == "revoked"),
            "seals_suspended": sum(1 for x in state.seals.values() if x.status == "suspended"),
            "checkpoints": len(all_cps),
            "cosignatures": sum(len(c.cosigners) for c in all_cps),
            "consistency_proofs": consistency,
            "db_records": db_records,
            "by_kind": dict(Counter(f.kind for f in findings)),
        }
        data: dict[str, Any] = {
            "format": REPORT_FORMAT,
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "findings": [f.to_json() for f in findings],
            "counts": counts,
            "subchain": {"chain_id": deployment.chain_id,
                         "from_block": deployment.first_block if r.resumed_from is not None else r.start,
                         "to_block": r.head, "to_block_hash": r.head_header.hash if r.head_header else None,
                         "contracts": {c: deployment.address(c) for c in (*LEDGER_CONTRACTS.values(), "SealRegistry")
                                       if c in deployment.contracts}},
            "main_chain": None if self.link is None else {
                "chain_id": self.link.chain_id, "backbone": self.link.contract.address,
                "subchain_id": hex0x(self.link.subchain_id), "same_chain": self.link.same_chain},
            "ledgers": _ledgers(r.logs, checkpoints),
            "anchored_per_day": state.per_day,
            "agencies": {**{uscc: m.name for uscc, m in state.members.items()},
                         **{seed.uscc: seed.short_name for seed in self.node.seeds.members}},
            "deadline_seconds": deadline,
            "partial": r.partial,
            "resumed_from": r.resumed_from,
            "timing": {"seconds": round(time.perf_counter() - r.started, 3), "read_seconds": round(r.read_seconds, 3),
                       "events_per_second": round(r.events_read / r.read_seconds, 1) if r.read_seconds > 0 else None},
        }
        return AuditReport(data)


def _ledgers(logs: LedgerLogs, checkpoints: Mapping[str, list[Checkpoint]]) -> dict[str, Any]:
    ledgers: dict[str, Any] = {}
    for name in LEDGERS:
        lg = logs.log(name)
        cps = sorted(checkpoints.get(name, []), key=lambda c: c.index)
        ledgers[name] = {"size": lg.size, "root": hex0x(lg.root()), "checkpoints": len(cps),
                         "latest_checkpoint": cps[-1].to_json() if cps else None}
    if checkpoints.get(AUDIT_LEDGER):
        cps = sorted(checkpoints[AUDIT_LEDGER], key=lambda c: c.index)
        ledgers[AUDIT_LEDGER] = {"size": cps[-1].tree_size, "root": hex0x(cps[-1].root), "checkpoints": len(cps),
                                 "latest_checkpoint": cps[-1].to_json()}
    return ledgers


def audit_link(node: Node, main_backend: ChainBackend | None = None) -> BackboneLink | None:
    """The Backbone to check checkpoints against, without registering anything (None when there is none)."""
    try:
        return connect_backbone(node, main_backend, setup=False)
    except NotFoundError:
        deployment = node.require_deployment()
        if main_backend is None and "Backbone" in deployment.contracts:
            return BackboneLink(node, node.backend, deployment.contracts["Backbone"], chain_id=deployment.chain_id)
        return None


__all__ = ["Auditor", "Replay", "audit_link", "clear_cursor"]
