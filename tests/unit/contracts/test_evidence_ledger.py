"""EvidenceLedger: registration, custody transfers between agencies, sealing, append-only corrections."""

from __future__ import annotations

import pytest

from tests.unit.contracts.conftest import (
    USCC_A,
    USCC_B,
    USCC_C,
    USCC_D,
    USCC_E,
    Action,
    Role,
    assert_reverts,
    b32,
    event,
    uscc,
)

ZERO32 = b"\0" * 32
CASE = b32("case/哈公(刑)立字[2025]1234号")
EVIDENCE_ROLE = int(Role.EVIDENCE)


@pytest.fixture
def world(make_world):
    return make_world()


@pytest.fixture
def ledger(world):
    return world.evidence


@pytest.fixture
def register(world, transact):
    """register(label, sender=world.b, case=CASE, supersedes=0) -> (id, receipt)."""

    def run(label="photo-1", sender=None, case=CASE, supersedes=ZERO32, size=1234):
        record_id = b32("evidence/" + label)
        receipt = transact(
            world.evidence.functions.register(
                record_id, case, b32("sha256/" + label), b32("sm3/" + label), size, b32("meta/" + label), supersedes
            ),
            sender or world.b,
        )
        return record_id, receipt

    return run


def record(ledger, record_id):
    keys = (
        "caseId",
        "sha256Digest",
        "sm3Digest",
        "size",
        "metaDigest",
        "collectorUscc",
        "custodianUscc",
        "pendingTo",
        "supersedes",
        "supersededBy",
        "registeredBlock",
        "timestamp",
    )
    return dict(zip(keys, ledger.functions.getRecord(record_id).call(), strict=True))


def case(ledger, case_id):
    return dict(zip(("ownerUscc", "sealed", "sealedBlock", "records"), ledger.functions.getCase(case_id).call(), strict=True))


# ---------------------------------------------------------------- register


def test_register_records_the_evidence_and_opens_the_case(world, ledger, register, w3):
    record_id, receipt = register("photo-1", size=4096)
    assert event(receipt, ledger, "EvidenceRegistered") == {
        "id": record_id,
        "caseId": CASE,
        "collectorUscc": USCC_B,
        "sha256Digest": b32("sha256/photo-1"),
        "sm3Digest": b32("sm3/photo-1"),
        "size": 4096,
        "metaDigest": b32("meta/photo-1"),
        "supersedes": ZERO32,
    }
    assert record(ledger, record_id) == {
        "caseId": CASE,
        "sha256Digest": b32("sha256/photo-1"),
        "sm3Digest": b32("sm3/photo-1"),
        "size": 4096,
        "metaDigest": b32("meta/photo-1"),
        "collectorUscc": USCC_B,
        "custodianUscc": USCC_B,
        "pendingTo": ZERO32,
        "supersedes": ZERO32,
        "supersededBy": ZERO32,
        "registeredBlock": receipt.blockNumber,
        "timestamp": w3.eth.get_block(receipt.blockNumber).timestamp,
    }
    assert case(ledger, CASE) == {"ownerUscc": USCC_B, "sealed": False, "sealedBlock": 0, "records": 1}
    assert ledger.functions.consortium().call() == world.registry.address


def test_later_records_by_other_agencies_join_the_case_without_changing_its_owner(world, ledger, register):
    register("a", sender=world.b)
    register("b", sender=world.c)
    register("c", sender=world.b2)
    assert case(ledger, CASE) == {"ownerUscc": USCC_B, "sealed": False, "sealedBlock": 0, "records": 3}
    assert record(ledger, b32("evidence/b"))["collectorUscc"] == USCC_C


def test_unknown_record_and_case_read_as_zero(ledger):
    assert set(record(ledger, b32("nothing")).values()) == {ZERO32, 0}
    assert case(ledger, b32("nothing")) == {"ownerUscc": ZERO32, "sealed": False, "sealedBlock": 0, "records": 0}


