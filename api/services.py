"""Background services started with the API, and the per-app domain services they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from api.settings import Settings
from registry.certificates.anchoring import BatchAnchoring
from registry.certificates.changes import StatusChanges
from registry.certificates.index import ChainIndex
from registry.certificates.service import CertificateService
from registry.certificates.verification import Verifier
from registry.evidence.service import EvidenceService
from registry.exchanges.service import ExchangeService
from registry.node import Node
from registry.outbox.worker import OutboxWorker


class Service(Protocol):
    def stop(self) -> None: ...


@dataclass
class Services:
    worker: OutboxWorker  # the one outbox: batches, status changes, evidence and exchange steps
    anchoring: BatchAnchoring
    certificates: CertificateService
    evidence: EvidenceService
    exchanges: ExchangeService
    index: ChainIndex
    verifier: Verifier


def build_services(node: Node, settings: Settings) -> Services:
    anchoring = BatchAnchoring(node, batch_size=settings.batch_size, max_age=settings.batch_max_age)
    changes = StatusChanges(node)
    evidence, exchanges = EvidenceService(node), ExchangeService(node)
    # batches first: a status change waits for its certificate's batch
    worker = OutboxWorker([anchoring, changes, evidence, exchanges])
    certificates = CertificateService(node, public_base=settings.public_base,
                                      max_batch=settings.max_batch_documents, worker=worker, changes=changes)
    index = ChainIndex(node)
    return Services(worker=worker, anchoring=anchoring, certificates=certificates, evidence=evidence,
                    exchanges=exchanges, index=index, verifier=Verifier(node, index))


def start_services(services: Services) -> list[Service]:
    services.worker.start()
    return [services.worker]
