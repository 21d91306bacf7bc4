"""The permissioned core through the Python clients, on eth-tester and on a real anvil (parametrised)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from chain.contracts import Action, ConsortiumClient, MemberStatus, Role, unpad
from chain.errors import ContractRevertError
from registry.consortium.members import admit_seed_members, list_members, resolve, sync_members
from registry.errors import NotFoundError, ValidationError
from registry.identifiers import bid_from_private_key, bid_from_sm2_public_key, parse_bid
from registry.node import Node
from registry.store.db import Database, Member

NEW_USCC = "11230000MB1A0010XX"  # replaced below by a valid one


def _valid_new_uscc() -> str:
    from stdnum.cn import uscc

    body = "11230000MB1A0099"
    for c in "0123456789ABCDEFGHJKLMNPQRTUWXY":
        candidate = body + c
        try:
            return uscc.validate(candidate + uscc.calc_check_digit(candidate))
        except Exception:
            continue
    raise AssertionError("no valid USCC")


def _admins(node: Node) -> list[str]:
    return [m.uscc for m in node.seeds.members if "admin" in m.roles]


def test_every_seed_agency_is_an_active_member_with_its_roles(chain_node: Node) -> None:
    members = {m.uscc: m for m in chain_node.consortium.members()}
    assert set(members) == {m.uscc for m in chain_node.seeds.members}
    for seed in chain_node.seeds.members:
        info = members[seed.uscc]
        assert info.status == MemberStatus.ACTIVE
        assert info.roles == Role.from_names(seed.roles)
        assert info.accounts == (chain_node.keys.signing_account(seed.uscc).address,)
        # the gm profile (the default): the BID is the SM2 key's (type z), and the chain holds that key
        sm2_key = chain_node.keys.sm2_public_key(seed.uscc)
        assert info.bid == bid_from_sm2_public_key(sm2_key) and parse_bid(info.bid).crypto == "z"
        assert info.sm2_key == sm2_key


def test_members_read_in_batches_equal_one_get_member_per_member(chain_node: Node) -> None:
    consortium = chain_node.consortium
    count = int(consortium._call("memberCount"))
    usccs = [unpad(consortium._call("memberAt", i)) for i in range(count)]
    assert consortium.members() == [consortium.get_member(uscc) for uscc in usccs]
    # a call the batch answers with an error is made again alone: it raises what `_call` raises
    head = chain_node.blocks.head()
    with pytest.raises(Exception) as alone:
        consortium._call("memberAt", count, block=head)
    with pytest.raises(type(alone.value)):
        consortium._calls([("memberCount", ()), ("memberAt", (count,))], block=head)
    assert consortium._calls([("memberCount", ()), ("memberAt", (0,))], block=head) == [
        count, consortium._call("memberAt", 0, block=head)]


def test_seeding_twice_admits_nobody_new(chain_node: Node) -> None:
    assert admit_seed_members(chain_node) == []


def test_resolution_round_trips_bid_uscc_and_account(chain_node: Node) -> None:
    for view in list_members(chain_node)[:3]:
        for query in (view.bid, view.uscc, view.accounts[0], view.accounts[0].lower()):
            kind, found = resolve(chain_node, query)
            assert found.uscc == view.uscc
            assert kind in {"bid", "uscc", "address"}


def test_resolution_refuses_malformed_and_unknown_identifiers(chain_node: Node) -> None:
    with pytest.raises(ValidationError):
        resolve(chain_node, "0x1234")
    with pytest.raises(ValidationError, match="check"):
        resolve(chain_node, "11230000MB1A0001X0")  # wrong check character
    with pytest.raises(NotFoundError):
        resolve(chain_node, "0x" + "11" * 20)


def test_admitting_a_member_needs_two_admin_approvals(chain_node: Node) -> None:
    c = chain_node.consortium
    admins = _admins(chain_node)
    assert c.required_approvals() == min(chain_node.seeds.threshold, len(admins))
    new = _valid_new_uscc()
    account = chain_node.keys.create_signing_key(new)
    data = ConsortiumClient.admit_data("黑龙江省测试局", bid_from_private_key(bytes(account.key)), [account.address],
                                       Role.ISSUER)
    pid = c.propose(chain_node.sender_for(admins[0]), Action.ADMIT, new, data)
    with pytest.raises(ContractRevertError, match="ConsortiumInsufficientApprovals"):
        c.execute(chain_node.sender_for(admins[0]), pid)
    with pytest.raises(ContractRevertError, match="ConsortiumAlreadyApproved"):
        c.approve(chain_node.sender_for(admins[0]), pid)
    c.approve(chain_node.sender_for(admins[1]), pid)
    c.execute(chain_node.sender_for(admins[1]), pid)
    assert c.get_member(new).status == MemberStatus.ACTIVE
    with pytest.raises(ContractRevertError, match="ConsortiumProposalAlreadyExecuted"):
        c.execute(chain_node.sender_for(admins[1]), pid)
    sync_members(chain_node)
    assert resolve(chain_node, account.address)[1].uscc == new


def test_a_member_another_process_mirrors_meanwhile_is_updated_not_refused(chain_node: Node) -> None:
    # The API process's inbox and the command that admitted a member both mirror it, each in its own process:
    # here a second connection (the other process) inserts the member's row after this mirror read the table and
    # before it writes. The mirror must then update that row, not fail on the member's keys.
    member = next(m for m in chain_node.seeds.members if "admin" not in m.roles)
    with chain_node.db.session() as s:
        s.execute(delete(Member).where(Member.uscc == member.uscc))  # a node that has not mirrored it yet
    info = chain_node.consortium.get_member(member.uscc)
    other = Database(chain_node.db.url)
    inserted: list[str] = []

    def meanwhile(session: Session, *_: object) -> None:  # this mirror is about to insert the row it did not find
        if inserted or not any(isinstance(o, Member) and o.uscc == member.uscc for o in session.new):
            return
        inserted.append(member.uscc)
        with other.session() as s2:
            s2.add(Member(uscc=member.uscc, name="stale", bid=info.bid, roles=0, status=int(info.status),
                          accounts=[], admitted_block=0))

    event.listen(Session, "before_flush", meanwhile)
    try:
        sync_members(chain_node)
    finally:
        event.remove(Session, "before_flush", meanwhile)
        other.close()
    assert inserted == [member.uscc]  # the other process did write first
    with chain_node.db.session() as s:
        rows = s.scalars(select(Member).where(Member.bid == info.bid)).all()
        assert [(r.uscc, r.name, r.roles) for r in rows] == [(member.uscc, info.name, int(info.roles))]


def test_a_non_admin_cannot_propose_and_nothing_changes(chain_node: Node) -> None:
    c = chain_node.consortium
    outsider = next(m.uscc for m in chain_node.seeds.members if "admin" not in m.roles)
    before = c.contract.functions.proposalCount().call()
    with pytest.raises(ContractRevertError) as info:
        c.propose(chain_node.sender_for(outsider), Action.SUSPEND, chain_node.seeds.genesis.uscc)
    assert info.value.name == "ConsortiumUnauthorized"
    assert info.value.args_by_name["account"] == chain_node.sender_for(outsider).address
    assert c.contract.functions.proposalCount().call() == before


def test_suspending_a_member_removes_its_roles_until_reinstated(chain_node: Node) -> None:
    c = chain_node.consortium
    admins = _admins(chain_node)
    target = next(m for m in chain_node.seeds.members if "issuer" in m.roles and "admin" not in m.roles)
    account = chain_node.keys.signing_account(target.uscc).address
    assert c.has_role(account, Role.ISSUER)
    for action in (Action.SUSPEND, Action.REINSTATE):
        pid = c.propose(chain_node.sender_for(admins[0]), action, target.uscc)
        c.approve(chain_node.sender_for(admins[1]), pid)
        c.execute(chain_node.sender_for(admins[0]), pid)
        assert c.has_role(account, Role.ISSUER) is (action == Action.REINSTATE)


def _advance_time(node: Node, seconds: int) -> None:
    from chain.backends import EthTesterBackend

    backend = node.backend
    if isinstance(backend, EthTesterBackend):
        now = backend.w3.eth.get_block("latest")["timestamp"]
        backend.time_travel(now + seconds)
    else:
        backend.raw("evm_increaseTime", [seconds])  # type: ignore[attr-defined]
        backend.raw("evm_mine", [])  # type: ignore[attr-defined]


def test_an_expired_proposal_cannot_be_executed(chain_node: Node) -> None:
    c = chain_node.consortium
    admins = _admins(chain_node)
    target = next(m for m in chain_node.seeds.members if "admin" not in m.roles)
    pid = c.propose(chain_node.sender_for(admins[0]), Action.SUSPEND, target.uscc)
    c.approve(chain_node.sender_for(admins[1]), pid)
    _advance_time(chain_node, chain_node.seeds.proposal_ttl_seconds + 60)
    with pytest.raises(ContractRevertError, match="ConsortiumProposalExpired"):
        c.execute(chain_node.sender_for(admins[0]), pid)
    assert c.get_member(target.uscc).status == MemberStatus.ACTIVE
