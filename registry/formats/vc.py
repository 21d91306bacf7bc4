"""A certificate as a W3C Verifiable Credential 2.0 (the 电子卡包 export), and back.

The credential is a JSON-LD view of one anchored ``lianzheng/cert/1`` document (registry.certificates.documents);
it adds no signature scheme of its own. Its ``proof`` is of type ``LianzhengAnchorProof``: the whole document,
whose anchor proof (the RFC 6962 audit path of the document digest in a batch whose root the issuing agency's
account anchored on the CertificateLedger in a signed transaction) is what any Lianzheng verifier checks. A
wallet app that only understands VC 2.0 sees the claims; a verifier that understands Lianzheng recovers the
document (`from_credential`) and verifies it exactly as a presented document (``POST /api/v1/verify``).

Every claim outside ``proof`` is derived from the document (`to_credential`), and `from_credential` refuses a
credential whose claims differ from what its document says (``credential_mismatch``): an edited
``credentialSubject`` can never ride along with an authentic document.

Layout (``<base>`` is the public base URL of the node that exported it)::

    {"@context": ["https://www.w3.org/ns/credentials/v2", "<base>/ns/lianzheng/v1"],
     "id": "urn:lianzheng:certificate:<证照标识>",
     "type": ["VerifiableCredential", "LianzhengCertificate"],
     "name": <证照名称>,
     "issuer": {"id": <did:bid of the issuing agency>, "name": <颁发机构>, "uscc": <颁发机构代码>},
     "validFrom": "<有效期起始>T00:00:00+08:00",        (absent when hidden)
     "validUntil": "<有效期截止>T23:59:59+08:00",       (absent for 长期 or hidden)
     "credentialSubject": {"id": "urn:lianzheng:holder-key:<key id>"  (bound certificates only),
                           "holderKeyId": <key id>, "certificateType": <证照类型代码>,
                           "fields": {<shown field>: <value>, ...}, "hiddenFields": [<hidden field>, ...]},
     "credentialStatus": {"id": "<base>/api/v1/certificates/<证照标识>/status", "type": "LianzhengChainStatus",
                          "chainId": <EVM chain id>, "ledger": <CertificateLedger address>,
                          "documentKey": "0x<document digest>", "batchRoot": "0x<batch root>"},
     "proof": {"type": "LianzhengAnchorProof", "proofPurpose": "assertionMethod",
               "verificationMethod": "<did:bid>#<the issuing account that anchored the batch>",
               "created": <anchoring block time, RFC 3339 UTC>, "document": <the lianzheng/cert/1 JSON>}}

A wallet export (``lianzheng holder export``) is a bundle of them with the holder's offline QR payloads::

    {"format": "lianzheng/wallet-export/1", "exported": <RFC 3339 UTC>, "holderKeyId": <key id> | null,
     "verifiableCredential": [<credential>, ...],
     "offlineQr": {<证照标识>: ["LZ2:...", ...], ...}}     (registry/formats/lz2.py payloads, as scanned)

Times: the certificate's dates are calendar dates in Beijing time (UTC+08:00); a certificate is valid through
the whole of its 有效期截止 day, hence 23:59:59+08:00. ``documentKey`` is the key CertificateLedger keeps the
document's status under (``documentState(bytes32 doc)``): its SHA-256 document digest. The ``fields`` and
``document`` members are JSON literals (``@json`` in the Lianzheng context, `LIANZHENG_CONTEXT`), so JSON-LD
processors keep field names in Chinese as they are.

>>> from registry.certificates.documents import Document
>>> vc = to_credential(doc, issuer_did="did:bid:ef...", base_url="https://lz.example.gov.cn")  # doctest: +SKIP
>>> from_credential(vc).document == doc                                                          # doctest: +SKIP
True
>>> holder_key_urn("ab" * 32)[:27]
'urn:lianzheng:holder-key:ab'
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785

from registry.certificates.documents import Document
from registry.errors import PayloadFormatError, ValidationError

__all__ = [
    "CONTEXT_PATH",
    "CREDENTIAL_TYPE",
    "LIANZHENG_CONTEXT",
    "PROOF_TYPE",
    "STATUS_TYPE",
    "VC_CONTEXT",
    "BUNDLE_FORMAT",
    "ImportedCredential",
    "bundle",
    "from_credential",
    "parse_bundle",
    "holder_key_urn",
    "to_credential",
]

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
CONTEXT_PATH = "/ns/lianzheng/v1"
CREDENTIAL_TYPE = "LianzhengCertificate"
STATUS_TYPE = "LianzhengChainStatus"
PROOF_TYPE = "LianzhengAnchorProof"
_ID_PREFIX = "urn:lianzheng:certificate:"
_HOLDER_PREFIX = "urn:lianzheng:holder-key:"
_BEIJING = dt.timezone(dt.timedelta(hours=8))
_KEY_ID = re.compile(r"[0-9a-f]{64}")
_VOCAB = "urn:lianzheng:vocab:v1#"
_SEC = "https://w3id.org/security#"

# The JSON-LD context served at <base>/ns/lianzheng/v1 (api/routes/wallet.py). Terms the VC 2.0 context
# already defines (id, type, name, issuer, validFrom, ...) are not redefined: it is @protected.
LIANZHENG_CONTEXT: dict[str, Any] = {
    "@context": {
        "@version": 1.1,
        "@protected": True,
        "lz": _VOCAB,
        "uscc": {"@id": "lz:uscc"},
        CREDENTIAL_TYPE: {
            "@id": "lz:LianzhengCertificate",
            "@context": {
                "@protected": True,
                "holderKeyId": {"@id": "lz:holderKeyId"},
                "certificateType": {"@id": "lz:certificateType"},
                "fields": {"@id": "lz:fields", "@type": "@json"},
                "hiddenFields": {"@id": "lz:hiddenFields", "@container": "@set"},
            },
        },
        STATUS_TYPE: {
            "@id": "lz:LianzhengChainStatus",
            "@context": {
                "@protected": True,
                "chainId": {"@id": "lz:chainId"},
                "ledger": {"@id": "lz:ledger"},
                "documentKey": {"@id": "lz:documentKey"},
                "batchRoot": {"@id": "lz:batchRoot"},
            },
        },
        PROOF_TYPE: {
            "@id": "lz:LianzhengAnchorProof",
            "@context": {
                "@protected": True,
                "proofPurpose": {"@id": _SEC + "proofPurpose", "@type": "@vocab"},
                "assertionMethod": {"@id": _SEC + "assertionMethod", "@type": "@id", "@container": "@set"},
                "verificationMethod": {"@id": _SEC + "verificationMethod", "@type": "@id"},
                "created": {"@id": "http://purl.org/dc/terms/created",
                            "@type": "http://www.w3.org/2001/XMLSchema#dateTime"},
                "document": {"@id": "lz:document", "@type": "@json"},
            },
        },
    },
}


def holder_key_urn(key_id: str) -> str:
    """The credentialSubject id of a certificate bound to holder key ``key_id`` (SHA-256 of its SPKI, hex)."""
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise ValidationError(f"holder key id must be 64 lowercase hex digits, got {str(key_id)[:80]!r}",
                              code="invalid_holder_key")
    return _HOLDER_PREFIX + key_id


def _base(base_url: str) -> str:
    if not isinstance(base_url, str) or not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", base_url):
        raise ValidationError(f"base URL must be an http(s) URL without query or fragment, got {base_url!r}",
                              code="invalid_base_url")
    return base_url.rstrip("/")


def _date_time(value: dt.date | None, end_of_day: bool) -> str | None:
    if value is None:
        return None
    moment = dt.datetime.combine(value, dt.time(23, 59, 59) if end_of_day else dt.time(0, 0, 0), _BEIJING)
    return moment.isoformat()


def _shown_text(doc: Document, name: str) -> str | None:
    field = doc.fields.get(name)
    return field.value if field is not None and isinstance(field.value, str) else None


def to_credential(document: Document, *, issuer_did: str, base_url: str) -> dict[str, Any]:
    """The VC 2.0 view of an anchored ``document`` issued by the agency whose BID is ``issuer_did``, as exported
    by the node at ``base_url`` (its context and status URLs). ValidationError without an anchor proof."""
    if document.anchor is None:
        raise ValidationError(f"{document.identifier} has no anchor proof yet: only anchored certificates can be "
                              "exported", code="not_anchored")
    if not isinstance(issuer_did, str) or not issuer_did.startswith("did:bid:"):
        raise ValidationError(f"issuer must be a did:bid identifier, got {str(issuer_did)[:80]!r}",
                              code="invalid_issuer")
    base = _base(base_url)
    anchor = document.anchor
    subject: dict[str, Any] = {}
    key_id = document.holder_key_digest  # the holderKeyDigest leaf of a bound certificate
    if key_id is not None:
        subject["id"] = holder_key_urn(key_id)
        subject["holderKeyId"] = key_id
    subject["certificateType"] = document.type_code
    subject["fields"] = {p: f.value for p, f in document.fields.items()}
    subject["hiddenFields"] = list(document.hidden)
    issuer: dict[str, Any] = {"id": issuer_did, "uscc": document.issuer_uscc}
    issuer_name = _shown_text(document, "颁发机构")
    if issuer_name is not None:
        issuer["name"] = issuer_name
    vc: dict[str, Any] = {
        "@context": [VC_CONTEXT, base + CONTEXT_PATH],
        "id": _ID_PREFIX + document.identifier,
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
    }
    name = _shown_text(document, "证照名称")
    if name is not None:
        vc["name"] = name
    vc["issuer"] = issuer
    valid_from, valid_until = _date_time(document.valid_from, False), _date_time(document.valid_until, True)
    if valid_from is not None:
        vc["validFrom"] = valid_from
    if valid_until is not None:
        vc["validUntil"] = valid_until
    vc["credentialSubject"] = subject
    vc["credentialStatus"] = {
        "id": f"{base}/api/v1/certificates/{document.identifier}/status",
        "type": STATUS_TYPE,
        "chainId": anchor.chain_id,
        "ledger": anchor.ledger,
        "documentKey": "0x" + document.digest_sha256.hex(),
        "batchRoot": "0x" + anchor.batch_root.hex(),
    }
    created = dt.datetime.fromtimestamp(anchor.block_timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    vc["proof"] = {
        "type": PROOF_TYPE,
        "proofPurpose": "assertionMethod",
        "verificationMethod": f"{issuer_did}#{anchor.issuer_account}",
        "created": created,
        "document": document.to_json(),
    }
    return vc


@dataclass(frozen=True)
class ImportedCredential:
    """What a credential carries: the Lianzheng document to verify, and the claims that need the chain to check
    (the issuer's BID must be the one the chain shows for the anchoring account; `issuer_errors`)."""

    document: Document
    issuer_did: str
    base_url: str
    status_url: str

    def issuer_errors(self, chain_bid: str | None) -> list[str]:
        """Empty when the credential's issuer DID is the BID the verifier found on chain for the issuer."""
        if chain_bid is None:
            return ["the issuer's BID could not be read from the chain"]
        if chain_bid != self.issuer_did:
            return [f"issuer.id is {self.issuer_did}, the chain shows {chain_bid} for the anchoring agency"]
        return []


def _bad(message: str, code: str = "invalid_credential") -> PayloadFormatError:
    return PayloadFormatError(message, code=code)


def from_credential(vc: Any) -> ImportedCredential:
    """Recover the document from a credential made by `to_credential`, checking that every claim is the one the
    document implies. PayloadFormatError: ``invalid_credential`` (not a Lianzheng VC 2.0 credential) or
    ``credential_mismatch`` (a claim differs from the document; the message names the members)."""
    if not isinstance(vc, Mapping):
        raise _bad(f"a credential must be a JSON object, got {type(vc).__name__}")
    context = vc.get("@context")
    if not isinstance(context, list) or len(context) != 2 or context[0] != VC_CONTEXT or not isinstance(
            context[1], str) or not context[1].endswith(CONTEXT_PATH):
        raise _bad(f"@context must be [{VC_CONTEXT!r}, '<base>{CONTEXT_PATH}'], got {str(context)[:160]}")
    types = vc.get("type")
    if types != ["VerifiableCredential", CREDENTIAL_TYPE]:
        raise _bad(f"type must be ['VerifiableCredential', {CREDENTIAL_TYPE!r}], got {str(types)[:120]}")
    proof = vc.get("proof")
    if not isinstance(proof, Mapping) or proof.get("type") != PROOF_TYPE or not isinstance(proof.get("document"),
                                                                                          Mapping):
        raise _bad(f"proof must be a {PROOF_TYPE} object carrying the Lianzheng document")
    issuer = vc.get("issuer")
    issuer_did = issuer.get("id") if isinstance(issuer, Mapping) else None
    if not isinstance(issuer_did, str):
        raise _bad("issuer must be an object with an id (the issuing agency's did:bid)")
    base = context[1][: -len(CONTEXT_PATH)]
    document = Document.from_json(proof["document"])
    try:
        expected = to_credential(document, issuer_did=issuer_did, base_url=base)
    except ValidationError as exc:
        raise _bad(f"the credential's document cannot be a credential: {exc.message}") from None
    differing = sorted(k for k in {*vc, *expected} if k not in vc or k not in expected
                       or rfc8785.dumps(vc[k]) != rfc8785.dumps(expected[k]))
    if differing:
        detail = "; ".join(_difference(vc, expected, k) for k in differing)
        raise PayloadFormatError(f"the credential's claims differ from its Lianzheng document: {detail}",
                                 code="credential_mismatch", details={"members": differing})
    return ImportedCredential(document=document, issuer_did=issuer_did, base_url=base,
                              status_url=expected["credentialStatus"]["id"])


def _difference(vc: Mapping[str, Any], expected: Mapping[str, Any], key: str) -> str:
    if key not in vc:
        return f"{key} is missing"
    if key not in expected:
        return f"{key} is not derived from the document"
    got, want = vc[key], expected[key]
    if isinstance(got, Mapping) and isinstance(want, Mapping):
        inner = sorted(k for k in {*got, *want} if k not in got or k not in want
                       or rfc8785.dumps(got[k]) != rfc8785.dumps(want[k]))
        return f"{key}.{{{', '.join(map(str, inner))}}} differ"
    return f"{key} differs"


BUNDLE_FORMAT = "lianzheng/wallet-export/1"
_MAX_CREDENTIALS = 10_000


def bundle(credentials: list[dict[str, Any]], *, offline_qr: Mapping[str, list[str]], holder_key_id: str | None,
           exported: dt.datetime) -> dict[str, Any]:
    """The 电子卡包 export file's JSON (see the module docstring)."""
    if holder_key_id is not None:
        holder_key_urn(holder_key_id)
    return {"format": BUNDLE_FORMAT, "exported": exported.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "holderKeyId": holder_key_id, "verifiableCredential": list(credentials),
            "offlineQr": {k: list(v) for k, v in sorted(offline_qr.items())}}


def parse_bundle(obj: Any) -> tuple[list[Any], dict[str, list[str]]]:
    """(credentials, offline QR payloads by identifier) of an export bundle; a lone credential is a bundle of
    one. Each credential is still to be checked with `from_credential`. PayloadFormatError on a wrong shape."""
    if isinstance(obj, Mapping) and "@context" in obj:
        return [obj], {}
    if not isinstance(obj, Mapping) or obj.get("format") != BUNDLE_FORMAT:
        raise _bad(f"not a credential nor a wallet export (format {BUNDLE_FORMAT!r})", code="invalid_bundle")
    creds, qrs = obj.get("verifiableCredential"), obj.get("offlineQr", {})
    if not isinstance(creds, list) or not 0 < len(creds) <= _MAX_CREDENTIALS:
        raise _bad(f"verifiableCredential must be a list of 1..{_MAX_CREDENTIALS} credentials", code="invalid_bundle")
    if not isinstance(qrs, Mapping) or not all(
            isinstance(v, list) and all(isinstance(t, str) for t in v) for v in qrs.values()):
        raise _bad("offlineQr must map identifiers to lists of payload strings", code="invalid_bundle")
    return creds, {str(k): list(v) for k, v in qrs.items()}
