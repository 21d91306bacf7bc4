"""免证办: an agency handling a matter fetches the certificate itself, with the holder's grant, instead of asking the
citizen for paper. The grant carries the document key wrapped to the grantee agency's exchange key
(registry/holders/wrapping.py); only the node holding that agency's exchange key can unwrap it.

For one fetch the node, in this order (any failure is a 4xx and nothing is stored):

1. checks the grant for this agency and certificate now (registry/usage/consent.py: signature, scope, validity,
   anchor, not revoked);
2. unwraps the document key with the agency's exchange key (AAD = the grant id) — ``unwrap_failed`` with any
   other key;
3. fetches the sealed document: this node's copy, or the issuing node's public blob (registry/certificates/remote.py);
4. opens it (AES-GCM / SM4, AAD = the identifier) and checks its recomputed digest is the granted certificate's;
5. hides the fields outside the grant's scope (selective disclosure: the digest still verifies);
6. records the usage (channel ``fetch``) — committed before the document is handed back.

The decrypted document and the unwrapped key live in memory for the request only: nothing of them is stored.

    >>> FetchService(usage, exchange_key=lambda uscc: keys[uscc]).fetch(agency, submission)["usage"]["status"]  # doctest: +SKIP
    'recorded'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from registry.certificates.documents import Document
from registry.certificates.remote import RemoteCertificates
from registry.errors import NotFoundError, ProofError, ValidationError
from registry.formats.envelope import aad_for, open_
from registry.holders.keys import HolderKey
from registry.holders.wrapping import unwrap_key
from registry.identifiers import CertificateId
from registry.store.db import CertificateBlob
from registry.usage.consent import parse_grant
from registry.usage.service import MAX_PURPOSE, UsageService, UsageSubmission
from registry.validation import required_text

__all__ = ["ExchangeKeyFn", "FetchService"]

ExchangeKeyFn = Callable[[str], HolderKey]  # a hosted agency's exchange private key (NotFoundError if none)


class FetchService:
    def __init__(self, usage: UsageService, *, exchange_key: ExchangeKeyFn,
                 remote: RemoteCertificates | None = None) -> None:
        self.usage = usage
        self.node = usage.node
        self.exchange_key = exchange_key
        self.remote = remote or usage.consent.remote

    def fetch(self, agency: str, sub: UsageSubmission) -> dict[str, Any]:
        """{"usage": the recorded usage, "document": the opened document (fields outside the grant hidden)}."""
        if sub.grant is None:
            raise ValidationError("免证办 needs the holder's grant naming your agency", code="missing_grant")
        if sub.presentation is not None:
            raise ValidationError("免证办 takes a grant, not a presentation", code="invalid_consent")
        required_text(sub.purpose, "purpose", "missing_purpose", max_length=MAX_PURPOSE)  # before any decryption
        certificate = self.usage.consent.certificate(sub.certificate)
        if certificate.identifier is None:
            raise NotFoundError(f"no certificate with digest {certificate.doc[2:]} is known here; name it by its "
                                f"identifier", code="unknown_certificate")
        consent = self.usage.consent.check_grant(agency, certificate, sub.grant)
        if not consent.wrapped_key or not consent.grant_id:
            raise ValidationError("the grant carries no document key wrapped for your agency (wrapped_key)",
                                  code="no_wrapped_key")
        key = unwrap_key(consent.wrapped_key, self.exchange_key(agency), grant_id=consent.grant_id)
        blob = self._blob(certificate.identifier)
        try:
            plaintext = open_(blob, key, aad=aad_for(certificate.identifier))
        except ProofError as exc:
            raise ProofError(f"the unwrapped key does not open the sealed document: {exc.message}",
                             code="decrypt_failed") from None
        doc = Document.from_json(plaintext)
        if "0x" + doc.document_digest_bytes.hex() != certificate.doc or doc.integrity_errors():
            raise ProofError("the opened document is not the granted certificate (its digest differs)",
                             code="document_mismatch")
        outside = parse_grant(sub.grant).allows_fields(doc.paths)
        shown = doc.disclose(outside)  # also drops the salt seed (see Document.disclose)
        view = self.usage.record(agency, sub, channel="fetch", checked=consent)
        return {"usage": view.to_json(), "document": shown.to_json(), "hidden_fields": outside}

    def _blob(self, identifier: str) -> bytes:
        with self.node.db.session() as s:
            row = s.get(CertificateBlob, identifier)
            if row is not None:
                return bytes(row.blob)
        return self.remote.blob(CertificateId.parse(identifier))
