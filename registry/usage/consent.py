"""The holder's consent to a usage, checked before anything is stored or sent: a grant (授权他人用证) naming the
using agency, or the holder's in-person presentation (当面出示) over a challenge this node issued.

A grant is accepted when (each failure has its own code, all 4xx):

* it is a well-formed grant signed by its holder key (registry/holders/grants.py) — ``invalid_grant``,
  ``bad_grant_signature``;
* its grantee is an agency and its digest is SHA-256("lianzheng/grantee/agency/v1:" + the using agency's USCC)
  — ``wrong_grantee`` (403);
* it is for the certificate being used — ``certificate_mismatch``;
* now is within [not_before, expires) — ``grant_not_yet_valid`` / ``grant_expired`` (409);
* the GrantRegistry holds it, active, with the same certificate, grantee and validity — ``grant_not_anchored``,
  ``grant_revoked`` (409), ``grant_anchor_mismatch``.

The UsageLedger contract checks the anchored grant again (contracts/UsageLedger.sol).

    >>> checker = ConsentChecker(node)                                                   # doctest: +SKIP
    >>> checker.check_grant("11230000MB1A00044B", checker.certificate(identifier), grant).grant_digest  # doctest: +SKIP
    '0x5e1f...'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain.grants import GrantRegistryClient
from chain.usage import agency_grantee_digest
from registry.certificates.remote import RemoteCertificates
from registry.crypto.hashing import hex0x
from registry.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RegistryError,
    ValidationError,
    chain_boundary,
)
from registry.holders.grant_checks import CertificateFacts, evaluate
from registry.holders.grants import GRANT_QR_PREFIX, Grant
from registry.holders.presentation import PRESENTED, ChallengeStore, parse_presentation, presentation_digest
from registry.identifiers import CertificateId
from registry.node import Node
from registry.store.db import Certificate
from registry.validation import normalise_digest

__all__ = ["CertificateRef", "Consent", "ConsentChecker", "grant_problem", "parse_grant", "presentation_problem"]


@dataclass(frozen=True)
class CertificateRef:
    """A certificate as a usage names it: its document digest (the CertificateLedger doc key), and its
    identifier and issuer when known."""

    doc: str  # 0x + 64 hex
    identifier: str | None
    issuer_uscc: str | None
    type_code: str | None


@dataclass(frozen=True)
class Consent:
    """A checked consent: what the usage row records about it."""

    certificate: CertificateRef
    grant_digest: str | None = None
    grant: dict[str, Any] | None = None
    presentation_digest: str | None = None
    presentation: dict[str, Any] | None = None
    holder_key_id: str | None = None
    wrapped_key: str | None = None  # the document key wrapped for the grantee agency (免证办)
    grant_id: str | None = None  # the grant's id: the wrapped key's associated data


class ConsentChecker:
    """Checks grants and presentations for usages (see the module docstring)."""

    def __init__(self, node: Node, *, remote: RemoteCertificates | None = None,
                 challenges: ChallengeStore | None = None) -> None:
        self.node = node
        self.remote = remote or RemoteCertificates(node)
        self.challenges = challenges or ChallengeStore(node)

    def certificate(self, text: Any) -> CertificateRef:
        """The certificate named by its GB/T 36904 identifier or its document digest (64 hex)."""
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("certificate is required: its identifier (1.2.156.3005.2...) or document digest",
                                  code="missing_certificate")
        text = text.strip()
        if text.startswith("1.2.156."):
            cid = CertificateId.parse(text)  # ValidationError invalid_identifier
            with self.node.db.session() as s:
                row = s.get(Certificate, str(cid))
                if row is not None:
                    return CertificateRef("0x" + row.digest_sha256, row.identifier, row.issuer_uscc, row.type_code)
            rec = self.remote.record(cid)  # issued on another node: its public record
            return CertificateRef(hex0x(rec.digest_sha256), str(cid), rec.issuer_uscc, rec.type_code)
        doc = "0x" + normalise_digest(text, "certificate")
        with self.node.db.session() as s:
            row = s.query(Certificate).filter(Certificate.digest_sha256 == doc[2:]).one_or_none()
            if row is not None:
                return CertificateRef(doc, row.identifier, row.issuer_uscc, row.type_code)
        return CertificateRef(doc, None, None, None)

    def facts(self, certificate: CertificateRef) -> CertificateFacts | None:
        """What a grant or presentation is checked against: the certificate's status, issuer and bound holder key
        (this node's record, or the issuing node's public record)."""
        if certificate.identifier is None:
            return None
        with self.node.db.session() as s:
            row = s.get(Certificate, certificate.identifier)
            if row is not None:
                return CertificateFacts(row.identifier, str(row.status), row.holder_key_digest, row.issuer_uscc)
        rec = self.remote.record(CertificateId.parse(certificate.identifier))
        status = "pending"
        if rec.batch_root is not None:
            with chain_boundary("reading the certificate's status"):
                status = self.node.certificate_ledger.document_state(rec.digest_sha256).status.name.lower()
        return CertificateFacts(rec.identifier, status, rec.holder_key_digest, rec.issuer_uscc)

    def _chain_time(self) -> int:
        with chain_boundary("reading the chain's time"):
            head = self.node.blocks.header(self.node.blocks.head())
        return head.timestamp if head is not None else 0

    def check_grant(self, agency: str, certificate: CertificateRef, grant: Any) -> Consent:
        """The grant authorises `agency` to use `certificate` now (the chain's time), else a 4xx naming why."""
        g = parse_grant(grant)
        if g.certificate != certificate.doc[2:]:
            raise ValidationError(f"the grant is for certificate {g.certificate}, not {certificate.doc[2:]}",
                                  code="certificate_mismatch", details={"grant": g.digest.hex()})
        if certificate.identifier is None:  # named by its digest and not issued here: the grant names no identifier
            raise NotFoundError(f"no certificate with digest {certificate.doc[2:]} is known here; name it by its "
                                f"identifier", code="unknown_certificate")
        with chain_boundary("reading the grant registry"):
            state = self.node.client(GrantRegistryClient).grant_of(g.digest)
        verdict = evaluate(g, certificate=self.facts(certificate), chain=state, now=self._chain_time(),
                           party=agency_grantee_digest(agency))
        if not verdict.ok:
            raise _refusal(verdict.reason or "invalid_grant", f"{verdict.reason_zh} / {verdict.reason_en}",
                           {"grant": verdict.grant, **verdict.details})
        return Consent(certificate, grant_digest=hex0x(g.digest), grant=g.to_json(), holder_key_id=g.holder_key_id,
                       wrapped_key=g.wrapped_key, grant_id=g.id)

    def check_presentation(self, agency: str, certificate: CertificateRef, presentation: Any) -> Consent:
        """The holder presented the certificate in person: a valid signature of its bound key over a challenge this
        node issued, unused and unexpired (registry/holders/presentation.py)."""
        if not isinstance(presentation, dict):
            raise ValidationError("presentation must be the holder's signed JSON object", code="invalid_presentation")
        facts = self.facts(certificate)
        if facts is None:
            raise NotFoundError(f"no certificate with digest {certificate.doc[2:]} is known here; name it by its "
                                f"identifier", code="unknown_certificate")
        result = self.challenges.verify(presentation, certificate=certificate.doc[2:],
                                        holder_key_digest=facts.holder_key_digest)
        if result.verdict != PRESENTED:
            reason = result.reason or "status_only"
            raise _refusal(reason, f"the presentation does not show the holder: {reason}", {})
        return Consent(certificate, presentation_digest="0x" + presentation_digest(presentation),
                       presentation=presentation, holder_key_id=result.holder_key)


# a grant or presentation that fails: 403 when it names someone else, 409 when its time or state is wrong, else 422
_FORBIDDEN = {"wrong_party", "wrong_key", "holder_mismatch"}
_CONFLICT = {"expired", "not_yet_valid", "revoked", "not_anchored", "certificate_not_valid", "replayed_nonce",
             "expired_challenge"}


def _refusal(reason: str, message: str, details: dict[str, Any]) -> RegistryError:
    code = {"wrong_party": "wrong_grantee", "expired": "grant_expired", "not_yet_valid": "grant_not_yet_valid",
            "revoked": "grant_revoked", "not_anchored": "grant_not_anchored"}.get(reason, reason)
    if reason in _FORBIDDEN:
        return PermissionDeniedError(message, code=code, details=details)
    if reason in _CONFLICT:
        return ConflictError(message, code=code, details=details)
    if reason == "unknown_certificate":
        return NotFoundError(message, code=code, details=details)
    return ValidationError(message, code=code, details=details)


def parse_grant(grant: Any) -> Grant:
    """A grant as JSON (object or text) or its QR text (``lianzheng:grant:...``)."""
    if isinstance(grant, str) and grant.startswith(GRANT_QR_PREFIX):
        return Grant.from_qr(grant)[0]
    if not isinstance(grant, (dict, str)):
        raise ValidationError("grant must be the holder-signed grant (JSON) or its QR text", code="invalid_grant")
    return Grant.parse(grant)


def grant_problem(grant: Any, agency: str, certificate_doc: str, grant_digest: str | None,
                  holder_key_id: str | None) -> str | None:
    """Why a stored grant does not back a usage (None if it does): the audit's offline re-check of the signature,
    the digest the chain names, the certificate, the grantee and the holder key the row names."""
    try:
        g = parse_grant(grant)
    except RegistryError as exc:
        return f"not a grant ({exc.message})"
    if not g.signature_valid():
        return "its holder signature does not verify"
    if grant_digest is None or hex0x(g.digest) != grant_digest.lower():
        return f"its digest {hex0x(g.digest)} is not the usage's grant digest {grant_digest}"
    if "0x" + g.certificate != certificate_doc.lower():
        return f"it is for certificate 0x{g.certificate}, not {certificate_doc}"
    if g.grantee.kind != "agency" or g.grantee.digest != agency_grantee_digest(agency):
        return f"it does not name agency {agency} as its grantee"
    if holder_key_id != g.holder_key_id:
        return f"it is signed by holder key {g.holder_key_id}, the usage names {holder_key_id}"
    return None


def presentation_problem(presentation: Any, certificate_doc: str, digest: str | None,
                         holder_key_id: str | None) -> str | None:
    """Why a stored presentation does not back a usage (None if it does): its digest is the one on chain, it is
    for this certificate, and the holder key it names signed it."""
    try:
        _, key = parse_presentation(presentation)
    except RegistryError as exc:
        return f"not a presentation ({exc.message})"
    if digest is None or "0x" + presentation_digest(presentation) != digest.lower():
        return f"its digest is not the usage's presentation digest {digest}"
    if "0x" + str(presentation["certificate"]) != certificate_doc.lower():
        return f"it is for certificate 0x{presentation['certificate']}, not {certificate_doc}"
    if not key.verify_object(presentation):
        return "its holder signature does not verify"
    if key.key_id != holder_key_id:
        return f"it is signed by holder key {key.key_id}, the usage names {holder_key_id}"
    return None
