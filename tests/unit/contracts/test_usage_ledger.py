"""UsageLedger: a usage is recorded only by an Active member's account, with the holder's consent — an active,
unexpired grant on the GrantRegistry for that certificate naming the caller's agency, or an in-person
presentation digest."""

from __future__ import annotations

import hashlib

import pytest

from chain.usage import UsageLedgerClient
from tests.unit.contracts.conftest import USCC_B, USCC_C, Action, assert_reverts, b32, event

ZERO32 = b"\0" * 32
DOC, OTHER_DOC = b32("document digest"), b32("another document")
PURPOSE, PRESENTATION = b32("purpose digest"), b32("presentation digest")
GRANT = b32("grant digest")
USAGE = b32("usage/1")
DAY = 24 * 3600

def grantee(member: bytes) -> bytes:
    """The shared design's agency grantee digest, computed independently of the contract."""
    return hashlib.sha256(b"lianzheng/grantee/agency/v1:" + member.rstrip(b"\0")).digest()


@pytest.fixture
def world(make_world):
    return make_world()


@pytest.fixture
def grants(world, deploy):
    contract, _ = deploy("GrantRegistry", world.registry.address)
    return contract


@pytest.fixture
def ledger(world, grants, deploy):
    contract, _ = deploy("UsageLedger", world.registry.address, grants.address)
    return contract


@pytest.fixture
def now(w3):
    return int(w3.eth.get_block("latest").timestamp)


def anchor(grants, transact, world, grant=GRANT, *, not_before, expires, doc=DOC, member=USCC_B):
    transact(grants.functions.anchorGrant(grant, doc, grantee(member), not_before, expires), world.a)
    return grant


@pytest.fixture
def grant_for_b(grants, transact, world, now):
    return anchor(grants, transact, world, not_before=now - DAY, expires=now + DAY)


def record(ledger, usage_id=USAGE, doc=DOC, grant=GRANT, presentation=ZERO32, purpose=PURPOSE):
    return ledger.functions.recordUsage(usage_id, doc, grant, presentation, purpose)


def test_the_grantee_agency_records_a_usage_under_its_grant(world, ledger, grant_for_b, transact):
    r = transact(record(ledger), world.b)
    # the outbox sends it with an explicit limit (chain/usage.py); measured 198,564 on eth-tester
    # (seven new slots and the GrantRegistry call)
    assert r.gasUsed < UsageLedgerClient.GAS["record"], r.gasUsed
    print(f"recordUsage with a grant: {r.gasUsed} gas")
    args = event(r, ledger, "UsageRecorded")
    assert (args["id"], args["certificateDoc"], args["agencyUscc"], args["grantDigest"], args["presentationDigest"],
            args["purposeDigest"]) == (b32("usage/1"), DOC, USCC_B, GRANT, ZERO32, PURPOSE)
    doc, agency, grant, presentation, purpose, block, ts = ledger.functions.getUsage(b32("usage/1")).call()
    assert (doc, agency, grant, presentation, purpose, block) == (DOC, USCC_B, GRANT, ZERO32, PURPOSE, r.blockNumber)
    assert ts > 0 and ledger.functions.usageCount().call() == 1
    assert ledger.functions.agencyGranteeDigest(USCC_B).call() == grantee(USCC_B)
    transact(record(ledger, b32("usage/2")), world.b2)  # any account of the grantee, once per usage id
    assert_reverts(record(ledger, b32("usage/2")), world.b, "UsageLedgerExists", id=b32("usage/2"))


def test_a_usage_without_a_grant_or_presentation_or_with_both_is_refused(world, ledger, grant_for_b):
    assert_reverts(record(ledger, grant=ZERO32), world.b, "UsageLedgerNoConsent")
    assert_reverts(record(ledger, presentation=PRESENTATION), world.b, "UsageLedgerNoConsent")
    assert_reverts(record(ledger, grant=b32("never anchored")), world.b, "UsageLedgerUnknownGrant",
                   grant=b32("never anchored"))
    assert ledger.functions.usageCount().call() == 0


def test_an_in_person_presentation_needs_its_digest_only(world, ledger, transact):
    r = transact(record(ledger, grant=ZERO32, presentation=PRESENTATION), world.c)
    args = event(r, ledger, "UsageRecorded")
    assert (args["agencyUscc"], args["grantDigest"], args["presentationDigest"]) == (USCC_C, ZERO32, PRESENTATION)


def test_another_agency_cannot_use_a_grant_made_to_b(world, ledger, grant_for_b):
    assert_reverts(record(ledger), world.c, "UsageLedgerWrongGrantee", grant=GRANT, agencyUscc=USCC_C)
    assert_reverts(record(ledger), world.outsider, "UsageLedgerUnauthorized", account=world.outsider)


def test_the_grant_must_be_for_the_certificate_used(world, ledger, grant_for_b):
    assert_reverts(record(ledger, doc=OTHER_DOC), world.b, "UsageLedgerCertificateMismatch", grant=GRANT,
                   granted=DOC, used=OTHER_DOC)


def test_not_yet_valid_and_revoked_grants_are_refused(world, ledger, grants, transact, now):
    later = anchor(grants, transact, world, b32("later"), not_before=now + DAY, expires=now + 2 * DAY)
    assert_reverts(record(ledger, grant=later), world.b, "UsageLedgerGrantNotYetValid", grant=later,
                   notBefore=now + DAY)
    revoked = anchor(grants, transact, world, b32("revoked"), not_before=now - DAY, expires=now + DAY)
    transact(grants.functions.revokeGrant(revoked, b32("revocation statement")), world.a)
    assert_reverts(record(ledger, grant=revoked), world.b, "UsageLedgerGrantRevoked", grant=revoked)


def test_a_grant_expires_with_the_chain_clock(world, ledger, grants, transact, now, advance_time):
    anchor(grants, transact, world, not_before=now - DAY, expires=now + 3600)
    advance_time(3601)
    assert_reverts(record(ledger), world.b, "UsageLedgerGrantExpired", grant=GRANT, expiresAt=now + 3600)


def test_zero_ids_and_digests_and_suspended_members_are_refused(world, ledger, grant_for_b, govern):
    assert_reverts(record(ledger, usage_id=ZERO32), world.b, "UsageLedgerInvalidUsage")
    assert_reverts(record(ledger, purpose=ZERO32), world.b, "UsageLedgerInvalidUsage")
    assert_reverts(record(ledger, doc=ZERO32), world.b, "UsageLedgerInvalidUsage")
    govern(world.registry, Action.SUSPEND, USCC_B, proposer=world.a)
    assert_reverts(record(ledger), world.b, "UsageLedgerUnauthorized", account=world.b)
