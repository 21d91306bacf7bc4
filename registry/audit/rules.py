"""The replay rules: apply each ledger event to the replayed state in chain order and record every illegal
transition as a finding.

The consortium's events rebuild members, roles, accounts and revoker delegations *as they were at each
block*, so every other event is judged by the rights its actor held at that block: an anchor by an account
without the issuer role (``anchor_without_issuer_role``), a status change by an account the issuer never
delegated (``status_change_unauthorised``), a reinstatement after revocation (``illegal_transition``), a custody
transfer by someone who was not the custodian (``custody_by_non_custodian``), exchange steps out of order
(``exchange_step_out_of_order``), a seal created, suspended, reinstated or revoked by an account without the
right (``seal_action_unauthorised``, registry/audit/_seal_rules.py). A role removed later never makes an earlier
anchor illegal.

Every ledger event is also filed under its transaction (`ReplayState.txs`) so the database comparison can
check each outbox row against the event its transaction produced.

    >>> rules = Rules(ReplayState())
    >>> sorted(rules.handled())[:3]
    ['BatchAnchored', 'CaseSealed', 'CustodyTransferAccepted']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from chain.contracts import DocStatus, MemberStatus, Role, unpad
from chain.ledgers import ExchangeStep
from chain.logs import Event
from registry.audit._seal_rules import SealRules
from registry.audit.report import Finding
from registry.audit.state import (
    BatchState,
    CaseState,
    DocState,
    EvidenceState,
    ExchangeState,
    MemberState,
    ReplayState,
    TxEvent,
    UsageState,
)
from registry.logs.log import PRIMARY_KEY

CHINA_TZ = dt.timezone(dt.timedelta(hours=8))  # the per-day chart counts days as the agencies do


def hex0x(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _arg(name: str, value: Any) -> Any:
    """An event argument as a JSON value (USCCs as strings, bytes as 0x-hex)."""
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        return unpad(raw) if name.endswith("Uscc") else hex0x(raw)
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return value


class Rules:
    """Applies events to the state in chain order and records every illegal transition."""

    def __init__(self, state: ReplayState, *, partial: bool = False) -> None:
        self.s = state
        self.partial = partial  # a window audit: records from before the window are unknown, not illegal
        self._ts = 0
        self._handlers: Mapping[str, Callable[[Event], None]] = {
            "MemberAdmitted": self.on_member_admitted,
            "MemberRolesChanged": self.on_member_roles_changed,
            "MemberStatusChanged": self.on_member_status_changed,
            "MemberAccountAdded": self.on_member_account_added,
            "MemberKeyRotated": self.on_member_key_rotated,
            "RevokerDelegateSet": self.on_revoker_delegate_set,
            "BatchAnchored": self.on_batch_anchored,
            "DocumentSuspended": lambda e: self._doc_change(e, e.args["doc"], DocStatus.SUSPENDED,
                                                            (DocStatus.ISSUED,), "suspension"),
            "DocumentReinstated": lambda e: self._doc_change(e, e.args["doc"], DocStatus.ISSUED,
                                                             (DocStatus.SUSPENDED,), "reinstatement"),
            "DocumentRevoked": lambda e: self._doc_change(e, e.args["doc"], DocStatus.REVOKED,
                                                          (DocStatus.ISSUED, DocStatus.SUSPENDED), "revocation"),
            "DocumentSuperseded": lambda e: self._doc_change(e, e.args["oldDoc"], DocStatus.SUPERSEDED,
                                                             (DocStatus.ISSUED, DocStatus.SUSPENDED), "supersession",
                                                             superseded_by=hex0x(e.args["newDoc"])),
            "EvidenceRegistered": self.on_evidence_registered,
            "CustodyTransferRequested": self.on_custody_requested,
            "CustodyTransferAccepted": self.on_custody_accepted,
            "CustodyTransferRejected": self.on_custody_rejected,
            "CaseSealed": self.on_case_sealed,
            "ExchangeRequested": self.on_exchange_requested,
            "ExchangeAuthorised": self.on_exchange_authorised,
            "ExchangeDelivered": self.on_exchange_delivered,
            "ExchangeAcknowledged": self.on_exchange_acknowledged,
            "UsageRecorded": self.on_usage_recorded,
        }
        self.seals = SealRules(self)  # SealRegistry (registry/audit/_seal_rules.py)

    def handled(self) -> set[str]:
        return set(self._handlers) | self.seals.handled()

    def finding(self, kind: str, ledger: str, ref: str, detail: str) -> None:
        self.s.findings.append(Finding(kind, ledger, ref, detail))

    def apply(self, ledger: str, e: Event, timestamp: int) -> None:
        s = self.s
        s.events[ledger] = s.events.get(ledger, 0) + 1
        s.block_times.setdefault(e.block_number, timestamp)
        key_arg = PRIMARY_KEY.get(e.name)
        key = _arg(key_arg, e.args[key_arg]) if key_arg else ""
        tx = e.tx_hash.lower()
        s.txs[tx] = (*s.txs.get(tx, ()), TxEvent(ledger, e.name, key, e.block_number, e.block_hash.lower(),
                                                  {k: _arg(k, v) for k, v in e.args.items()}))
        handler = self._handlers.get(e.name)
        if handler is not None:
            self._ts = timestamp
            handler(e)

    def apply_seal(self, e: Event, timestamp: int, sender: str | None) -> None:
        """A SealRegistry event, judged by the rights its transaction's sender held at that block."""
        self._ts = timestamp
        self.seals.apply(e, timestamp, sender)

    # -- who held what, at this point of the history --
    def member_of(self, account: str) -> str | None:
        return self.s.account_member.get(account.lower())

    def member_has(self, uscc: str | None, role: Role) -> bool:
        m = self.s.members.get(uscc or "")
        return m is not None and m.status == MemberStatus.ACTIVE and role in m.roles

    def has_role(self, account: str, role: Role) -> bool:
        """ConsortiumRegistry.hasRole as it answered at this block."""
        return self.member_has(self.member_of(account), role)

    def can_revoke_for(self, account: str, issuer: str) -> bool:
        """ConsortiumRegistry.canRevokeFor as it answered at this block."""
        uscc = self.member_of(account)
        m = self.s.members.get(uscc or "")
        if uscc is None or m is None or m.status != MemberStatus.ACTIVE:
            return False
        if uscc == issuer:
            return bool(m.roles & (Role.ISSUER | Role.REVOKER))
        return Role.REVOKER in m.roles and (issuer, uscc) in self.s.delegates

    def describe(self, account: str) -> str:
        uscc = self.member_of(account)
        m = self.s.members.get(uscc or "")
        if m is None:
            return f"account {account} belonged to no member"
        return (f"account {account} belonged to {m.name} ({uscc}), status {m.status.name.lower()}, roles "
                f"{','.join(m.roles.names()) or 'none'}")

    def _day(self, uscc: str, n: int) -> None:
        day = dt.datetime.fromtimestamp(self._ts, CHINA_TZ).date().isoformat()
        per = self.s.per_day.setdefault(day, {})
        per[uscc] = per.get(uscc, 0) + n

    # -- consortium --
    def on_member_admitted(self, e: Event) -> None:
        a, uscc = e.args, unpad(e.args["uscc"])
        accounts = tuple(str(x) for x in a["accounts"])
        self.s.members[uscc] = MemberState(a["name"], a["bid"], Role(int(a["roles"])), MemberStatus.ACTIVE, accounts,
                                           e.block_number)
        for acc in accounts:
            self.s.account_member[acc.lower()] = uscc

    def _member(self, e: Event, **changes: Any) -> None:
        uscc = unpad(e.args["uscc"])
        m = self.s.members.get(uscc)
        if m is not None:
            self.s.members[uscc] = replace(m, **changes)

    def on_member_roles_changed(self, e: Event) -> None:
        self._member(e, roles=Role(int(e.args["newRoles"])))

    def on_member_status_changed(self, e: Event) -> None:
        self._member(e, status=MemberStatus(int(e.args["newStatus"])))

    def on_member_account_added(self, e: Event) -> None:
        uscc, account = unpad(e.args["uscc"]), str(e.args["account"])
        m = self.s.members.get(uscc)
        if m is not None:
            self.s.members[uscc] = replace(m, accounts=(*m.accounts, account))
            self.s.account_member[account.lower()] = uscc

    def on_member_key_rotated(self, e: Event) -> None:
        uscc, old, new = unpad(e.args["uscc"]), str(e.args["oldAccount"]), str(e.args["newAccount"])
        m = self.s.members.get(uscc)
        if m is None:
            return
        accounts = tuple(new if a.lower() == old.lower() else a for a in m.accounts)
        self.s.members[uscc] = replace(m, accounts=accounts, bid=e.args["newBid"])
        self.s.account_member.pop(old.lower(), None)
        self.s.account_member[new.lower()] = uscc

    def on_revoker_delegate_set(self, e: Event) -> None:
        pair = (unpad(e.args["issuer"]), unpad(e.args["delegate"]))
        if e.args["allowed"]:
            self.s.delegates.add(pair)
        else:
            self.s.delegates.discard(pair)

    # -- certificates --
    def on_batch_anchored(self, e: Event) -> None:
        a = e.args
        root, uscc, issuer = hex0x(a["root"]), unpad(a["issuerUscc"]), str(a["issuer"])
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
        self.s.batches[root] = BatchState(issuer, uscc, int(a["count"]), e.block_number, e.block_hash.lower(),
                                          e.tx_hash.lower(), self._ts, hex0x(a["sm3Root"]))
        self._day(uscc, int(a["count"]))

    def _doc_change(self, e: Event, doc: bytes, to: DocStatus, allowed_from: tuple[DocStatus, ...], what: str, *,
                    superseded_by: str | None = None) -> None:
        key, root = hex0x(doc), hex0x(e.args["root"])
        batch = self.s.batches.get(root)
        if batch is None:
            if not self.partial:
                self.finding("illegal_transition", "certificates", key,
                             f"{what} in block {e.block_number} names batch {root}, which was never anchored")
            return
        by = str(e.args["by"])
        if not self.can_revoke_for(by, batch.issuer_uscc):
            self.finding("status_change_unauthorised", "certificates", key,
                         f"{what} in block {e.block_number} (tx {e.tx_hash}) for issuer {batch.issuer_uscc}, but "
                         f"{self.describe(by)}")
        state = self.s.docs.get(key)
        current = state.status if state else DocStatus.ISSUED
        if current not in allowed_from:
            self.finding("illegal_transition", "certificates", key,
                         f"{what} in block {e.block_number} of a document that was {current.name.lower()}")
        previous = state.superseded_by if state else ""
        self.s.docs[key] = DocState(to, int(e.args.get("reason", 0)), root, e.block_number,
                                    superseded_by if superseded_by is not None else previous)

    # -- evidence --
    def on_evidence_registered(self, e: Event) -> None:
        a = e.args
        rid, case, collector = hex0x(a["id"]), hex0x(a["caseId"]), unpad(a["collectorUscc"])
        if not self.member_has(collector, Role.EVIDENCE):
            self.finding("action_without_role", "evidence", rid,
                         f"evidence registered in block {e.block_number} by {collector}, which did not hold the evidence role")
        if rid in self.s.evidence:
            self.finding("illegal_transition", "evidence", rid, f"registered twice (again in block {e.block_number})")
        c = self.s.cases.get(case) or CaseState(collector, False, 0, 0)
        if c.sealed:
            self.finding("illegal_transition", "evidence", rid, f"registered in block {e.block_number} into sealed case {case}")
        self.s.cases[case] = replace(c, records=c.records + 1)
        supersedes = hex0x(a["supersedes"]) if any(a["supersedes"]) else ""
        self.s.evidence[rid] = EvidenceState(case, collector, collector, "", hex0x(a["sha256Digest"]),
                                             hex0x(a["sm3Digest"]), int(a["size"]), hex0x(a["metaDigest"]),
                                             supersedes, "", e.block_number)
        old = self.s.evidence.get(supersedes)
        if old is not None:
            self.s.evidence[supersedes] = replace(old, superseded_by=rid)
        self._day(collector, 1)

    def _evidence(self, e: Event) -> tuple[str, EvidenceState] | None:
        rid = hex0x(e.args["id"])
        rec = self.s.evidence.get(rid)
        if rec is None:
            if not self.partial:
                self.finding("custody_transfer_illegal", "evidence", rid,
                             f"{e.name} in block {e.block_number} of an unknown record")
            return None
        return rid, rec

    def on_custody_requested(self, e: Event) -> None:
        found = self._evidence(e)
        if found is None:
            return
        (rid, rec), frm, to = found, unpad(e.args["fromUscc"]), unpad(e.args["toUscc"])
        if frm != rec.custodian:
            self.finding("custody_by_non_custodian", "evidence", rid,
                         f"transfer to {to} requested in block {e.block_number} by {frm}; the custodian was {rec.custodian}")
        elif not self.member_has(frm, Role.EVIDENCE):
            self.finding("action_without_role", "evidence", rid,
                         f"transfer in block {e.block_number} by {frm} without the evidence role")
        if rec.pending_to:
            self.finding("custody_transfer_illegal", "evidence", rid,
                         f"transfer requested in block {e.block_number} while one to {rec.pending_to} was pending")
        case = self.s.cases.get(rec.case_id)
        if case is not None and case.sealed:
            self.finding("custody_transfer_illegal", "evidence", rid, f"transfer in block {e.block_number} in a sealed case")
        self.s.evidence[rid] = replace(rec, pending_to=to)

    def on_custody_accepted(self, e: Event) -> None:
        found = self._evidence(e)
        if found is None:
            return
        (rid, rec), frm, to = found, unpad(e.args["fromUscc"]), unpad(e.args["toUscc"])
        if rec.pending_to != to or frm != rec.custodian:
            self.finding("custody_transfer_illegal", "evidence", rid,
                         f"{to} accepted custody in block {e.block_number} but the pending transfer was "
                         f"{rec.custodian} -> {rec.pending_to or 'none'}")
        self.s.evidence[rid] = replace(rec, custodian=to, pending_to="")

    def on_custody_rejected(self, e: Event) -> None:
        found = self._evidence(e)
        if found is None:
            return
        rid, rec = found
        if rec.pending_to != unpad(e.args["toUscc"]):
            self.finding("custody_transfer_illegal", "evidence", rid,
                         f"rejection in block {e.block_number} without a pending transfer to {unpad(e.args['toUscc'])}")
        self.s.evidence[rid] = replace(rec, pending_to="")

    def on_case_sealed(self, e: Event) -> None:
        case, owner = hex0x(e.args["caseId"]), unpad(e.args["ownerUscc"])
        c = self.s.cases.get(case)
        if c is None:
            if not self.partial:
                self.finding("illegal_transition", "evidence", case, f"unknown case sealed in block {e.block_number}")
            return
        if c.owner != owner or c.sealed:
            self.finding("illegal_transition", "evidence", case,
                         f"case sealed in block {e.block_number} by {owner}; owner {c.owner}, already sealed: {c.sealed}")
        self.s.cases[case] = replace(c, sealed=True, sealed_block=e.block_number)

    # -- exchanges --
    def on_exchange_requested(self, e: Event) -> None:
        a = e.args
        xid, consumer, provider = hex0x(a["id"]), unpad(a["consumerUscc"]), unpad(a["providerUscc"])
        if not self.member_has(consumer, Role.EXCHANGE):
            self.finding("action_without_role", "exchanges", xid,
                         f"requested in block {e.block_number} by {consumer} without the exchange role")
        if xid in self.s.exchanges:
            self.finding("exchange_step_out_of_order", "exchanges", xid, f"requested again in block {e.block_number}")
        self.s.exchanges[xid] = ExchangeState(consumer, provider, hex0x(a["catalogueItem"]), hex0x(a["purposeDigest"]),
                                              ExchangeStep.REQUESTED, block=e.block_number)
        self._day(consumer, 1)

    def _step(self, e: Event, party_arg: str, expected: ExchangeStep, new: ExchangeStep, **changes: Any) -> None:
        xid = hex0x(e.args["id"])
        x = self.s.exchanges.get(xid)
        if x is None:
            if not self.partial:
                self.finding("exchange_step_out_of_order", "exchanges", xid,
                             f"{e.name} in block {e.block_number} of an unknown exchange")
            return
        party = unpad(e.args[party_arg])
        expected_party = x.provider if party_arg == "providerUscc" else x.consumer
        if party != expected_party:
            self.finding("exchange_by_non_party", "exchanges", xid,
                         f"{e.name} in block {e.block_number} by {party}; the party is {expected_party}")
        if x.step != expected:
            self.finding("exchange_step_out_of_order", "exchanges", xid,
                         f"{e.name} in block {e.block_number} at step {x.step.name.lower()}; expected {expected.name.lower()}")
        self.s.exchanges[xid] = replace(x, step=new, **changes)

    def on_exchange_authorised(self, e: Event) -> None:
        granted = bool(e.args["granted"])
        self._step(e, "providerUscc", ExchangeStep.REQUESTED,
                   ExchangeStep.AUTHORISED if granted else ExchangeStep.REFUSED,
                   reason_digest=hex0x(e.args["reasonDigest"]))

    def on_exchange_delivered(self, e: Event) -> None:
        a = e.args
        self._step(e, "providerUscc", ExchangeStep.AUTHORISED, ExchangeStep.DELIVERED,
                   payload_digest=hex0x(a["payloadDigest"]), size=int(a["size"]), records=int(a["records"]))

    def on_exchange_acknowledged(self, e: Event) -> None:
        self._step(e, "consumerUscc", ExchangeStep.DELIVERED,
                   ExchangeStep.ACKNOWLEDGED if e.args["matched"] else ExchangeStep.DISPUTED,
                   received_digest=hex0x(e.args["receivedDigest"]))

    # -- usages (用证记录) --
    def on_usage_recorded(self, e: Event) -> None:
        """A usage by an agency that was not an Active member, twice under one id, or without exactly one kind
        of consent (a grant digest or a presentation digest) is illegal; the grant itself is checked against the
        database's signed copy (registry/audit/_usage.py)."""
        a = e.args
        uid, agency = hex0x(a["id"]), unpad(a["agencyUscc"])
        grant, presentation = hex0x(a["grantDigest"]), hex0x(a["presentationDigest"])
        zero = "0x" + "00" * 32
        m = self.s.members.get(agency)
        if m is None or m.status != MemberStatus.ACTIVE:
            self.finding("usage_by_non_member", "usage", uid,
                         f"usage recorded in block {e.block_number} by {agency}, not an active member then")
        if uid in self.s.usages:
            self.finding("usage_recorded_twice", "usage", uid, f"recorded again in block {e.block_number}")
        if (grant == zero) == (presentation == zero):
            self.finding("usage_without_consent", "usage", uid,
                         f"usage recorded in block {e.block_number} by {agency} with "
                         f"{'neither a grant nor a presentation' if grant == zero else 'both a grant and a presentation'}")
        self.s.usages[uid] = UsageState(agency, hex0x(a["certificateDoc"]), "" if grant == zero else grant,
                                        "" if presentation == zero else presentation, hex0x(a["purposeDigest"]),
                                        block=e.block_number)


__all__ = ["CHINA_TZ", "Rules", "hex0x"]
