"""Grants on this node: anchoring a holder-signed grant, revoking it with the holder's signed statement, and
verifying a grant for a use — plus what a holder sees of their bound certificates and grants.

The node relays for the holder: it checks the grant off chain (the holder's P-256 signature; the certificate is
registered here, anchored, not revoked, and bound to that holder key), stores it, and the issuing agency's
account sends `GrantRegistry.anchorGrant` through the outbox (registry/outbox/steps.py: the row first, then the
transaction). A refused grant stores nothing.

    >>> svc = GrantService(node)                                          # doctest: +SKIP
    >>> svc.anchor(signed_grant_json)["status"]                           # doctest: +SKIP
    'active'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chain.grants import GrantRegistryClient, GrantState
from registry.errors import ConflictError, NotFoundError, PermissionDeniedError, SignatureError, ValidationError
from registry.holders._time import format_time
from registry.holders.grant_checks import CertificateFacts, GrantVerdict, evaluate
from registry.holders.grants import REASONS, Grant, GrantRevocation
from registry.holders.index import GrantIndex
from registry.node import Node
from registry.outbox.steps import StepCall, StepLedger
from registry.store.db import Certificate
from registry.store.holder_models import GrantRow, GrantStep

__all__ = ["GrantService", "refusal"]

_EVENTS = {"anchor": "GrantAnchored", "revoke": "GrantRevoked"}
# a verification of the presented document: (identifier, verdict, holder key digest, issuer USCC, shown fields)
DocumentCheck = Callable[[Mapping[str, Any]], tuple[str, str, str | None, str, list[str]]]


def refusal(verdict: GrantVerdict) -> Exception:
    """A failed check of a grant someone asks this node to anchor, as the error the API answers."""
    reason = verdict.reason or "bad_signature"
    zh, en = REASONS[reason]
    message = f"{zh} / {en}"
    details = {"grant": verdict.grant, **verdict.details}
    if reason == "bad_signature":
        return SignatureError(message, code=reason, details=details)
    if reason == "unknown_certificate":
        return NotFoundError(message, code=reason, details=details)
    if reason == "holder_mismatch":
        return PermissionDeniedError(message, code=reason, details=details)
    if reason == "expired":
        return ValidationError(message, code="grant_expired", details=details)
    return ConflictError(message, code=reason, details=details)


class GrantService(StepLedger):
    step_model = GrantStep
    ledger_name = "grants"
    contract_name = "GrantRegistry"

    def __init__(self, node: Node, *, index: GrantIndex | None = None,
                 check_document: DocumentCheck | None = None) -> None:
        super().__init__(node)
        self.index = index or GrantIndex(node)
        self.check_document = check_document

    # -- outbox hooks --------------------------------------------------------------------------------
    def _client(self) -> GrantRegistryClient:
        return self.node.client(GrantRegistryClient)

    def _scopes(self, step: GrantStep) -> tuple[set[str], set[str]]:
        scope = {f"grant:{step.grant_digest}"}
        return scope, scope

    def _call_for(self, s: Session, step: GrantStep) -> StepCall | None:
        c = self._client()
        row = s.get(GrantRow, step.grant_digest)
        assert row is not None
        key = bytes.fromhex(row.digest)
        if step.kind == "anchor":
            fn = c.anchor_fn(key, bytes.fromhex(row.certificate_digest), bytes.fromhex(row.grantee_digest),
                             row.not_before, row.expires_at)
        else:
            fn = c.revoke_fn(key, bytes.fromhex(step.params["revocation_digest"]))
        return StepCall(step.id, step.actor_uscc, key, fn, c.GAS[step.kind], _EVENTS[step.kind], {}, step.tx_hash)

    def _apply_mirror(self, s: Session, step: GrantStep) -> None:
        row = s.get(GrantRow, step.grant_digest)
        if row is not None:
            row.status = "active" if step.kind == "anchor" else "revoked"

    def _discard(self, s: Session, step: GrantStep) -> None:
        kind, digest = step.kind, step.grant_digest
        s.delete(step)
        s.flush()
        row = s.get(GrantRow, digest)
        if row is None:
            return
        if kind == "anchor":
            s.delete(row)
        else:
            row.revocation = None

    def _created_row(self, s: Session, step: GrantStep) -> GrantRow | None:
        return s.get(GrantRow, step.grant_digest) if step.kind == "anchor" else None

    # -- facts ---------------------------------------------------------------------------------------
    def chain_now(self) -> int:
        """The latest block's timestamp: the time GrantRegistry and the usage ledger judge windows by."""
        header = self.node.blocks.header(self.node.blocks.head())
        if header is None:
            raise ConflictError("the chain has no head block", code="chain_unavailable")
        return int(header.timestamp)

    def chain_state(self, digest: bytes) -> GrantState:
        return self._client().grant_of(digest)

    @staticmethod
    def _facts(s: Session, certificate_digest: str) -> CertificateFacts | None:
        row = s.scalars(select(Certificate).where(Certificate.digest_sha256 == certificate_digest)).first()
        if row is None:
            return None
        return CertificateFacts(row.identifier, str(row.status), row.holder_key_digest, row.issuer_uscc)

    # -- writes --------------------------------------------------------------------------------------
    def anchor(self, obj: Any) -> dict[str, Any]:
        """Check and anchor a holder-signed grant; returns its view. Nothing is stored when a check fails."""
        grant = Grant.parse(obj)
        digest = grant.digest.hex()
        now = self.chain_now()
        with self.new_steps() as (s, claimed):
            facts = self._facts(s, grant.certificate)
            verdict = evaluate(grant, certificate=facts, chain=None, now=now, require_anchored=False)
            if not verdict.ok and verdict.reason != "not_yet_valid":
                raise refusal(verdict)
            assert facts is not None
            if facts.status != "issued":
                raise ConflictError(f"certificate {facts.identifier} is {facts.status}: a grant needs an anchored, "
                                    "valid certificate", code="certificate_not_valid",
                                    details={"status": facts.status})
            if s.get(GrantRow, digest) is not None or s.scalar(
                    select(GrantRow.digest).where(GrantRow.grant_id == grant.id)) is not None:
                raise ConflictError(f"grant {grant.id} was anchored before", code="grant_exists",
                                    details={"grant": digest})
            s.add(GrantRow(digest=digest, grant_id=grant.id, certificate_digest=grant.certificate,
                           identifier=facts.identifier, issuer_uscc=facts.issuer_uscc,
                           holder_key_digest=grant.holder_key_id, grantee_kind=grant.grantee.kind,
                           grantee_digest=grant.grantee.digest.hex(), not_before=grant.not_before,
                           expires_at=grant.expires, relay_uscc=facts.issuer_uscc, body=grant.to_json(),
                           status="pending"))
            s.flush()
            step = GrantStep(grant_digest=digest, kind="anchor", actor_uscc=facts.issuer_uscc, params={})
            s.add(step)
            s.flush()
            claimed.append(int(step.id))
        self.try_now(claimed[0])
        return self.view(digest)

    def revoke(self, digest: str, obj: Any) -> dict[str, Any]:
        """Revoke a grant this node relayed, with the holder's signed revocation statement."""
        statement = GrantRevocation.parse(obj)
        if statement.grant != digest:
            raise ValidationError("the revocation names another grant", code="invalid_revocation",
                                  details={"grant": digest, "statement_grant": statement.grant})
        with self.new_steps() as (s, claimed):
            row = s.get(GrantRow, digest)
            if row is None:
                raise NotFoundError(f"no grant {digest[:64]} was relayed by this node", code="unknown_grant")
            grant = Grant.parse(row.body)
            if not statement.signed_by(grant.holder_key):
                raise SignatureError("the revocation is not signed by the grant's holder key",
                                     code="bad_signature", details={"grant": digest})
            if row.status == "revoked" or row.revocation is not None:
                raise ConflictError(f"grant {digest} is already revoked", code="grant_revoked")
            if row.status != "active":
                raise ConflictError(f"grant {digest} is {row.status}: it can be revoked once anchored",
                                    code="grant_not_active", details={"status": row.status})
            row.revocation = statement.to_json()
            step = GrantStep(grant_digest=digest, kind="revoke", actor_uscc=row.relay_uscc,
                             params={"revocation_digest": statement.digest.hex()})
            s.add(step)
            s.flush()
            claimed.append(int(step.id))
        self.try_now(claimed[0])
        return self.view(digest)

    # -- verification --------------------------------------------------------------------------------
    def verify(self, obj: Any, *, party: bytes | None, party_label: dict[str, Any],
               document: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Does this grant authorise ``party`` (its grantee digest) to use the certificate now, showing the
        fields of ``document`` (when given, it is verified too and names the holder)? Never raises for a grant
        that fails: the answer says why."""
        grant = Grant.parse(obj)
        shown: list[str] | None = None
        doc_info: dict[str, Any] | None = None
        facts: CertificateFacts | None
        if document is not None and self.check_document is not None:
            identifier, doc_verdict, holder_key, issuer, shown = self.check_document(document)
            doc_info = {"identifier": identifier, "verdict": doc_verdict}
            status = "issued" if doc_verdict == "valid" else doc_verdict
            facts = CertificateFacts(identifier, status, holder_key, issuer)
            if _digest_of(document) != grant.certificate:
                facts = None
        else:
            with self.node.db.session() as s:
                facts = self._facts(s, grant.certificate)
        chain = self.chain_state(grant.digest)
        verdict = evaluate(grant, certificate=facts, chain=chain, now=self.chain_now(), party=party,
                           shown_fields=shown)
        return _answer(grant, verdict, party_label, doc_info, document)

    # -- reads ---------------------------------------------------------------------------------------
    def view(self, digest: str) -> dict[str, Any]:
        with self.node.db.session() as s:
            row = s.get(GrantRow, digest)
            if row is None:
                raise NotFoundError(f"no grant {digest[:64]} on this node", code="unknown_grant")
            steps = s.scalars(select(GrantStep).where(GrantStep.grant_digest == digest).order_by(GrantStep.id)).all()
            return {"digest": row.digest, "id": row.grant_id, "status": row.status, "identifier": row.identifier,
                    "certificate": row.certificate_digest, "issuer": row.issuer_uscc,
                    "holder_key": row.holder_key_digest, "grantee": {"kind": row.grantee_kind,
                                                                     "digest": row.grantee_digest},
                    "purpose": row.body.get("purpose"), "not_before": format_time(row.not_before),
                    "expires": format_time(row.expires_at), "fields": row.body.get("fields"),
                    "relay": row.relay_uscc, "revocation": row.revocation,
                    "steps": [{"kind": st.kind, "state": st.state, "tx_hash": st.tx_hash,
                               "block_number": st.block_number} for st in steps]}

    def grants_of(self, holder_key_id: str) -> list[dict[str, Any]]:
        with self.node.db.session() as s:
            digests = list(s.scalars(select(GrantRow.digest).where(GrantRow.holder_key_digest == holder_key_id)
                                     .order_by(GrantRow.created_at, GrantRow.digest)))
        return [self.view(d) for d in digests]

    def certificates_of(self, holder_key_id: str) -> list[dict[str, Any]]:
        """The certificates bound to this holder key (from the certificates table: no holder data)."""
        with self.node.db.session() as s:
            rows = s.scalars(select(Certificate).where(Certificate.holder_key_digest == holder_key_id)
                             .order_by(Certificate.created_at, Certificate.identifier)).all()
            return [{"identifier": r.identifier, "type": r.type_code, "issuer": r.issuer_uscc, "status": r.status,
                     "digest": r.digest_sha256, "valid_from": r.valid_from and r.valid_from.isoformat(),
                     "valid_until": r.valid_until and r.valid_until.isoformat()} for r in rows]


def _digest_of(document: Mapping[str, Any]) -> str | None:
    digest = document.get("digest")
    return digest.get("sha256") if isinstance(digest, Mapping) else None


def _holder_name(document: Mapping[str, Any] | None) -> str | None:
    if document is None:
        return None
    fields = document.get("fields")
    entry = fields.get("持证主体") if isinstance(fields, Mapping) else None
    value = entry.get("value") if isinstance(entry, Mapping) else None
    return value if isinstance(value, str) else None


def _answer(grant: Grant, verdict: GrantVerdict, party: dict[str, Any], doc_info: dict[str, Any] | None,
            document: Mapping[str, Any] | None) -> dict[str, Any]:
    who = party.get("name") or party.get("label") or "?"
    holder = _holder_name(document) or f"holder key {grant.holder_key_id[:16]}…"
    until = format_time(grant.expires)
    delegation = {"presented_by": party, "on_behalf_of": {"holder_key": grant.holder_key_id,
                                                           "holder": _holder_name(document)},
                  "purpose": grant.purpose, "until": until, "fields": None if grant.fields is None
                  else list(grant.fields)}
    out = {**verdict.to_json(), "certificate": doc_info or {"digest": grant.certificate}, "delegation": delegation}
    if verdict.ok:
        out["text_zh"] = f"由 {who} 代持证人 {holder} 出示，事由：{grant.purpose}，有效期至 {until}"
        out["text_en"] = f"presented by {who} on behalf of holder {holder}, for purpose {grant.purpose}, until {until}"
    else:
        out["text_zh"] = f"授权无效：{verdict.reason_zh}"
        out["text_en"] = f"the grant does not authorise this use: {verdict.reason_en}"
    return out

