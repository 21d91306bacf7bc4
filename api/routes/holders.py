"""Holders (issue 15): presentation challenges and presentations of bound certificates, grants (授权他人用证:
anchor, revoke, verify), the agencies' exchange keys (免证办), and what a holder sees of their own
certificates and grants (authenticated by a holder-key signature: api/holder_auth.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import Field, StrictStr

from api.deps import ChallengesDep, ExchangeKeysDep, GrantsDep, NodeDep, OptionalAgency, SettingsDep, VerifierDep
from api.holder_auth import CurrentHolder
from api.schemas import AGENCY_ERRORS, PUBLIC_ERRORS, Strict
from registry.certificates.documents import Document
from registry.errors import ValidationError
from registry.holders.grants import Grant, agency_grantee_digest, person_grantee_digest
from registry.holders.keys import b64url_decode
from registry.holders.presentation import with_presentation
from registry.identifiers import validate_uscc

router = APIRouter(prefix="/api/v1", tags=["holders"])

Digest = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="a grant digest (SHA-256, hex)")]
Uscc = Annotated[str, Path(min_length=18, max_length=18, pattern=r"^[0-9A-Z]{18}$")]
HOLDER_ERRORS = AGENCY_ERRORS  # 401: a missing or failing key or holder signature; 403: a refused agency


class ChallengeRequest(Strict):
    verifier: StrictStr | None = Field(default=None, min_length=1, max_length=200,
                                       description="the verifier's id or URL (default: this node's public URL)")


class PresentationRequest(Strict):
    document: dict[str, Any] = Field(description="the certificate document (lianzheng/cert/1, full or disclosed)")
    presentation: dict[str, Any] | None = Field(default=None, description="the holder's signed presentation")


class GrantCreate(Strict):
    grant: dict[str, Any] = Field(description="the holder-signed grant (LianzhengGrant v1)")


class RevocationCreate(Strict):
    revocation: dict[str, Any] = Field(description="the holder-signed LianzhengGrantRevocation statement")


class PersonParty(Strict):
    id_number: StrictStr = Field(min_length=15, max_length=18, description="the presenting person's 居民身份证号")
    salt: StrictStr = Field(min_length=22, max_length=24, description="the grantee salt from the grant QR "
                                                                      "(base64url, 16 bytes)")


class GrantVerifyRequest(Strict):
    grant: dict[str, Any] | None = Field(default=None, description="the signed grant")
    qr: StrictStr | None = Field(default=None, max_length=8192, description="or the grant QR text (lianzheng:grant:…)")
    person: PersonParty | None = Field(default=None, description="a person presenting: their ID number and salt "
                                                                 "(an agency authenticates with its API key)")
    document: dict[str, Any] | None = Field(default=None, description="the presented (disclosed) document")


@router.post("/presentations/challenge", responses=PUBLIC_ERRORS)
async def challenge(challenges: ChallengesDep, settings: SettingsDep,
                    body: ChallengeRequest | None = None) -> dict[str, Any]:
    """A single-use challenge (valid 5 minutes) for the holder to sign with the certificate's digest."""
    verifier = (body.verifier if body is not None else None) or settings.public_base
    return (await run_in_threadpool(challenges.issue, verifier)).to_json()


@router.post("/presentations", tags=["verification"], responses=PUBLIC_ERRORS)
async def present(body: PresentationRequest, verifier: VerifierDep, challenges: ChallengesDep) -> dict[str, Any]:
    """Verify a certificate and how it was presented: `presented_by_holder` (the bound holder key signed this
    node's fresh challenge) or `status_only` with the reason."""
    doc = Document.from_json(body.document)
    result = await run_in_threadpool(verifier.verify_document, doc)
    result = await run_in_threadpool(with_presentation, result, doc, body.presentation, challenges)
    return result.to_json()


