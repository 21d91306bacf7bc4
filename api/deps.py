"""FastAPI dependencies as Annotated aliases: the node, settings and calling agency, and one alias per
service built by api/services.py (`CertificatesDep`, `EvidenceDep`, `ExchangesDep`, ...).

The accessors are `async def`: FastAPI runs a plain `def` dependency in the threadpool, a thread hop per
dependency per request for an attribute read. `current_agency` reads the database and stays a plain `def`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.audits import AuditService
from api.lanes import VerificationLane
from api.proofs import ProofService
from api.services import Services
from api.settings import Settings
from api.trust import TrustListCache
from registry.certificates.index import ChainIndex
from registry.certificates.service import CertificateService
from registry.certificates.verification import Verifier
from registry.errors import AuthenticationError
from registry.evidence.service import EvidenceService
from registry.exchanges.service import ExchangeService
from registry.holders.exchange import ExchangeKeys
from registry.holders.presentation import ChallengeStore
from registry.holders.service import GrantService
from registry.node import Node
from registry.seals.service import SealService
from registry.seals.verification import SealVerifier
from registry.usage.fetch import FetchService
from registry.usage.service import UsageService


async def get_node(request: Request) -> Node:
    return request.app.state.node  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


NodeDep = Annotated[Node, Depends(get_node)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ServicesDep = Annotated[Services, Depends(get_services)]


# Declares the bearer scheme in the OpenAPI (and on every operation that needs it); the check is ours, so that
# a missing key gets our error body rather than FastAPI's.
_bearer = HTTPBearer(auto_error=False, scheme_name="agency_api_key", description="an agency API key (lzk_...)")


def current_agency(request: Request, node: NodeDep,
                   credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The USCC of the agency whose API key is in `Authorization: Bearer <key>`."""
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        raise AuthenticationError("issuer endpoints need 'Authorization: Bearer <agency API key>'")
    uscc = node.keys.authenticate(token)
    request.state.agency = uscc  # for the access log (api/middleware.py)
    return uscc


CurrentAgency = Annotated[str, Depends(current_agency)]


def optional_agency(request: Request, node: NodeDep,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str | None:
    """The calling agency when the request carries an API key (a wrong key is refused), else None."""
    if credentials is None or not credentials.credentials.strip():
        return None
    return current_agency(request, node, credentials)


OptionalAgency = Annotated[str | None, Depends(optional_agency)]


async def _certificates(services: ServicesDep) -> CertificateService:
    return services.certificates


async def _verifier(services: ServicesDep) -> Verifier:
    return services.verifier


async def _index(services: ServicesDep) -> ChainIndex:
    return services.index


async def _trust_lists(services: ServicesDep) -> TrustListCache:
    return services.trust_lists


async def _evidence(services: ServicesDep) -> EvidenceService:
    return services.evidence


async def _exchanges(services: ServicesDep) -> ExchangeService:
    return services.exchanges


async def _proofs(services: ServicesDep) -> ProofService:
    return services.proofs


async def _audit(services: ServicesDep) -> AuditService:
    return services.audit


CertificatesDep = Annotated[CertificateService, Depends(_certificates)]
VerifierDep = Annotated[Verifier, Depends(_verifier)]
IndexDep = Annotated[ChainIndex, Depends(_index)]
TrustListsDep = Annotated[TrustListCache, Depends(_trust_lists)]
EvidenceDep = Annotated[EvidenceService, Depends(_evidence)]
ExchangesDep = Annotated[ExchangeService, Depends(_exchanges)]


async def _seals(services: ServicesDep) -> SealService:
    return services.seals


SealsDep = Annotated[SealService, Depends(_seals)]


async def _seal_check(services: ServicesDep) -> SealVerifier:
    return services.seal_check


SealCheckDep = Annotated[SealVerifier, Depends(_seal_check)]
async def _usage(services: ServicesDep) -> UsageService:
    return services.usage


async def _fetch(services: ServicesDep) -> FetchService:
    return services.fetch


UsageDep = Annotated[UsageService, Depends(_usage)]
FetchDep = Annotated[FetchService, Depends(_fetch)]


async def _grants(services: ServicesDep) -> GrantService:
    return services.grants


async def _challenges(services: ServicesDep) -> ChallengeStore:
    return services.challenges


async def _exchange_keys(services: ServicesDep) -> ExchangeKeys:
    return services.exchange_keys


GrantsDep = Annotated[GrantService, Depends(_grants)]
ChallengesDep = Annotated[ChallengeStore, Depends(_challenges)]


async def _verification_lane(request: Request) -> VerificationLane:
    lane: VerificationLane = request.app.state.verification
    return lane


VerificationLaneDep = Annotated[VerificationLane, Depends(_verification_lane)]
ExchangeKeysDep = Annotated[ExchangeKeys, Depends(_exchange_keys)]
ProofsDep = Annotated[ProofService, Depends(_proofs)]
AuditDep = Annotated[AuditService, Depends(_audit)]

# The document key travels in a header, never in a URL (access logs, proxies and browser history keep URLs).
DocumentKey = Annotated[str | None, Header(alias="X-Document-Key", max_length=200,
                                           description="the document key (base64url), from the by-reference QR "
                                                       "URL's fragment")]
