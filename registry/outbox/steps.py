"""A ledger's outbox steps and how they reach the chain, written once for every kind of step: certificate
batches, certificate status changes, evidence steps and exchange steps (DESIGN.md, Durability).

A step is a row committed before its transaction. The request that made it may try to send it at once
(`run_step(immediate=True)`); `OutboxWorker` (registry/outbox/worker.py) sends what is left. Three rules
make that safe whatever crashes when:

* **crash recovery**: the state column says how far a step got (`StepState`: pending -> sent -> done);
  a step is resumed from there, by whichever process looks next;
* **receipts before resending**: a step that was sent has its receipt looked up first, and any resend
  first looks for the step's event on chain (one not already accounted for by another done step), so a
  transaction broadcast just before a crash is recognised, not sent twice;
* **reconciliation**: a done step whose block the chain no longer has (a devnet restarted from an older
  state) goes back to pending and is found or sent again.

A subclass describes its steps (the transaction, the event that proves it, what the step changes in the
mirrored rows); this class owns claims, chain checks and state changes.

    >>> lane = EvidenceSteps(node)                 # doctest: +SKIP
    >>> lane.run_step(step_id, immediate=True)      # doctest: +SKIP
    True
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import structlog
from sqlalchemy import Exists, func, select, update
from sqlalchemy.orm import Session

from chain.artifacts import load_artifact
from chain.errors import ChainUnavailableError as ChainDown
from chain.errors import ContractRevertError, TransactionError
from chain.ledgers import decode_raw_transaction
from chain.logs import Event, EventDecoder
from chain.sender import PendingTx, TransactionSender
from registry.consortium.members import translate_revert
from registry.crypto.hashing import hex0x
from registry.errors import ChainUnavailableError, RegistryError
from registry.node import Node
from registry.store.claims import StepClaims
from registry.store.db import utcnow
from registry.store.states import StepState

__all__ = ["Landed", "Readiness", "StepCall", "StepLedger"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class StepCall:
    """One step ready to send: the transaction, and how to recognise the step among the ledger's events."""

    step_id: int
    actor: str
    key: bytes  # the first indexed argument of the step's event (record id, case id, exchange id, root, doc)
    fn: Any  # a contract function, built by chain/'s typed clients
    gas: int | None  # explicit gas for pipelined sends (None: estimate, which also surfaces a refusal early)
    event: str
    expect: Mapping[str, Any]  # event arguments that identify this step besides the key
    tx_hash: str | None  # the previous attempt's transaction, if one was sent


@dataclass(frozen=True)
class Landed:
    """A step known to be on chain: its transaction and block (and what else was learnt on the way)."""

    call: StepCall
    tx_hash: str
    block_number: int
    account: str | None = None
    raw: bytes | None = None
    gas_used: int | None = None


class Readiness(Enum):
    FINISHED = "finished"  # done, failed or gone: nothing to send
    WAITING = "waiting"  # not sendable yet (e.g. a status change whose batch is not anchored)


@functools.cache
def _decoder(contract: str, address: str) -> EventDecoder:
    return EventDecoder({address: load_artifact(contract).abi})