@router.post("/grants", status_code=201, responses=PUBLIC_ERRORS)
async def anchor_grant(body: GrantCreate, grants: GrantsDep) -> dict[str, Any]:
    """Anchor a holder-signed grant: the node checks the signature and that the certificate is registered here,
    anchored, not revoked and bound to that holder key, then relays it to GrantRegistry."""
    return await run_in_threadpool(grants.anchor, body.grant)


@router.get("/grants/{digest}", responses=PUBLIC_ERRORS)
async def get_grant(digest: Digest, grants: GrantsDep) -> dict[str, Any]:
    return await run_in_threadpool(grants.view, digest)


@router.post("/grants/{digest}/revoke", responses=PUBLIC_ERRORS)
async def revoke_grant(digest: Digest, body: RevocationCreate, grants: GrantsDep) -> dict[str, Any]:
    """Revoke a grant with the holder's signed revocation statement."""
    return await run_in_threadpool(grants.revoke, digest, body.revocation)


@router.post("/grants/verify", responses=HOLDER_ERRORS)
async def verify_grant(body: GrantVerifyRequest, grants: GrantsDep, node: NodeDep,
                       agency: OptionalAgency) -> dict[str, Any]:
    """Does this grant authorise the presenting party now? An agency presents with its API key; a person with
    their ID number and the grantee salt. The answer: "presented by X on behalf of holder Y, for purpose P, until
    T", or the reason it does not (expired, revoked, wrong_party, fields_out_of_scope, ...)."""
    if (body.grant is None) == (body.qr is None):
        raise ValidationError("give exactly one of grant and qr", code="invalid_grant")
    obj: Any = body.grant
    qr_salt = None
    if body.qr is not None:
        parsed, qr_salt = Grant.from_qr(body.qr)
        obj = parsed.to_json()
    if agency is not None and body.person is not None:
        raise ValidationError("present either as an agency (API key) or as a person, not both", code="invalid_party")
    if agency is not None:
        member = node.seeds.member(agency) if any(m.uscc == agency for m in node.seeds.members) else None
        party, label = agency_grantee_digest(agency), {"kind": "agency", "uscc": agency,
                                                        "name": member.name if member else agency}
    elif body.person is not None:
        salt = b64url_decode(body.person.salt, "salt", code="invalid_grantee_salt", max_length=24)
        if qr_salt is not None and qr_salt != salt:
            raise ValidationError("the salt differs from the grant QR's", code="invalid_grantee_salt")
        digest = person_grantee_digest(salt, body.person.id_number)
        masked = body.person.id_number[:3] + "*" * 11 + body.person.id_number[-4:]
        party, label = digest, {"kind": "person", "name": f"身份证号 {masked} 的持有人", "id_masked": masked}
    else:
        raise ValidationError("the presenting party is missing: an agency API key, or person {id_number, salt}",
                              code="missing_party")
    return await run_in_threadpool(lambda: grants.verify(obj, party=party, party_label=label, document=body.document))


@router.get("/agencies/{uscc}/exchange-key", responses=PUBLIC_ERRORS)
async def exchange_key(uscc: Uscc, keys: ExchangeKeysDep) -> dict[str, Any]:
    """The agency's exchange key (P-256) for wrapping document keys in grants, signed by its ledger key (check
    the signature against the member's accounts on chain: registry.holders.exchange.check_statement)."""
    return await run_in_threadpool(keys.statement, validate_uscc(uscc))


@router.get("/holders/me/certificates", responses=HOLDER_ERRORS)
async def my_certificates(holder: CurrentHolder, grants: GrantsDep) -> dict[str, Any]:
    """The certificates issued on this node bound to the calling holder's key."""
    found = await run_in_threadpool(grants.certificates_of, holder.key_id)
    return {"holder_key": holder.key_id, "count": len(found), "certificates": found}


@router.get("/holders/me/grants", responses=HOLDER_ERRORS)
async def my_grants(holder: CurrentHolder, grants: GrantsDep) -> dict[str, Any]:
    """The grants the calling holder made that this node relayed, with their status."""
    found = await run_in_threadpool(grants.grants_of, holder.key_id)
    return {"holder_key": holder.key_id, "count": len(found), "grants": found}
