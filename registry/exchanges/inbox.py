"""Exchange steps signed on other nodes, mirrored from ExchangeLedger events (registry/outbox/inbox.py).

* a request addressed to a provider hosted here (ExchangeRequested) that the database does not know becomes
  a *mirrored* exchange: id = its key's hex (the identifier is not on chain), consumer, provider, catalogue
  item and purposeDigest as the chain has them; the purpose and legal basis are not on chain and stay empty;
* every event about an exchange the database has, signed by an agency not hosted here, becomes a done step
  row (request, authorise or refuse, deliver, acknowledge) with its transaction, block and signing account,
  and the parameters the event carries (reason digest, payload digest, size, records, received digest);
* the exchange's status and the values its steps set are then recomputed from its done steps in chain order.

    >>> ExchangeInbox(node).apply(events, hosted_agencies(node))   # doctest: +SKIP
    1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chain.contracts import unpad
from chain.ledgers import ExchangeLedgerClient
from chain.logs import Event
from registry.crypto.hashing import hex0x
from registry.node import Node
from registry.outbox.inbox import ChainFacts, lost_steps, mirrored_id
from registry.store.ledger_models import Exchange, ExchangeStepRow
from registry.store.rows import lock_row
from registry.store.states import StepState

__all__ = ["ExchangeInbox", "drop_mirrored_step", "recompute_exchange"]

_ACTOR = {"ExchangeRequested": "consumerUscc", "ExchangeAuthorised": "providerUscc",
          "ExchangeDelivered": "providerUscc", "ExchangeAcknowledged": "consumerUscc"}


def _kind(e: Event) -> str:
    if e.name == "ExchangeAuthorised":
        return "authorise" if e.args["granted"] else "refuse"
    return {"ExchangeRequested": "request", "ExchangeDelivered": "deliver", "ExchangeAcknowledged": "acknowledge"}[e.name]


def _params(e: Event) -> dict[str, Any]:
    """The step's parameters as the exchange service stores them (hex digests without 0x)."""
    a = e.args
    if e.name == "ExchangeAuthorised":  # the reason text is off chain: only its digest
        return {"reason": None, "reason_digest": hex0x(a["reasonDigest"])}
    if e.name == "ExchangeDelivered":
        return {"payload_sha256": bytes(a["payloadDigest"]).hex(), "payload_sm3": None, "size": int(a["size"]),
                "records": int(a["records"])}
    if e.name == "ExchangeAcknowledged":
        return {"received_sha256": bytes(a["receivedDigest"]).hex()}
    return {}


def recompute_exchange(s: Session, ex: Exchange) -> None:
    """Status and step values from the exchange's done steps in chain order (a refused request stays failed)."""
    s.flush()
    steps = s.scalars(select(ExchangeStepRow).where(ExchangeStepRow.exchange_id == ex.id)
                      .order_by(ExchangeStepRow.block_number, ExchangeStepRow.id)).all()
    if any(st.kind == "request" and st.state == StepState.FAILED.value for st in steps):
        return
    status, reason, received = "pending", None, None
    payload: dict[str, Any] = {}
    for st in steps:
        if st.state != StepState.DONE.value:
            continue
        p = st.params or {}
        if st.kind == "request":
            status = "requested"
        elif st.kind in ("authorise", "refuse"):
            status, reason = ("authorised" if st.kind == "authorise" else "refused"), p.get("reason")
        elif st.kind == "deliver":
            status, payload = "delivered", p
        elif st.kind == "acknowledge":
            received = p["received_sha256"]
            status = "acknowledged" if received == payload.get("payload_sha256") else "disputed"
    ex.status, ex.reason, ex.received_sha256 = status, reason, received
    ex.payload_sha256, ex.payload_sm3 = payload.get("payload_sha256"), payload.get("payload_sm3")
    ex.size, ex.records = payload.get("size"), payload.get("records")