class StepLedger(ABC):
    """Sends one kind of step: at once (the request's own attempt), pipelined, or as the worker's resend."""

    step_model: ClassVar[Any]
    ledger_name: ClassVar[str]
    contract_name: ClassVar[str]
    keep_refused: ClassVar[bool] = True  # a resend the contract refuses stays, failed (False: deleted)
    pipelined: ClassVar[bool] = False  # steps are independent: the worker sends unsent ones without waiting
    receipt_timeout: float = 15.0
    resend_after: float = 1.0  # seconds before the worker takes over a step its request has not sent

    def __init__(self, node: Node) -> None:
        self.node = node
        self._inflight: set[int] = set()
        self._inflight_lock = threading.Lock()
        self.last_error: str | None = None

    # -- subclass hooks ------------------------------------------------------------------------------
    @abstractmethod
    def _call_for(self, s: Session, step: Any) -> StepCall | None:
        """The transaction of an unfinished step, or None if it cannot be sent yet."""

    @abstractmethod
    def _apply_mirror(self, s: Session, step: Any) -> None:
        """The step is on chain (its block fields are set): update the mirrored rows."""

    @abstractmethod
    def _discard(self, s: Session, step: Any) -> None:
        """The contract refused the request's own attempt: remove everything the request stored."""

    def _created_row(self, s: Session, step: Any) -> Any | None:
        """The row (with a `status`) that `step` creates, when it is the creating step (register, request)."""
        return None

    def _scopes(self, step: Any) -> tuple[set[str], set[str]]:
        """(scopes that must be clear for this step to run, scopes it blocks while unfinished)."""
        return set(), set()

    def _mark_failed(self, s: Session, step: Any) -> None:
        """The contract refused a resend: flag the row the step was creating."""
        row = self._created_row(s, step)
        if row is not None:
            row.status = "failed"

    def _on_lost(self, s: Session, step: Any) -> None:
        """A done step's block is gone (reconcile): the row it created is pending again until resent."""
        row = self._created_row(s, step)
        if row is not None:
            row.status = "pending"

    def _before_pass(self, *, flush: bool) -> None:  # noqa: B027 - optional hook, empty by default
        """The worker's pass is about to look for open steps (batches are formed here)."""

    def _stored(self, state: StepState) -> str:
        """The word the step table stores for `state` (batches keep their own words)."""
        return state.value

    def open_states(self) -> tuple[str, str]:
        return self._stored(StepState.PENDING), self._stored(StepState.SENT)

    def work_exists(self) -> list[Exists]:
        """What makes this lane's pass do anything (an open step; a subclass adds what `_before_pass` acts on):
        the worker asks every lane's in one query and skips a pass that would find nothing."""
        model = self.step_model
        return [select(model.id).where(model.state.in_(self.open_states())).exists()]

    # -- claims: a step is sent by one thread of this process at a time ------------------------------
    def _claim(self, ids: Iterable[int]) -> list[int]:
        with self._inflight_lock:
            got = [i for i in ids if i not in self._inflight]
            self._inflight.update(got)
        claims = self.node.db.step_claims  # PostgreSQL: other API processes may hold some of them
        if claims is not None and got:
            try:
                held = set(claims.claim(self._claim_kind, got))
            except BaseException:
                self._release_local(got)
                raise
            if len(held) < len(got):
                self._release_local([i for i in got if i not in held])
                got = [i for i in got if i in held]
        return got

    def _release(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        claims = self.node.db.step_claims
        if claims is not None and ids:
            claims.release(self._claim_kind, ids)
        self._release_local(ids)

    def _release_local(self, ids: Iterable[int]) -> None:
        with self._inflight_lock:
            self._inflight.difference_update(ids)

    @property
    def _claim_kind(self) -> int:
        return StepClaims.kind(self.step_model.__tablename__)

    @contextmanager
    def _claimed(self, ids: Sequence[int], *, already: bool) -> Iterator[list[int]]:
        got = list(ids) if already else self._claim(ids)
        try:
            yield got
        finally:
            self._release(got)

    @contextmanager
    def new_steps(self) -> Iterator[tuple[Session, list[int]]]:
        """A unit of work that creates steps; the ids put in the list are claimed before the commit, so the
        worker never races the request's own attempt. The caller sends them (claimed=True) afterwards."""
        claimed: list[int] = []
        try:
            with self.node.db.session() as s:
                yield s, claimed
                s.flush()
                self._claim(claimed)
        except BaseException:
            self._release(claimed)
            raise

    # -- chain lookups -------------------------------------------------------------------------------
    def _events_for(self, key: bytes) -> list[Event]:
        """Every event of this ledger whose first indexed argument is `key`, in chain order."""
        deployment = self.node.require_deployment()
        address = deployment.address(self.contract_name)
        raw = self.node.blocks.logs(address, topics=[None, hex0x(key)], from_block=deployment.first_block)
        decoder = _decoder(self.contract_name, address)
        return sorted((e for e in map(decoder.decode, raw) if e is not None), key=lambda e: e.position)

    def _raw_tx(self, tx_hash: str) -> bytes | None:
        return self.node.blocks.raw_transaction(tx_hash)

    def _already_on_chain(self, call: StepCall) -> Event | None:
        """The step's event on chain that no done step of ours accounts for, if any (check before resending)."""
        candidates = [e for e in self._events_for(call.key)
                      if e.name == call.event and all(e.args.get(k) == v for k, v in call.expect.items())]
        if not candidates:
            return None
        model = self.step_model
        with self.node.db.session() as s:
            known = set(s.scalars(select(model.tx_hash).where(
                model.tx_hash.in_([e.tx_hash for e in candidates]), model.state == self._stored(StepState.DONE),
                model.id != call.step_id)))
        unclaimed = [e for e in candidates if e.tx_hash not in known]
        return unclaimed[0] if unclaimed else None

    # -- state changes -------------------------------------------------------------------------------
    def _load_calls(self, step_ids: Sequence[int]) -> list[StepCall | Readiness]:
        """The calls of unfinished steps, read in one session."""
        finished = (self._stored(StepState.DONE), self._stored(StepState.FAILED))
        with self.node.db.session() as s:
            steps = {st.id: st for st in s.scalars(select(self.step_model).where(self.step_model.id.in_(list(step_ids))))}
            out: list[StepCall | Readiness] = []
            for step_id in step_ids:
                step = steps.get(step_id)
                if step is None or step.state in finished:
                    out.append(Readiness.FINISHED)
                else:
                    out.append(self._call_for(s, step) or Readiness.WAITING)
            return out

    def _mark_sent(self, items: Sequence[tuple[StepCall, PendingTx, str]]) -> None:
        model = self.step_model
        with self.node.db.session() as s:
            for call, pending, account in items:
                s.execute(update(model).where(model.id == call.step_id).values(
                    state=self._stored(StepState.SENT), tx_hash=pending.tx_hash, raw_tx=pending.raw, account=account,
                    attempts=model.attempts + 1))

    def _finish(self, items: Sequence[Landed], blocks: Mapping[int, tuple[str, int]] | None = None) -> None:
        """Mark steps done, in one transaction, and apply each to the mirror. `blocks` (number -> hash,
        timestamp) saves looking blocks up again."""
        if not items:
            return
        known = dict(blocks or {})
        missing = sorted({i.block_number for i in items} - set(known))
        for number, header in self.node.blocks.headers(missing).items():
            known[number] = (header.hash, header.timestamp)
        lost = [n for n in missing if n not in known]
        if lost:  # mined, then gone (a reorganisation or a reset): the next pass looks again
            raise ChainDown(f"blocks {lost} vanished while finishing {self.ledger_name} steps")
        done = self._stored(StepState.DONE)
        with self.node.db.session() as s:
            for item in items:
                step = s.get(self.step_model, item.call.step_id)
                if step is None or step.state == done:
                    continue
                block_hash, ts = known[item.block_number]
                step.state, step.tx_hash, step.block_number = done, item.tx_hash, item.block_number
                step.block_hash, step.block_timestamp, step.done_at, step.error = block_hash, ts, utcnow(), None
                if item.account:
                    step.account = item.account
                if item.raw is not None:
                    step.raw_tx = item.raw
                if item.gas_used is not None and hasattr(step, "gas_used"):
                    step.gas_used = item.gas_used
                s.flush()
                self._apply_mirror(s, step)
        if len(items) == 1:
            log.debug("ledger step on chain", ledger=self.ledger_name, step=items[0].call.step_id,
                      tx=items[0].tx_hash, block=items[0].block_number)
        else:
            log.info("ledger steps on chain", ledger=self.ledger_name, count=len(items),
                     blocks=f"{min(i.block_number for i in items)}-{max(i.block_number for i in items)}")

    def _finish_from_event(self, call: StepCall, event: Event) -> None:
        raw = self._raw_tx(event.tx_hash)
        account = decode_raw_transaction(raw).sender if raw is not None else None
        self._finish([Landed(call, event.tx_hash, event.block_number, account, raw)])

    def _refuse(self, call: StepCall, exc: ContractRevertError, *, immediate: bool) -> RegistryError:
        domain = translate_revert(exc)
        assert isinstance(domain, RegistryError)
        with self.node.db.session() as s:
            step = s.get(self.step_model, call.step_id)
            if step is not None and step.state != self._stored(StepState.DONE):  # done meanwhile elsewhere
                if immediate or not self.keep_refused:
                    self._discard(s, step)
                else:
                    step.state, step.error = self._stored(StepState.FAILED), str(exc)
                    self._mark_failed(s, step)
        log.warning("ledger step refused by the contract", ledger=self.ledger_name, step=call.step_id,
                    error=exc.name, kept=not immediate and self.keep_refused)
        return domain

    # -- sending -------------------------------------------------------------------------------------
    def run_step(self, step_id: int, *, immediate: bool = False, claimed: bool = False) -> bool:
        """Send one step and wait for it. True if it is finished now; False if another thread has it or it
        cannot be sent yet. Raises the translated refusal (a RegistryError), or a chain error if the chain
        is unreachable."""
        with self._claimed([step_id], already=claimed) as got:
            if not got:
                return False
            [call] = self._load_calls([step_id])
            if not isinstance(call, StepCall):
                return call is Readiness.FINISHED
            if call.tx_hash:  # sent before: its receipt decides
                r = self.node.blocks.receipt(call.tx_hash)
                if r is not None and r.status == 1:
                    self._finish([Landed(call, call.tx_hash, r.block_number, gas_used=r.gas_used)])
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
            self._finish([Landed(call, receipt.tx_hash, receipt.block_number, sender.address,
                                 gas_used=receipt.gas_used)])
            return True

    def run_pipelined(self, step_ids: Sequence[int], *, claimed: bool = False) -> dict[int, RegistryError]:
        """Send many independent steps of a request without waiting in between (explicit gas, one nonce
        counter per account), then collect the receipts. Refused steps are discarded and returned by id;
        a chain outage leaves the rest for the worker."""
        refused: dict[int, RegistryError] = {}
        with self._claimed(step_ids, already=claimed) as got:
            calls = [c for c in self._load_calls(got) if isinstance(c, StepCall)]
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
            done: list[Landed] = []
            blocks: dict[int, tuple[str, int]] = {}
            try:
                # most receipts are there by now: fetch them (and their blocks) in batch requests
                outcomes = self.node.blocks.outcomes([p.tx_hash for _, p, _ in inflight]) if inflight else {}
                for call, pending, sender in inflight:
                    o = outcomes.get(pending.tx_hash)
                    if o is not None and o.status == 1:
                        blocks[o.block_number] = (o.block_hash, o.timestamp)
                        done.append(Landed(call, pending.tx_hash, o.block_number, sender.address, gas_used=o.gas_used))
                        continue
                    try:  # not mined yet, or reverted: wait() waits, or names the contract's error
                        receipt = sender.wait(pending, timeout=self.receipt_timeout)
                    except ContractRevertError as exc:
                        event = self._already_on_chain(call)  # another process sent it first
                        if event is not None:
                            self._finish_from_event(call, event)
                        else:
                            refused[call.step_id] = self._refuse(call, exc, immediate=True)
                        continue
                    done.append(Landed(call, receipt.tx_hash, receipt.block_number, sender.address,
                                       gas_used=receipt.gas_used))
            finally:
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

    def try_pipelined(self, step_ids: Sequence[int]) -> dict[int, RegistryError]:
        """The request's own pipelined attempt (claimed ids); a chain outage leaves the steps to the worker."""
        try:
            return self.run_pipelined(step_ids, claimed=True)
        except (ChainDown, TransactionError) as exc:
            self.last_error = str(exc)
            log.warning("chain unreachable; steps stay in the outbox", ledger=self.ledger_name, error=str(exc))
            return {}

    # -- the worker's pass ---------------------------------------------------------------------------
    def process_pending(self, *, flush: bool = False) -> int:
        """Send unfinished steps in order (per scope). Returns how many were completed. A chain outage
        propagates (the worker backs off); a refusal marks that step failed and the pass goes on."""
        self._before_pass(flush=flush)
        model = self.step_model
        # a step never attempted and only just committed is left to the request that made it (another API
        # process's attempt is not visible in our claims); resending it is safe anyway, only wasteful
        fresh = utcnow() - dt.timedelta(seconds=self.resend_after)
        with self.node.db.session() as s:
            steps = s.scalars(select(model).where(model.state.in_(self.open_states())).order_by(model.id)).all()
            plan = [(st.id, *self._scopes(st), self.resend_after > 0 and st.attempts == 0 and st.created_at > fresh)
                    for st in steps]
            unsent = [st.id for st in steps if st.tx_hash is None] if self.pipelined else []
        done = 0
        if unsent:  # a refusal marks the step failed (`_discard`); one found on chain counts as done
            refused = self.run_pipelined(unsent)
            done += len(unsent) - len(refused)
            plan = [p for p in plan if p[0] not in set(unsent)]
        blocked: set[str] = set()
        for step_id, needs, blocks, too_fresh in plan:
            if too_fresh or needs & blocked:
                blocked |= blocks
                continue
            try:
                finished = self.run_step(step_id)
            except RegistryError:
                continue  # refused: marked failed (or removed) with its reason
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
                model.state == self._stored(StepState.DONE)).order_by(model.id.desc()).limit(window)).all()
        hashes = self.node.blocks.block_hashes(sorted({n for _, n, _ in rows if n is not None}))
        lost = [step_id for step_id, number, block_hash in rows if number is not None and hashes.get(number) != block_hash]
        if lost:
            with self.node.db.session() as s:
                for step in s.scalars(select(model).where(model.id.in_(lost))):
                    step.state = self._stored(StepState.PENDING)
                    self._on_lost(s, step)
            log.warning("the chain lost ledger steps; they will be sent again", ledger=self.ledger_name,
                        count=len(lost))
        return len(lost)

    def pending_count(self) -> int:
        model = self.step_model
        with self.node.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(model).where(model.state.in_(self.open_states()))) or 0)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until no step is pending (tests, the CLI's --wait)."""
        deadline = time.monotonic() + timeout
        while self.pending_count():
            if time.monotonic() > deadline:
                raise ChainUnavailableError(f"{self.pending_count()} {self.ledger_name} steps still pending after "
                                            f"{timeout:.0f} s (last error: {self.last_error})", code="steps_pending")
            time.sleep(0.05)
