"""The exchange ledger's tables against the chain: exchanges and their steps.

Exchanges: step (``status_mismatch``), key and request digest (``digest_mismatch``), parties, catalogue item, the
authorisation's reason, the delivery (payload digest, size, records) and the acknowledged digest
(``exchange_mismatch``). Steps (request, authorise, refuse, deliver, acknowledge): each done row against the event
in its transaction (``step_mismatch``, ``anchor_mismatch``). An exchange with a step in flight is compared once
that step is done.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from chain.contracts import b32
from chain.ledgers import ExchangeStep
from registry.audit._context import DONE, OPEN, Anchor, CompareContext, opt_hex
from registry.crypto.hashing import canonical_digest, hex0x
from registry.outbox.inbox import hosted_agencies, key_of
from registry.store.ledger_models import Exchange, ExchangeStepRow

LEDGER = "exchanges"
_EVENT = {"request": "ExchangeRequested", "authorise": "ExchangeAuthorised", "refuse": "ExchangeAuthorised",
          "deliver": "ExchangeDelivered", "acknowledge": "ExchangeAcknowledged"}
_ACTOR = {"request": "consumerUscc", "authorise": "providerUscc", "refuse": "providerUscc",
          "deliver": "providerUscc", "acknowledge": "consumerUscc"}


def reason_digest(exchange_id: str, granted: bool, reason: str | None) -> str:
    """The authorisation's reasonDigest as the exchange service computes it."""
    return hex0x(canonical_digest({"id": exchange_id, "granted": granted, "reason": reason}))


def compare_exchanges(ctx: CompareContext) -> int:
    """Returns how many exchange rows (exchanges and steps) were compared."""
    with ctx.node.db.session() as s:
        busy = set(s.scalars(select(ExchangeStepRow.exchange_id).where(ExchangeStepRow.state.in_(OPEN))))
        hosted = hosted_agencies(ctx.node, s)
        # authorisations signed on another node: their reason text is not here, only the digest the chain holds
        mirrored_reasons = {exchange_id: (params or {}).get("reason_digest") for exchange_id, actor, params in s.execute(
            select(ExchangeStepRow.exchange_id, ExchangeStepRow.actor_uscc, ExchangeStepRow.params).where(
                ExchangeStepRow.kind.in_(("authorise", "refuse")), ExchangeStepRow.state == DONE)) if actor not in hosted}
        return _compare_exchanges(ctx, s, busy, mirrored_reasons) + _compare_steps(ctx, s, hosted)


def _compare_exchanges(ctx: CompareContext, s: Session, busy: set[str], mirrored_reasons: dict[str, str | None]) -> int:
    rows = list(s.scalars(select(Exchange).order_by(Exchange.id)))
    for ex in rows:
        if ex.key != key_of(ex.id):
            ctx.add("digest_mismatch", LEDGER, ex.id, f"the exchange's key {ex.key} is not SHA-256 of its identifier")
        chain = ctx.state.exchanges.get(ex.key)
        if chain is None or ex.id in busy:
            continue  # never anchored, or not yet: the generic comparison names it
        status = ExchangeStep.__members__.get(ex.status.upper())
        if status != chain.step:
            ctx.add("status_mismatch", LEDGER, ex.id, f"the chain says {chain.step.name.lower()}, the database says "
                                                      f"{ex.status}")
        ctx.differs("digest_mismatch", LEDGER, ex.id, "request digest", [("purpose digest", ex.purpose_digest,
                                                                           chain.purpose_digest)])
        delivered = bool(chain.payload_digest)
        ctx.differs("exchange_mismatch", LEDGER, ex.id, "exchange", [
            ("consumer", ex.consumer_uscc, chain.consumer), ("provider", ex.provider_uscc, chain.provider),
            ("catalogue item", hex0x(b32(ex.item_code)), chain.catalogue_item),
            ("reason (its digest)", _reason(ex, chain.step != ExchangeStep.REFUSED, mirrored_reasons)
             if chain.reason_digest else ex.reason, chain.reason_digest or None),
            ("payload digest", opt_hex(ex.payload_sha256), chain.payload_digest),
            ("size", ex.size, chain.size if delivered else None),
            ("records", ex.records, chain.records if delivered else None),
            ("received digest", opt_hex(ex.received_sha256), chain.received_digest)])
    return len(rows)


def _reason(ex: Exchange, granted: bool, mirrored_reasons: dict[str, str | None]) -> str | None:
    if ex.id in mirrored_reasons:  # authorised on another node: the digest it signed, the text is not here
        return None if ex.reason is not None else mirrored_reasons[ex.id]
    return reason_digest(ex.id, granted, ex.reason)


def _compare_steps(ctx: CompareContext, s: Session, hosted: frozenset[str]) -> int:
    rows = s.execute(select(ExchangeStepRow, Exchange.key).outerjoin(Exchange, Exchange.id == ExchangeStepRow.exchange_id)
                     .order_by(ExchangeStepRow.id)).all()
    ctx.receipts([step.tx_hash for step, _ in rows if step.account])
    for step, key in rows:
        ref = f"{step.kind} step {step.id} of {step.exchange_id}"
        anchor = Anchor(step.state, step.tx_hash, step.block_number, step.block_hash, step.block_timestamp,
                        step.account, step.raw_tx)
        event = ctx.check_step(LEDGER, ref, f"the {step.kind}", anchor, {_EVENT.get(step.kind, step.kind)}, key or "?")
        if event is None:
            continue
        a, p = event.args, dict(step.params or {})
        expected: list[tuple[str, object, object]] = [("actor", step.actor_uscc, a[_ACTOR[step.kind]])]
        if step.kind in ("authorise", "refuse"):
            expected += [("granted", step.kind == "authorise", a["granted"]),
                         ("reason digest", p.get("reason_digest"), a["reasonDigest"])]
            if step.actor_uscc in hosted or p.get("reason") is not None:  # a mirrored step has no reason text
                expected.append(("reason (its digest)", reason_digest(step.exchange_id, step.kind == "authorise",
                                                                      p.get("reason")), a["reasonDigest"]))
        elif step.kind == "deliver":
            expected += [("payload digest", opt_hex(p.get("payload_sha256")), a["payloadDigest"]),
                         ("size", p.get("size"), a["size"]), ("records", p.get("records"), a["records"])]
        elif step.kind == "acknowledge":
            expected += [("received digest", opt_hex(p.get("received_sha256")), a["receivedDigest"])]
        ctx.differs("step_mismatch", LEDGER, ref, "exchange step", expected)
    return len(rows)


__all__ = ["compare_exchanges", "reason_digest"]
