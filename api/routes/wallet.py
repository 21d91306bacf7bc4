"""What a holder's wallet (电子卡包) needs from any node, all public (nothing here is secret or holder data):

- ``GET /ns/lianzheng/v1`` -- the JSON-LD context the exported credentials name beside the VC 2.0 one
  (registry.formats.vc.LIANZHENG_CONTEXT), as ``application/ld+json``.
- ``GET /api/v1/certificates/{id}/status`` -- a credential's ``credentialStatus.id``: the status by identifier
  (the verification result of ``POST /api/v1/verify {"identifier"}``: anchoring, issuer, status, validity).
- ``GET /api/v1/certificates/{id}/anchor`` -- the certificate's anchor proof (registry.certificates.anchor_lookup)
  for a wallet copy that has none yet: the issuing response and the by-reference blob leave before anchoring.
- ``POST /api/v1/presentations/challenge/qr`` -- a fresh single-use challenge (as ``POST
  /api/v1/presentations/challenge``) with its QR code: ``{"challenge", "text": "lianzheng:challenge:" +
  base64url(its JSON), "svg"}``, for the verifier page to show the holder's wallet.
- ``POST /api/v1/grants/qr`` ``{"text": "lianzheng:grant:..."}`` -- the grant's QR code as SVG (segno), for the
  browser wallet (which vendors QR decoders, not an encoder). Only a well-formed grant QR text is drawn
  (registry.holders.grants.Grant.from_qr); nothing is stored or logged: the text is what the holder shows anyway.

    $ curl -s localhost:8000/api/v1/certificates/$ID/anchor | jq .block_number
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from api.deps import ChallengesDep, SettingsDep, VerificationLaneDep, VerifierDep
from api.schemas import PUBLIC_ERRORS, IdentifierPath, Strict
from registry.certificates.anchor_lookup import anchor_proof_for
from registry.formats.images import qr_svg
from registry.formats.vc import CONTEXT_PATH, LIANZHENG_CONTEXT
from registry.holders.grants import Grant
from registry.holders.keys import b64url_encode

router = APIRouter(tags=["wallet"])
CHALLENGE_QR_PREFIX = "lianzheng:challenge:"


@router.get(CONTEXT_PATH, include_in_schema=False)  # a static JSON-LD document, like the pages
async def lianzheng_context() -> JSONResponse:
    """The Lianzheng JSON-LD context of exported credentials (电子卡包)."""
    return JSONResponse(LIANZHENG_CONTEXT, media_type="application/ld+json",
                        headers={"Cache-Control": "public, max-age=86400", "Access-Control-Allow-Origin": "*"})


@router.get("/api/v1/certificates/{identifier}/status", tags=["verification"], responses=PUBLIC_ERRORS,
            operation_id="certificate_status")
async def certificate_status(identifier: IdentifierPath, verifier: VerifierDep,
                             lane: VerificationLaneDep) -> dict[str, Any]:
    """The status of a certificate by identifier (a credential's ``credentialStatus``): no holder field."""
    result = await lane.run(verifier.verify_identifier, identifier)
    return result.to_json()


@router.get("/api/v1/certificates/{identifier}/anchor", tags=["verification"], responses=PUBLIC_ERRORS,
            operation_id="certificate_anchor")
async def certificate_anchor(identifier: IdentifierPath, verifier: VerifierDep) -> JSONResponse:
    """The anchor proof of a certificate (the ``anchor`` member of a ``lianzheng/cert/1`` document): 409
    ``not_anchored_yet`` while its batch waits."""
    proof = await run_in_threadpool(anchor_proof_for, verifier, identifier)
    return JSONResponse(proof.to_json(), headers={"Cache-Control": "no-store"})


class GrantQr(Strict):
    text: str = Field(max_length=12_000, description="the grant QR text: lianzheng:grant:<base64url>[.<salt>]")


@router.post("/api/v1/grants/qr", response_class=Response, responses={
    **PUBLIC_ERRORS, 200: {"content": {"image/svg+xml": {}}, "description": "the grant's QR code"}})
async def grant_qr(body: GrantQr) -> Response:
    """A grant's QR code (SVG). 422 ``invalid_grant`` unless the text is a well-formed grant QR."""
    def render() -> str:
        grant, _ = Grant.from_qr(body.text)
        return qr_svg(body.text, scale=4, error="l", title=f"授权 / grant {grant.digest.hex()[:16]}")

    svg = await run_in_threadpool(render)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store",
                                                              "X-Content-Type-Options": "nosniff"})


@router.post("/api/v1/presentations/challenge/qr", tags=["holders"], responses=PUBLIC_ERRORS)
async def challenge_qr(challenges: ChallengesDep, settings: SettingsDep) -> dict[str, Any]:
    """A fresh challenge for this node (single use, 5 minutes) with its QR code for the holder's wallet."""
    def issue() -> dict[str, Any]:
        challenge = challenges.issue(settings.public_base).to_json()
        text = CHALLENGE_QR_PREFIX + b64url_encode(json.dumps(challenge, separators=(",", ":")).encode())
        return {"challenge": challenge, "text": text, "svg": qr_svg(text, scale=6, title="挑战码 / challenge")}

    return await run_in_threadpool(issue)
