"""ConsortiumRegistry: genesis, M-of-N governance of every action, roles, delegation, and every refusal."""

from __future__ import annotations

import pytest

from tests.unit.contracts.conftest import (
    ALL_ROLES,
    DAY,
    USCC_A,
    USCC_B,
    USCC_C,
    USCC_D,
    Action,
    MemberStatus,
    Role,
    assert_reverts,
    encode_action_data,
    event,
    events,
    uscc,
)

ZERO32 = b"\0" * 32
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
BID_B = "did:bid:efB2222222222222222222222222"


@pytest.fixture
def registry(deploy_consortium):
    """Genesis A (accounts[0]) with every role, threshold 1."""
    return deploy_consortium()


@pytest.fixture
def propose(transact):
    """propose(registry, action, uscc, *payload, sender) -> (proposal id, receipt)."""

    def run(registry, action, member, *payload, sender):
        receipt = transact(registry.functions.propose(int(action), member, encode_action_data(action, *payload)), sender)
        return registry.functions.proposalCount().call(), receipt

    return run


@pytest.fixture
def admit(govern, accounts):
    """admit(registry, uscc, account_list, roles, name=..., bid=..., proposer=accounts[0], approvers=())."""

    def run(registry, member, member_accounts, roles, *, name="某厅", bid=None, proposer=None, approvers=()):
        return govern(
            registry,
            Action.ADMIT,
            member,
            name,
            bid or "did:bid:ef" + member[:18].decode(),
            list(member_accounts),
            int(roles),
            proposer=proposer or accounts[0],
            approvers=approvers,
        )

    return run


def member(registry, code):
    name, bid, roles, status, admitted, updated = registry.functions.getMember(code).call()
    return {"name": name, "bid": bid, "roles": roles, "status": status, "admitted": admitted, "updated": updated}


# ---------------------------------------------------------------- genesis


def test_genesis_member_is_active_admin_with_its_accounts(deploy_consortium, accounts):
    registry = deploy_consortium(accounts=[accounts[0], accounts[1]], threshold=2, ttl=3600)
    m = member(registry, USCC_A)
    assert m["name"] == "黑龙江省政务服务和数据管理局"
    assert m["roles"] == ALL_ROLES and m["status"] == MemberStatus.ACTIVE
    assert m["admitted"] == m["updated"] == registry.deploy_receipt.blockNumber
    assert registry.functions.memberAccounts(USCC_A).call() == [accounts[0], accounts[1]]
    assert registry.functions.memberOf(accounts[1]).call() == USCC_A
    assert registry.functions.memberCount().call() == 1
    assert registry.functions.memberAt(0).call() == USCC_A
    assert registry.functions.threshold().call() == 2
    assert registry.functions.proposalTtl().call() == 3600
    assert registry.functions.proposalCount().call() == 0
    assert registry.functions.requiredApprovals().call() == 1  # min(2, one admin)
    admitted = event(registry.deploy_receipt, registry, "MemberAdmitted")
    assert admitted == {
        "uscc": USCC_A,
        "name": "黑龙江省政务服务和数据管理局",
        "bid": "did:bid:efA1111111111111111111111111",
        "roles": ALL_ROLES,
        "accounts": [accounts[0], accounts[1]],
    }


def test_role_constants_match_the_spec(registry):
    f = registry.functions
    assert [
        f.ADMIN_ROLE().call(),
        f.ISSUER_ROLE().call(),
        f.REVOKER_ROLE().call(),
        f.EVIDENCE_ROLE().call(),
        f.EXCHANGE_ROLE().call(),
        f.AUDITOR_ROLE().call(),
        f.GATEWAY_ROLE().call(),
    ] == [1, 2, 4, 8, 16, 32, 64]


def test_unknown_member_and_proposal_read_as_zero(registry, accounts):
    assert member(registry, USCC_B) == {"name": "", "bid": "", "roles": 0, "status": 0, "admitted": 0, "updated": 0}
    assert registry.functions.memberAccounts(USCC_B).call() == []
    assert registry.functions.memberOf(accounts[5]).call() == ZERO32
    assert registry.functions.getProposal(1).call() == [0, ZERO32, b"", ZERO32, 0, 0, False]


@pytest.mark.parametrize(
    ("overrides", "error", "args"),
    [
        ({"threshold": 0}, "ConsortiumInvalidThreshold", {"threshold": 0}),
        ({"roles": int(Role.ISSUER)}, "ConsortiumInvalidMember", {"uscc": USCC_A}),
        ({"uscc": ZERO32}, "ConsortiumInvalidMember", {"uscc": ZERO32}),
        ({"name": ""}, "ConsortiumInvalidMember", {"uscc": USCC_A}),
        ({"bid": ""}, "ConsortiumInvalidMember", {"uscc": USCC_A}),
        ({"accounts": []}, "ConsortiumInvalidMember", {"uscc": USCC_A}),
        ({"accounts": [ZERO_ADDRESS]}, "ConsortiumInvalidMember", {"uscc": USCC_A}),
    ],
    ids=["threshold-0", "no-admin-role", "zero-uscc", "empty-name", "empty-bid", "no-accounts", "zero-account"],
)
def test_invalid_genesis_is_refused(contract_factory, accounts, overrides, error, args):
    params = {
        "uscc": USCC_A,
        "name": "省数据局",
        "bid": "did:bid:efA",
        "accounts": [accounts[0]],
        "roles": int(Role.ADMIN),
        "sm2_key": b"",
        "threshold": 1,
        "ttl": DAY,
    }
    params.update(overrides)
    constructor = contract_factory("ConsortiumRegistry").constructor(*params.values())
    assert_reverts(constructor, accounts[0], error, **args)


def test_genesis_with_a_duplicate_account_is_refused(contract_factory, accounts):
    constructor = contract_factory("ConsortiumRegistry").constructor(
        USCC_A, "省数据局", "did:bid:efA", [accounts[0], accounts[0]], int(Role.ADMIN), b"", 1, DAY
    )
    assert_reverts(constructor, accounts[0], "ConsortiumAccountInUse", account=accounts[0])


# ---------------------------------------------------------------- proposals: lifecycle and events


