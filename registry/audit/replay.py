"""Audit replay: rebuild everything from the chain and compare it with the checkpoints and the database.

1. Read every event of the four ledger contracts from the deployment block (chunked ``eth_getLogs``,
   chain/logs.py) and every block header in that range (batched JSON-RPC): each header must link to its
   parent and each event's block hash must be the header's (``block_link_broken``, ``event_block_mismatch``).
2. Replay the events in chain order (block, log index). The consortium's events rebuild members, roles,
   accounts and revoker delegations *as they were at each block*, so every other event is checked against
   the rights its actor held at that block: an anchor by an account without the issuer role
   (``anchor_without_issuer_role``), a status change by an account the issuer never delegated
   (``status_change_unauthorised``), a reinstatement after revocation (``illegal_transition``), a custody
   transfer by someone who was not the custodian (``custody_by_non_custodian``), exchange steps out of order
   (``exchange_step_out_of_order``). A role removed later never makes an earlier anchor illegal.
3. Rebuild the ledger logs (registry/logs/log.py) and check every Backbone checkpoint on the main chain:
   its block range still exists with the same boundary hash (``subchain_blocks_lost``), its size and RFC 6962
   root match the events (``checkpoint_size_mismatch``, ``checkpoint_root_mismatch``), consecutive checkpoints
   are consistent (RFC 9162 §2.1.4.2, ``checkpoint_inconsistent``), the gateway's stored signature verifies,
   and no event waited longer than the deadline for a checkpoint (``checkpoint_missing``, ``checkpoint_late``).
4. Compare with the database both ways: batch roots recomputed from the rows' digests in leaf order
   (``digest_mismatch``, ``db_row_missing``), anchors the database does not know (``chain_record_not_in_db``),
   rows that claim an anchor the chain lacks (``db_record_not_on_chain``) or never got one
   (``db_record_never_anchored``), statuses (``revoked_but_valid_in_db``, ``status_mismatch``), members; the
   evidence and exchange ledgers through their ``audit_records(session)``.

The replayed state is saved (``audit_snapshots`` + a cursor in ``kv``) so ``resume=True`` reads only new
blocks. The report is signed by the auditor member and can be anchored (registry/audit/report.py).

    >>> auditor = Auditor(node, link=connect_backbone(node, main_backend, setup=False))   # doctest: +SKIP
    >>> report = auditor.run(deadline=600)                                                   # doctest: +SKIP
    >>> report.ok, report.counts["events"]                                                   # doctest: +SKIP
    (True, 1234)
    >>> signed = sign_report(node, report, "11230000MB1A00036G")     # registry.audit_report   # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
import structlog
from sqlalchemy import func, select

from chain.artifacts import load_artifact
from chain.backbone import ZERO32
from chain.contracts import MemberStatus, Role, unpad
from chain.errors import ChainError
from chain.logs import DEFAULT_CHUNK, Event, LogReader
from registry.audit.report import AuditReport, Finding
from registry.audit.sources import LedgerRecord
from registry.crypto.merkle import leaf_hash, root_from_leaf_hashes, verify_consistency, verify_inclusion_leaf_hash
from registry.errors import NotFoundError
from registry.logs.checkpoints import (
    BackboneLink,
    Checkpoint,
    checkpoints_from_events,
    recover_signer,
)
from registry.logs.log import (
    AUDIT_LEDGER,
    LEDGER_CONTRACTS,
    LEDGERS,
    LedgerLog,
    LedgerLogs,
    fast_reader,
)
from registry.node import Node
from registry.store.audit_models import AuditReportRow, AuditSnapshot, CheckpointRecord
from registry.store.db import Batch, Certificate, KeyValue, Member, StatusChange

log = structlog.get_logger(__name__)

CURSOR_KEY = "audit:cursor"
# the main chain's own parent links are checked from the Backbone's deployment when that is at most this many
# blocks (a busy 星火 main chain is audited by its own operators; we check the blocks our checkpoints are in)
MAIN_LINK_CHECK_LIMIT = 50_000
REPORT_FORMAT = "lianzheng/audit-report/1"
CHINA_TZ = dt.timezone(dt.timedelta(hours=8))  # the per-day chart counts days as the agencies do
_DOC_STATUS = {"issued": 0, "suspended": 1, "revoked": 2, "superseded": 3}
_DOC_NAMES = {v: k for k, v in _DOC_STATUS.items()}
_EX_STEPS = ("none", "requested", "authorised", "refused", "delivered", "acknowledged", "disputed")

ProgressFn = Callable[[str, int, int, int], None]  # (phase, done, total, events so far)


# -- block headers ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    number: int
    hash: str
    parent_hash: str
    timestamp: int


def fetch_headers(backend: Any, start: int, end: int, *, batch: int = 500) -> dict[int, Header]:
    """Headers of blocks [start, end] with batched JSON-RPC (about 25,000 headers/s from anvil)."""
    return fetch_headers_at(backend, range(start, end + 1), batch=batch)


def fetch_headers_at(backend: Any, numbers: Iterable[int], *, batch: int = 500) -> dict[int, Header]:
    """Headers of the given blocks (missing blocks are absent from the result)."""
    wanted = list(numbers)
    out: dict[int, Header] = {}
    url: str | None = getattr(getattr(backend, "provider", None), "active_url", None)
    session = requests.Session() if url else None
    for lo in range(0, len(wanted), batch):
        chunk = wanted[lo:lo + batch]
        if session is not None and url is not None:
            body: list[dict[str, Any]] = [{"jsonrpc": "2.0", "id": n, "method": "eth_getBlockByNumber",
                                           "params": [hex(n), False]} for n in chunk]
            try:
                replies = session.post(url, json=body, timeout=60).json()
            except (requests.RequestException, ValueError) as exc:
                raise ChainError(f"cannot read block headers {chunk[0]}..{chunk[-1]}: {exc}") from exc
            blocks = [r.get("result") for r in replies] if isinstance(replies, list) else []
        else:
            blocks = [backend.raw("eth_getBlockByNumber", [hex(n), False]) for n in chunk]
        for b in blocks:
            if b:
                h = _header(b)
                out[h.number] = h
    return out


def _header(block: Mapping[str, Any]) -> Header:
    def hx(v: Any) -> str:
        return ("0x" + bytes(v).hex()) if isinstance(v, (bytes, bytearray)) else str(v).lower()

    def num(v: Any) -> int:
        return v if isinstance(v, int) else int(str(v), 16)

    return Header(num(block["number"]), hx(block["hash"]), hx(block["parentHash"]), num(block["timestamp"]))


# -- the replayed chain state and its rules ------------------------------------------------------------------


def _h(value: bytes) -> str:
    return "0x" + bytes(value).hex()


@dataclass
class _State:
    """Everything the replay knows at the current event; JSON-serialisable for the resume snapshot."""

    members: dict[str, list[Any]] = field(default_factory=dict)  # uscc -> [name, bid, roles, status, accounts]
    account_member: dict[str, str] = field(default_factory=dict)  # lower-case account -> uscc
    delegates: list[list[str]] = field(default_factory=list)  # [issuer, delegate] pairs currently allowed
    batches: dict[str, list[Any]] = field(default_factory=dict)  # root -> [issuer, uscc, count, block, tx, ts]
    docs: dict[str, list[Any]] = field(default_factory=dict)  # doc -> [status, reason, root, block, superseded_by]
    evidence: dict[str, list[Any]] = field(default_factory=dict)  # id -> [case, collector, custodian, pending, digests]
    cases: dict[str, list[Any]] = field(default_factory=dict)  # case -> [owner, sealed, records]
    exchanges: dict[str, list[Any]] = field(default_factory=dict)  # id -> [consumer, provider, step, digests]
    per_day: dict[str, dict[str, int]] = field(default_factory=dict)  # YYYY-MM-DD -> uscc -> records anchored
    block_times: dict[str, int] = field(default_factory=dict)  # block (as str, JSON keys) -> timestamp
    findings: list[list[str]] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _State:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class _Rules:
    """Applies events to the state in chain order and records every illegal transition."""

    def __init__(self, state: _State, *, partial: bool = False) -> None:
        self.s = state
        self.partial = partial  # a window audit: records from before the window are unknown, not illegal
        self._delegates = {tuple(p) for p in state.delegates}
        self._handlers: dict[str, Callable[[Event], None]] = {
            name[3:]: getattr(self, name) for name in dir(self) if name.startswith("on_")
        }

    def finding(self, kind: str, ledger: str, ref: str, detail: str) -> None:
        self.s.findings.append([kind, ledger, ref, detail])

    def apply(self, ledger: str, e: Event, timestamp: int) -> None:
        self.s.events[ledger] = self.s.events.get(ledger, 0) + 1
        self.s.block_times.setdefault(str(e.block_number), timestamp)
        handler = self._handlers.get(e.name)
        if handler is not None:
            self._ts = timestamp
            handler(e)

    def save(self) -> None:
        self.s.delegates = [list(p) for p in sorted(self._delegates)]

    # -- who held what, at this point of the history --
    def member_of(self, account: str) -> str | None:
        return self.s.account_member.get(account.lower())

    def member_has(self, uscc: str | None, role: Role) -> bool:
        m = self.s.members.get(uscc or "")
        return m is not None and m[3] == MemberStatus.ACTIVE and m[2] & int(role) == int(role)

    def has_role(self, account: str, role: Role) -> bool:
        """ConsortiumRegistry.hasRole as it answered at this block."""
        return self.member_has(self.member_of(account), role)

    def can_revoke_for(self, account: str, issuer: str) -> bool:
        """ConsortiumRegistry.canRevokeFor as it answered at this block."""
        uscc = self.member_of(account)
        m = self.s.members.get(uscc or "")
        if m is None or m[3] != MemberStatus.ACTIVE:
            return False
        if uscc == issuer:
            return bool(m[2] & int(Role.ISSUER | Role.REVOKER))
        return bool(m[2] & int(Role.REVOKER)) and (issuer, uscc) in self._delegates

    def describe(self, account: str) -> str:
        uscc = self.member_of(account)
        m = self.s.members.get(uscc or "")
        if m is None:
            return f"account {account} belonged to no member"
        return (f"account {account} belonged to {m[0]} ({uscc}), status {MemberStatus(m[3]).name.lower()}, roles "
                f"{','.join(Role(m[2]).names()) or 'none'}")

    def _day(self, uscc: str, n: int) -> None:
        day = dt.datetime.fromtimestamp(self._ts, CHINA_TZ).date().isoformat()
        per = self.s.per_day.setdefault(day, {})
        per[uscc] = per.get(uscc, 0) + n

    # -- consortium --
    def on_MemberAdmitted(self, e: Event) -> None:
        a, uscc = e.args, unpad(e.args["uscc"])
        accounts = [str(x) for x in a["accounts"]]
        self.s.members[uscc] = [a["name"], a["bid"], int(a["roles"]), int(MemberStatus.ACTIVE), accounts]
        for acc in accounts:
            self.s.account_member[acc.lower()] = uscc

    def on_MemberRolesChanged(self, e: Event) -> None:
        m = self.s.members.get(unpad(e.args["uscc"]))
        if m is not None:
            m[2] = int(e.args["newRoles"])

    def on_MemberStatusChanged(self, e: Event) -> None:
        m = self.s.members.get(unpad(e.args["uscc"]))
        if m is not None:
            m[3] = int(e.args["newStatus"])

    def on_MemberAccountAdded(self, e: Event) -> None:
        uscc = unpad(e.args["uscc"])
        if uscc in self.s.members:
            self.s.members[uscc][4].append(e.args["account"])
            self.s.account_member[e.args["account"].lower()] = uscc

    def on_MemberKeyRotated(self, e: Event) -> None:
        uscc, old, new = unpad(e.args["uscc"]), e.args["oldAccount"], e.args["newAccount"]
        m = self.s.members.get(uscc)
        if m is None:
            return
        m[4] = [new if a.lower() == old.lower() else a for a in m[4]]
        m[1] = e.args["newBid"]
        self.s.account_member.pop(old.lower(), None)
        self.s.account_member[new.lower()] = uscc

    def on_RevokerDelegateSet(self, e: Event) -> None:
        pair = (unpad(e.args["issuer"]), unpad(e.args["delegate"]))
        if e.args["allowed"]:
            self._delegates.add(pair)
        else:
            self._delegates.discard(pair)

    # -- certificates --
    def on_BatchAnchored(self, e: Event) -> None:
        a = e.args
        root, uscc, issuer = _h(a["root"]), unpad(a["issuerUscc"]), a["issuer"]
        if root in self.s.batches:
            self.finding("illegal_transition", "certificates", root, f"root anchored twice (again in block {e.block_number})")
            return
        if not self.has_role(issuer, Role.ISSUER):
            self.finding("anchor_without_issuer_role", "certificates", root,
                         f"batch of {a['count']} anchored in block {e.block_number} (tx {e.tx_hash}) although "
                         f"{self.describe(issuer)} at that block")
        elif self.member_of(issuer) != uscc:
            self.finding("anchor_without_issuer_role", "certificates", root,
                         f"the event names issuer {uscc} but {self.describe(issuer)}")
        self.s.batches[root] = [issuer, uscc, int(a["count"]), e.block_number, e.tx_hash, self._ts]
        self._day(uscc, int(a["count"]))

    def _doc_change(self, e: Event, doc: bytes, to: int, allowed_from: tuple[int, ...], what: str) -> str | None:
        key, root = _h(doc), _h(e.args["root"])
        batch = self.s.batches.get(root)
        if batch is None:
            if not self.partial:
                self.finding("illegal_transition", "certificates", key,
                             f"{what} in block {e.block_number} names batch {root}, which was never anchored")
            return None
        by = e.args["by"]
        if not self.can_revoke_for(by, batch[1]):
            self.finding("status_change_unauthorised", "certificates", key,
                         f"{what} in block {e.block_number} (tx {e.tx_hash}) for issuer {batch[1]}, but {self.describe(by)}")
        state = self.s.docs.get(key)
        current = state[0] if state else 0
        if current not in allowed_from:
            self.finding("illegal_transition", "certificates", key,
                         f"{what} in block {e.block_number} of a document that was {_DOC_NAMES[current]}")
        self.s.docs[key] = [to, int(e.args.get("reason", 0)), root, e.block_number, state[4] if state else ""]
        return key

    def on_DocumentSuspended(self, e: Event) -> None:
        self._doc_change(e, e.args["doc"], 1, (0,), "suspension")

    def on_DocumentReinstated(self, e: Event) -> None:
        self._doc_change(e, e.args["doc"], 0, (1,), "reinstatement")

    def on_DocumentRevoked(self, e: Event) -> None:
        self._doc_change(e, e.args["doc"], 2, (0, 1), "revocation")

    def on_DocumentSuperseded(self, e: Event) -> None:
        key = self._doc_change(e, e.args["oldDoc"], 3, (0, 1), "supersession")
        if key is not None:
            self.s.docs[key][4] = _h(e.args["newDoc"])

    # -- evidence --
    def on_EvidenceRegistered(self, e: Event) -> None:
        a = e.args
        rid, case, collector = _h(a["id"]), _h(a["caseId"]), unpad(a["collectorUscc"])
        if not self.member_has(collector, Role.EVIDENCE):
            self.finding("action_without_role", "evidence", rid,
                         f"evidence registered in block {e.block_number} by {collector}, which did not hold the evidence role")
        if rid in self.s.evidence:
            self.finding("illegal_transition", "evidence", rid, f"registered twice (again in block {e.block_number})")
        c = self.s.cases.setdefault(case, [collector, False, 0])
        if c[1]:
            self.finding("illegal_transition", "evidence", rid, f"registered in block {e.block_number} into sealed case {case}")
        c[2] += 1
        digests = [_h(a["sha256Digest"]), _h(a["sm3Digest"]), _h(a["metaDigest"])]
        self.s.evidence[rid] = [case, collector, collector, "", digests]
        self._day(collector, 1)

    def _evidence(self, e: Event) -> list[Any] | None:
        rid = _h(e.args["id"])
        rec = self.s.evidence.get(rid)
        if rec is None and not self.partial:
            self.finding("custody_transfer_illegal", "evidence", rid, f"{e.name} in block {e.block_number} of an unknown record")
        return rec

    def on_CustodyTransferRequested(self, e: Event) -> None:
        rec = self._evidence(e)
        if rec is None:
            return
        rid, frm, to = _h(e.args["id"]), unpad(e.args["fromUscc"]), unpad(e.args["toUscc"])
        if frm != rec[2]:
            self.finding("custody_by_non_custodian", "evidence", rid,
                         f"transfer to {to} requested in block {e.block_number} by {frm}; the custodian was {rec[2]}")
        elif not self.member_has(frm, Role.EVIDENCE):
            self.finding("action_without_role", "evidence", rid,
                         f"transfer in block {e.block_number} by {frm} without the evidence role")
        if rec[3]:
            self.finding("custody_transfer_illegal", "evidence", rid,
                         f"transfer requested in block {e.block_number} while one to {rec[3]} was pending")
        if self.s.cases.get(rec[0], [None, False])[1]:
            self.finding("custody_transfer_illegal", "evidence", rid,
                         f"transfer in block {e.block_number} in a sealed case")
        rec[3] = to

    def on_CustodyTransferAccepted(self, e: Event) -> None:
        rec = self._evidence(e)
        if rec is None:
            return
        rid, frm, to = _h(e.args["id"]), unpad(e.args["fromUscc"]), unpad(e.args["toUscc"])
        if rec[3] != to or frm != rec[2]:
            self.finding("custody_transfer_illegal", "evidence", rid,
                         f"{to} accepted custody in block {e.block_number} but the pending transfer was "
                         f"{rec[2]} -> {rec[3] or 'none'}")
        rec[2], rec[3] = to, ""

    def on_CustodyTransferRejected(self, e: Event) -> None:
        rec = self._evidence(e)
        if rec is None:
            return
        if rec[3] != unpad(e.args["toUscc"]):
            self.finding("custody_transfer_illegal", "evidence", _h(e.args["id"]),
                         f"rejection in block {e.block_number} without a pending transfer to {unpad(e.args['toUscc'])}")
        rec[3] = ""

    def on_CaseSealed(self, e: Event) -> None:
        case, owner = _h(e.args["caseId"]), unpad(e.args["ownerUscc"])
        c = self.s.cases.get(case)
        if c is None:
            if not self.partial:
                self.finding("illegal_transition", "evidence", case, f"unknown case sealed in block {e.block_number}")
            return
        if c[0] != owner or c[1]:
            self.finding("illegal_transition", "evidence", case,
                         f"case sealed in block {e.block_number} by {owner}; owner {c[0]}, already sealed: {c[1]}")
        c[1] = True

    # -- exchanges --
    def on_ExchangeRequested(self, e: Event) -> None:
        a = e.args
        xid, consumer, provider = _h(a["id"]), unpad(a["consumerUscc"]), unpad(a["providerUscc"])
        if not self.member_has(consumer, Role.EXCHANGE):
            self.finding("action_without_role", "exchanges", xid,
                         f"requested in block {e.block_number} by {consumer} without the exchange role")
        if xid in self.s.exchanges:
            self.finding("exchange_step_out_of_order", "exchanges", xid, f"requested again in block {e.block_number}")
        self.s.exchanges[xid] = [consumer, provider, 1, [_h(a["purposeDigest"]), _h(a["catalogueItem"])]]
        self._day(consumer, 1)

    def _step(self, e: Event, party_arg: str, party_index: int, expected: int, new: int) -> list[Any] | None:
        xid = _h(e.args["id"])
        x = self.s.exchanges.get(xid)
        if x is None:
            if not self.partial:
                self.finding("exchange_step_out_of_order", "exchanges", xid,
                             f"{e.name} in block {e.block_number} of an unknown exchange")
            return None
        party = unpad(e.args[party_arg])
        if party != x[party_index]:
            self.finding("exchange_by_non_party", "exchanges", xid,
                         f"{e.name} in block {e.block_number} by {party}; the party is {x[party_index]}")
        if x[2] != expected:
            self.finding("exchange_step_out_of_order", "exchanges", xid,
                         f"{e.name} in block {e.block_number} at step {_EX_STEPS[x[2]]}; expected {_EX_STEPS[expected]}")
        x[2] = new
        return x

    def on_ExchangeAuthorised(self, e: Event) -> None:
        self._step(e, "providerUscc", 1, 1, 2 if e.args["granted"] else 3)

    def on_ExchangeDelivered(self, e: Event) -> None:
        x = self._step(e, "providerUscc", 1, 2, 4)
        if x is not None:
            x[3].append(_h(e.args["payloadDigest"]))

    def on_ExchangeAcknowledged(self, e: Event) -> None:
        self._step(e, "consumerUscc", 0, 4, 5 if e.args["matched"] else 6)


# -- the auditor ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    """One run's inputs besides the chain."""

    deadline: float
    now: float
    partial: bool