def drop_mirrored_step(s: Session, step: ExchangeStepRow) -> None:
    """A mirrored step whose block is gone: delete it and recompute the exchange."""
    exchange_id = step.exchange_id
    s.delete(step)
    s.flush()
    ex = s.get(Exchange, exchange_id)
    if ex is not None:
        recompute_exchange(s, ex)


class ExchangeInbox:
    contract_name = "ExchangeLedger"

    def __init__(self, node: Node) -> None:
        self.node = node

    def apply(self, events: Sequence[Event], hosted: frozenset[str]) -> int:
        by_key: dict[str, list[Event]] = {}
        for e in events:
            if e.name in _ACTOR:
                by_key.setdefault(hex0x(e.args["id"]), []).append(e)
        with self.node.db.session() as s:
            known = set(s.scalars(select(Exchange.key).where(Exchange.key.in_(list(by_key)))))
        added = 0
        for key, evs in by_key.items():
            if key in known:
                added += self._store(key, evs, hosted)
            elif any(e.name == "ExchangeRequested" and unpad(e.args["providerUscc"]) in hosted for e in evs):
                ledger = self.node.client(ExchangeLedgerClient)
                history = ledger.events_for(bytes.fromhex(key[2:]), from_block=self.node.require_deployment().first_block)
                added += self._store(key, history, hosted)
        return added

    @staticmethod
    def _fresh(s: Session, exchange_id: str | None, evs: Sequence[Event], hosted: frozenset[str]) -> list[Event]:
        have: set[str] = set()
        if exchange_id is not None:
            have = {str(h).lower() for h in s.scalars(select(ExchangeStepRow.tx_hash).where(
                ExchangeStepRow.exchange_id == exchange_id))}
        return [e for e in evs if e.name in _ACTOR and unpad(e.args[_ACTOR[e.name]]) not in hosted
                and e.tx_hash.lower() not in have]

    def _store(self, key: str, evs: Sequence[Event], hosted: frozenset[str]) -> int:
        with self.node.db.session() as s:
            ex_id = s.scalar(select(Exchange.id).where(Exchange.key == key))
            fresh = self._fresh(s, ex_id, evs, hosted)
        if not fresh:
            return 0
        request = next((e for e in evs if e.name == "ExchangeRequested"), None)
        facts = ChainFacts.read(self.node, fresh)
        with self.node.db.session() as s:
            ex = s.scalar(select(Exchange).where(Exchange.key == key))
            if ex is None:
                if request is None:
                    return 0
                a = request.args
                ex = Exchange(id=mirrored_id(key), key=key, consumer_uscc=unpad(a["consumerUscc"]),
                              provider_uscc=unpad(a["providerUscc"]), item_code=unpad(a["catalogueItem"]),
                              purpose="", legal_basis="", operator_id=None, salt="",
                              purpose_digest=hex0x(a["purposeDigest"]), status="pending")
                s.add(ex)
                s.flush()
            else:
                lock_row(s, Exchange.status, Exchange.id, ex.id)
            todo = self._fresh(s, ex.id, fresh, hosted)
            for e in todo:
                s.add(ExchangeStepRow(exchange_id=ex.id, kind=_kind(e), actor_uscc=unpad(e.args[_ACTOR[e.name]]),
                                      params=_params(e), **facts.anchor(e)))
            recompute_exchange(s, ex)
            return len(todo)

    def forget_lost(self, hosted: frozenset[str]) -> int:
        with self.node.db.session() as s:
            rows = [(i, n, h) for i, n, h, actor in s.execute(
                select(ExchangeStepRow.id, ExchangeStepRow.block_number, ExchangeStepRow.block_hash,
                       ExchangeStepRow.actor_uscc).where(ExchangeStepRow.state == StepState.DONE.value))
                    if actor not in hosted]
        lost = lost_steps(self.node, rows) if rows else []
        if lost:
            with self.node.db.session() as s:
                for step in s.scalars(select(ExchangeStepRow).where(ExchangeStepRow.id.in_(lost))).all():
                    drop_mirrored_step(s, step)
        return len(lost)