def test_propose_records_the_proposal_and_approves_for_the_proposer(registry, propose, accounts, w3):
    data = encode_action_data(Action.ADMIT, "省市场监督管理局", BID_B, [accounts[1]], int(Role.ISSUER))
    proposal_id, receipt = propose(
        registry, Action.ADMIT, USCC_B, "省市场监督管理局", BID_B, [accounts[1]], int(Role.ISSUER), sender=accounts[0]
    )
    assert proposal_id == 1
    expires_at = w3.eth.get_block(receipt.blockNumber).timestamp + 7 * DAY
    assert event(receipt, registry, "ProposalCreated") == {
        "id": 1,
        "action": Action.ADMIT,
        "uscc": USCC_B,
        "proposer": USCC_A,
        "expiresAt": expires_at,
        "data": data,
    }
    assert event(receipt, registry, "ProposalApproved") == {"id": 1, "approver": USCC_A, "approvals": 1}
    assert registry.functions.getProposal(1).call() == [
        Action.ADMIT,
        USCC_B,
        data,
        USCC_A,
        expires_at,
        1,
        False,
    ]
    assert registry.functions.hasApproved(1, USCC_A).call() is True
    assert registry.functions.hasApproved(1, USCC_B).call() is False
    # nothing happens before execution
    assert member(registry, USCC_B)["status"] == MemberStatus.NONE


def test_proposal_ids_start_at_one_and_increase(registry, propose, accounts):
    first, _ = propose(registry, Action.SET_THRESHOLD, ZERO32, 2, sender=accounts[0])
    second, _ = propose(registry, Action.SET_THRESHOLD, ZERO32, 3, sender=accounts[0])
    assert (first, second) == (1, 2)
    assert registry.functions.proposalCount().call() == 2


def test_admit_executes_and_emits_member_admitted_then_proposal_executed(registry, propose, transact, accounts):
    proposal_id, _ = propose(
        registry,
        Action.ADMIT,
        USCC_B,
        "省市场监督管理局",
        BID_B,
        [accounts[1], accounts[2]],
        int(Role.ISSUER | Role.EVIDENCE),
        sender=accounts[0],
    )
    receipt = transact(registry.functions.execute(proposal_id), accounts[0])
    assert event(receipt, registry, "MemberAdmitted") == {
        "uscc": USCC_B,
        "name": "省市场监督管理局",
        "bid": BID_B,
        "roles": Role.ISSUER | Role.EVIDENCE,
        "accounts": [accounts[1], accounts[2]],
    }
    assert event(receipt, registry, "ProposalExecuted") == {"id": proposal_id, "executor": USCC_A}
    m = member(registry, USCC_B)
    assert (m["status"], m["roles"], m["admitted"]) == (MemberStatus.ACTIVE, Role.ISSUER | Role.EVIDENCE, receipt.blockNumber)
    assert registry.functions.memberAccounts(USCC_B).call() == [accounts[1], accounts[2]]
    assert registry.functions.memberOf(accounts[2]).call() == USCC_B
    assert registry.functions.memberCount().call() == 2
    assert registry.functions.memberAt(1).call() == USCC_B
    assert registry.functions.getProposal(proposal_id).call()[6] is True
    assert registry.functions.hasRole(accounts[2], int(Role.ISSUER)).call() is True


def test_set_roles_changes_roles(registry, admit, govern, accounts):
    admit(registry, USCC_B, [accounts[1]], Role.ISSUER)
    receipt = govern(registry, Action.SET_ROLES, USCC_B, int(Role.REVOKER | Role.AUDITOR), proposer=accounts[0])
    assert event(receipt, registry, "MemberRolesChanged") == {
        "uscc": USCC_B,
        "oldRoles": Role.ISSUER,
        "newRoles": Role.REVOKER | Role.AUDITOR,
    }
    m = member(registry, USCC_B)
    assert m["roles"] == Role.REVOKER | Role.AUDITOR and m["updated"] == receipt.blockNumber
    assert registry.functions.hasRole(accounts[1], int(Role.ISSUER)).call() is False
    assert registry.functions.hasRole(accounts[1], int(Role.REVOKER)).call() is True


def test_suspend_takes_every_role_away_and_reinstate_gives_them_back(registry, admit, govern, accounts):
    admit(registry, USCC_B, [accounts[1]], Role.ISSUER | Role.EVIDENCE)
    receipt = govern(registry, Action.SUSPEND, USCC_B, proposer=accounts[0])
    assert event(receipt, registry, "MemberStatusChanged") == {
        "uscc": USCC_B,
        "oldStatus": MemberStatus.ACTIVE,
        "newStatus": MemberStatus.SUSPENDED,
    }
    assert member(registry, USCC_B)["status"] == MemberStatus.SUSPENDED
    assert registry.functions.hasRole(accounts[1], int(Role.ISSUER)).call() is False
    assert registry.functions.hasRole(accounts[1], int(Role.EVIDENCE)).call() is False
    assert registry.functions.memberOf(accounts[1]).call() == USCC_B  # still identified, just not active

    receipt = govern(registry, Action.REINSTATE, USCC_B, proposer=accounts[0])
    assert event(receipt, registry, "MemberStatusChanged") == {
        "uscc": USCC_B,
        "oldStatus": MemberStatus.SUSPENDED,
        "newStatus": MemberStatus.ACTIVE,
    }
    assert registry.functions.hasRole(accounts[1], int(Role.ISSUER)).call() is True


def test_remove_is_final(registry, admit, govern, propose, accounts):
    admit(registry, USCC_B, [accounts[1]], Role.ISSUER)
    receipt = govern(registry, Action.REMOVE, USCC_B, proposer=accounts[0])
    assert event(receipt, registry, "MemberStatusChanged") == {
        "uscc": USCC_B,
        "oldStatus": MemberStatus.ACTIVE,
        "newStatus": MemberStatus.REMOVED,
    }
    assert registry.functions.hasRole(accounts[1], int(Role.ISSUER)).call() is False
    removed = {"uscc": USCC_B, "status": MemberStatus.REMOVED}
    for action, payload in [
        (Action.SET_ROLES, (1,)),
        (Action.SUSPEND, ()),
        (Action.REINSTATE, ()),
        (Action.REMOVE, ()),
        (Action.ROTATE_KEY, (accounts[1], accounts[7], "")),
        (Action.ADD_ACCOUNT, (accounts[7],)),
    ]:
        call = registry.functions.propose(int(action), USCC_B, encode_action_data(action, *payload))
        assert_reverts(call, accounts[0], "ConsortiumInvalidStatus", **removed)
    # the USCC stays taken and the account stays attributed, for the audit trail
    call = registry.functions.propose(int(Action.ADMIT), USCC_B, encode_action_data(Action.ADMIT, "x", "y", [accounts[7]], 0))
    assert_reverts(call, accounts[0], "ConsortiumMemberExists", uscc=USCC_B)
    assert registry.functions.memberOf(accounts[1]).call() == USCC_B


