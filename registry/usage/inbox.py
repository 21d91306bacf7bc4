"""Usages recorded on other nodes, mirrored from UsageLedger events (registry/outbox/inbox.py), so that the node
that issued a certificate — and the holder asking any node — sees every use of it, and 用证率 counts them.

Every UsageRecorded event by an agency not hosted here becomes a done usage row: ref = the usage key's hex (the
identifier is not on chain), the using agency, the document digest, the grant or presentation digest and the
purposeDigest as the chain has them, with its transaction, block and signing account. The matter text (申请事由)
is not on chain and stays empty; the certificate identifier is filled in when the certificate was issued here.

    >>> UsageInbox(node).apply(events, hosted_agencies(node))   # doctest: +SKIP
    1
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from chain.contracts import unpad
from chain.ledgers import ZERO32
from chain.logs import Event
from registry.crypto.hashing import hex0x
from registry.node import Node
from registry.outbox.inbox import ChainFacts, lost_steps, mirrored_id
from registry.store.db import Certificate
from registry.store.states import StepState
from registry.store.usage_models import UsageRecord

__all__ = ["UsageInbox"]


def _opt(value: bytes) -> str | None:
    return None if bytes(value) == ZERO32 else hex0x(value)


class UsageInbox:
    contract_name = "UsageLedger"

    def __init__(self, node: Node) -> None:
        self.node = node

    def apply(self, events: Sequence[Event], hosted: frozenset[str]) -> int:
        foreign = [e for e in events if e.name == "UsageRecorded" and unpad(e.args["agencyUscc"]) not in hosted]
        if not foreign:
            return 0
        with self.node.db.session() as s:
            known = set(s.scalars(select(UsageRecord.key).where(UsageRecord.key.in_([hex0x(e.args["id"]) for e in foreign]))))
        fresh = [e for e in foreign if hex0x(e.args["id"]) not in known]
        if not fresh:
            return 0
        facts = ChainFacts.read(self.node, fresh)
        added = 0
        with self.node.db.session() as s:
            for e in fresh:
                a, key = e.args, hex0x(e.args["id"])
                if s.scalar(select(UsageRecord.id).where(UsageRecord.key == key)) is not None:
                    continue
                doc = hex0x(a["certificateDoc"])
                cert = s.scalar(select(Certificate.identifier).where(Certificate.digest_sha256 == doc[2:]))
                grant = _opt(a["grantDigest"])
                s.add(UsageRecord(ref=mirrored_id(key), key=key, agency_uscc=unpad(a["agencyUscc"]), certificate_doc=doc,
                                  certificate_id=cert, channel="grant" if grant else "presentation", grant_digest=grant,
                                  grant=None, presentation_digest=_opt(a["presentationDigest"]), presentation=None,
                                  holder_key_id=None, purpose="", operator_id=None, salt="",
                                  purpose_digest=hex0x(a["purposeDigest"]), status="recorded", **facts.anchor(e)))
                s.flush()
                added += 1
        return added

    def forget_lost(self, hosted: frozenset[str]) -> int:
        with self.node.db.session() as s:
            rows = [(i, n, h) for i, n, h, agency in s.execute(
                select(UsageRecord.id, UsageRecord.block_number, UsageRecord.block_hash, UsageRecord.agency_uscc)
                .where(UsageRecord.state == StepState.DONE.value)) if agency not in hosted]
        lost = lost_steps(self.node, rows) if rows else []
        if lost:
            with self.node.db.session() as s:
                for u in s.scalars(select(UsageRecord).where(UsageRecord.id.in_(lost))).all():
                    s.delete(u)
        return len(lost)
