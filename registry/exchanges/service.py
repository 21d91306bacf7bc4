"""Data exchanges between agencies (数据共享交换链): a two-party receipt of request -> authorise (or refuse)
-> deliver -> acknowledge (or dispute), each step signed by the acting side's account and anchored on the
ExchangeLedger. The payload travels off chain; only its digest, size and record count are recorded.

On chain: sha256(identifier) as the exchange id, the catalogue item code, and a salted RFC 8785 digest of
the request (purpose 申请事由, legal basis, parties), so the purpose text stays off chain but provable.
Steps are outbox steps like every other ledger's (registry/outbox/steps.py: StepLedger).

    >>> svc = ExchangeService(node)                                                          # doctest: +SKIP
    >>> ex = svc.request("11230000MB1A00044B", ExchangeSubmission(item="SCJG-001", purpose="核查涉案企业登记信息",
    ...                  legal_basis="《政务数据共享管理办法》第十条"))                          # doctest: +SKIP
    >>> svc.authorise(ex.provider["uscc"], ex.id, granted=True).status                      # doctest: +SKIP
    'authorised'
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from chain.contracts import MemberStatus, Role
from chain.ledgers import ExchangeLedgerClient
from registry.audit.records import LedgerRecord
from registry.clock import CHINA, iso_time
from registry.consortium.roles import agency_json, is_auditor, require_role
from registry.crypto.hashing import canonical_digest, hex0x, sha256_key
from registry.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from registry.exchanges.inbox import drop_mirrored_step
from registry.node import Node
from registry.outbox.inbox import hosted_agencies, is_mirrored_id, key_of, mirrored_id
from registry.outbox.steps import StepCall, StepLedger
from registry.store.db import Member
from registry.store.ledger_models import Exchange, ExchangeStepRow, StepState
from registry.store.rows import lock_row, next_serial
from registry.validation import normalise_digest, optional_text, required_text

STATUSES = ("pending", "requested", "authorised", "refused", "delivered", "acknowledged", "disputed", "failed")
# query aliases: a delivery the consumer never acknowledged is visible as such (DESIGN.md)
STATUS_ALIASES = {"unacknowledged": ("delivered",), "open": ("pending", "requested", "authorised", "delivered"),
                  "disputes": ("disputed",)}
_OPEN = (StepState.PENDING.value, StepState.SENT.value)
_MAX_UINT32 = 2**32 - 1
_MAX_SIZE = 2**53 - 1


@dataclass(frozen=True)
class ExchangeSubmission:
    item: str | None
    purpose: str | None
    legal_basis: str | None
    provider: str | None = None  # defaults to the catalogue item's provider
    operator_id: str | None = None


@dataclass(frozen=True)
class ExchangeView:
    id: str
    key: str
    item: dict[str, Any]
    consumer: dict[str, Any]
    provider: dict[str, Any]
    purpose: str
    legal_basis: str
    purpose_digest: str
    status: str
    reason: str | None
    payload: dict[str, Any] | None
    received_sha256: str | None
    matched: bool | None
    steps: list[dict[str, Any]]
    pending_steps: int
    created_at: str
    error: str | None = None
    # requested on another node: `id` is the exchange's key without 0x; purpose and legal basis are not here
    mirrored: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def request_metadata(ex: Exchange) -> dict[str, Any]:
    """The request whose RFC 8785 digest is the on-chain purposeDigest (salted: the purpose may name people)."""
    return {"format": "lianzheng-exchange/1", "id": ex.id, "consumer": ex.consumer_uscc, "provider": ex.provider_uscc,
            "item": ex.item_code, "purpose": ex.purpose, "legal_basis": ex.legal_basis, "operator_id": ex.operator_id,
            "salt": ex.salt}


class ExchangeService(StepLedger):
    step_model = ExchangeStepRow
    ledger_name = "exchanges"
    contract_name = "ExchangeLedger"

    def __init__(self, node: Node) -> None:
        super().__init__(node)

    # -- outbox hooks --------------------------------------------------------------------------------
    def _ledger(self) -> ExchangeLedgerClient:
        return self.node.client(ExchangeLedgerClient)

    def _scopes(self, step: ExchangeStepRow) -> tuple[set[str], set[str]]:
        return {f"ex:{step.exchange_id}"}, {f"ex:{step.exchange_id}"}

    def _call_for(self, s: Session, step: ExchangeStepRow) -> StepCall:
        ex = s.get(Exchange, step.exchange_id)
        assert ex is not None
        ledger = self._ledger()
        key = bytes.fromhex(ex.key[2:])
        p = step.params or {}
        gas = ledger.GAS[step.kind]
        if step.kind == "request":
            fn = ledger.request_fn(key, ex.provider_uscc, ex.item_code, bytes.fromhex(ex.purpose_digest[2:]))
            return StepCall(step.id, step.actor_uscc, key, fn, gas, "ExchangeRequested", {}, step.tx_hash)
        if step.kind in ("authorise", "refuse"):
            fn = ledger.authorise_fn(key, step.kind == "authorise", bytes.fromhex(p["reason_digest"][2:]))
            return StepCall(step.id, step.actor_uscc, key, fn, gas, "ExchangeAuthorised", {}, step.tx_hash)
        if step.kind == "deliver":
            fn = ledger.deliver_fn(key, bytes.fromhex(p["payload_sha256"]), int(p["size"]), int(p["records"]))
            return StepCall(step.id, step.actor_uscc, key, fn, gas, "ExchangeDelivered", {}, step.tx_hash)
        if step.kind == "acknowledge":
            fn = ledger.acknowledge_fn(key, bytes.fromhex(p["received_sha256"]))
            return StepCall(step.id, step.actor_uscc, key, fn, gas, "ExchangeAcknowledged", {}, step.tx_hash)
        raise ValueError(f"unknown exchange step {step.kind!r}")

    def _apply_mirror(self, s: Session, step: ExchangeStepRow) -> None:
        ex = s.get(Exchange, step.exchange_id)
        assert ex is not None
        p = step.params or {}
        if step.kind == "request":
            ex.status = "requested"
        elif step.kind == "authorise":
            ex.status, ex.reason = "authorised", p.get("reason")
        elif step.kind == "refuse":
            ex.status, ex.reason = "refused", p.get("reason")
        elif step.kind == "deliver":
            ex.status, ex.payload_sha256, ex.payload_sm3 = "delivered", p["payload_sha256"], p.get("payload_sm3")
            ex.size, ex.records = int(p["size"]), int(p["records"])
        elif step.kind == "acknowledge":
            ex.received_sha256 = p["received_sha256"]
            ex.status = "acknowledged" if p["received_sha256"] == ex.payload_sha256 else "disputed"

    def _discard(self, s: Session, step: ExchangeStepRow) -> None:
        kind, exchange_id = step.kind, step.exchange_id
        s.delete(step)
        s.flush()
        if kind == "request":
            ex = s.get(Exchange, exchange_id)
            if ex is not None:
                s.delete(ex)

    def _created_row(self, s: Session, step: ExchangeStepRow) -> Exchange | None:
        return s.get(Exchange, step.exchange_id) if step.kind == "request" else None

    def _on_lost(self, s: Session, step: ExchangeStepRow) -> None:
        if step.actor_uscc not in hosted_agencies(self.node, s):
            drop_mirrored_step(s, step)  # signed on another node: never sent from here; the inbox restores it
            return
        super()._on_lost(s, step)

    # -- writes --------------------------------------------------------------------------------------
    def _new(self, s: Session, ex_id: str, kind: str, actor: str, params: dict[str, Any]) -> int:
        step = ExchangeStepRow(exchange_id=ex_id, kind=kind, actor_uscc=actor, params=params)
        s.add(step)
        s.flush()
        self._claim([step.id])  # before the commit: the worker never races the request's own attempt
        return int(step.id)

    def _commit_and_send(self, work: Any) -> ExchangeView:
        step_id: int | None = None
        try:
            with self.node.db.session() as s:
                ex_id, step_id = work(s)
        except BaseException:
            if step_id is not None:
                self._release([step_id])
            raise
        self.try_now(step_id)
        return self.get(None, ex_id)

    def request(self, consumer: str, sub: ExchangeSubmission) -> ExchangeView:
        """The consumer asks the provider for a catalogue item, stating purpose (申请事由) and legal basis."""
        item_code = required_text(sub.item, "item", "unknown_catalogue_item", max_length=20)
        item = self.node.seeds.catalogue_item(item_code)  # NotFoundError unknown_catalogue_item
        purpose = required_text(sub.purpose, "purpose", "missing_purpose", max_length=2000)
        legal_basis = required_text(sub.legal_basis, "legal_basis", "missing_legal_basis", max_length=2000)
        operator = optional_text(sub.operator_id, "operator_id", max_length=64)
        provider = optional_text(sub.provider, "provider", max_length=18) or item.provider
        if provider != item.provider:
            raise ValidationError(f"{item.code} ({item.name}) is provided by {item.provider}, not {provider}",
                                  code="wrong_provider", details={"provider": item.provider})
        if item.share_condition == "不予共享":
            raise ConflictError(f"{item.code} ({item.name}) is not shared (不予共享)", code="not_shareable")

        def work(s: Session) -> tuple[str, int]:
            prefix = f"EX-{item.code}-{dt.datetime.now(CHINA):%Y%m%d}"
            ex_id = f"{prefix}-{next_serial(s, prefix):06d}"  # the first write: see lock_row
            require_role(s, consumer, Role.EXCHANGE, "missing_exchange_role")
            m = s.get(Member, provider)
            if provider == consumer or m is None or m.status != int(MemberStatus.ACTIVE) or not Role(m.roles) & Role.EXCHANGE:
                raise ValidationError(f"provider {provider} must be another active member with the exchange role",
                                      code="invalid_provider")
            ex = Exchange(id=ex_id, key=hex0x(sha256_key(ex_id)), consumer_uscc=consumer, provider_uscc=provider,
                          item_code=item.code, purpose=purpose, legal_basis=legal_basis, operator_id=operator,
                          salt=secrets.token_hex(16), purpose_digest="", status="pending")
            ex.purpose_digest = hex0x(canonical_digest(request_metadata(ex)))
            s.add(ex)
            s.flush()
            return ex_id, self._new(s, ex_id, "request", consumer, {})

        return self._commit_and_send(work)

    def _exchange(self, s: Session, exchange_id: str) -> Exchange:
        if not isinstance(exchange_id, str) or len(exchange_id) > 64 or not (
                exchange_id.startswith("EX-") or is_mirrored_id(exchange_id)):
            raise ValidationError(f"not an exchange identifier: {str(exchange_id)[:80]!r} (expected EX-... or the "
                                  f"exchange's 64-hex key)", code="invalid_exchange_id")
        ex = s.get(Exchange, exchange_id)
        if ex is None and not is_mirrored_id(exchange_id):  # requested on another node: known by its key
            ex = s.get(Exchange, mirrored_id(key_of(exchange_id)))
            if ex is not None:  # the caller locked the identifier's row, which is not this one's id
                lock_row(s, Exchange.status, Exchange.id, ex.id)
        if ex is None:
            raise NotFoundError(f"no exchange {exchange_id}", code="unknown_exchange")
        return ex

    def _acting(self, s: Session, agency: str, exchange_id: str, side: str, steps: dict[str, str]) -> Exchange:
        """Load the exchange and check the acting side and the current step (`steps`: status -> error code)."""
        lock_row(s, Exchange.status, Exchange.id, exchange_id)  # checks and the new step are atomic
        ex = self._exchange(s, exchange_id)
        party = ex.provider_uscc if side == "provider" else ex.consumer_uscc
        if agency != party:
            code = "not_a_party" if agency not in (ex.consumer_uscc, ex.provider_uscc) else f"not_{side}"
            raise PermissionDeniedError(f"only the {side} of {ex.id} ({party}) may do this, not {agency}", code=code)
        require_role(s, agency, Role.EXCHANGE, "missing_exchange_role")
        if s.scalar(select(ExchangeStepRow.id).where(ExchangeStepRow.exchange_id == ex.id,
                                                     ExchangeStepRow.state.in_(_OPEN))) is not None:
            raise ConflictError(f"a step of {ex.id} is still being anchored; retry shortly", code="step_in_progress")
        if ex.status not in steps:
            code = steps.get("*", "invalid_step")
            raise ConflictError(f"{ex.id} is {ex.status}", code=code, details={"status": ex.status})
        return ex

    def authorise(self, provider: str, exchange_id: str, *, granted: bool, reason: str | None = None) -> ExchangeView:
        """The provider grants or refuses the request (a refusal needs a reason)."""
        note = optional_text(reason, "reason", max_length=2000)
        if not granted and not note:
            raise ValidationError("a refusal needs a reason", code="missing_reason")

        def work(s: Session) -> tuple[str, int]:
            ex = self._acting(s, provider, exchange_id, "provider", {"requested": ""})
            digest = hex0x(canonical_digest({"id": ex.id, "granted": granted, "reason": note}))
            kind = "authorise" if granted else "refuse"
            return ex.id, self._new(s, ex.id, kind, provider, {"reason": note, "reason_digest": digest})

        return self._commit_and_send(work)

    def deliver(self, provider: str, exchange_id: str, *, sha256: str, size: int, records: int,
                sm3: str | None = None) -> ExchangeView:
        """The provider records what it delivered: payload digest, size and record count."""
        payload = normalise_digest(sha256, "sha256")
        payload_sm3 = normalise_digest(sm3, "sm3") if sm3 is not None else None
        for name, value, top in (("size", size, _MAX_SIZE), ("records", records, _MAX_UINT32)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
                raise ValidationError(f"{name} must be an integer between 0 and {top}, got {value!r}",
                                      code=f"invalid_{name}")

        def work(s: Session) -> tuple[str, int]:
            ex = self._acting(s, provider, exchange_id, "provider", {"authorised": "", "*": "not_authorised"})
            return ex.id, self._new(s, ex.id, "deliver", provider, {"payload_sha256": payload, "payload_sm3": payload_sm3,
                                                                    "size": size, "records": records})

        return self._commit_and_send(work)

    def acknowledge(self, consumer: str, exchange_id: str, *, sha256: str) -> ExchangeView:
        """The consumer confirms the digest of what it received: equal -> acknowledged, else disputed."""
        received = normalise_digest(sha256, "sha256")

        def work(s: Session) -> tuple[str, int]:
            ex = self._acting(s, consumer, exchange_id, "consumer", {"delivered": "", "*": "not_delivered"})
            return ex.id, self._new(s, ex.id, "acknowledge", consumer, {"received_sha256": received})

        return self._commit_and_send(work)

    # -- reads ---------------------------------------------------------------------------------------
    def get(self, agency: str | None, exchange_id: str) -> ExchangeView:
        with self.node.db.session() as s:
            ex = self._exchange(s, exchange_id)
            if agency is not None and agency not in (ex.consumer_uscc, ex.provider_uscc) and not is_auditor(s, agency):
                raise PermissionDeniedError(f"agency {agency} is not a party to {ex.id}", code="not_a_party")
            return self._view(s, ex)

    def _view(self, s: Session, ex: Exchange) -> ExchangeView:
        steps = s.scalars(select(ExchangeStepRow).where(ExchangeStepRow.exchange_id == ex.id)
                          .order_by(ExchangeStepRow.id)).all()
        item = next((c for c in self.node.seeds.catalogue if c.code == ex.item_code), None)
        request = next((st for st in steps if st.kind == "request"), None)
        return ExchangeView(
            id=ex.id, key=ex.key,
            item={"code": ex.item_code, "name": item.name if item else None,
                  "share_condition": item.share_condition if item else None},
            consumer=agency_json(s, ex.consumer_uscc) or {}, provider=agency_json(s, ex.provider_uscc) or {},
            purpose=ex.purpose, legal_basis=ex.legal_basis, purpose_digest=ex.purpose_digest, status=ex.status,
            reason=ex.reason,
            payload=({"sha256": ex.payload_sha256, "sm3": ex.payload_sm3, "size": ex.size, "records": ex.records}
                     if ex.payload_sha256 else None),
            received_sha256=ex.received_sha256,
            matched=None if ex.received_sha256 is None else ex.received_sha256 == ex.payload_sha256,
            steps=[{"step": st.kind, "state": st.state, "by": st.actor_uscc, "at": iso_time(st.block_timestamp),
                    "block_number": st.block_number, "block_hash": st.block_hash, "tx_hash": st.tx_hash,
                    "account": st.account, "error": st.error} for st in steps],
            pending_steps=sum(1 for st in steps if st.state in _OPEN),
            created_at=ex.created_at.isoformat() + "Z",
            error=request.error if request is not None and request.state == StepState.FAILED.value else None,
            mirrored=is_mirrored_id(ex.id),
        )

    def search(self, agency: str, *, party: str | None = None, item: str | None = None, status: str | None = None,
               limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """Exchanges the agency may see (its own; every exchange for an auditor), filtered by a party agency,
        a catalogue item or a status (`unacknowledged` = delivered, never acknowledged; `disputed`)."""
        if status is not None and status not in STATUSES and status not in STATUS_ALIASES:
            raise ValidationError(f"unknown status {status!r}: expected one of "
                                  f"{', '.join(STATUSES + tuple(STATUS_ALIASES))}", code="invalid_status")
        if not 1 <= limit <= 1000 or offset < 0:
            raise ValidationError("limit must be 1..1000 and offset >= 0", code="invalid_page")
        with self.node.db.session() as s:
            q = select(Exchange)
            if not is_auditor(s, agency):
                q = q.where(or_(Exchange.consumer_uscc == agency, Exchange.provider_uscc == agency))
            if party:
                q = q.where(or_(Exchange.consumer_uscc == party, Exchange.provider_uscc == party))
            if item:
                q = q.where(Exchange.item_code == item)
            if status:
                q = q.where(Exchange.status.in_(STATUS_ALIASES.get(status, (status,))))
            total = s.scalar(select(func.count()).select_from(q.subquery()))
            rows = s.scalars(q.order_by(Exchange.created_at.desc(), Exchange.id.desc()).limit(limit).offset(offset)).all()
            return {"count": int(total or 0), "limit": limit, "offset": offset,
                    "exchanges": [self._view(s, ex).to_json() for ex in rows]}


def audit_records(session: Session) -> Iterable[LedgerRecord]:
    """Exchanges for the auditor: one entry per exchange; key = sha256(id), digest = the purposeDigest (of
    ExchangeRequested) recomputed from the row, anchored = its request step is done."""
    rows = session.execute(
        select(Exchange, ExchangeStepRow.state, ExchangeStepRow.block_number, ExchangeStepRow.tx_hash)
        .outerjoin(ExchangeStepRow, (ExchangeStepRow.exchange_id == Exchange.id) & (ExchangeStepRow.kind == "request"))
        .order_by(Exchange.created_at, Exchange.id))
    for ex, state, block, tx in rows:
        # requested on another node: the request's metadata is not here, its digest is the chain's
        digest = ex.purpose_digest if is_mirrored_id(ex.id) else hex0x(canonical_digest(request_metadata(ex)))
        yield LedgerRecord("exchanges", ex.id, ex.key, digest, ex.status, state == StepState.DONE.value, block, tx)


__all__ = ["STATUSES", "ExchangeService", "ExchangeSubmission", "ExchangeView", "audit_records", "request_metadata"]