def test_a_suspended_member_can_be_removed(registry, admit, govern, accounts):
    admit(registry, USCC_B, [accounts[1]], Role.ISSUER)
    govern(registry, Action.SUSPEND, USCC_B, proposer=accounts[0])
    receipt = govern(registry, Action.REMOVE, USCC_B, proposer=accounts[0])
    assert event(receipt, registry, "MemberStatusChanged")["oldStatus"] == MemberStatus.SUSPENDED


def test_rotate_key_moves_the_account_and_updates_the_bid(registry, admit, govern, accounts):
    admit(registry, USCC_B, [accounts[1], accounts[2]], Role.ISSUER)
    receipt = govern(registry, Action.ROTATE_KEY, USCC_B, accounts[1], accounts[6], "did:bid:efNEW", proposer=accounts[0])
    assert event(receipt, registry, "MemberKeyRotated") == {
        "uscc": USCC_B,
        "oldAccount": accounts[1],
        "newAccount": accounts[6],
        "newBid": "did:bid:efNEW",
    }
    assert registry.functions.memberAccounts(USCC_B).call() == [accounts[6], accounts[2]]
    assert registry.functions.memberOf(accounts[1]).call() == ZERO32
    assert registry.functions.memberOf(accounts[6]).call() == USCC_B
    assert registry.functions.hasRole(accounts[1], int(Role.ISSUER)).call() is False
    assert registry.functions.hasRole(accounts[6], int(Role.ISSUER)).call() is True
    m = member(registry, USCC_B)
    assert m["bid"] == "did:bid:efNEW" and m["updated"] == receipt.blockNumber


def test_rotate_key_with_an_empty_bid_keeps_the_bid(registry, admit, govern, accounts):
    admit(registry, USCC_B, [accounts[1]], Role.ISSUER, bid=BID_B)
    receipt = govern(registry, Action.ROTATE_KEY, USCC_B, accounts[1], accounts[6], "", proposer=accounts[0])
    assert event(receipt, registry, "MemberKeyRotated")["newBid"] == BID_B
    assert member(registry, USCC_B)["bid"] == BID_B


def test_a_rotated_out_account_can_no_longer_govern(registry, govern, accounts, propose):
    govern(registry, Action.ROTATE_KEY, USCC_A, accounts[0], accounts[6], "", proposer=accounts[0])
    call = registry.functions.propose(int(Action.SET_THRESHOLD), ZERO32, encode_action_data(Action.SET_THRESHOLD, 2))
    assert_reverts(call, accounts[0], "ConsortiumUnauthorized", account=accounts[0], role=Role.ADMIN)
    proposal_id, _ = propose(registry, Action.SET_THRESHOLD, ZERO32, 2, sender=accounts[6])
    assert proposal_id == 2


def test_rotate_key_refusals(registry, admit, accounts):
    admit(registry, USCC_B, [accounts[1]], Role.ISSUER)

    def rotate(old, new):
        return registry.functions.propose(int(Action.ROTATE_KEY), USCC_B, encode_action_data(Action.ROTATE_KEY, old, new, ""))

    assert_reverts(rotate(accounts[0], accounts[6]), accounts[0], "ConsortiumAccountNotFound", account=accounts[0])
    assert_reverts(rotate(accounts[7], accounts[6]), accounts[0], "ConsortiumAccountNotFound", account=accounts[7])
    assert_reverts(rotate(accounts[1], accounts[0]), accounts[0], "ConsortiumAccountInUse", account=accounts[0])
    assert_reverts(rotate(accounts[1], ZERO_ADDRESS), accounts[0], "ConsortiumInvalidMember", uscc=USCC_B)
    call = registry.functions.propose(
        int(Action.ROTATE_KEY), USCC_C, encode_action_data(Action.ROTATE_KEY, accounts[1], accounts[6], "")
    )
    assert_reverts(call, accounts[0], "ConsortiumMemberNotFound", uscc=USCC_C)


def test_add_account(registry, admit, govern, accounts):
    admit(registry, USCC_B, [accounts[1]], Role.ISSUER)
    receipt = govern(registry, Action.ADD_ACCOUNT, USCC_B, accounts[6], proposer=accounts[0])
    assert event(receipt, registry, "MemberAccountAdded") == {"uscc": USCC_B, "account": accounts[6]}
    assert registry.functions.memberAccounts(USCC_B).call() == [accounts[1], accounts[6]]
    assert registry.functions.hasRole(accounts[6], int(Role.ISSUER)).call() is True


def test_add_account_refusals(registry, admit, accounts):
    admit(registry, USCC_B, [accounts[1]], Role.ISSUER)

    def add(who, account):
        return registry.functions.propose(int(Action.ADD_ACCOUNT), who, encode_action_data(Action.ADD_ACCOUNT, account))

    assert_reverts(add(USCC_B, accounts[0]), accounts[0], "ConsortiumAccountInUse", account=accounts[0])
    assert_reverts(add(USCC_B, accounts[1]), accounts[0], "ConsortiumAccountInUse", account=accounts[1])
    assert_reverts(add(USCC_B, ZERO_ADDRESS), accounts[0], "ConsortiumInvalidMember", uscc=USCC_B)
    assert_reverts(add(USCC_C, accounts[6]), accounts[0], "ConsortiumMemberNotFound", uscc=USCC_C)


def test_set_threshold(registry, govern, accounts):
    receipt = govern(registry, Action.SET_THRESHOLD, ZERO32, 3, proposer=accounts[0])
    assert event(receipt, registry, "ThresholdChanged") == {"oldThreshold": 1, "newThreshold": 3}
    assert registry.functions.threshold().call() == 3


