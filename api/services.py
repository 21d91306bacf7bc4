"""Background services started with the API, and the per-app domain services they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from api.settings import Settings
from registry.certificates.anchoring import AnchoringWorker
from registry.certificates.index import ChainIndex
from registry.certificates.service import CertificateService
from registry.certificates.verification import Verifier
from registry.node import Node


class Service(Protocol):
    def stop(self) -> None: ...


@dataclass
class Services:
    worker: AnchoringWorker
    certificates: CertificateService
    index: ChainIndex
    verifier: Verifier


def build_services(node: Node, settings: Settings) -> Services:
    worker = AnchoringWorker(node, batch_size=settings.batch_size, max_age=settings.batch_max_age)
    certificates = CertificateService(node, public_base=settings.public_base,
                                      max_batch=settings.max_batch_documents, worker=worker)
    worker.on_lifecycle = certificates.process_pending_changes
    index = ChainIndex(node)
    return Services(worker=worker, certificates=certificates, index=index, verifier=Verifier(node, index))


def start_services(services: Services) -> list[Service]:
    services.worker.start()
    return [services.worker]