@pytest.mark.parametrize("who", ["outsider", "auditor", "suspended member"])
def test_registering_needs_the_evidence_role(world, ledger, govern, who):
    if who == "suspended member":
        govern(world.registry, Action.SUSPEND, USCC_D, proposer=world.a)
    sender = {"outsider": world.outsider, "auditor": world.e, "suspended member": world.d}[who]
    call = ledger.functions.register(b32("x"), CASE, b32("s"), b32("m"), 1, b32("meta"), ZERO32)
    assert_reverts(call, sender, "EvidenceLedgerUnauthorized", account=sender, role=EVIDENCE_ROLE)


def test_duplicate_and_zero_ids_are_refused(world, ledger, register):
    record_id, _ = register("dup")
    for rid, case_id in ((record_id, CASE), (record_id, b32("another case")), (ZERO32, CASE)):
        call = ledger.functions.register(rid, case_id, b32("s"), b32("m"), 1, b32("meta"), ZERO32)
        assert_reverts(call, world.c, "EvidenceLedgerRecordExists", id=rid)


# ---------------------------------------------------------------- custody


def test_custody_passes_across_three_agencies(world, ledger, register, transact):
    record_id, _ = register("knife", sender=world.b)
    f = ledger.functions
    receipt = transact(f.transfer(record_id, USCC_C, b32("purpose/forensics"), True), world.b)
    assert event(receipt, ledger, "CustodyTransferRequested") == {
        "id": record_id,
        "fromUscc": USCC_B,
        "toUscc": USCC_C,
        "purposeDigest": b32("purpose/forensics"),
        "digestRechecked": True,
    }
    assert record(ledger, record_id)["pendingTo"] == USCC_C
    assert record(ledger, record_id)["custodianUscc"] == USCC_B  # until accepted
    receipt = transact(f.accept(record_id, False), world.c)
    assert event(receipt, ledger, "CustodyTransferAccepted") == {
        "id": record_id,
        "fromUscc": USCC_B,
        "toUscc": USCC_C,
        "digestRechecked": False,
    }
    transact(f.transfer(record_id, USCC_D, b32("purpose/prosecution"), True), world.c)
    receipt = transact(f.accept(record_id, True), world.d)
    assert event(receipt, ledger, "CustodyTransferAccepted") == {
        "id": record_id,
        "fromUscc": USCC_C,
        "toUscc": USCC_D,
        "digestRechecked": True,
    }
    r = record(ledger, record_id)
    assert (r["collectorUscc"], r["custodianUscc"], r["pendingTo"]) == (USCC_B, USCC_D, ZERO32)


def test_only_the_custodian_transfers(world, ledger, register, transact):
    record_id, _ = register("cash", sender=world.b)
    transact(ledger.functions.transfer(record_id, USCC_C, b32("p"), True), world.b)
    transact(ledger.functions.accept(record_id, True), world.c)
    for sender in (world.b, world.b2, world.d, world.a):  # the collector is no longer the custodian
        assert_reverts(
            ledger.functions.transfer(record_id, USCC_D, b32("p"), True),
            sender,
            "EvidenceLedgerNotCustodian",
            id=record_id,
            account=sender,
        )
    assert_reverts(
        ledger.functions.transfer(record_id, USCC_D, b32("p"), True),
        world.outsider,
        "EvidenceLedgerUnauthorized",
        account=world.outsider,
        role=EVIDENCE_ROLE,
    )


def test_a_custodian_that_lost_the_evidence_role_cannot_transfer(world, ledger, register, govern):
    record_id, _ = register("x", sender=world.d)
    govern(world.registry, Action.SET_ROLES, USCC_D, int(Role.EXCHANGE), proposer=world.a)
    assert_reverts(
        ledger.functions.transfer(record_id, USCC_C, b32("p"), True),
        world.d,
        "EvidenceLedgerUnauthorized",
        account=world.d,
        role=EVIDENCE_ROLE,
    )


def test_transfer_of_an_unknown_record_is_refused(world, ledger):
    assert_reverts(
        ledger.functions.transfer(b32("ghost"), USCC_C, b32("p"), True), world.b, "EvidenceLedgerUnknownRecord", id=b32("ghost")
    )