def test_set_threshold_refusals(registry, accounts):
    def set_threshold(target, value):
        return registry.functions.propose(int(Action.SET_THRESHOLD), target, encode_action_data(Action.SET_THRESHOLD, value))

    assert_reverts(set_threshold(ZERO32, 0), accounts[0], "ConsortiumInvalidThreshold", threshold=0)
    assert_reverts(set_threshold(USCC_A, 2), accounts[0], "ConsortiumInvalidAction", action=Action.SET_THRESHOLD)


@pytest.mark.parametrize("action", [0, 10, 255])
def test_unknown_actions_are_refused(registry, accounts, action):
    call = registry.functions.propose(action, USCC_A, b"")
    assert_reverts(call, accounts[0], "ConsortiumInvalidAction", action=action)


@pytest.mark.parametrize(
    ("action", "data"),
    [
        (Action.SUSPEND, b"\x01"),
        (Action.REINSTATE, b"\0" * 32),
        (Action.REMOVE, b"\0" * 32),
        (Action.SET_ROLES, b""),
        (Action.ADD_ACCOUNT, b"\0" * 64),
        (Action.SET_THRESHOLD, b"\x01"),
    ],
)
def test_payloads_of_the_wrong_length_are_refused(registry, admit, accounts, action, data):
    admit(registry, USCC_B, [accounts[1]], Role.ISSUER)
    target = ZERO32 if action == Action.SET_THRESHOLD else USCC_B
    assert_reverts(registry.functions.propose(int(action), target, data), accounts[0], "ConsortiumInvalidAction", action=action)


# ---------------------------------------------------------------- who may govern


@pytest.mark.parametrize("who", ["outsider", "non-admin member", "suspended admin"])
def test_only_active_admins_propose_approve_and_execute(deploy_consortium, admit, govern, propose, accounts, who):
    registry = deploy_consortium(threshold=2)
    admit(registry, USCC_B, [accounts[1]], Role.ISSUER)  # not an admin
    admit(registry, USCC_C, [accounts[2]], Role.ADMIN)  # a second admin (required approvals: 1 -> 2)
    admit(registry, USCC_D, [accounts[3]], Role.ADMIN, approvers=[accounts[2]])
    govern(registry, Action.SUSPEND, USCC_D, proposer=accounts[0], approvers=[accounts[2]])
    sender = {"outsider": accounts[9], "non-admin member": accounts[1], "suspended admin": accounts[3]}[who]
    proposal_id, _ = propose(registry, Action.SET_THRESHOLD, ZERO32, 1, sender=accounts[0])
    refused = {"account": sender, "role": Role.ADMIN}
    data = encode_action_data(Action.SET_THRESHOLD, 1)
    assert_reverts(
        registry.functions.propose(int(Action.SET_THRESHOLD), ZERO32, data), sender, "ConsortiumUnauthorized", **refused
    )
    assert_reverts(registry.functions.approve(proposal_id), sender, "ConsortiumUnauthorized", **refused)
    assert_reverts(registry.functions.execute(proposal_id), sender, "ConsortiumUnauthorized", **refused)


def test_any_admin_may_execute_once_approved(deploy_consortium, admit, propose, transact, accounts):
    registry = deploy_consortium()
    admit(registry, USCC_C, [accounts[2]], Role.ADMIN)
    proposal_id, _ = propose(registry, Action.SET_THRESHOLD, ZERO32, 2, sender=accounts[0])
    receipt = transact(registry.functions.execute(proposal_id), accounts[2])
    assert event(receipt, registry, "ProposalExecuted") == {"id": proposal_id, "executor": USCC_C}


# ---------------------------------------------------------------- approvals and thresholds


def test_approving_twice_is_refused_including_from_another_account_of_the_same_member(
    deploy_consortium, admit, propose, transact, accounts
):
    registry = deploy_consortium(threshold=3)
    admit(registry, USCC_B, [accounts[1], accounts[2]], Role.ADMIN)
    proposal_id, _ = propose(registry, Action.SET_THRESHOLD, ZERO32, 2, sender=accounts[0])
    # the proposer's member approved automatically, from whichever of its accounts
    assert_reverts(registry.functions.approve(proposal_id), accounts[0], "ConsortiumAlreadyApproved", id=proposal_id, uscc=USCC_A)
    receipt = transact(registry.functions.approve(proposal_id), accounts[1])
    assert event(receipt, registry, "ProposalApproved") == {"id": proposal_id, "approver": USCC_B, "approvals": 2}
    assert_reverts(registry.functions.approve(proposal_id), accounts[2], "ConsortiumAlreadyApproved", id=proposal_id, uscc=USCC_B)
    assert_reverts(registry.functions.approve(proposal_id), accounts[1], "ConsortiumAlreadyApproved", id=proposal_id, uscc=USCC_B)
    assert registry.functions.getProposal(proposal_id).call()[5] == 2
    assert registry.functions.hasApproved(proposal_id, USCC_B).call() is True


def test_threshold_two_with_two_admins_needs_both(deploy_consortium, admit, propose, transact, accounts):
    registry = deploy_consortium(threshold=2)
    admit(registry, USCC_B, [accounts[1]], Role.ADMIN)  # bootstrap: one admin, so one approval sufficed
    assert registry.functions.requiredApprovals().call() == 2
    proposal_id, _ = propose(registry, Action.SET_ROLES, USCC_B, int(Role.ADMIN | Role.ISSUER), sender=accounts[0])
    assert_reverts(
        registry.functions.execute(proposal_id),
        accounts[0],
        "ConsortiumInsufficientApprovals",
        id=proposal_id,
        approvals=1,
        required=2,
    )
    assert_reverts(
        registry.functions.execute(proposal_id),
        accounts[1],
        "ConsortiumInsufficientApprovals",
        id=proposal_id,
        approvals=1,
        required=2,
    )
    transact(registry.functions.approve(proposal_id), accounts[1])
    transact(registry.functions.execute(proposal_id), accounts[1])
    assert member(registry, USCC_B)["roles"] == Role.ADMIN | Role.ISSUER


