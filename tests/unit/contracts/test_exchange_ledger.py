"""ExchangeLedger: request -> authorise/refuse -> deliver -> acknowledge/dispute, signed by each side."""

from __future__ import annotations

import pytest

from tests.unit.contracts.conftest import (
    USCC_B,
    USCC_C,
    USCC_D,
    USCC_E,
    Action,
    Role,
    Step,
    assert_reverts,
    b32,
    event,
    uscc,
)

ZERO32 = b"\0" * 32
EXCHANGE_ROLE = int(Role.EXCHANGE)
ID = b32("exchange/2025/000001")
ITEM = b32("catalogue/230000/市场主体登记信息")
PURPOSE = b32("purpose/企业开办一网通办")
PAYLOAD = b32("payload/sha256")


@pytest.fixture
def world(make_world):
    return make_world()


@pytest.fixture
def ledger(world):
    return world.exchanges


@pytest.fixture
def requested(world, ledger, transact):
    """An exchange requested by C (consumer) from B (provider)."""
    return transact(ledger.functions.request(ID, USCC_B, ITEM, PURPOSE), world.c)


@pytest.fixture
def delivered(world, ledger, transact, requested):
    transact(ledger.functions.authorise(ID, True, b32("reason/ok")), world.b)
    return transact(ledger.functions.deliver(ID, PAYLOAD, 65536, 120), world.b2)


def exchange(ledger, exchange_id=ID):
    keys = (
        "consumerUscc",
        "providerUscc",
        "catalogueItem",
        "purposeDigest",
        "payloadDigest",
        "size",
        "records",
        "step",
        "updatedBlock",
    )
    return dict(zip(keys, ledger.functions.getExchange(exchange_id).call(), strict=True))


def test_happy_path(world, ledger, transact):
    f = ledger.functions
    receipt = transact(f.request(ID, USCC_B, ITEM, PURPOSE), world.c)
    assert event(receipt, ledger, "ExchangeRequested") == {
        "id": ID,
        "consumerUscc": USCC_C,
        "providerUscc": USCC_B,
        "catalogueItem": ITEM,
        "purposeDigest": PURPOSE,
    }
    assert exchange(ledger) == {
        "consumerUscc": USCC_C,
        "providerUscc": USCC_B,
        "catalogueItem": ITEM,
        "purposeDigest": PURPOSE,
        "payloadDigest": ZERO32,
        "size": 0,
        "records": 0,
        "step": Step.REQUESTED,
        "updatedBlock": receipt.blockNumber,
    }
    receipt = transact(f.authorise(ID, True, b32("reason/ok")), world.b)
    assert event(receipt, ledger, "ExchangeAuthorised") == {
        "id": ID,
        "providerUscc": USCC_B,
        "granted": True,
        "reasonDigest": b32("reason/ok"),
    }
    assert exchange(ledger)["step"] == Step.AUTHORISED
    receipt = transact(f.deliver(ID, PAYLOAD, 65536, 120), world.b2)  # any account of the provider
    assert event(receipt, ledger, "ExchangeDelivered") == {
        "id": ID,
        "providerUscc": USCC_B,
        "payloadDigest": PAYLOAD,
        "size": 65536,
        "records": 120,
    }
    e = exchange(ledger)
    assert (e["step"], e["payloadDigest"], e["size"], e["records"]) == (Step.DELIVERED, PAYLOAD, 65536, 120)
    receipt = transact(f.acknowledge(ID, PAYLOAD), world.c)
    assert event(receipt, ledger, "ExchangeAcknowledged") == {
        "id": ID,
        "consumerUscc": USCC_C,
        "receivedDigest": PAYLOAD,
        "matched": True,
    }
    assert exchange(ledger)["step"] == Step.ACKNOWLEDGED
    assert exchange(ledger)["updatedBlock"] == receipt.blockNumber
    assert ledger.functions.consortium().call() == world.registry.address


def test_refuse_path_ends_the_exchange(world, ledger, transact, requested):
    receipt = transact(ledger.functions.authorise(ID, False, b32("reason/no legal basis")), world.b)
    assert event(receipt, ledger, "ExchangeAuthorised")["granted"] is False
    assert exchange(ledger)["step"] == Step.REFUSED
    assert_reverts(
        ledger.functions.deliver(ID, PAYLOAD, 1, 1),
        world.b,
        "ExchangeLedgerInvalidStep",
        id=ID,
        current=Step.REFUSED,
        expected=Step.AUTHORISED,
    )
    assert_reverts(
        ledger.functions.authorise(ID, True, ZERO32),
        world.b,
        "ExchangeLedgerInvalidStep",
        id=ID,
        current=Step.REFUSED,
        expected=Step.REQUESTED,
    )


def test_dispute_when_the_received_digest_differs(world, ledger, transact, delivered):
    receipt = transact(ledger.functions.acknowledge(ID, b32("something else")), world.c)
    assert event(receipt, ledger, "ExchangeAcknowledged") == {
        "id": ID,
        "consumerUscc": USCC_C,
        "receivedDigest": b32("something else"),
        "matched": False,
    }
    assert exchange(ledger)["step"] == Step.DISPUTED
    assert_reverts(
        ledger.functions.acknowledge(ID, PAYLOAD),
        world.c,
        "ExchangeLedgerInvalidStep",
        id=ID,
        current=Step.DISPUTED,
        expected=Step.DELIVERED,
    )


