"""The ledgers the audit compares with the database: one typed, explicit entry per ledger contract.

Each `LedgerSource` names the ledger (its log in registry/logs/log.py), the contract whose events form it, the
comparison of every chain-derived column of its tables (registry/audit/_*.py), and, where the ledger's own
module provides them, its `audit_records(session)` (compared both ways by key and digest). Adding a ledger is
one line here; tests/unit/registry/test_audit_sources.py fails while a ledger contract has no entry.

    >>> [s.ledger for s in SOURCES]
    ['consortium', 'certificates', 'evidence', 'exchanges', 'seals', 'usage']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from registry.audit._certificates import compare_certificates
from registry.audit._context import CompareContext
from registry.audit._custody import compare_evidence
from registry.audit._exchanges import compare_exchanges
from registry.audit._members import compare_members
from registry.audit._seals import compare_seals
from registry.audit._usage import compare_usages
from registry.audit.records import LedgerRecord
from registry.audit.state import ReplayState
from registry.evidence.service import audit_records as evidence_records
from registry.exchanges.service import audit_records as exchange_records
from registry.usage.service import audit_records as usage_records

CompareFn = Callable[[CompareContext], int]  # appends findings to the context; returns rows compared
RecordsFn = Callable[[Session], Iterable[LedgerRecord]]
ChainKeysFn = Callable[[ReplayState], Mapping[str, tuple[str, ...]]]  # on-chain key -> digests the chain holds


@dataclass(frozen=True, slots=True)
class KeyedRecords:
    """A ledger module's `audit_records` and the replayed records they are matched with by key."""

    records: RecordsFn
    chain: ChainKeysFn
    parties: Callable[[ReplayState, str], tuple[str, ...]]  # the agencies a chain record involves, by key


@dataclass(frozen=True, slots=True)
class LedgerSource:
    ledger: str  # the ledger log's name (registry/logs/log.py LEDGER_CONTRACTS), or "seals"
    contract: str  # the contract whose events form the ledger
    compare: CompareFn  # every chain-derived column of the ledger's tables, both ways
    keyed: KeyedRecords | None = None  # the ledger module's own records, compared by key and digest


SOURCES: tuple[LedgerSource, ...] = (
    LedgerSource("consortium", "ConsortiumRegistry", compare_members),
    LedgerSource("certificates", "CertificateLedger", compare_certificates),
    LedgerSource("evidence", "EvidenceLedger", compare_evidence,
                 KeyedRecords(evidence_records, lambda s: {k: v.digests for k, v in s.evidence.items()},
                              lambda s, k: (s.evidence[k].collector, s.evidence[k].custodian, s.evidence[k].pending_to))),
    LedgerSource("exchanges", "ExchangeLedger", compare_exchanges,
                 KeyedRecords(exchange_records, lambda s: {k: v.digests for k, v in s.exchanges.items()},
                              lambda s, k: (s.exchanges[k].consumer, s.exchanges[k].provider))),
    # not a ledger log (no checkpoints): SealRegistry's events are replayed by registry/audit/_seal_rules.py
    LedgerSource("seals", "SealRegistry", compare_seals),
    LedgerSource("usage", "UsageLedger", compare_usages,
                 KeyedRecords(usage_records, lambda s: {k: v.digests for k, v in s.usages.items()},
                              lambda s, k: (s.usages[k].agency,))),
)


def source(ledger: str) -> LedgerSource:
    return next(s for s in SOURCES if s.ledger == ledger)


__all__ = ["SOURCES", "CompareFn", "KeyedRecords", "LedgerRecord", "LedgerSource", "RecordsFn", "source"]
