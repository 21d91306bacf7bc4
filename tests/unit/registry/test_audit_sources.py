"""Every ledger contract has an audit source: forgetting one must fail here, not make the audit silently
compare zero records. Also: the typed replay state survives the resume snapshot, and the module examples run."""

from __future__ import annotations

import doctest
import json
from types import ModuleType

import pytest

import registry.audit.records
import registry.audit.rules
import registry.audit.snapshot
import registry.audit.sources
import registry.audit.state
from chain.artifacts import CONTRACT_NAMES
from chain.compile import BUILD_DIR
from chain.contracts import DocStatus, MemberStatus, Role
from chain.ledgers import ExchangeStep
from registry.audit.report import Finding
from registry.audit.rules import Rules
from registry.audit.sources import SOURCES
from registry.audit.state import (
    BatchState,
    CaseState,
    DocState,
    EvidenceState,
    ExchangeState,
    MemberState,
    ReplayState,
    TxEvent,
)
from registry.logs.log import LEDGER_CONTRACTS, PRIMARY_KEY

# contracts with events that are not ledgers of the sub-chain, and why
NOT_LEDGERS = {
    "Backbone": "the main chain's checkpoint contract: registry/audit/checkpoints.py checks it against every ledger",
    "SealRegistry": "the e-seal registry: its events are read by every seal verification (registry/seals/index.py); "
                    "not yet part of the audit replay",
    "GrantRegistry": "grants (授权他人用证): every node follows its events (registry/holders/index.py, an inbox lane) "
                     "and checks each grant's holder signature; not yet part of the audit replay",
}


def _contracts_with_events() -> set[str]:
    out = set()
    for path in BUILD_DIR.glob("*.json"):
        abi = json.loads(path.read_text(encoding="utf-8")).get("abi", [])
        if any(item.get("type") == "event" for item in abi):
            out.add(path.stem)
    return out


def test_every_ledger_contract_has_exactly_one_audit_source() -> None:
    by_contract = {s.contract: s for s in SOURCES}
    assert len(by_contract) == len(SOURCES), "two audit sources name the same contract"
    built = _contracts_with_events()
    assert built >= set(LEDGER_CONTRACTS.values()), "a ledger contract has no compiled artifact"
    deployed = set(CONTRACT_NAMES)  # what a deployment holds (chain/artifacts.py, registry/consortium/members.py)
    missing = sorted(((built | deployed) - set(NOT_LEDGERS)) - set(by_contract))
    assert not missing, f"ledger contracts without an audit source in registry/audit/sources.py: {missing}"
    for ledger, contract in LEDGER_CONTRACTS.items():
        assert contract in by_contract, f"ledger {ledger} ({contract}) has no audit source"
        assert by_contract[contract].ledger == ledger, f"{contract} is the {ledger} ledger"
    assert not set(NOT_LEDGERS) & set(by_contract), "a contract is both a ledger source and not a ledger"


def test_every_ledger_event_has_a_replay_rule() -> None:
    handled = Rules(ReplayState()).handled()
    ledger_events = set(PRIMARY_KEY)
    assert ledger_events <= handled, f"events with a key but no replay rule: {sorted(ledger_events - handled)}"


def test_the_replay_state_round_trips_through_the_snapshot_json() -> None:
    state = ReplayState(
        members={"11230000MB1A00036G": MemberState("省司法厅", "did:bid:efx", Role.AUDITOR | Role.EVIDENCE,
                                                   MemberStatus.SUSPENDED, ("0xAa", "0xBb"), 4)},
        account_member={"0xaa": "11230000MB1A00036G"}, delegates={("A", "B")},
        batches={"0x01": BatchState("0xAa", "U", 3, 9, "0x02", "0x03", 1700000000)},
        docs={"0x04": DocState(DocStatus.REVOKED, 5, "0x01", 10, "")},
        evidence={"0x05": EvidenceState("0x06", "U", "V", "", "0x07", "0x08", 12, "0x09", "", "0x0a", 11)},
        cases={"0x06": CaseState("U", True, 12, 1)},
        exchanges={"0x0b": ExchangeState("U", "V", "0x0c", "0x0d", ExchangeStep.DELIVERED, "0x0e", "0x0f", 5, 1)},
        txs={"0x10": (TxEvent("evidence", "CaseSealed", "0x06", 12, "0x11", {"records": 1}),)},
        per_day={"2026-01-01": {"U": 3}}, block_times={9: 1700000000},
        findings=[Finding("status_mismatch", "certificates", "x", "y")], events={"certificates": 2})
    again = ReplayState.from_json(json.loads(json.dumps(state.to_json())))
    assert again == state
    assert isinstance(again.members["11230000MB1A00036G"].roles, Role)
    assert again.exchanges["0x0b"].step is ExchangeStep.DELIVERED


@pytest.mark.parametrize("module", [registry.audit.state, registry.audit.records, registry.audit.rules,
                                    registry.audit.snapshot, registry.audit.sources])
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
