"""The running system's parts, wired once: database, key store, seeds, chain backend, deployment and
contract clients. api/ builds one from Settings; tests build one around eth-tester or an anvil.

    >>> node = Node.open(db=Database(url), master_key=key, seeds_dir=Path("seeds"), backend=backend,
    ...                  deployment_file=Path("var/deployment.json"))    # doctest: +SKIP
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from chain.artifacts import ErrorDecoder
from chain.backends import ChainBackend
from chain.blocks import BlockReader
from chain.contracts import CertificateLedgerClient, ConsortiumClient, ContractClient
from chain.deploy import Deployment
from chain.sender import TransactionSender
from registry.consortium.keys import KeyStore
from registry.errors import ChainUnavailableError
from registry.seeds import Seeds, load_seeds
from registry.store.db import Database

C = TypeVar("C", bound=ContractClient)


@dataclass
class Node:
    db: Database
    keys: KeyStore
    seeds: Seeds
    backend: ChainBackend
    deployment_file: Path
    deployment: Deployment | None = None
    decoder: ErrorDecoder = field(default_factory=ErrorDecoder.for_all_contracts_cached)
    _senders: dict[str, TransactionSender] = field(default_factory=dict)
    _clients: dict[tuple[str, str], ContractClient] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _blocks: BlockReader | None = None

    @classmethod
    def open(
        cls,
        *,
        db: Database,
        master_key: bytes,
        seeds_dir: Path,
        backend: ChainBackend,
        deployment_file: Path,
    ) -> Node:
        db.migrate()
        node = cls(db=db, keys=KeyStore(db, master_key=master_key), seeds=load_seeds(seeds_dir), backend=backend,
                   deployment_file=deployment_file)
        if deployment_file.exists():
            node.deployment = Deployment.load(deployment_file)
        return node

    # -- contracts ---------------------------------------------------------------------------------
    def require_deployment(self) -> Deployment:
        if self.deployment is None:
            raise ChainUnavailableError("contracts are not deployed yet; run `lianzheng deploy`", code="not_deployed")
        return self.deployment

    def client(self, cls: type[C]) -> C:
        """A client for the deployed contract `cls.NAME` (cached per address: building one parses the ABI)."""
        address = self.require_deployment().address(cls.NAME)
        key = (cls.NAME, address)
        client = self._clients.get(key)
        if client is None:
            client = cls(self.backend, address, blocks=self.blocks)
            self._clients[key] = client
        return client  # type: ignore[return-value]

    @property
    def blocks(self) -> BlockReader:
        """Headers, receipts, raw transactions and the chain head (batched over HTTP)."""
        if self._blocks is None or self._blocks.backend is not self.backend:
            self._blocks = BlockReader(self.backend)
        return self._blocks

    @property
    def consortium(self) -> ConsortiumClient:
        return self.client(ConsortiumClient)

    @property
    def certificate_ledger(self) -> CertificateLedgerClient:
        return self.client(CertificateLedgerClient)

    # -- accounts ----------------------------------------------------------------------------------
    def sender_for(self, uscc: str) -> TransactionSender:
        """The transaction sender of an agency's active signing key (one per account, shared)."""
        account = self.keys.signing_account(uscc)
        with self._lock:
            sender = self._senders.get(account.address)
            if sender is None:
                sender = TransactionSender(self.backend, account, decoder=self.decoder)
                self._senders[account.address] = sender
            return sender

    def reset_senders(self) -> None:
        with self._lock:
            for s in self._senders.values():
                s.reset_nonce()
