"""The audit's SealRegistry rules on synthetic event lists: the contract's authority rules judged with the
rights each sender held at that block (``seal_action_unauthorised``), its transitions (``illegal_transition``),
and the seal state they rebuild (status at a block, the snapshot round trip)."""

from __future__ import annotations

import hashlib
import json

from chain.contracts import MemberStatus, Role, b32
from chain.logs import Event
from registry.audit.rules import Rules
from registry.audit.state import MemberState, ReplayState

SEALS = "0x" + "5e" * 20
MARKET, CITY, NOTARY = "11230000MB1A00028M", "11230100MB1B000456", "12230100MB1B00029D"
ACCOUNTS = {MARKET: "0xAa00000000000000000000000000000000000001", CITY: "0xAa00000000000000000000000000000000000002",
            NOTARY: "0xAa00000000000000000000000000000000000003"}
SEAL = hashlib.sha256(b"ES11230000MB1A00028M0001").digest()
MAKER_KEY = hashlib.sha256(b"maker spki").digest()


def _state() -> ReplayState:
    roles = {MARKET: Role.ADMIN | Role.ISSUER, CITY: Role.ISSUER, NOTARY: Role.EVIDENCE | Role.AUDITOR}
    return ReplayState(
        members={u: MemberState(u, f"did:bid:{u}", r, MemberStatus.ACTIVE, (ACCOUNTS[u],), 1) for u, r in roles.items()},
        account_member={a.lower(): u for u, a in ACCOUNTS.items()})


def _event(name: str, block: int, **args: object) -> Event:
    tx = "0x" + hashlib.sha256(f"{name}{block}".encode()).hexdigest()
    return Event(name, SEALS, block, "0x" + f"{block:064x}", tx, 0, dict(args))


def created(block: int, agency: str = MARKET, seal: bytes = SEAL, valid: tuple[int, int] = (100, 200)) -> Event:
    return _event("SealCreated", block, id=seal, agencyUscc=b32(agency), imageDigest=b"\x01" * 32,
                  keyDigest=b"\x02" * 32, sealInfoDigest=b"\x03" * 32, validFrom=valid[0], validUntil=valid[1])


def changed(name: str, block: int, agency: str = MARKET) -> Event:
    extra = {} if name == "SealReinstated" else {"reasonDigest": b"\x04" * 32}
    return _event(name, block, id=SEAL, agencyUscc=b32(agency), **extra)


def replay(events: list[tuple[Event, str | None]], *, partial: bool = False) -> Rules:
    rules = Rules(_state(), partial=partial)
    for e, sender in events:
        if e.address == SEALS:
            rules.apply_seal(e, 1_700_000_000 + e.block_number, sender)
        else:
            rules.apply("consortium", e, 1_700_000_000 + e.block_number)
    return rules


def kinds(rules: Rules) -> list[tuple[str, str]]:
    return [(f.kind, f.detail) for f in rules.s.findings]


def test_a_lawful_seal_history_has_no_findings_and_rebuilds_each_status_by_block() -> None:
    rules = replay([(_event("MakerKeyPublished", 2, keyDigest=MAKER_KEY, makerUscc=b32(MARKET)), ACCOUNTS[MARKET]),
                    (created(3), ACCOUNTS[MARKET]), (changed("SealSuspended", 5), ACCOUNTS[MARKET]),
                    (changed("SealReinstated", 6), ACCOUNTS[MARKET]), (changed("SealRevoked", 9), ACCOUNTS[MARKET])])
    assert kinds(rules) == []
    seal = rules.s.seals["0x" + SEAL.hex()]
    assert [seal.status_at(b) for b in (2, 3, 4, 5, 6, 8, 9)] == [
        None, "active", "active", "suspended", "active", "active", "revoked"]
    assert seal.status == "revoked" and rules.s.maker_keys == {"0x" + MAKER_KEY.hex(): 2}
    assert rules.s.events["seals"] == 5 and len(rules.s.seal_events) == 5
    # filed under its transaction for the step comparison, with the USCC as a string
    [tx_event] = rules.s.events_in(created(3).tx_hash)
    assert (tx_event.ledger, tx_event.key, tx_event.args["agencyUscc"]) == ("seals", "0x" + SEAL.hex(), MARKET)
    again = ReplayState.from_json(json.loads(json.dumps(rules.s.to_json())))
    assert again == rules.s


def test_a_seal_created_for_an_agency_by_another_agencys_account_is_unauthorised() -> None:
    rules = replay([(created(3, agency=MARKET), ACCOUNTS[CITY])])
    [(kind, detail)] = kinds(rules)
    assert kind == "seal_action_unauthorised" and CITY in detail and "issuer account of that agency" in detail