class Auditor:
    """Runs the replay (see the module docstring). `link` is the Backbone (None: no checkpoints to check)."""

    def __init__(self, node: Node, *, link: BackboneLink | None, chunk: int = DEFAULT_CHUNK,
                 progress: ProgressFn | None = None) -> None:
        self.node = node
        self.link = link
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
        started = time.perf_counter()
        deployment = self.node.require_deployment()
        backend = self.node.backend
        first = deployment.first_block
        reader = fast_reader(backend, {deployment.address(c): load_artifact(c).abi for c in LEDGER_CONTRACTS.values()
                                       if c in deployment.contracts}, chunk=self.chunk)
        head = reader.head()
        notes: list[Finding] = []  # findings of this run only (never carried in the snapshot)
        logs = LedgerLogs(backend, deployment, keep_entries=False)
        state, start, resumed_from, prev_hash = _State(), first, None, None
        partial = from_block is not None and from_block > first
        if resume:
            loaded = self._load_snapshot(logs, notes)
            if loaded is not None:
                state, resumed_from, prev_hash, partial = loaded
                start = resumed_from + 1
        if resumed_from is None and from_block is not None:
            start = from_block
        rules = _Rules(state, partial=partial)
        if partial and resumed_from is None:
            self._replay_consortium(rules, deployment, first, start - 1)

        # 1. headers and events of the sub-chain, chunk by chunk (memory stays flat however long the chain)
        t_read = time.perf_counter()
        events, head_header = self._read(reader, logs, rules, start, head, prev_hash)
        read_seconds = time.perf_counter() - t_read
        rules.save()
        if save and head_header is not None:
            self._save_snapshot(state, logs, head, head_header.hash, partial)
        head_time = head_header.timestamp if head_header is not None else 0
        ctx = _Run(deadline, max(time.time() if now is None else now, head_time), partial)

        # 2. checkpoints on the main chain
        checkpoints = self._checkpoints(notes)
        self._progress("checkpoints", 1, 1, events)
        consistency = self._check_checkpoints(logs, state, checkpoints, head, ctx, notes)
        self._check_audit_log(checkpoints.get(AUDIT_LEDGER, []), notes)

        # 3. the database
        db_records = self._compare_db(state, ctx, notes, start if partial else None)
        self._progress("database", 1, 1, events)

        findings = [Finding(*f) for f in state.findings] + notes
        return self._report(state, logs, checkpoints, findings, db_records, consistency, head, head_header, start,
                            resumed_from, events, read_seconds, time.perf_counter() - started, ctx)

    # -- reading -------------------------------------------------------------------------------------------
    def _read(self, reader: LogReader, logs: LedgerLogs, rules: _Rules, start: int, head: int,
              prev_hash: str | None) -> tuple[int, Header | None]:
        """Read blocks [start, head]: each chunk's headers (parent links checked across chunks), then its logs."""
        backend = self.node.backend
        previous, header, events = prev_hash, None, 0
        for lo in range(start, head + 1, self.chunk):
            hi = min(lo + self.chunk - 1, head)
            headers = fetch_headers(backend, lo, hi)
            for n in range(lo, hi + 1):
                header = headers.get(n)
                if header is None:
                    rules.finding("block_link_broken", "", str(n), f"block {n} could not be read")
                    previous = None
                    continue
                if previous is not None and header.parent_hash != previous:
                    rules.finding("block_link_broken", "", str(n),
                                  f"block {n} names parent {header.parent_hash}, but block {n - 1} is {previous}")
                previous = header.hash
            for raw in reader.raw_logs(lo, hi):
                e = reader.decoder.decode(raw)
                if e is None:
                    continue
                events += 1
                h = headers.get(e.block_number)
                if h is not None and h.hash != e.block_hash:
                    rules.finding("event_block_mismatch", logs.ledger_of(e) or "", e.tx_hash,
                                  f"event {e.name} says block {e.block_number} is {e.block_hash}; the header is {h.hash}")
                ledger = logs.apply(e)
                if ledger is not None:
                    rules.apply(ledger, e, h.timestamp if h else 0)
            self._progress("events", hi - start + 1, head - start + 1, events)
        return events, header if header is not None and header.number == head else None

    def _replay_consortium(self, rules: _Rules, deployment: Any, first: int, last: int) -> None:
        """A window audit still needs the roles at its first block: replay the consortium before it."""
        address = deployment.address("ConsortiumRegistry")
        reader = LogReader(self.node.backend, {address: load_artifact("ConsortiumRegistry").abi}, chunk=self.chunk)
        for e in reader.events(from_block=first, to_block=last):
            rules.apply("consortium", e, 0)
        rules.s.events.clear()  # counted and timed only inside the window
        rules.s.block_times.clear()

    def _checkpoints(self, findings: list[Finding]) -> dict[str, list[Checkpoint]]:
        link = self.link
        if link is None:
            return {}
        main_head = int(link.backend.w3.eth.block_number)
        check_links = not link.same_chain and main_head - link.contract.block <= MAIN_LINK_CHECK_LIMIT
        headers = fetch_headers(link.backend, link.contract.block, main_head) if check_links else {}
        if check_links:
            for n in range(link.contract.block + 1, main_head + 1):
                if n in headers and n - 1 in headers and headers[n].parent_hash != headers[n - 1].hash:
                    findings.append(Finding("block_link_broken", "backbone", str(n),
                                            f"main-chain block {n} does not link to block {n - 1}"))

        def block_time(n: int) -> int:
            if n not in headers:
                headers.update(fetch_headers(link.backend, n, n))
            return headers[n].timestamp

        return checkpoints_from_events(link.reader().events(from_block=link.contract.block), link.subchain_id, block_time)

    # -- checkpoints ---------------------------------------------------------------------------------------
    def _check_checkpoints(self, logs: LedgerLogs, state: _State, checkpoints: Mapping[str, list[Checkpoint]],
                           head: int, ctx: _Run, findings: list[Finding]) -> int:
        """Returns how many consistency proofs between consecutive checkpoints were verified."""
        if self.link is None or ctx.partial:
            return 0
        verified = 0
        gateway = self._gateway_accounts()
        signatures = self._stored_signatures()
        known = fetch_headers_at(self.node.backend, sorted({c.to_block for cps in checkpoints.values() for c in cps
                                                            if c.to_block <= head}))
        times = {int(k): v for k, v in state.block_times.items()}
        for ledger in LEDGERS:
            lg = logs.log(ledger)
            prev: Checkpoint | None = None
            prev_ok = True
            covered = 0
            for cp in sorted(checkpoints.get(ledger, []), key=lambda c: c.index):
                ref = _h(cp.hash)
                expected_prev = prev.hash if prev else ZERO32
                if cp.prev_hash != expected_prev or cp.index != (prev.index + 1 if prev else 0):
                    findings.append(Finding("checkpoint_chain_broken", ledger, ref,
                                            f"checkpoint #{cp.index} names previous {_h(cp.prev_hash)}, "
                                            f"expected {_h(expected_prev)}"))
                self._check_signature(cp, gateway, signatures, findings)
                header = known.get(cp.to_block)
                ok = True
                if header is None or header.hash != _h(cp.to_block_hash):
                    ok = False
                    now_is = "no longer exists" if header is None else f"is now {header.hash}"
                    findings.append(Finding("subchain_blocks_lost", ledger, ref,
                                            f"checkpoint #{cp.index} covers sub-chain blocks {cp.from_block}..{cp.to_block} "
                                            f"ending in {_h(cp.to_block_hash)}; block {cp.to_block} {now_is} "
                                            f"(head {head}): the sub-chain was reset or rewritten"))
                else:
                    size = lg.size_at_block(cp.to_block)
                    if size != cp.tree_size:
                        ok = False
                        findings.append(Finding("checkpoint_size_mismatch", ledger, ref,
                                                f"checkpoint #{cp.index} says {cp.tree_size} events up to block {cp.to_block}; "
                                                f"the chain has {size}"))
                    elif lg.root(size) != cp.root:
                        ok = False
                        findings.append(Finding("checkpoint_root_mismatch", ledger, ref,
                                                f"checkpoint #{cp.index} root {_h(cp.root)} for size {size}; "
                                                f"the events give {_h(lg.root(size))}"))
                if ok and prev is not None and prev_ok:
                    # RFC 9162 §2.1.4.2 between the two published (size, root) pairs, proof from the replayed log
                    proof = lg.consistency_proof(prev.tree_size, cp.tree_size)
                    if verify_consistency(prev.tree_size, cp.tree_size, prev.root, cp.root, proof):
                        verified += 1
                    else:
                        findings.append(Finding("checkpoint_inconsistent", ledger, ref,
                                                f"checkpoint #{cp.index} is not consistent with #{prev.index}"))
                if ok and cp.tree_size > covered and cp.submitted_at is not None:
                    first_new = times.get(lg.block_of(covered))
                    if first_new is not None and cp.submitted_at - first_new > ctx.deadline:
                        findings.append(Finding("checkpoint_late", ledger, ref,
                                                f"checkpoint #{cp.index} was submitted {cp.submitted_at - first_new:.0f} s "
                                                f"after event {covered} (block {lg.block_of(covered)}); the deadline is "
                                                f"{ctx.deadline:.0f} s"))
                if ok:
                    covered = max(covered, cp.tree_size)
                prev, prev_ok = cp, ok
            if lg.size > covered:
                t = times.get(lg.block_of(covered))
                if t is not None and ctx.now - t > ctx.deadline:
                    findings.append(Finding("checkpoint_missing", ledger, str(covered),
                                            f"{lg.size - covered} events from block {lg.block_of(covered)} on "
                                            f"({ctx.now - t:.0f} s ago) are not covered by any checkpoint; "
                                            f"the deadline is {ctx.deadline:.0f} s"))
        return verified

    def _gateway_accounts(self) -> set[str]:
        assert self.link is not None
        accounts = set()
        for e in self.link.reader().events(from_block=self.link.contract.block):
            if e.name in ("SubchainRegistered", "GatewaySet") and e.args["subchainId"] == self.link.subchain_id:
                accounts.add(e.args["gateway"])
        return accounts

    def _stored_signatures(self) -> dict[str, CheckpointRecord]:
        with self.node.db.session() as s:
            return {r.hash: r for r in s.scalars(select(CheckpointRecord))}

    @staticmethod
    def _check_signature(cp: Checkpoint, gateways: set[str], stored: Mapping[str, CheckpointRecord],
                         findings: list[Finding]) -> None:
        row = stored.get(_h(cp.hash))
        if row is None:
            return  # submitted by another gateway process: its signature lives there
        if recover_signer(cp.hash, row.signature) not in gateways or row.signer not in gateways:
            findings.append(Finding("checkpoint_signature_invalid", cp.ledger, _h(cp.hash),
                                    f"the stored signature of checkpoint #{cp.index} was not made by the sub-chain's gateway"))

    def _check_audit_log(self, checkpoints: list[Checkpoint], findings: list[Finding]) -> None:
        if not checkpoints:
            return
        with self.node.db.session() as s:
            digests = list(s.scalars(select(AuditReportRow.digest).where(AuditReportRow.log_index.is_not(None))
                                     .order_by(AuditReportRow.log_index)))
        leaves = [leaf_hash(bytes.fromhex(d[2:])) for d in digests]
        for cp in checkpoints:
            if cp.tree_size <= len(leaves) and root_from_leaf_hashes(leaves[:cp.tree_size]) != cp.root:
                findings.append(Finding("checkpoint_root_mismatch", AUDIT_LEDGER, _h(cp.hash),
                                        f"audit-report checkpoint #{cp.index} does not match the stored report digests"))

    # -- the database --------------------------------------------------------------------------------------
    def _compare_db(self, state: _State, ctx: _Run, findings: list[Finding], window_start: int | None) -> int:
        """Returns how many database rows were compared."""
        n = self._compare_certificates(state, ctx, findings, window_start)
        n += self._compare_members(state, findings)
        for module, ledger, chain in (("registry.evidence.service", "evidence", state.evidence),
                                      ("registry.exchanges.service", "exchanges", state.exchanges)):
            n += self._compare_records(module, ledger, chain, findings, window_start)
        return n

    def _compare_certificates(self, state: _State, ctx: _Run, findings: list[Finding], window_start: int | None) -> int:
        chain_batches = state.batches
        seen_roots: set[str] = set()
        rows_seen = 0
        deadline_at = dt.datetime.fromtimestamp(ctx.now - ctx.deadline, dt.UTC).replace(tzinfo=None)
        with self.node.db.session() as s:
            inflight = set(s.scalars(select(StatusChange.identifier).where(StatusChange.state.in_(("pending", "sent")))))
            stuck = s.execute(
                select(Certificate.issuer_uscc, Certificate.status, func.count(), func.min(Certificate.created_at))
                .where((Certificate.status == "failed")
                       | ((Certificate.status == "pending") & (Certificate.created_at < deadline_at)))
                .group_by(Certificate.issuer_uscc, Certificate.status)).all()
            for issuer, status, n, oldest in stuck:
                findings.append(Finding("db_record_never_anchored", "certificates", issuer,
                                        f"{n} certificates of {issuer} are {status} since {oldest.isoformat()}Z "
                                        f"(deadline {ctx.deadline:.0f} s)"))
            batches = s.execute(select(Batch.id, Batch.root, Batch.issuer_uscc, Batch.block_number, Batch.tx_hash)
                                .where(Batch.ledger == "certificates", Batch.state == "anchored")).all()
            for batch_id, root, issuer, block, tx in batches:
                if window_start is not None and (block or 0) < window_start:
                    continue
                seen_roots.add(root)
                chain = chain_batches.get(root)
                rows = s.execute(select(Certificate.identifier, Certificate.digest_sha256, Certificate.leaf_index,
                                        Certificate.status).where(Certificate.batch_id == batch_id)
                                 .order_by(Certificate.leaf_index)).all()
                rows_seen += len(rows)
                if chain is None:
                    findings.append(Finding("db_record_not_on_chain", "certificates", root,
                                            f"the database says this batch of {len(rows)} certificates was anchored in "
                                            f"block {block} (tx {tx}); the chain has no such anchor"))
                    continue
                if chain[1] != issuer:
                    findings.append(Finding("issuer_mismatch", "certificates", root,
                                            f"the database says issuer {issuer}; the chain says {chain[1]}"))
                self._check_batch(s, root, chain, rows, findings)
                self._check_statuses(state, rows, inflight, findings)
        for root, chain in chain_batches.items():
            if root not in seen_roots and (window_start is None or chain[3] >= window_start):
                findings.append(Finding("chain_record_not_in_db", "certificates", root,
                                        f"batch of {chain[2]} anchored by {chain[1]} in block {chain[3]} (tx {chain[4]}) "
                                        f"is not in the database"))
        self._check_unknown_docs(state, findings)
        return rows_seen

    def _check_batch(self, s: Any, root: str, chain: list[Any], rows: Sequence[Any], findings: list[Finding]) -> None:
        count = int(chain[2])
        indexes = [r[2] for r in rows]
        if len(rows) < count:
            missing = sorted(set(range(count)) - set(i for i in indexes if i is not None))
            findings.append(Finding("db_row_missing", "certificates", root,
                                    f"the chain anchored {count} documents under this root; the database has {len(rows)} "
                                    f"(missing leaf indexes {missing[:20]}{' ...' if len(missing) > 20 else ''})"))
            return
        if len(rows) > count:
            findings.append(Finding("db_row_extra", "certificates", root,
                                    f"the chain anchored {count} documents under this root; the database has {len(rows)}"))
            return
        leaves = [hashlib.sha256(b"\x00" + bytes.fromhex(r[1])).digest() for r in rows]  # RFC 6962 leaf hash
        if indexes == list(range(count)) and root_from_leaf_hashes(leaves) == bytes.fromhex(root[2:]):
            return
        # localise: each row's stored audit path must lead from its digest to the anchored root
        proofs = dict(s.execute(select(Certificate.identifier, Certificate.proof)
                                .where(Certificate.identifier.in_([r[0] for r in rows]))).all())
        bad = []
        for (ident, _digest, index, _status), leaf in zip(rows, leaves, strict=True):
            raw = proofs.get(ident) or b""
            path = [raw[i:i + 32] for i in range(0, len(raw), 32)]
            if index is None or not verify_inclusion_leaf_hash(leaf, index, count, path, bytes.fromhex(root[2:])):
                bad.append(ident)
        for ident in bad or [root]:
            findings.append(Finding("digest_mismatch", "certificates", ident,
                                    f"the database row no longer matches batch root {root} anchored in block {chain[3]} "
                                    f"(its digest or leaf position was changed)"))

    @staticmethod
    def _check_statuses(state: _State, rows: Sequence[Any], inflight: set[str], findings: list[Finding]) -> None:
        docs = state.docs
        for ident, digest, _index, status in rows:
            if ident in inflight or status not in _DOC_STATUS:
                continue
            on_chain = docs.get("0x" + digest)
            chain_status = on_chain[0] if on_chain else 0
            if _DOC_STATUS[status] == chain_status:
                continue
            if on_chain is not None and chain_status == 2 and status == "issued":
                findings.append(Finding("revoked_but_valid_in_db", "certificates", ident,
                                        f"revoked on chain in block {on_chain[3]} (reason {on_chain[1]}); "
                                        f"the database says issued"))
            else:
                findings.append(Finding("status_mismatch", "certificates", ident,
                                        f"the chain says {_DOC_NAMES[chain_status]}, the database says {status}"))

    def _check_unknown_docs(self, state: _State, findings: list[Finding]) -> None:
        keys = list(state.docs)
        with self.node.db.session() as s:
            known: set[str] = set()
            for i in range(0, len(keys), 900):
                chunk = [k[2:] for k in keys[i:i + 900]]
                known.update(s.scalars(select(Certificate.digest_sha256).where(Certificate.digest_sha256.in_(chunk))))
        for key in keys:
            if key[2:] not in known:
                d = state.docs[key]
                findings.append(Finding("chain_record_not_in_db", "certificates", key,
                                        f"a document of batch {d[2]} changed to {_DOC_NAMES[d[0]]} in block {d[3]}; "
                                        f"the database does not know it"))

    def _compare_members(self, state: _State, findings: list[Finding]) -> int:
        with self.node.db.session() as s:
            rows = {r.uscc: r for r in s.scalars(select(Member))}
        for uscc, (name, bid, roles, status, accounts) in state.members.items():
            row = rows.pop(uscc, None)
            if row is None:
                findings.append(Finding("chain_record_not_in_db", "consortium", uscc, f"member {name} is not in the database"))
                continue
            mirrored = (("roles", row.roles, roles), ("status", row.status, status), ("bid", row.bid, bid),
                        ("name", row.name, name),
                        ("accounts", sorted(x.lower() for x in row.accounts), sorted(x.lower() for x in accounts)))
            diffs = [what for what, a, b in mirrored if a != b]
            if diffs:
                findings.append(Finding("member_mismatch", "consortium", uscc,
                                        f"the database's copy of {name} differs from the registry in: {', '.join(diffs)}"))
        for uscc, row in rows.items():
            findings.append(Finding("db_record_not_on_chain", "consortium", uscc, f"member {row.name} is not on chain"))
        return len(state.members)

    def _compare_records(self, module_name: str, ledger: str, chain: Mapping[str, list[Any]],
                         findings: list[Finding], window_start: int | None) -> int:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return 0
        records_fn = getattr(module, "audit_records", None)
        if records_fn is None:
            return 0
        seen: set[str] = set()
        n = 0
        with self.node.db.session() as s:
            for rec in records_fn(s):
                n += 1
                self._compare_record(rec, ledger, chain, seen, findings, window_start)
        for key in chain:
            if key not in seen and window_start is None:
                findings.append(Finding("chain_record_not_in_db", ledger, key, f"the {ledger} record {key} is on chain "
                                        f"but not in the database"))
        return n

    @staticmethod
    def _compare_record(rec: LedgerRecord, ledger: str, chain: Mapping[str, list[Any]], seen: set[str],
                        findings: list[Finding], window_start: int | None) -> None:
        key = _norm(rec.key)
        if not rec.anchored:
            return
        if window_start is not None and (rec.block_number or 0) < window_start:
            seen.add(key)
            return
        on_chain = chain.get(key)
        if on_chain is None:
            findings.append(Finding("db_record_not_on_chain", ledger, str(rec.ref),
                                    f"the database says {ledger} record {rec.ref} (key {key}) is on chain since block "
                                    f"{rec.block_number}; the chain has no such record"))
            return
        seen.add(key)
        digests = on_chain[4] if ledger == "evidence" else on_chain[3]
        if rec.digest and _norm(rec.digest) not in digests:
            findings.append(Finding("digest_mismatch", ledger, str(rec.ref),
                                    f"the database row's digest {_norm(rec.digest)} is none of the digests on chain "
                                    f"for key {key}"))

    # -- snapshots -----------------------------------------------------------------------------------------
    def _save_snapshot(self, state: _State, logs: LedgerLogs, block: int, block_hash: str, partial: bool) -> None:
        data = {"v": 1, "chain_id": logs.chain_id, "partial": partial, "state": state.to_json(),
                "logs": {name: logs.log(name).state() for name in LEDGERS}}
        blob = zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)
        with self.node.db.session() as s:
            row = AuditSnapshot(block=block, block_hash=block_hash, data=blob)
            s.add(row)
            s.flush()
            for old in s.scalars(select(AuditSnapshot).where(AuditSnapshot.id != row.id)):
                s.delete(old)  # one snapshot is enough to resume from
            s.merge(KeyValue(key=CURSOR_KEY, value=json.dumps({"snapshot": row.id, "block": block, "block_hash": block_hash})))

    def _load_snapshot(self, logs: LedgerLogs, notes: list[Finding]) -> tuple[_State, int, str, bool] | None:
        with self.node.db.session() as s:
            cursor = s.get(KeyValue, CURSOR_KEY)
            if cursor is None:
                return None
            c = json.loads(cursor.value)
            row = s.get(AuditSnapshot, c["snapshot"])
            if row is None:
                return None
            data = json.loads(zlib.decompress(row.data))
        if data.get("chain_id") != logs.chain_id:
            return None
        current = fetch_headers(self.node.backend, c["block"], c["block"]).get(c["block"])
        if current is None or current.hash != c["block_hash"]:
            notes.append(Finding("subchain_blocks_lost", "", str(c["block"]),
                                    f"the audit cursor's block {c['block']} ({c['block_hash']}) is "
                                    f"{'gone' if current is None else 'now ' + current.hash}: replaying from the start"))
            return None
        for name in LEDGERS:
            logs.logs[name] = LedgerLog.from_state(name, data["logs"][name])
        return _State.from_json(data["state"]), int(c["block"]), str(c["block_hash"]), bool(data.get("partial"))

    # -- the report ----------------------------------------------------------------------------------------
    def _report(self, state: _State, logs: LedgerLogs, checkpoints: Mapping[str, list[Checkpoint]],
                findings: list[Finding], db_records: int, consistency: int, head: int, head_header: Header | None,
                start: int, resumed_from: int | None, events: int, read_seconds: float, seconds: float,
                ctx: _Run) -> AuditReport:
        deployment = self.node.require_deployment()
        docs = Counter(_DOC_NAMES[d[0]] for d in state.docs.values())
        all_cps = [c for cps in checkpoints.values() for c in cps]
        counts: dict[str, Any] = {
            "findings": len(findings),
            "events": sum(state.events.values()),
            "events_read": events,
            "events_by_ledger": {name: state.events.get(name, 0) for name in LEDGERS},
            "blocks": max(head - start + 1, 0),
            "batches": len(state.batches),
            "certificates_anchored": sum(int(b[2]) for b in state.batches.values()),
            "certificates_revoked": docs.get("revoked", 0),
            "certificates_suspended": docs.get("suspended", 0),
            "certificates_superseded": docs.get("superseded", 0),
            "evidence_records": len(state.evidence),
            "cases": len(state.cases),
            "exchanges": len(state.exchanges),
            "members": len(state.members),
            "checkpoints": len(all_cps),
            "cosignatures": sum(len(c.cosigners) for c in all_cps),
            "consistency_proofs": consistency,
            "db_records": db_records,
            "by_kind": dict(Counter(f.kind for f in findings)),
        }
        ledgers: dict[str, Any] = {}
        for name in LEDGERS:
            lg = logs.log(name)
            cps = sorted(checkpoints.get(name, []), key=lambda c: c.index)
            ledgers[name] = {"size": lg.size, "root": _h(lg.root()), "checkpoints": len(cps),
                             "latest_checkpoint": cps[-1].to_json() if cps else None}
        if checkpoints.get(AUDIT_LEDGER):
            cps = sorted(checkpoints[AUDIT_LEDGER], key=lambda c: c.index)
            ledgers[AUDIT_LEDGER] = {"size": cps[-1].tree_size, "root": _h(cps[-1].root), "checkpoints": len(cps),
                                     "latest_checkpoint": cps[-1].to_json()}
        agencies = {uscc: m[0] for uscc, m in state.members.items()}
        for seed in self.node.seeds.members:
            agencies[seed.uscc] = seed.short_name
        link = self.link
        data: dict[str, Any] = {
            "format": REPORT_FORMAT,
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "findings": [f.to_json() for f in findings],
            "counts": counts,
            "subchain": {"chain_id": deployment.chain_id, "from_block": deployment.first_block if resumed_from is not None
                         else start, "to_block": head, "to_block_hash": head_header.hash if head_header else None,
                         "contracts": {c: deployment.address(c) for c in LEDGER_CONTRACTS.values() if c in deployment.contracts}},
            "main_chain": None if link is None else {
                "chain_id": link.chain_id, "backbone": link.contract.address, "subchain_id": _h(link.subchain_id),
                "same_chain": link.same_chain},
            "ledgers": ledgers,
            "anchored_per_day": state.per_day,
            "agencies": agencies,
            "deadline_seconds": ctx.deadline,
            "partial": ctx.partial,
            "resumed_from": resumed_from,
            "timing": {"seconds": round(seconds, 3), "read_seconds": round(read_seconds, 3),
                       "events_per_second": round(events / read_seconds, 1) if read_seconds > 0 else None},
        }
        return AuditReport(data)


def _norm(value: str) -> str:
    text = str(value).lower()
    return text if text.startswith("0x") else "0x" + text


def audit_link(node: Node, main_backend: Any = None) -> BackboneLink | None:
    """The Backbone to check checkpoints against, without registering anything (None when there is none)."""
    from registry.logs.checkpoints import connect_backbone

    try:
        return connect_backbone(node, main_backend, setup=False)
    except NotFoundError:
        deployment = node.require_deployment()
        if main_backend is None and "Backbone" in deployment.contracts:
            return BackboneLink(node, node.backend, deployment.contracts["Backbone"], chain_id=deployment.chain_id)
        return None


def clear_cursor(node: Node) -> None:
    with node.db.session() as s:
        row = s.get(KeyValue, CURSOR_KEY)
        if row is not None:
            s.delete(row)


__all__ = ["Auditor", "Header", "audit_link", "clear_cursor", "fetch_headers", "fetch_headers_at"]
