"""SealRegistry: seals created, suspended, reinstated and revoked only by the owning agency's accounts
(Active, ISSUER_ROLE); the maker's keys published only by the maker; every change an event."""

from __future__ import annotations

import pytest

from chain.seals import SealStatus
from tests.unit.contracts.conftest import USCC_A, USCC_B, Action, Role, assert_reverts, b32, event

ID = b32("seal/ES11230000MB0000002B0001")
IMAGE, KEY, INFO = b32("image"), b32("key"), b32("seal-info")
FROM, UNTIL = 1_700_000_000, 1_900_000_000
ISSUER = int(Role.ISSUER)


@pytest.fixture
def world(make_world):
    return make_world()


@pytest.fixture
def seals(world, deploy):
    contract, _ = deploy("SealRegistry", world.registry.address, USCC_A)
    return contract


@pytest.fixture
def created(world, seals, transact):
    return transact(seals.functions.create(ID, IMAGE, KEY, INFO, FROM, UNTIL), world.b)


def status(seals, seal_id=ID):
    return SealStatus(seals.functions.getSeal(seal_id).call()[6])


def test_an_issuer_creates_a_seal_of_its_own_agency(world, seals, created):
    args = event(created, seals, "SealCreated")
    assert (args["id"], args["agencyUscc"], args["imageDigest"], args["keyDigest"]) == (ID, USCC_B, IMAGE, KEY)
    agency, image, key, info, valid_from, valid_until, st, created_block, _ = seals.functions.getSeal(ID).call()
    assert (agency, image, key, info, valid_from, valid_until) == (USCC_B, IMAGE, KEY, INFO, FROM, UNTIL)
    assert SealStatus(st) is SealStatus.ACTIVE and created_block == created.blockNumber


def test_create_is_refused_without_the_issuer_role_twice_or_with_an_empty_validity(world, seals, created):
    assert_reverts(seals.functions.create(b32("other"), IMAGE, KEY, INFO, FROM, UNTIL), world.d,
                   "SealRegistryUnauthorized", account=world.d, role=ISSUER)
    assert_reverts(seals.functions.create(ID, IMAGE, KEY, INFO, FROM, UNTIL), world.b2, "SealRegistryExists", id=ID)
    assert_reverts(seals.functions.create(b32("other"), IMAGE, KEY, INFO, UNTIL, FROM), world.b,
                   "SealRegistryInvalidValidity")


def test_suspend_reinstate_revoke_by_any_account_of_the_owner_each_with_its_event(world, seals, created, transact):
    r = transact(seals.functions.suspend(ID, b32("reason")), world.b2)
    assert event(r, seals, "SealSuspended")["agencyUscc"] == USCC_B and status(seals) is SealStatus.SUSPENDED
    assert_reverts(seals.functions.suspend(ID, b32("again")), world.b, "SealRegistryInvalidStatus", status=2)
    r = transact(seals.functions.reinstate(ID), world.b)
    assert event(r, seals, "SealReinstated")["id"] == ID and status(seals) is SealStatus.ACTIVE
    assert_reverts(seals.functions.reinstate(ID), world.b, "SealRegistryInvalidStatus", status=1)
    r = transact(seals.functions.revoke(ID, b32("final")), world.b)
    assert event(r, seals, "SealRevoked")["reasonDigest"] == b32("final") and status(seals) is SealStatus.REVOKED
    for call in (seals.functions.reinstate(ID), seals.functions.suspend(ID, b32("x")), seals.functions.revoke(ID, b32("x"))):
        assert_reverts(call, world.b, "SealRegistryInvalidStatus", status=3)


def test_another_agency_cannot_touch_the_seal_nor_can_an_unknown_one_be_changed(world, seals, created):
    for call in (seals.functions.suspend(ID, b32("x")), seals.functions.revoke(ID, b32("x")),
                 seals.functions.reinstate(ID)):
        assert_reverts(call, world.a, "SealRegistryNotOwner", id=ID, account=world.a)
        assert_reverts(call, world.c, "SealRegistryNotOwner", id=ID)
    assert_reverts(seals.functions.suspend(b32("nope"), b32("x")), world.b, "SealRegistryUnknown", id=b32("nope"))
    assert status(seals) is SealStatus.ACTIVE


def test_a_suspended_owner_member_loses_its_seal_powers(world, seals, created, govern):
    govern(world.registry, Action.SUSPEND, USCC_B, proposer=world.a)
    assert_reverts(seals.functions.suspend(ID, b32("x")), world.b, "SealRegistryUnauthorized", role=ISSUER)


def test_only_the_maker_publishes_maker_keys_once(world, seals, transact):
    assert_reverts(seals.functions.publishMakerKey(KEY), world.b, "SealRegistryUnauthorized")
    r = transact(seals.functions.publishMakerKey(KEY), world.a)
    assert event(r, seals, "MakerKeyPublished") == {"keyDigest": KEY, "makerUscc": USCC_A}
    assert seals.functions.makerKeySince(KEY).call() == r.blockNumber
    again = transact(seals.functions.publishMakerKey(KEY), world.a)
    assert not seals.events.MakerKeyPublished().process_receipt(again)
    assert seals.functions.maker().call() == USCC_A and seals.functions.makerKeySince(b32("x")).call() == 0