def test_a_seal_created_by_a_member_without_the_issuer_role_is_unauthorised() -> None:
    rules = replay([(created(3, agency=NOTARY), ACCOUNTS[NOTARY])])
    [(kind, detail)] = kinds(rules)
    assert kind == "seal_action_unauthorised" and "roles evidence,auditor" in detail.lower()


def test_a_seal_suspended_by_another_agency_is_unauthorised_even_when_it_is_an_issuer() -> None:
    rules = replay([(created(3), ACCOUNTS[MARKET]), (changed("SealSuspended", 4), ACCOUNTS[CITY])])
    assert [k for k, _ in kinds(rules)] == ["seal_action_unauthorised"]
    assert rules.s.seals["0x" + SEAL.hex()].status == "suspended"  # the chain's state is replayed as it is


def test_rights_are_judged_at_the_block_a_role_removed_later_leaves_earlier_actions_lawful() -> None:
    roles_changed = Event("MemberRolesChanged", "0x" + "c0" * 20, 5, "0x" + f"{5:064x}", "0x" + "ab" * 32, 0,
                          {"uscc": b32(MARKET), "oldRoles": int(Role.ADMIN | Role.ISSUER), "newRoles": int(Role.ADMIN)})
    suspended = Event("MemberStatusChanged", "0x" + "c0" * 20, 8, "0x" + f"{8:064x}", "0x" + "ac" * 32, 0,
                      {"uscc": b32(CITY), "oldStatus": 1, "newStatus": int(MemberStatus.SUSPENDED)})
    rules = replay([(created(3), ACCOUNTS[MARKET]), (roles_changed, None), (changed("SealSuspended", 6), ACCOUNTS[MARKET]),
                    (created(7, agency=CITY, seal=b"\x09" * 32), ACCOUNTS[CITY]), (suspended, None),
                    (_event("SealSuspended", 9, id=b"\x09" * 32, agencyUscc=b32(CITY), reasonDigest=bytes(32)),
                     ACCOUNTS[CITY])])
    found = kinds(rules)
    assert [k for k, _ in found] == ["seal_action_unauthorised", "seal_action_unauthorised"], found
    assert "block 6" in found[0][1] and "roles admin" in found[0][1].lower()  # the issuer role was gone by block 6
    assert "block 9" in found[1][1] and "status suspended" in found[1][1]  # the member was suspended by block 9


def test_transitions_the_contract_forbids_are_illegal() -> None:
    rules = replay([(created(3), ACCOUNTS[MARKET]), (changed("SealReinstated", 4), ACCOUNTS[MARKET]),
                    (created(5), ACCOUNTS[MARKET]), (changed("SealRevoked", 6), ACCOUNTS[MARKET]),
                    (changed("SealRevoked", 7), ACCOUNTS[MARKET]), (changed("SealSuspended", 8), ACCOUNTS[MARKET]),
                    (created(9, seal=b"\x07" * 32, valid=(200, 200)), ACCOUNTS[MARKET]),
                    (changed("SealSuspended", 10, agency=CITY), ACCOUNTS[MARKET])])
    details = [d for k, d in kinds(rules) if k == "illegal_transition"]
    assert len(details) == len(kinds(rules)) == 7, kinds(rules)
    assert "reinstatement in block 4 of a seal that was active" in details[0]
    assert "seal created again in block 5" in details[1]
    assert "revocation in block 7 of a seal that was revoked" in details[2]
    assert "suspension in block 8 of a seal that was revoked" in details[3]
    assert "empty validity" in details[4]
    assert "names agency " + CITY in details[5] and "suspension in block 10 of a seal that was suspended" in details[6]


def test_a_change_of_an_unknown_seal_is_illegal_except_in_a_window_audit() -> None:
    assert [k for k, _ in kinds(replay([(changed("SealSuspended", 4), ACCOUNTS[MARKET])]))] == ["illegal_transition"]
    assert kinds(replay([(changed("SealSuspended", 4), ACCOUNTS[MARKET])], partial=True)) == []


def test_a_maker_key_published_by_a_non_admin_or_twice_is_found() -> None:
    publish = _event("MakerKeyPublished", 2, keyDigest=MAKER_KEY, makerUscc=b32(CITY))
    again = _event("MakerKeyPublished", 3, keyDigest=MAKER_KEY, makerUscc=b32(CITY))
    found = kinds(replay([(publish, ACCOUNTS[CITY]), (again, ACCOUNTS[CITY])]))
    assert [k for k, _ in found] == ["seal_action_unauthorised", "seal_action_unauthorised", "illegal_transition"]
    assert "needs an admin account of the maker" in found[0][1]


def test_without_the_sender_the_named_agencys_own_rights_are_judged() -> None:
    assert kinds(replay([(created(3), None)])) == []
    assert [k for k, _ in kinds(replay([(created(3, agency=NOTARY), None)]))] == ["seal_action_unauthorised"]