def test_required_approvals_is_min_of_threshold_and_active_admins(deploy_consortium, admit, govern, accounts):
    registry = deploy_consortium(threshold=3)
    required = registry.functions.requiredApprovals
    assert required().call() == 1  # one admin: a consortium can bootstrap
    admit(registry, USCC_B, [accounts[1]], Role.ADMIN)
    assert required().call() == 2
    admit(registry, USCC_C, [accounts[2]], Role.ISSUER, approvers=[accounts[1]])  # not an admin: unchanged
    assert required().call() == 2
    admit(registry, USCC_D, [accounts[3]], Role.ADMIN, approvers=[accounts[1]])
    assert required().call() == 3
    govern(registry, Action.SET_ROLES, USCC_C, int(Role.ADMIN), proposer=accounts[0], approvers=[accounts[1], accounts[3]])
    assert required().call() == 3  # capped by the threshold
    govern(registry, Action.SUSPEND, USCC_D, proposer=accounts[0], approvers=[accounts[1], accounts[2]])
    assert required().call() == 3  # A, B, C remain
    govern(registry, Action.REMOVE, USCC_C, proposer=accounts[0], approvers=[accounts[1], accounts[2]])
    assert required().call() == 2
    govern(registry, Action.SET_ROLES, USCC_B, int(Role.ISSUER), proposer=accounts[0], approvers=[accounts[1]])
    assert required().call() == 1
    govern(registry, Action.REINSTATE, USCC_D, proposer=accounts[0])
    assert required().call() == 2


def test_approvals_of_a_member_no_longer_admin_do_not_count(deploy_consortium, admit, govern, propose, transact, accounts):
    registry = deploy_consortium(threshold=2)
    admit(registry, USCC_B, [accounts[1]], Role.ADMIN)
    admit(registry, USCC_C, [accounts[2]], Role.ADMIN, approvers=[accounts[1]])
    proposal_id, _ = propose(registry, Action.SET_THRESHOLD, ZERO32, 3, sender=accounts[1])
    # B is suspended before its proposal executes: its own approval no longer counts
    govern(registry, Action.SUSPEND, USCC_B, proposer=accounts[0], approvers=[accounts[2]])
    assert_reverts(
        registry.functions.execute(proposal_id),
        accounts[0],
        "ConsortiumInsufficientApprovals",
        id=proposal_id,
        approvals=0,
        required=2,
    )
    transact(registry.functions.approve(proposal_id), accounts[0])
    assert_reverts(
        registry.functions.execute(proposal_id),
        accounts[0],
        "ConsortiumInsufficientApprovals",
        id=proposal_id,
        approvals=1,
        required=2,
    )
    transact(registry.functions.approve(proposal_id), accounts[2])
    transact(registry.functions.execute(proposal_id), accounts[2])
    assert registry.functions.threshold().call() == 3


# ---------------------------------------------------------------- proposal state refusals


def test_executing_an_expired_proposal_is_refused(deploy_consortium, propose, advance_time, transact, accounts):
    registry = deploy_consortium(ttl=3600)
    proposal_id, _ = propose(registry, Action.SET_THRESHOLD, ZERO32, 2, sender=accounts[0])
    expires_at = registry.functions.getProposal(proposal_id).call()[4]
    advance_time(3601)
    assert_reverts(
        registry.functions.execute(proposal_id), accounts[0], "ConsortiumProposalExpired", id=proposal_id, expiresAt=expires_at
    )
    assert_reverts(
        registry.functions.approve(proposal_id), accounts[0], "ConsortiumProposalExpired", id=proposal_id, expiresAt=expires_at
    )
    # a fresh proposal works again
    fresh, _ = propose(registry, Action.SET_THRESHOLD, ZERO32, 2, sender=accounts[0])
    transact(registry.functions.execute(fresh), accounts[0])
    assert registry.functions.threshold().call() == 2


def test_a_proposal_can_be_executed_up_to_its_expiry(deploy_consortium, propose, advance_time, transact, accounts):
    registry = deploy_consortium(ttl=3600)
    proposal_id, _ = propose(registry, Action.SET_THRESHOLD, ZERO32, 2, sender=accounts[0])
    advance_time(3000)
    transact(registry.functions.execute(proposal_id), accounts[0])
    assert registry.functions.threshold().call() == 2


def test_executing_twice_is_refused(registry, propose, transact, accounts):
    proposal_id, _ = propose(registry, Action.SET_THRESHOLD, ZERO32, 2, sender=accounts[0])
    transact(registry.functions.execute(proposal_id), accounts[0])
    assert_reverts(registry.functions.execute(proposal_id), accounts[0], "ConsortiumProposalAlreadyExecuted", id=proposal_id)
    assert_reverts(registry.functions.approve(proposal_id), accounts[0], "ConsortiumProposalAlreadyExecuted", id=proposal_id)


@pytest.mark.parametrize("proposal_id", [0, 1, 2**256 - 1])
def test_unknown_proposals_are_refused(registry, accounts, proposal_id):
    assert_reverts(registry.functions.approve(proposal_id), accounts[0], "ConsortiumProposalNotFound", id=proposal_id)
    assert_reverts(registry.functions.execute(proposal_id), accounts[0], "ConsortiumProposalNotFound", id=proposal_id)


# ---------------------------------------------------------------- membership rules


def test_admitting_an_existing_member_is_refused(registry, admit, accounts):
    admit(registry, USCC_B, [accounts[1]], Role.ISSUER)
    call = registry.functions.propose(
        int(Action.ADMIT), USCC_B, encode_action_data(Action.ADMIT, "另一个", "did:bid:x", [accounts[6]], 0)
    )
    assert_reverts(call, accounts[0], "ConsortiumMemberExists", uscc=USCC_B)
    genesis = registry.functions.propose(
        int(Action.ADMIT), USCC_A, encode_action_data(Action.ADMIT, "x", "did:bid:x", [accounts[6]], 0)
    )
    assert_reverts(genesis, accounts[0], "ConsortiumMemberExists", uscc=USCC_A)


