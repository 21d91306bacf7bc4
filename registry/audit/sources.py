"""What each ledger tells the auditor about its own database rows, so the audit replay can compare the
registry with the chain both ways without knowing each ledger's tables.

Each ledger module (registry/certificates/service.py, registry/evidence/service.py, registry/exchanges/service.py) provides
`audit_records(session) -> Iterable[LedgerRecord]`: one entry per thing it anchored or should have anchored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from registry.store.db import Batch, Certificate


@dataclass(frozen=True)
class LedgerRecord:
    ledger: str  # "certificates" | "evidence" | "exchanges"
    ref: str  # the record's identifier as the database knows it
    key: str  # 0x-hex of the on-chain key (batch root, evidence id, exchange id)
    digest: str  # 0x-hex of what the chain should hold for it, recomputed from the row's content
    state: str  # the row's own status (pending / issued / revoked / ...)
    anchored: bool  # the row claims to be on chain
    block_number: int | None
    tx_hash: str | None


def certificate_records(session) -> Iterable[LedgerRecord]:  # type: ignore[no-untyped-def]
    """Certificates: one record per document; key = its batch root, digest = its document digest."""
    rows = session.execute(
        select(Certificate.identifier, Certificate.digest_sha256, Certificate.status, Batch.root, Batch.state,
               Batch.block_number, Batch.tx_hash).outerjoin(Batch, Certificate.batch_id == Batch.id)
    )
    for ident, digest, status, root, bstate, block, tx in rows:
        yield LedgerRecord("certificates", ident, root or "", "0x" + digest, status, bstate == "anchored", block, tx)