def test_deliver_without_authorisation_is_refused(world, ledger, requested):
    assert_reverts(
        ledger.functions.deliver(ID, PAYLOAD, 1, 1),
        world.b,
        "ExchangeLedgerInvalidStep",
        id=ID,
        current=Step.REQUESTED,
        expected=Step.AUTHORISED,
    )


def test_steps_are_taken_in_order(world, ledger, transact, requested):
    assert_reverts(
        ledger.functions.acknowledge(ID, PAYLOAD),
        world.c,
        "ExchangeLedgerInvalidStep",
        id=ID,
        current=Step.REQUESTED,
        expected=Step.DELIVERED,
    )
    transact(ledger.functions.authorise(ID, True, ZERO32), world.b)
    assert_reverts(
        ledger.functions.authorise(ID, True, ZERO32),
        world.b,
        "ExchangeLedgerInvalidStep",
        id=ID,
        current=Step.AUTHORISED,
        expected=Step.REQUESTED,
    )
    assert_reverts(
        ledger.functions.acknowledge(ID, PAYLOAD),
        world.c,
        "ExchangeLedgerInvalidStep",
        id=ID,
        current=Step.AUTHORISED,
        expected=Step.DELIVERED,
    )
    transact(ledger.functions.deliver(ID, PAYLOAD, 1, 1), world.b)
    assert_reverts(
        ledger.functions.deliver(ID, PAYLOAD, 1, 1),
        world.b,
        "ExchangeLedgerInvalidStep",
        id=ID,
        current=Step.DELIVERED,
        expected=Step.AUTHORISED,
    )


def test_acknowledgement_by_a_non_party_is_refused(world, ledger, delivered):
    for sender in (world.d, world.a, world.b, world.outsider):  # the provider is not the acknowledging party
        assert_reverts(ledger.functions.acknowledge(ID, PAYLOAD), sender, "ExchangeLedgerNotParty", id=ID, account=sender)
    assert exchange(ledger)["step"] == Step.DELIVERED  # a delivery nobody acknowledged stays visible


def test_only_the_provider_authorises_and_delivers(world, ledger, transact, requested):
    for sender in (world.c, world.d, world.outsider):
        assert_reverts(ledger.functions.authorise(ID, True, ZERO32), sender, "ExchangeLedgerNotParty", id=ID, account=sender)
    transact(ledger.functions.authorise(ID, True, ZERO32), world.b)
    for sender in (world.c, world.d):
        assert_reverts(ledger.functions.deliver(ID, PAYLOAD, 1, 1), sender, "ExchangeLedgerNotParty", id=ID, account=sender)


def test_a_party_that_lost_the_exchange_role_cannot_act(world, ledger, transact, requested, govern):
    transact(ledger.functions.authorise(ID, True, ZERO32), world.b)
    govern(world.registry, Action.SUSPEND, USCC_B, proposer=world.a)
    assert_reverts(
        ledger.functions.deliver(ID, PAYLOAD, 1, 1), world.b, "ExchangeLedgerUnauthorized", account=world.b, role=EXCHANGE_ROLE
    )


def test_provider_equal_to_consumer_is_refused(world, ledger):
    assert_reverts(ledger.functions.request(ID, USCC_C, ITEM, PURPOSE), world.c, "ExchangeLedgerInvalidProvider", uscc=USCC_C)


def test_a_provider_without_the_exchange_role_is_refused(world, ledger, govern):
    unknown = uscc("91230000MA00000000")
    govern(world.registry, Action.SUSPEND, USCC_D, proposer=world.a)
    for provider in (USCC_E, unknown, USCC_D, ZERO32):  # auditor only, unknown, suspended, none
        assert_reverts(
            ledger.functions.request(ID, provider, ITEM, PURPOSE), world.c, "ExchangeLedgerInvalidProvider", uscc=provider
        )


def test_requesting_needs_the_exchange_role(world, ledger):
    for sender in (world.e, world.outsider):
        assert_reverts(
            ledger.functions.request(ID, USCC_B, ITEM, PURPOSE),
            sender,
            "ExchangeLedgerUnauthorized",
            account=sender,
            role=EXCHANGE_ROLE,
        )


def test_duplicate_and_unknown_ids_are_refused(world, ledger, requested):
    assert_reverts(ledger.functions.request(ID, USCC_D, ITEM, PURPOSE), world.b, "ExchangeLedgerExists", id=ID)
    ghost = b32("ghost")
    f = ledger.functions
    for call, sender in (
        (f.authorise(ghost, True, ZERO32), world.b),
        (f.deliver(ghost, PAYLOAD, 1, 1), world.b),
        (f.acknowledge(ghost, PAYLOAD), world.c),
    ):
        assert_reverts(call, sender, "ExchangeLedgerUnknown", id=ghost)
    assert exchange(ledger, ghost)["step"] == Step.NONE
