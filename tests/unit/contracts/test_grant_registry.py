"""GrantRegistry: grants anchored and revoked only by accounts of Active members (the node relaying for the
holder), once each, with a sane window; `grantOf` is the view the usage ledger consults."""

from __future__ import annotations

import hashlib

import pytest

from chain.grants import GrantStatus
from tests.unit.contracts.conftest import USCC_B, USCC_C, Action, assert_reverts, b32, event

GRANT, DOC, GRANTEE = b32("grant"), b32("doc"), b32("grantee")
FAR = 4_000_000_000


@pytest.fixture
def world(make_world):
    return make_world()


@pytest.fixture
def grants(world, deploy):
    contract, _ = deploy("GrantRegistry", world.registry.address)
    return contract


@pytest.fixture
def anchored(world, grants, transact):
    return transact(grants.functions.anchorGrant(GRANT, DOC, GRANTEE, 1_700_000_000, FAR), world.b)


def test_a_member_anchors_a_grant_and_its_record_and_event_say_what_was_anchored(world, grants, anchored):
    args = event(anchored, grants, "GrantAnchored")
    assert args == {"grantDigest": GRANT, "certificateDoc": DOC, "relayUscc": USCC_B, "granteeDigest": GRANTEE,
                    "notBefore": 1_700_000_000, "expiresAt": FAR}
    assert grants.functions.grantOf(GRANT).call() == [DOC, GRANTEE, 1_700_000_000, FAR, GrantStatus.ACTIVE]
    assert grants.functions.anchoredBlock(GRANT).call() == anchored.blockNumber
    assert grants.functions.grantOf(b32("unknown")).call() == [bytes(32), bytes(32), 0, 0, GrantStatus.UNKNOWN]


def test_only_active_members_anchor_and_revoke(world, grants, anchored, govern):
    assert_reverts(grants.functions.anchorGrant(b32("g2"), DOC, GRANTEE, 0, FAR), world.outsider,
                   "GrantRegistryUnauthorized", account=world.outsider)
    assert_reverts(grants.functions.revokeGrant(GRANT, b32("r")), world.outsider, "GrantRegistryUnauthorized")
    govern(world.registry, Action.SUSPEND, USCC_C, proposer=world.a)
    assert_reverts(grants.functions.anchorGrant(b32("g2"), DOC, GRANTEE, 0, FAR), world.c,
                   "GrantRegistryUnauthorized", account=world.c)
    assert grants.functions.grantOf(b32("g2")).call()[4] == GrantStatus.UNKNOWN


def test_duplicates_zero_digests_and_bad_windows_revert(world, grants, anchored, w3):
    assert_reverts(grants.functions.anchorGrant(GRANT, DOC, GRANTEE, 0, FAR), world.d, "GrantRegistryExists",
                   grantDigest=GRANT)
    for call in (grants.functions.anchorGrant(bytes(32), DOC, GRANTEE, 0, FAR),
                 grants.functions.anchorGrant(b32("g3"), bytes(32), GRANTEE, 0, FAR),
                 grants.functions.anchorGrant(b32("g3"), DOC, bytes(32), 0, FAR)):
        assert_reverts(call, world.b, "GrantRegistryInvalidGrant")
    now = w3.eth.get_block("latest").timestamp
    assert_reverts(grants.functions.anchorGrant(b32("g3"), DOC, GRANTEE, FAR, FAR), world.b,
                   "GrantRegistryInvalidWindow")
    assert_reverts(grants.functions.anchorGrant(b32("g3"), DOC, GRANTEE, 0, now - 1), world.b,
                   "GrantRegistryInvalidWindow", notBefore=0, expiresAt=now - 1)


def test_revoke_is_final_and_unknown_or_repeated_revocations_revert(world, grants, anchored, transact):
    assert_reverts(grants.functions.revokeGrant(b32("nope"), b32("r")), world.b, "GrantRegistryUnknown",
                   grantDigest=b32("nope"))
    r = transact(grants.functions.revokeGrant(GRANT, b32("statement")), world.c)  # any member relays
    assert event(r, grants, "GrantRevoked") == {"grantDigest": GRANT, "relayUscc": USCC_C,
                                                "revocationDigest": b32("statement")}
    assert grants.functions.grantOf(GRANT).call()[4] == GrantStatus.REVOKED
    assert_reverts(grants.functions.revokeGrant(GRANT, b32("again")), world.b, "GrantRegistryAlreadyRevoked",
                   grantDigest=GRANT)
    assert_reverts(grants.functions.anchorGrant(GRANT, DOC, GRANTEE, 0, FAR), world.b, "GrantRegistryExists")


def test_gas_of_anchor_and_revoke(world, grants, anchored, transact):
    assert anchored.gasUsed < 150_000  # ~118k: three new storage slots
    r = transact(grants.functions.revokeGrant(GRANT, b32("s")), world.b)
    assert r.gasUsed < 80_000  # ~55k


def test_the_contracts_agency_grantee_digest_is_the_registrys(grants) -> None:
    from registry.holders.grants import agency_grantee_digest

    for uscc in ("11230000MB1A00028M", "11230000MB1A00036G"):  # real seed USCCs (the registry validates them)
        key = uscc.encode().ljust(32, b"\0")
        assert grants.functions.agencyGranteeDigest(key).call() == agency_grantee_digest(uscc)
    assert grants.functions.agencyGranteeDigest(USCC_B).call() == hashlib.sha256(
        b"lianzheng/grantee/agency/v1:" + USCC_B.rstrip(b"\0")).digest()