def test_duplicate_member_is_rechecked_at_execution(registry, propose, transact, accounts):
    first, _ = propose(registry, Action.ADMIT, USCC_B, "甲", "did:bid:a", [accounts[1]], 0, sender=accounts[0])
    second, _ = propose(registry, Action.ADMIT, USCC_B, "乙", "did:bid:b", [accounts[2]], 0, sender=accounts[0])
    transact(registry.functions.execute(first), accounts[0])
    assert_reverts(registry.functions.execute(second), accounts[0], "ConsortiumMemberExists", uscc=USCC_B)
    assert member(registry, USCC_B)["name"] == "甲"


def test_an_account_in_use_is_refused(registry, admit, propose, transact, accounts):
    admit(registry, USCC_B, [accounts[1]], Role.ISSUER)

    def admission(code, member_accounts):
        return registry.functions.propose(
            int(Action.ADMIT), code, encode_action_data(Action.ADMIT, "某局", "did:bid:x", member_accounts, 0)
        )

    assert_reverts(admission(USCC_C, [accounts[6], accounts[1]]), accounts[0], "ConsortiumAccountInUse", account=accounts[1])
    assert_reverts(admission(USCC_C, [accounts[0]]), accounts[0], "ConsortiumAccountInUse", account=accounts[0])
    assert_reverts(admission(USCC_C, [accounts[6], accounts[6]]), accounts[0], "ConsortiumAccountInUse", account=accounts[6])
    # re-checked at execution: two pending admissions claiming the same account
    first, _ = propose(registry, Action.ADMIT, USCC_C, "丙", "did:bid:c", [accounts[6]], 0, sender=accounts[0])
    second, _ = propose(registry, Action.ADMIT, USCC_D, "丁", "did:bid:d", [accounts[6]], 0, sender=accounts[0])
    transact(registry.functions.execute(first), accounts[0])
    assert_reverts(registry.functions.execute(second), accounts[0], "ConsortiumAccountInUse", account=accounts[6])


@pytest.mark.parametrize(
    ("code", "name", "bid", "member_accounts", "error_uscc"),
    [
        (b"\0" * 32, "某局", "did:bid:x", "one", b"\0" * 32),
        (USCC_C, "", "did:bid:x", "one", USCC_C),
        (USCC_C, "某局", "", "one", USCC_C),
        (USCC_C, "某局", "did:bid:x", "none", USCC_C),
        (USCC_C, "某局", "did:bid:x", "zero", USCC_C),
    ],
    ids=["zero-uscc", "empty-name", "empty-bid", "no-accounts", "zero-account"],
)
def test_invalid_admissions_are_refused(registry, accounts, code, name, bid, member_accounts, error_uscc):
    chosen = {"one": [accounts[6]], "none": [], "zero": [ZERO_ADDRESS]}[member_accounts]
    call = registry.functions.propose(int(Action.ADMIT), code, encode_action_data(Action.ADMIT, name, bid, chosen, 0))
    assert_reverts(call, accounts[0], "ConsortiumInvalidMember", uscc=error_uscc)


@pytest.mark.parametrize("action", [Action.SET_ROLES, Action.SUSPEND, Action.REINSTATE, Action.REMOVE])
def test_actions_on_an_unknown_member_are_refused(registry, accounts, action):
    payload = (int(Role.ISSUER),) if action == Action.SET_ROLES else ()
    call = registry.functions.propose(int(action), USCC_D, encode_action_data(action, *payload))
    assert_reverts(call, accounts[0], "ConsortiumMemberNotFound", uscc=USCC_D)


def test_status_preconditions(registry, admit, govern, accounts):
    admit(registry, USCC_B, [accounts[1]], Role.ISSUER)
    reinstate = registry.functions.propose(int(Action.REINSTATE), USCC_B, b"")
    assert_reverts(reinstate, accounts[0], "ConsortiumInvalidStatus", uscc=USCC_B, status=MemberStatus.ACTIVE)
    govern(registry, Action.SUSPEND, USCC_B, proposer=accounts[0])
    suspend = registry.functions.propose(int(Action.SUSPEND), USCC_B, b"")
    assert_reverts(suspend, accounts[0], "ConsortiumInvalidStatus", uscc=USCC_B, status=MemberStatus.SUSPENDED)


def test_status_is_rechecked_at_execution(registry, admit, propose, transact, accounts):
    admit(registry, USCC_B, [accounts[1]], Role.ISSUER)
    first, _ = propose(registry, Action.SUSPEND, USCC_B, sender=accounts[0])
    second, _ = propose(registry, Action.SUSPEND, USCC_B, sender=accounts[0])
    transact(registry.functions.execute(first), accounts[0])
    assert_reverts(
        registry.functions.execute(second), accounts[0], "ConsortiumInvalidStatus", uscc=USCC_B, status=MemberStatus.SUSPENDED
    )


def test_a_suspended_member_may_get_roles_accounts_and_a_new_key(registry, admit, govern, accounts):
    admit(registry, USCC_B, [accounts[1]], Role.ISSUER)
    govern(registry, Action.SUSPEND, USCC_B, proposer=accounts[0])
    govern(registry, Action.SET_ROLES, USCC_B, int(Role.REVOKER), proposer=accounts[0])
    govern(registry, Action.ROTATE_KEY, USCC_B, accounts[1], accounts[6], "did:bid:efB-new", proposer=accounts[0])
    govern(registry, Action.ADD_ACCOUNT, USCC_B, accounts[7], proposer=accounts[0])
    assert registry.functions.hasRole(accounts[6], int(Role.REVOKER)).call() is False  # still suspended
    govern(registry, Action.REINSTATE, USCC_B, proposer=accounts[0])
    assert registry.functions.hasRole(accounts[6], int(Role.REVOKER)).call() is True
    assert registry.functions.hasRole(accounts[7], int(Role.REVOKER)).call() is True


# ---------------------------------------------------------------- last admin


@pytest.mark.parametrize(
    ("action", "payload"),
    [(Action.SUSPEND, ()), (Action.REMOVE, ()), (Action.SET_ROLES, (int(Role.ISSUER | Role.REVOKER),))],
)
def test_the_last_active_admin_cannot_be_taken_out(registry, accounts, action, payload):
    call = registry.functions.propose(int(action), USCC_A, encode_action_data(action, *payload))
    assert_reverts(call, accounts[0], "ConsortiumLastAdmin", uscc=USCC_A)