def test_invalid_recipients_are_refused(world, ledger, register, govern):
    record_id, _ = register("r", sender=world.b)
    govern(world.registry, Action.SUSPEND, USCC_C, proposer=world.a)
    for target in (USCC_B, USCC_C, USCC_E, uscc("91230000MA00000000"), ZERO32):  # self, suspended, no role, unknown
        assert_reverts(
            ledger.functions.transfer(record_id, target, b32("p"), True), world.b, "EvidenceLedgerInvalidRecipient", uscc=target
        )


def test_one_transfer_at_a_time(world, ledger, register, transact):
    record_id, _ = register("r")
    transact(ledger.functions.transfer(record_id, USCC_C, b32("p"), True), world.b)
    assert_reverts(
        ledger.functions.transfer(record_id, USCC_D, b32("p"), True), world.b, "EvidenceLedgerTransferPending", id=record_id
    )


def test_only_the_recipient_accepts_or_rejects(world, ledger, register, transact):
    record_id, _ = register("r")
    f = ledger.functions
    assert_reverts(f.accept(record_id, True), world.c, "EvidenceLedgerNoPendingTransfer", id=record_id)
    assert_reverts(f.reject(record_id), world.c, "EvidenceLedgerNoPendingTransfer", id=record_id)
    transact(f.transfer(record_id, USCC_C, b32("p"), True), world.b)
    for sender in (world.b, world.d, world.a):
        assert_reverts(f.accept(record_id, True), sender, "EvidenceLedgerNotRecipient", id=record_id, account=sender)
        assert_reverts(f.reject(record_id), sender, "EvidenceLedgerNotRecipient", id=record_id, account=sender)
    assert_reverts(f.reject(record_id), world.outsider, "EvidenceLedgerNotRecipient", id=record_id, account=world.outsider)
    assert_reverts(f.accept(b32("ghost"), True), world.c, "EvidenceLedgerUnknownRecord", id=b32("ghost"))
    assert_reverts(f.reject(b32("ghost")), world.c, "EvidenceLedgerUnknownRecord", id=b32("ghost"))


def test_reject_clears_the_transfer_and_keeps_custody(world, ledger, register, transact):
    record_id, _ = register("r")
    transact(ledger.functions.transfer(record_id, USCC_C, b32("p"), True), world.b)
    receipt = transact(ledger.functions.reject(record_id), world.c)
    assert event(receipt, ledger, "CustodyTransferRejected") == {
        "id": record_id,
        "fromUscc": USCC_B,
        "toUscc": USCC_C,
    }
    r = record(ledger, record_id)
    assert (r["custodianUscc"], r["pendingTo"]) == (USCC_B, ZERO32)
    transact(ledger.functions.transfer(record_id, USCC_D, b32("p"), True), world.b)  # free to transfer again


def test_a_recipient_that_lost_the_evidence_role_may_reject_but_not_accept(world, ledger, register, transact, govern):
    record_id, _ = register("r")
    transact(ledger.functions.transfer(record_id, USCC_C, b32("p"), True), world.b)
    govern(world.registry, Action.SUSPEND, USCC_C, proposer=world.a)
    assert_reverts(
        ledger.functions.accept(record_id, True), world.c, "EvidenceLedgerUnauthorized", account=world.c, role=EVIDENCE_ROLE
    )
    transact(ledger.functions.reject(record_id), world.c)
    assert record(ledger, record_id)["pendingTo"] == ZERO32


# ---------------------------------------------------------------- sealing


