"""Every service of one app, built in one place (`build_services`) and started with it (`start_services`).
Routes receive them through the `Annotated` dependencies of api/deps.py.

    >>> services = build_services(node, settings)      # doctest: +SKIP
    >>> running = start_services(services)             # doctest: +SKIP
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from api.audits import AuditService
from api.lanes import outside_the_lane
from api.proofs import ProofService
from api.runtime import main_backend
from api.settings import Settings
from api.trust import TrustListCache
from registry.certificates.anchoring import BatchAnchoring
from registry.certificates.changes import StatusChanges
from registry.certificates.documents import Document
from registry.certificates.index import ChainIndex
from registry.certificates.remote import RemoteCertificates
from registry.certificates.service import CertificateService
from registry.certificates.verification import Verifier
from registry.consortium.inbox import MembersInbox
from registry.crypto.profiles import CryptoProfile
from registry.evidence.inbox import EvidenceInbox
from registry.evidence.service import EvidenceService
from registry.exchanges.inbox import ExchangeInbox
from registry.exchanges.service import ExchangeService
from registry.formats.envelope import EnvelopeAlgorithm
from registry.holders.exchange import ExchangeKeys
from registry.holders.index import GrantIndex
from registry.holders.presentation import ChallengeStore
from registry.holders.service import GrantService
from registry.logs.backbone import gateway_uscc
from registry.logs.checkpoints import CheckpointGateway, CheckpointService
from registry.logs.cosigning import CheckpointCosigning
from registry.node import Node
from registry.outbox.inbox import ChainInbox
from registry.outbox.worker import OutboxWorker
from registry.seals.index import SealIndex
from registry.seals.sealing import Sealer
from registry.seals.service import SealService
from registry.seals.verification import SealVerifier
from registry.usage.consent import ConsentChecker
from registry.usage.fetch import FetchService
from registry.usage.inbox import UsageInbox
from registry.usage.service import UsageService


class Service(Protocol):
    def stop(self) -> None: ...


@dataclass(frozen=True)
class Services:
    worker: OutboxWorker  # the one outbox: batches, status changes, evidence and exchange steps
    anchoring: BatchAnchoring
    certificates: CertificateService
    index: ChainIndex
    verifier: Verifier
    trust_lists: TrustListCache
    evidence: EvidenceService
    exchanges: ExchangeService
    proofs: ProofService
    audit: AuditService
    checkpoints: CheckpointService | None  # the checkpoint gateway; None when disabled or not deployed yet
    # custody transfers and exchange steps signed on other nodes, mirrored from the chain (issue 11)
    inbox: ChainInbox
    seals: SealService  # e-seals (制章); sealing and verifying go through `certificates`/`verifier` and `evidence`
    seal_check: SealVerifier  # the `seal` check (验章) `verifier` and `evidence` run; also the sealed image for pages
    usage: UsageService  # usage records (用证记录) with the holder's consent; 免证办 fetches record one each
    fetch: FetchService  # 免证办: open a granted certificate with the grantee agency's exchange key
    # holders (issue 15): grants relayed to GrantRegistry, presentation challenges, agencies' exchange keys
    grants: GrantService
    challenges: ChallengeStore
    exchange_keys: ExchangeKeys


def build_services(node: Node, settings: Settings) -> Services:
    node.keys.use_profile(CryptoProfile(settings.crypto_profile))  # what new proofs and key files are made with
    anchoring = BatchAnchoring(node, batch_size=settings.batch_size, max_age=settings.batch_max_age)
    changes = StatusChanges(node)
    seal_index = SealIndex(node)
    # one client of other nodes' public records (its pause after an unanswered node is shared by every check)
    remote = RemoteCertificates(node)
    remote.waiting = outside_the_lane  # a verification waiting on another node frees its slot (api/lanes.py)
    sealer = Sealer(node, seal_index)
    seal_check = SealVerifier(node, seal_index, remote=remote)
    evidence = EvidenceService(node, sealer=sealer, seal_check=seal_check)
    exchanges = ExchangeService(node)
    seals = SealService(node, profile=CryptoProfile(settings.crypto_profile), index=seal_index)
    grant_index = GrantIndex(node)
    grants = GrantService(node, index=grant_index)
    challenges = ChallengeStore(node)
    usage = UsageService(node, consent=ConsentChecker(node, remote=remote, challenges=challenges))
    # batches first: a status change waits for its certificate's batch
    worker = OutboxWorker([anchoring, changes, evidence, exchanges, seals, *_grant_lanes(node, grants), usage])
    index = ChainIndex(node)
    certificates = CertificateService(node, public_base=settings.public_base, index=index,
                                      max_batch=settings.max_batch_documents, worker=worker, changes=changes,
                                      envelope_algorithm=EnvelopeAlgorithm.for_profile(
                                          CryptoProfile(settings.crypto_profile)),
                                      sealer=sealer, build_processes=settings.resolved_build_processes)
    proofs = ProofService(node, main_backend(settings, node))
    verifier = Verifier(node, index, remote=remote, seal_check=seal_check)
    exchange_keys = ExchangeKeys(node)
    grants.check_document = functools.partial(_check_document, verifier)
    return Services(
        worker=worker, anchoring=anchoring, certificates=certificates, index=index,
        verifier=verifier,
        trust_lists=TrustListCache(node, index), evidence=evidence, exchanges=exchanges,
        proofs=proofs, audit=AuditService(node, proofs, default_deadline=settings.checkpoint_deadline,
                                        witness_quorum=settings.witness_quorum),
        checkpoints=_checkpoint_gateway(node, settings, proofs),
        inbox=ChainInbox(node, [MembersInbox(node), EvidenceInbox(node), ExchangeInbox(node),
                                *_seal_lane(node, seal_index), *_grant_lanes(node, grant_index),
                                *_usage_lane(node)]),
        seals=seals, seal_check=seal_check, grants=grants, challenges=challenges, exchange_keys=exchange_keys,
        usage=usage, fetch=FetchService(usage, exchange_key=exchange_keys.private, remote=remote),
    )


L = TypeVar("L")


def _grant_lanes(node: Node, lane: L) -> list[L]:
    """GrantRegistry's outbox and inbox lanes, when the deployment has it (one made before issue 15 has none
    until it is redeployed: the grant routes then answer that the contract is not deployed)."""
    return [lane] if node.deployment is None or "GrantRegistry" in node.deployment.contracts else []


def _check_document(verifier: Verifier, document: Mapping[str, Any]) -> tuple[str, str, str | None, str, list[str]]:
    """A presented document for a grant check: its identifier, verdict, holder key, issuer and shown fields."""
    doc = Document.from_json(document)
    result = verifier.verify_document(doc)
    return doc.identifier, result.verdict, doc.holder_key_digest, doc.issuer_uscc, list(doc.fields)


def _seal_lane(node: Node, index: SealIndex) -> list[SealIndex]:
    """The seal index follows SealRegistry when the deployment has one (a data dir deployed before e-seals
    has none until it is redeployed: its seal routes answer that the contract is not deployed)."""
    return [index] if node.deployment is None or "SealRegistry" in node.deployment.contracts else []


def _usage_lane(node: Node) -> list[UsageInbox]:
    """Usages recorded on other nodes are mirrored when the deployment has a UsageLedger (one deployed before
    usage records has none until it is redeployed: recording a usage answers that the contract is not deployed)."""
    return [UsageInbox(node)] if node.deployment is None or "UsageLedger" in node.deployment.contracts else []


def _checkpoint_gateway(node: Node, settings: Settings, proofs: ProofService) -> CheckpointService | None:
    """The checkpoint gateway (and the witnesses whose keys this data dir holds), unless disabled."""
    if settings.checkpoint_interval <= 0 or node.deployment is None:
        return None
    if not node.keys.has_signing_key(gateway_uscc(node)):
        return None  # an agency node: the platform node holding the gateway's key runs the gateway
    urls = [u.strip() for u in settings.witness_urls.split(",") if u.strip()]
    cosigning = CheckpointCosigning(node, proofs.logs, witness_urls=urls, quorum=settings.witness_quorum)
    gateway = CheckpointGateway(node, proofs.logs, link_provider=proofs.gateway_link,
                                interval=settings.checkpoint_interval, max_events=settings.checkpoint_events,
                                cosigning=cosigning)
    return CheckpointService(gateway)


def start_services(services: Services) -> list[Service]:
    """Start the background services; returns them to be stopped on shutdown."""
    services.worker.start()
    running: list[Service] = [services.worker, services.inbox.start()]
    if services.checkpoints is not None:
        running.append(services.checkpoints.start())
    return running


class BackgroundWriters:
    """The background writers of one process (the outbox worker, the chain inbox, the checkpoint gateway),
    started when the process is elected leader and stopped when it stops leading (registry/store/leader.py):
    of the API processes sharing one database, exactly one runs them."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._running: list[Service] = []
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return bool(self._running)

    def start(self) -> None:
        with self._lock:
            if not self._running:
                self._running = start_services(self.services)

    def stop(self) -> None:
        with self._lock:
            running, self._running = self._running, []
        for s in running:
            s.stop()
