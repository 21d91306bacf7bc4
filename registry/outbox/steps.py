"""The outbox shared by the evidence and exchange ledgers: every step is a row committed before its
transaction (DESIGN.md, Durability); the request tries to send it at once and `OutboxWorker` resends what
an outage left pending. A resend first looks for the step on chain (its receipt, else its event in the
logs), so nothing is done twice; steps whose block a reset chain lost go back to pending.

Also the small helpers both ledgers use (hashing keys, text and digest validation, row locks, roles).

    >>> worker = OutboxWorker(EvidenceService(node)).start()      # doctest: +SKIP
    >>> worker.stop()                                             # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import rfc8785
import structlog
from eth_typing import HexStr
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from chain.contracts import MemberStatus, Role
from chain.errors import ChainError, ContractRevertError, TransactionError
from chain.errors import ChainUnavailableError as ChainDown
from chain.ledgers import block_hashes, decode_raw_transaction, fetch_outcomes
from chain.logs import Event
from chain.sender import PendingTx, Receipt, TransactionSender
from registry.consortium.members import translate_revert
from registry.errors import (
    ChainUnavailableError,
    PermissionDeniedError,
    RegistryError,
    ValidationError,
)
from registry.node import Node
from registry.store.db import Member, utcnow
from registry.store.ledger_models import LedgerSerial, StepState

log = structlog.get_logger(__name__)

_HEX64 = re.compile(r"[0-9a-f]{64}")

# =====================================================================================================
# Small helpers shared with registry/exchanges/service.py and registry/evidence/package.py
# =====================================================================================================


def sha256_key(text: str) -> bytes:
    """The on-chain key of an identifier or case number: SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def hex0x(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def canonical_digest(obj: Any) -> bytes:
    """SHA-256 of the RFC 8785 (JCS) canonical JSON of `obj`."""
    return hashlib.sha256(rfc8785.dumps(obj)).digest()


def iso_time(timestamp: int | None) -> str | None:
    """A block timestamp as ISO 8601 UTC (``2026-03-15T08:30:00Z``)."""
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(int(timestamp), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalise_digest(value: Any, what: str) -> str:
    """64 lower-case hex digits (an optional 0x prefix is accepted)."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be 64 hex digits, got {type(value).__name__}", code="invalid_digest",
                              details={"field": what})
    text = value.strip().lower().removeprefix("0x")
    if not _HEX64.fullmatch(text):
        raise ValidationError(f"{what} must be 64 hex digits (32 bytes), got {value[:80]!r}", code="invalid_digest",
                              details={"field": what})
    return text


def required_text(value: Any, what: str, code: str, *, max_length: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValidationError(f"{what} is required", code=code, details={"field": what})
    if len(text) > max_length:
        raise ValidationError(f"{what} is {len(text)} characters long, at most {max_length} allowed",
                              code="field_too_long", details={"field": what})
    return text


def optional_text(value: Any, what: str, *, max_length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}", code="invalid_field",
                              details={"field": what})
    text = value.strip()
    if len(text) > max_length:
        raise ValidationError(f"{what} is {len(text)} characters long, at most {max_length} allowed",
                              code="field_too_long", details={"field": what})
    return text or None


def next_serial(s: Session, prefix: str) -> int:
    """Reserve the next serial for `prefix` inside the caller's transaction. The UPDATE takes the write lock
    first, so concurrent requests never share a serial, and a rolled-back request consumes none."""
    result = s.execute(update(LedgerSerial).where(LedgerSerial.prefix == prefix).values(last=LedgerSerial.last + 1))
    bumped = cast(CursorResult[Any], result).rowcount
    if not bumped:
        s.add(LedgerSerial(prefix=prefix, last=1))
        s.flush()
        return 1
    return int(s.scalar(select(LedgerSerial.last).where(LedgerSerial.prefix == prefix)) or 0)


def lock_row(s: Session, column: Any, key: Any, value: Any) -> None:
    """Open the unit of work with a write on the row it is about to change (`UPDATE t SET column = column
    WHERE key = value`): SQLite takes its write lock there, PostgreSQL locks the row. The checks that
    follow and the step they allow are then atomic; a concurrent request waits and sees the new state
    (pysqlite runs SELECTs before the first write outside the transaction, hence a write first)."""
    s.execute(update(column.class_).where(key == value).values({column.key: column}))


def require_role(s: Session, agency: str, role: Role, code: str) -> Member:
    """The acting agency must be an Active member holding `role` (the contracts check it again)."""
    member = s.get(Member, agency)
    if member is None:
        raise PermissionDeniedError(f"agency {agency} is not a consortium member", code="not_a_member")
    if member.status != int(MemberStatus.ACTIVE):
        raise PermissionDeniedError(f"agency {agency} is {MemberStatus(member.status).name.lower()}, not active",
                                    code="member_not_active")
    if not Role(member.roles) & role:
        raise PermissionDeniedError(
            f"agency {agency} ({member.name}) does not hold the {(role.name or str(role)).lower()} role "
            f"(it holds: {', '.join(Role(member.roles).names()) or 'none'})", code=code)
    return member


def agency_json(s: Session, uscc: str | None) -> dict[str, Any] | None:
    if uscc is None:
        return None
    m = s.get(Member, uscc)
    if m is None:
        return {"uscc": uscc, "name": None, "short_name": None, "bid": None}
    return {"uscc": uscc, "name": m.name, "short_name": m.short_name or m.name, "bid": m.bid}


def is_auditor(s: Session, agency: str) -> bool:
    m = s.get(Member, agency)
    return bool(m is not None and Role(m.roles) & Role.AUDITOR and m.status == int(MemberStatus.ACTIVE))


# =====================================================================================================
# Outbox machinery shared by the evidence and exchange services
# =====================================================================================================


@dataclass(frozen=True)
class StepCall:
    """One step ready to send: the transaction, and how to recognise the step among the ledger's events."""

    step_id: int
    actor: str
    key: bytes  # the first indexed argument of the step's event (record id, case id, exchange id)
    fn: Any  # a web3 ContractFunction
    gas: int
    event: str
    expect: Mapping[str, Any]  # event arguments that identify this step besides the key
    tx_hash: str | None  # the previous attempt's transaction, if one was sent


class OutboxLedgerService(ABC):
    """Sends a ledger's step rows: at once (the request's own attempt), pipelined (many at once), or as a
    resend from the worker. Subclasses describe their steps; this class owns claims, the chain checks and
    the outbox states."""

    step_model: ClassVar[Any]
    ledger_name: ClassVar[str]
    receipt_timeout: float = 15.0
    resend_after: float = 1.0  # seconds before the worker takes over a step its request has not sent

    def __init__(self, node: Node) -> None:
        self.node = node
        self._inflight: set[int] = set()
        self._inflight_lock = threading.Lock()
        self.last_error: str | None = None

    # -- subclass hooks ------------------------------------------------------------------------------
    @abstractmethod
    def _ledger(self) -> Any: ...

    @abstractmethod
    def _call_for(self, s: Session, step: Any) -> StepCall: ...

    @abstractmethod
    def _apply_mirror(self, s: Session, step: Any) -> None:
        """The step is on chain: update the mirrored state."""

    @abstractmethod
    def _discard(self, s: Session, step: Any) -> None:
        """The contract refused the request's own attempt: remove everything the request stored."""

    @abstractmethod
    def _created_row(self, s: Session, step: Any) -> Any | None:
        """The row (with a `status`) that `step` creates, when it is the creating step (register, request)."""

    def _mark_failed(self, s: Session, step: Any) -> None:
        """The contract refused a resend: keep the step as failed and flag the row it was creating."""
        row = self._created_row(s, step)
        if row is not None:
            row.status = "failed"

    @abstractmethod
    def _scopes(self, step: Any) -> tuple[set[str], set[str]]:
        """(scopes that must be clear for this step to run, scopes it blocks while unfinished)."""

    # -- claims: a step is sent by one thread of this process at a time ------------------------------
    def _claim(self, ids: Iterable[int]) -> list[int]:
        with self._inflight_lock:
            got = [i for i in ids if i not in self._inflight]
            self._inflight.update(got)
            return got

    def _release(self, ids: Iterable[int]) -> None:
        with self._inflight_lock:
            self._inflight.difference_update(ids)

    @contextmanager
    def _claimed(self, ids: Sequence[int], *, already: bool) -> Iterator[list[int]]:
        got = list(ids) if already else self._claim(ids)
        try:
            yield got
        finally:
            self._release(got)

    # -- chain helpers -------------------------------------------------------------------------------
    def _block(self, number: int) -> tuple[str, int]:
        block = self.node.backend.w3.eth.get_block(number)
        return "0x" + bytes(block["hash"]).hex(), int(block["timestamp"])

    def _receipt(self, tx_hash: str) -> Any:
        try:
            return self.node.backend.w3.eth.get_transaction_receipt(HexStr(tx_hash))
        except ChainDown:
            raise
        except Exception:  # TransactionNotFound: the node never saw it, or lost it
            return None

    def _raw_tx(self, tx_hash: str) -> bytes | None:
        try:
            return bytes(self.node.backend.w3.eth.get_raw_transaction(HexStr(tx_hash)))
        except ChainDown:
            raise
        except Exception:
            return None

    def _already_on_chain(self, call: StepCall) -> Event | None:
        """The step's event on chain that no done step of ours accounts for, if any (check before resending)."""
        first = self.node.require_deployment().first_block
        candidates = [e for e in self._ledger().events_for(call.key, from_block=first)
                      if e.name == call.event and all(e.args.get(k) == v for k, v in call.expect.items())]
        if not candidates:
            return None
        with self.node.db.session() as s:
            model = self.step_model
            known = set(s.scalars(select(model.tx_hash).where(
                model.tx_hash.in_([e.tx_hash for e in candidates]), model.state == StepState.DONE.value,
                model.id != call.step_id)))
        unclaimed = [e for e in candidates if e.tx_hash not in known]
        return unclaimed[0] if unclaimed else None

    # -- state changes -------------------------------------------------------------------------------
    def _load_call(self, step_id: int) -> StepCall | None:
        return self._load_calls([step_id])[0]

    def _load_calls(self, step_ids: Sequence[int]) -> list[StepCall | None]:
        """The calls of unfinished steps (None for done or failed ones), read in one session."""
        with self.node.db.session() as s:
            steps = {st.id: st for st in s.scalars(select(self.step_model).where(self.step_model.id.in_(list(step_ids))))}
            out: list[StepCall | None] = []
            for step_id in step_ids:
                step = steps.get(step_id)
                done = step is None or step.state in (StepState.DONE.value, StepState.FAILED.value)
                out.append(None if done else self._call_for(s, step))
            return out

    def _mark_sent(self, items: Sequence[tuple[StepCall, PendingTx, str]]) -> None:
        with self.node.db.session() as s:
            for call, pending, account in items:
                s.execute(update(self.step_model).where(self.step_model.id == call.step_id).values(
                    state=StepState.SENT.value, tx_hash=pending.tx_hash, raw_tx=pending.raw, account=account,
                    attempts=self.step_model.attempts + 1))

    def _finish(self, items: Sequence[tuple[StepCall, str, int, str | None, bytes | None]],
                blocks: Mapping[int, tuple[str, int]] | None = None) -> None:
        """Mark steps done: (call, tx hash, block number, account, raw tx) each, in one transaction.
        `blocks` (number -> hash, timestamp) saves looking blocks up one by one."""
        known = dict(blocks or {})
        blocks = {number: known.get(number) or self._block(number) for _, _, number, _, _ in items}
        with self.node.db.session() as s:
            for call, tx_hash, number, account, raw in items:
                step = s.get(self.step_model, call.step_id)
                if step is None or step.state == StepState.DONE.value:
                    continue
                block_hash, ts = blocks[number]
                step.state, step.tx_hash, step.block_number = StepState.DONE.value, tx_hash, number
                step.block_hash, step.block_timestamp, step.done_at, step.error = block_hash, ts, utcnow(), None
                if account:
                    step.account = account
                if raw is not None:
                    step.raw_tx = raw
                self._apply_mirror(s, step)
        if len(items) == 1:
            call, tx_hash, number, _, _ = items[0]
            log.debug("ledger step on chain", ledger=self.ledger_name, step=call.step_id, tx=tx_hash, block=number)
        elif items:
            log.info("ledger steps on chain", ledger=self.ledger_name, count=len(items),
                     blocks=f"{min(i[2] for i in items)}-{max(i[2] for i in items)}")

    def _finish_from_event(self, call: StepCall, event: Event) -> None:
        raw = self._raw_tx(event.tx_hash)
        account = decode_raw_transaction(raw).sender if raw is not None else None
        self._finish([(call, event.tx_hash, event.block_number, account, raw)])

    def _refuse(self, call: StepCall, exc: ContractRevertError, *, immediate: bool) -> RegistryError:
        domain = translate_revert(exc)
        assert isinstance(domain, RegistryError)
        with self.node.db.session() as s:
            step = s.get(self.step_model, call.step_id)
            if step is not None and step.state != StepState.DONE.value:  # done meanwhile by another process
                if immediate:
                    self._discard(s, step)
                else:
                    step.state, step.error = StepState.FAILED.value, str(exc)
                    self._mark_failed(s, step)
        log.warning("ledger step refused by the contract", ledger=self.ledger_name, step=call.step_id,
                    error=exc.name, kept=not immediate)
        return domain

    # -- sending -------------------------------------------------------------------------------------
    def run_step(self, step_id: int, *, immediate: bool = False, claimed: bool = False) -> bool:
        """Send one step and wait for it. True if it is done now; False if another thread has it.
        Raises the translated refusal (a RegistryError), or a chain error if the chain is unreachable."""
        with self._claimed([step_id], already=claimed) as got:
            if not got:
                return False
            call = self._load_call(step_id)
            if call is None:
                return True
            if call.tx_hash:  # sent before: its receipt decides
                r = self._receipt(call.tx_hash)
                if r is not None and int(r["status"]) == 1:
                    self._finish([(call, call.tx_hash, int(r["blockNumber"]), None, None)])
                    return True
            if call.tx_hash or not immediate:  # a resend: the chain may have it under another transaction
                event = self._already_on_chain(call)
                if event is not None:
                    self._finish_from_event(call, event)
                    return True
            sender = self.node.sender_for(call.actor)
            try:
                pending = sender.send(call.fn)  # no explicit gas: the estimate simulates it, so a refusal
                self._mark_sent([(call, pending, sender.address)])  # surfaces before anything is broadcast
                receipt = sender.wait(pending, timeout=self.receipt_timeout)
            except ContractRevertError as exc:
                event = self._already_on_chain(call)  # a duplicate of a step that did happen
                if event is not None:
                    self._finish_from_event(call, event)
                    return True
                raise self._refuse(call, exc, immediate=immediate) from exc
            self._finish([(call, receipt.tx_hash, receipt.block_number, sender.address, None)])
            return True

    def run_pipelined(self, step_ids: Sequence[int], *, claimed: bool = False) -> dict[int, RegistryError]:
        """Send many independent steps without waiting in between (explicit gas, one nonce counter per
        account), then collect the receipts. Refused steps are discarded and returned by id; a chain
        outage leaves the rest for the worker."""
        refused: dict[int, RegistryError] = {}
        with self._claimed(step_ids, already=claimed) as got:
            calls = [c for c in self._load_calls(got) if c is not None]
            inflight: list[tuple[StepCall, PendingTx, TransactionSender]] = []
            try:
                for call in calls:
                    sender = self.node.sender_for(call.actor)
                    try:
                        inflight.append((call, sender.send(call.fn, gas=call.gas), sender))
                    except ContractRevertError as exc:
                        refused[call.step_id] = self._refuse(call, exc, immediate=True)
            finally:
                if inflight:
                    self._mark_sent([(c, p, snd.address) for c, p, snd in inflight])
            done: list[tuple[StepCall, str, int, str | None, bytes | None]] = []
            blocks: dict[int, tuple[str, int]] = {}
            try:
                # most receipts are there by now: fetch them (and their blocks) in batch requests
                outcomes = fetch_outcomes(self.node.backend, [p.tx_hash for _, p, _ in inflight]) if inflight else {}
                for call, pending, sender in inflight:
                    o = outcomes.get(pending.tx_hash)
                    if o is not None and o.status == 1:
                        blocks[o.block_number] = (o.block_hash, o.timestamp)
                        done.append((call, pending.tx_hash, o.block_number, sender.address, None))
                        continue
                    try:  # not mined yet, or reverted: wait() waits, or names the contract's error
                        receipt: Receipt = sender.wait(pending, timeout=self.receipt_timeout)
                    except ContractRevertError as exc:
                        event = self._already_on_chain(call)  # another process sent it first
                        if event is not None:
                            self._finish_from_event(call, event)
                        else:
                            refused[call.step_id] = self._refuse(call, exc, immediate=True)
                        continue
                    done.append((call, receipt.tx_hash, receipt.block_number, sender.address, None))
            finally:
                if done:
                    self._finish(done, blocks)
        return refused

    def try_now(self, step_id: int) -> bool:
        """The request's own attempt: True if done, False if left for the worker (chain unreachable)."""
        try:
            return self.run_step(step_id, immediate=True, claimed=True)
        except (ChainDown, TransactionError) as exc:
            self.last_error = str(exc)
            log.warning("chain unreachable; the step stays in the outbox", ledger=self.ledger_name, step=step_id,
                        error=str(exc))
            return False

    # -- the worker's pass ---------------------------------------------------------------------------
    def process_pending(self) -> int:
        """Resend unfinished steps in order (per scope). Returns how many were completed. A chain outage
        propagates (the worker backs off); a refusal marks that step failed and the pass goes on."""
        model = self.step_model
        # a step never attempted and only just committed is left to the request that made it (another API
        # process's attempt is not visible in our claims); resending it is safe anyway, only wasteful
        fresh = utcnow() - dt.timedelta(seconds=self.resend_after)
        with self.node.db.session() as s:
            steps = s.scalars(select(model).where(model.state.in_((StepState.PENDING.value, StepState.SENT.value)))
                              .order_by(model.id)).all()
            plan = [(st.id, *self._scopes(st), st.attempts == 0 and st.created_at > fresh) for st in steps]
        blocked: set[str] = set()
        done = 0
        for step_id, needs, blocks, too_fresh in plan:
            if too_fresh or needs & blocked:
                blocked |= blocks
                continue
            try:
                finished = self.run_step(step_id)
            except RegistryError:
                continue  # refused: marked failed with its reason
            if finished:
                done += 1
            else:
                blocked |= blocks
        return done

    def reconcile(self, *, window: int = 2000) -> int:
        """Steps marked done whose block the chain no longer has (a devnet restarted from older state) go
        back to pending; the next pass finds them on chain or sends them again. Returns how many."""
        model = self.step_model
        with self.node.db.session() as s:
            rows = s.execute(select(model.id, model.block_number, model.block_hash).where(
                model.state == StepState.DONE.value).order_by(model.id.desc()).limit(window)).all()
        hashes = block_hashes(self.node.backend, sorted({n for _, n, _ in rows if n is not None}))
        lost = [step_id for step_id, number, block_hash in rows if number is not None and hashes.get(number) != block_hash]
        if lost:
            with self.node.db.session() as s:
                for step in s.scalars(select(model).where(model.id.in_(lost))):
                    step.state = StepState.PENDING.value
                    self._on_lost(s, step)
            log.warning("the chain lost ledger steps; they will be sent again", ledger=self.ledger_name,
                        count=len(lost))
        return len(lost)

    def _on_lost(self, s: Session, step: Any) -> None:
        """A done step's block is gone (reconcile): the row it created is pending again until resent."""
        row = self._created_row(s, step)
        if row is not None:
            row.status = "pending"

    def pending_count(self) -> int:
        model = self.step_model
        with self.node.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(model).where(
                model.state.in_((StepState.PENDING.value, StepState.SENT.value)))) or 0)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until no step is pending (tests, the CLI's --wait)."""
        deadline = time.monotonic() + timeout
        while self.pending_count():
            if time.monotonic() > deadline:
                raise ChainUnavailableError(f"{self.pending_count()} {self.ledger_name} steps still pending after "
                                            f"{timeout:.0f} s (last error: {self.last_error})", code="steps_pending")
            time.sleep(0.05)


class OutboxWorker:
    """The background sender of one ledger's outbox: resends pending steps, reconciles after an outage.

        >>> worker = OutboxWorker(service, poll=0.25); worker.start(); ...; worker.stop()   # doctest: +SKIP
    """

    def __init__(self, service: OutboxLedgerService, *, poll: float = 0.25, max_backoff: float = 2.0,
                 reconcile_every: float = 30.0) -> None:
        self.service = service
        self.poll = poll
        self.max_backoff = max_backoff
        self.reconcile_every = reconcile_every
        self._last_reconcile = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._needs_reconcile = True

    def start(self) -> OutboxWorker:
        self._thread = threading.Thread(target=self._run, name=f"{self.service.ledger_name}-outbox", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def run_once(self) -> int:
        # after an outage, and now and then anyway: a devnet restarted from an older state loses blocks
        # without any request failing
        if self._needs_reconcile or time.monotonic() - self._last_reconcile > self.reconcile_every:
            self.service.reconcile()
            self._needs_reconcile = False
            self._last_reconcile = time.monotonic()
        return self.service.process_pending()

    def _run(self) -> None:
        backoff = self.poll
        while not self._stop.is_set():
            try:
                self.run_once()
                backoff = self.poll
            except (ChainError, OSError) as exc:
                # the node is down or restarting: keep every row, retry with backoff, reconcile when back
                self.service.last_error = str(exc)
                self._needs_reconcile = True
                self.service.node.reset_senders()
                log.warning("chain unavailable; outbox will retry", ledger=self.service.ledger_name, error=str(exc),
                            backoff=backoff)
                backoff = min(backoff * 2, self.max_backoff)
            except Exception as exc:  # never let the worker die
                self.service.last_error = repr(exc)
                log.exception("outbox worker error", ledger=self.service.ledger_name, error=repr(exc))
                backoff = min(backoff * 2, self.max_backoff)
            self._wake.wait(backoff)
            self._wake.clear()