def test_only_the_case_owner_seals(world, ledger, register, transact, w3):
    register("a", sender=world.b)
    register("b", sender=world.c)
    for sender in (world.c, world.d, world.a):
        assert_reverts(ledger.functions.sealCase(CASE), sender, "EvidenceLedgerNotCaseOwner", caseId=CASE, account=sender)
    assert_reverts(
        ledger.functions.sealCase(CASE), world.outsider, "EvidenceLedgerUnauthorized", account=world.outsider, role=EVIDENCE_ROLE
    )
    assert_reverts(
        ledger.functions.sealCase(b32("no such case")),
        world.b,
        "EvidenceLedgerNotCaseOwner",
        caseId=b32("no such case"),
        account=world.b,
    )
    receipt = transact(ledger.functions.sealCase(CASE), world.b2)  # any account of the owner
    assert event(receipt, ledger, "CaseSealed") == {"caseId": CASE, "ownerUscc": USCC_B, "records": 2}
    assert case(ledger, CASE) == {"ownerUscc": USCC_B, "sealed": True, "sealedBlock": receipt.blockNumber, "records": 2}
    assert_reverts(ledger.functions.sealCase(CASE), world.b, "EvidenceLedgerCaseSealed", caseId=CASE)


def test_a_sealed_case_refuses_register_transfer_and_accept(world, ledger, register, transact):
    pending, _ = register("pending")
    idle, _ = register("idle")
    transact(ledger.functions.transfer(pending, USCC_C, b32("p"), True), world.b)
    transact(ledger.functions.sealCase(CASE), world.b)
    sealed = {"caseId": CASE}
    call = ledger.functions.register(b32("late"), CASE, b32("s"), b32("m"), 1, b32("meta"), ZERO32)
    assert_reverts(call, world.c, "EvidenceLedgerCaseSealed", **sealed)
    call = ledger.functions.register(b32("fix"), CASE, b32("s"), b32("m"), 1, b32("meta"), idle)
    assert_reverts(call, world.b, "EvidenceLedgerCaseSealed", **sealed)
    assert_reverts(ledger.functions.transfer(idle, USCC_D, b32("p"), True), world.b, "EvidenceLedgerCaseSealed", **sealed)
    assert_reverts(ledger.functions.accept(pending, True), world.c, "EvidenceLedgerCaseSealed", **sealed)
    # the pending transfer can still be declined, which leaves custody where it was
    transact(ledger.functions.reject(pending), world.c)
    assert record(ledger, pending)["custodianUscc"] == USCC_B
    # other cases are unaffected
    register("elsewhere", case=b32("other case"))


# ---------------------------------------------------------------- corrections


def test_supersede_links_records_without_overwriting(world, ledger, register):
    original, _ = register("statement-v1", size=100)
    before = record(ledger, original)
    correction, receipt = register("statement-v2", supersedes=original, size=120)
    assert event(receipt, ledger, "EvidenceRegistered")["supersedes"] == original
    after = record(ledger, original)
    assert after == {**before, "supersededBy": correction}
    assert record(ledger, correction)["supersedes"] == original
    assert case(ledger, CASE)["records"] == 2
    # the chain continues from the latest version
    third, _ = register("statement-v3", supersedes=correction, sender=world.c)
    assert record(ledger, correction)["supersededBy"] == third
    assert record(ledger, original)["supersededBy"] == correction


def test_invalid_supersedes_are_refused(world, ledger, register):
    original, _ = register("v1")
    register("v2", supersedes=original)
    elsewhere, _ = register("other-case", case=b32("other case"))

    def attempt(label, supersedes):
        call = ledger.functions.register(b32(label), CASE, b32("s"), b32("m"), 1, b32("meta"), supersedes)
        assert_reverts(call, world.b, "EvidenceLedgerInvalidSupersede", id=b32(label), supersedes=supersedes)

    attempt("again", original)  # already superseded
    attempt("unknown", b32("evidence/never"))  # does not exist
    attempt("cross-case", elsewhere)  # another case
    assert record(ledger, elsewhere)["supersededBy"] == ZERO32


def test_registering_in_another_agencys_case_does_not_make_it_owner(world, ledger, register):
    register("x", sender=world.c, case=b32("case-c"))
    register("y", sender=world.a, case=b32("case-c"))
    assert case(ledger, b32("case-c"))["ownerUscc"] == USCC_C
    assert record(ledger, b32("evidence/y"))["custodianUscc"] == USCC_A