def test_the_last_admin_may_change_roles_while_keeping_admin(registry, govern, accounts):
    govern(registry, Action.SET_ROLES, USCC_A, int(Role.ADMIN), proposer=accounts[0])
    assert member(registry, USCC_A)["roles"] == Role.ADMIN


def test_a_suspended_admin_does_not_count_as_the_other_admin(registry, admit, govern, accounts):
    admit(registry, USCC_B, [accounts[1]], Role.ADMIN)
    govern(registry, Action.SUSPEND, USCC_B, proposer=accounts[0])
    call = registry.functions.propose(int(Action.REMOVE), USCC_A, b"")
    assert_reverts(call, accounts[0], "ConsortiumLastAdmin", uscc=USCC_A)


def test_with_two_admins_one_may_step_down_and_last_admin_is_rechecked_at_execution(registry, admit, propose, transact, accounts):
    admit(registry, USCC_B, [accounts[1]], Role.ADMIN)
    # threshold 1: each proposal needs only its proposer. Both admins propose to remove the other.
    remove_b, _ = propose(registry, Action.REMOVE, USCC_B, sender=accounts[0])
    remove_a, _ = propose(registry, Action.REMOVE, USCC_A, sender=accounts[1])
    transact(registry.functions.execute(remove_b), accounts[0])
    assert member(registry, USCC_B)["status"] == MemberStatus.REMOVED
    transact(registry.functions.approve(remove_a), accounts[0])  # B's approval no longer counts
    assert_reverts(registry.functions.execute(remove_a), accounts[0], "ConsortiumLastAdmin", uscc=USCC_A)


# ---------------------------------------------------------------- hasRole


def test_has_role(make_world):
    world = make_world()
    has = world.registry.functions.hasRole
    assert has(world.b, int(Role.ISSUER)).call() is True
    assert has(world.b2, int(Role.ISSUER)).call() is True  # every account of the member
    assert has(world.b, int(Role.ISSUER | Role.EVIDENCE)).call() is True  # every bit required
    assert has(world.b, int(Role.ISSUER | Role.REVOKER)).call() is False
    assert has(world.b, int(Role.ADMIN)).call() is False
    assert has(world.b, 0).call() is False
    assert has(world.outsider, int(Role.ISSUER)).call() is False


# ---------------------------------------------------------------- revoker delegation


def test_set_revoker_delegate_records_and_emits(make_world, transact):
    world = make_world()
    receipt = transact(world.registry.functions.setRevokerDelegate(USCC_C, True), world.b)
    assert event(receipt, world.registry, "RevokerDelegateSet") == {
        "issuer": USCC_B,
        "delegate": USCC_C,
        "allowed": True,
    }
    assert world.registry.functions.isRevokerDelegate(USCC_B, USCC_C).call() is True
    assert world.registry.functions.isRevokerDelegate(USCC_C, USCC_B).call() is False
    receipt = transact(world.registry.functions.setRevokerDelegate(USCC_C, False), world.b2)
    assert event(receipt, world.registry, "RevokerDelegateSet")["allowed"] is False
    assert world.registry.functions.isRevokerDelegate(USCC_B, USCC_C).call() is False


def test_set_revoker_delegate_refusals(make_world, govern):
    world = make_world()
    set_delegate = world.registry.functions.setRevokerDelegate
    assert_reverts(set_delegate(USCC_B, True), world.c, "ConsortiumUnauthorized", account=world.c, role=Role.ISSUER)
    assert_reverts(set_delegate(USCC_B, True), world.outsider, "ConsortiumUnauthorized", account=world.outsider, role=Role.ISSUER)
    unknown = uscc("91230000MA00000000")
    assert_reverts(set_delegate(unknown, True), world.b, "ConsortiumMemberNotFound", uscc=unknown)
    assert_reverts(set_delegate(USCC_B, True), world.b, "ConsortiumInvalidMember", uscc=USCC_B)
    govern(world.registry, Action.SUSPEND, USCC_B, proposer=world.a)
    assert_reverts(set_delegate(USCC_C, True), world.b, "ConsortiumUnauthorized", account=world.b, role=Role.ISSUER)


def test_can_revoke_for_every_combination(make_world, transact, govern):
    world = make_world()
    registry = world.registry
    can = registry.functions.canRevokeFor

    # the issuer itself: ISSUER (B) or REVOKER suffices, neither does not
    assert can(world.b, USCC_B).call() is True
    assert can(world.b2, USCC_B).call() is True
    assert can(world.c, USCC_C).call() is True  # C holds REVOKER only
    assert can(world.d, USCC_D).call() is False  # D holds neither
    # another member without delegation: never, whatever its roles
    assert can(world.a, USCC_B).call() is False  # A holds every role but B did not delegate
    assert can(world.c, USCC_B).call() is False
    assert can(world.outsider, USCC_B).call() is False
    assert can(world.outsider, b"\0" * 32).call() is False

    # delegation to a member holding REVOKER: allowed
    transact(registry.functions.setRevokerDelegate(USCC_C, True), world.b)
    assert can(world.c, USCC_B).call() is True
    # delegation to a member without REVOKER: not allowed
    transact(registry.functions.setRevokerDelegate(USCC_D, True), world.b)
    assert can(world.d, USCC_B).call() is False
    # delegation is per issuer: C is not a delegate of A
    assert can(world.c, USCC_A).call() is False

    # the delegate loses REVOKER, then gets it back
    govern(registry, Action.SET_ROLES, USCC_C, int(Role.EVIDENCE), proposer=world.a)
    assert can(world.c, USCC_B).call() is False
    govern(registry, Action.SET_ROLES, USCC_C, int(Role.REVOKER), proposer=world.a)
    assert can(world.c, USCC_B).call() is True
    # a suspended delegate cannot act
    govern(registry, Action.SUSPEND, USCC_C, proposer=world.a)
    assert can(world.c, USCC_B).call() is False
    govern(registry, Action.REINSTATE, USCC_C, proposer=world.a)
    assert can(world.c, USCC_B).call() is True
    # the delegation is withdrawn
    transact(registry.functions.setRevokerDelegate(USCC_C, False), world.b)
    assert can(world.c, USCC_B).call() is False

    # a suspended issuer cannot act on its own documents; a removed one neither
    govern(registry, Action.SUSPEND, USCC_B, proposer=world.a)
    assert can(world.b, USCC_B).call() is False
    govern(registry, Action.REMOVE, USCC_B, proposer=world.a)
    assert can(world.b, USCC_B).call() is False


