"""Does a grant authorise this use? One pure function over what the node knows: the grant, the certificate's
record, the grant's on-chain state, the chain's time, who presents it and which fields.

The first failing rule gives the reason (registry/holders/grants.py REASONS), in this order: bad_signature,
unknown_certificate, holder_mismatch, certificate_not_valid, not_anchored, revoked, not_yet_valid, expired,
wrong_party, fields_out_of_scope. Time is the chain's (the latest block's timestamp), as GrantRegistry and the
usage ledger see it: ``not_before <= now < expires``.

>>> evaluate(grant, certificate=facts, chain=state, now=head_time, party=digest).ok     # doctest: +SKIP
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chain.grants import GrantState, GrantStatus
from registry.holders._time import format_time
from registry.holders.grants import REASONS, Grant

__all__ = ["CertificateFacts", "GrantState", "GrantStatus", "GrantVerdict", "evaluate"]


@dataclass(frozen=True)
class CertificateFacts:
    """What the node knows of the certificate a grant names (None where it does not know it)."""

    identifier: str
    status: str  # issued, pending, revoked, suspended, superseded, expired
    holder_key_digest: str | None  # None: not a bound certificate
    issuer_uscc: str


@dataclass(frozen=True)
class GrantVerdict:
    ok: bool
    reason: str | None
    reason_zh: str | None
    reason_en: str | None
    grant: str  # digest hex
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason, "reason_zh": self.reason_zh, "reason_en": self.reason_en,
                "grant": self.grant, "details": self.details}


def _fail(grant: Grant, reason: str, **details: Any) -> GrantVerdict:
    zh, en = REASONS[reason]
    return GrantVerdict(False, reason, zh, en, grant.digest.hex(), details)


def evaluate(grant: Grant, *, certificate: CertificateFacts | None, chain: GrantState | None, now: int,
             party: bytes | None = None, shown_fields: Iterable[str] | None = None,
             require_anchored: bool = True) -> GrantVerdict:
    """The verdict for one use of ``grant`` at chain time ``now`` by the party whose grantee digest is ``party``
    (None: not checked, e.g. when anchoring) showing ``shown_fields`` (None: not checked).

    ``require_anchored=False`` evaluates a grant before it is anchored (the node checks a grant it is asked to
    anchor: everything but the chain state)."""
    if not grant.signature_valid():
        return _fail(grant, "bad_signature")
    if certificate is None:
        return _fail(grant, "unknown_certificate", certificate=grant.certificate)
    if certificate.holder_key_digest != grant.holder_key_id or certificate.issuer_uscc != grant.issuer:
        return _fail(grant, "holder_mismatch", certificate_holder_key=certificate.holder_key_digest,
                     grant_holder_key=grant.holder_key_id, certificate_issuer=certificate.issuer_uscc,
                     grant_issuer=grant.issuer)
    if certificate.status not in ("issued", "pending"):
        return _fail(grant, "certificate_not_valid", status=certificate.status)
    if require_anchored:
        if chain is None or chain.status == GrantStatus.UNKNOWN:
            return _fail(grant, "not_anchored")
        if (chain.certificate_doc.hex() != grant.certificate or chain.grantee_digest != grant.grantee.digest
                or chain.not_before != grant.not_before or chain.expires_at != grant.expires):
            return _fail(grant, "not_anchored", detail="the anchored record differs from this grant")
        if chain.status == GrantStatus.REVOKED:
            return _fail(grant, "revoked")
    if now < grant.not_before:
        return _fail(grant, "not_yet_valid", not_before=format_time(grant.not_before), now=format_time(now))
    if now >= grant.expires:
        return _fail(grant, "expired", expires=format_time(grant.expires), now=format_time(now))
    if party is not None and party != grant.grantee.digest:
        return _fail(grant, "wrong_party", grantee_kind=grant.grantee.kind)
    if shown_fields is not None:
        outside = grant.allows_fields(shown_fields)
        if outside:
            return _fail(grant, "fields_out_of_scope", fields=outside)
    return GrantVerdict(True, None, None, None, grant.digest.hex(),
                        {"purpose": grant.purpose, "grantee_kind": grant.grantee.kind,
                         "expires": format_time(grant.expires), "not_before": format_time(grant.not_before),
                         "holder_key": grant.holder_key_id, "fields": None if grant.fields is None
                         else list(grant.fields)})