def test_a_suspended_issuers_delegate_may_still_revoke_its_documents(make_world, transact, govern):
    world = make_world()
    transact(world.registry.functions.setRevokerDelegate(USCC_C, True), world.b)
    govern(world.registry, Action.SUSPEND, USCC_B, proposer=world.a)
    assert world.registry.functions.canRevokeFor(world.c, USCC_B).call() is True


def test_every_governance_event_is_emitted_once_per_execution(registry, admit, govern, accounts):
    receipt = admit(registry, USCC_B, [accounts[1]], Role.ISSUER)
    assert len(events(receipt, registry, "MemberAdmitted")) == 1
    assert len(events(receipt, registry, "ProposalExecuted")) == 1
    assert events(receipt, registry, "MemberStatusChanged") == []


# ---------------------------------------------------------------- SM2 signing keys (docs/CRYPTO.md)

SM2_KEY_1 = bytes(range(1, 65))
SM2_KEY_2 = bytes(range(65, 129))
SM2_KEY_3 = bytes(range(129, 193))


def _key_hash(w3, key):
    return bytes(w3.keccak(key))


def test_genesis_with_an_sm2_key_registers_it_from_the_deployment(deploy_consortium, w3):
    registry = deploy_consortium(sm2_key=SM2_KEY_1)
    assert registry.functions.memberSm2Key(USCC_A).call() == SM2_KEY_1
    since = w3.eth.get_block(registry.deploy_receipt.blockNumber).timestamp
    assert registry.functions.sm2KeyRecord(_key_hash(w3, SM2_KEY_1)).call() == [USCC_A, since, 0]
    assert event(registry.deploy_receipt, registry, "MemberSm2KeySet")["key"] == SM2_KEY_1


def test_genesis_with_a_malformed_sm2_key_is_refused(contract_factory, accounts):
    constructor = contract_factory("ConsortiumRegistry").constructor(
        USCC_A, "省数据局", "did:bid:zfA", [accounts[0]], int(Role.ADMIN), bytes(63), 1, DAY
    )
    assert_reverts(constructor, accounts[0], "ConsortiumInvalidSm2Key", uscc=USCC_A)


def test_admission_carries_the_sm2_key_and_a_key_cannot_serve_two_members(registry, govern, transact, accounts, w3):
    receipt = govern(registry, Action.ADMIT, USCC_B, "某厅", BID_B, [accounts[1]], int(Role.ISSUER), SM2_KEY_1,
                     proposer=accounts[0])
    assert event(receipt, registry, "MemberSm2KeySet") == {
        "uscc": USCC_B, "keyHash": _key_hash(w3, SM2_KEY_1), "key": SM2_KEY_1, "bid": BID_B}
    assert registry.functions.memberSm2Key(USCC_B).call() == SM2_KEY_1
    reuse = registry.functions.propose(
        int(Action.ADMIT), USCC_C, encode_action_data(Action.ADMIT, "另一厅", "did:bid:x", [accounts[3]], 0, SM2_KEY_1))
    assert_reverts(reuse, accounts[0], "ConsortiumInvalidSm2Key", uscc=USCC_C)
    short = registry.functions.propose(
        int(Action.ADMIT), USCC_C, encode_action_data(Action.ADMIT, "另一厅", "did:bid:x", [accounts[3]], 0, bytes(65)))
    assert_reverts(short, accounts[0], "ConsortiumInvalidSm2Key", uscc=USCC_C)


def test_rotating_the_sm2_key_closes_the_old_key_and_updates_the_bid(registry, govern, accounts, w3, advance_time):
    admitted = govern(registry, Action.ADMIT, USCC_B, "某厅", BID_B, [accounts[1]], int(Role.ISSUER), SM2_KEY_1,
                      proposer=accounts[0])
    since = w3.eth.get_block(admitted.blockNumber).timestamp
    advance_time(100)
    receipt = govern(registry, Action.ROTATE_SM2_KEY, USCC_B, SM2_KEY_2, "did:bid:zfNEW", proposer=accounts[0])
    rotated_at = w3.eth.get_block(receipt.blockNumber).timestamp
    assert rotated_at >= since + 100
    assert registry.functions.sm2KeyRecord(_key_hash(w3, SM2_KEY_1)).call() == [USCC_B, since, rotated_at]
    assert registry.functions.sm2KeyRecord(_key_hash(w3, SM2_KEY_2)).call() == [USCC_B, rotated_at, 0]
    assert registry.functions.memberSm2Key(USCC_B).call() == SM2_KEY_2
    assert member(registry, USCC_B)["bid"] == "did:bid:zfNEW"
    assert event(receipt, registry, "MemberSm2KeySet")["bid"] == "did:bid:zfNEW"
    # an empty BID keeps it; a member without a key can be given one the same way
    govern(registry, Action.ROTATE_SM2_KEY, USCC_B, SM2_KEY_3, "", proposer=accounts[0])
    assert member(registry, USCC_B)["bid"] == "did:bid:zfNEW"


def test_rotate_sm2_key_refusals(registry, govern, accounts):
    govern(registry, Action.ADMIT, USCC_B, "某厅", BID_B, [accounts[1]], int(Role.ISSUER), SM2_KEY_1,
           proposer=accounts[0])

    def rotate(who, key):
        return registry.functions.propose(int(Action.ROTATE_SM2_KEY), who,
                                          encode_action_data(Action.ROTATE_SM2_KEY, key, ""))

    assert_reverts(rotate(USCC_B, SM2_KEY_1), accounts[0], "ConsortiumInvalidSm2Key", uscc=USCC_B)  # no reuse
    assert_reverts(rotate(USCC_B, b""), accounts[0], "ConsortiumInvalidSm2Key", uscc=USCC_B)
    assert_reverts(rotate(USCC_C, SM2_KEY_2), accounts[0], "ConsortiumMemberNotFound", uscc=USCC_C)
    assert_reverts(rotate(USCC_B, SM2_KEY_2), accounts[1], "ConsortiumUnauthorized", account=accounts[1],
                   role=Role.ADMIN)
