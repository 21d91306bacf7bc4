"""Agency keys in a real SoftHSM2 token on a real anvil: an admin's key moved into the token through
governance votes the file-backend admins sign; that admin then votes (approves an admission of a new
agency whose key was generated in the token) and, as an issuer, issues and revokes certificates through
the API. Every such transaction is recovered from the chain's raw bytes to the token's account."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account

from api.devtools.samples import sample_values
from chain.contracts import Action, ConsortiumClient, MemberStatus, Role
from registry.consortium.key_backends import KeyBackendKind
from registry.consortium.keys import AgencyAccount, KeyStore
from registry.consortium.members import sync_members
from registry.identifiers import CertificateId
from registry.node import Node
from tests.conftest import MASTER_KEY, make_api
from tests.integration.test_consortium import _valid_new_uscc
from tests.support.softhsm import shared_backend

pytestmark = pytest.mark.anvil
FUNDS = 10**21


@pytest.fixture
def hsm_node(anvil_node: Node) -> Node:
    # the same database and master key, plus the token: file keys keep working, new keys may go to the token
    anvil_node.keys = KeyStore(anvil_node.db, master_key=MASTER_KEY, token=shared_backend())
    return anvil_node


def _signed_by(node: Node, tx_hash: str) -> str:
    raw = node.blocks.raw_transaction(tx_hash)
    assert raw is not None
    return str(Account.recover_transaction(raw))


def _token_key(node: Node, uscc: str, *, active: bool) -> AgencyAccount:
    account = node.keys.create_signing_key(uscc, active=active, backend=KeyBackendKind.PKCS11)
    node.backend.fund(account.address, FUNDS)  # type: ignore[attr-defined]
    return account


def _rotate_into_token(node: Node, uscc: str, proposer: str, approver: str) -> AgencyAccount:
    c = node.consortium
    old = node.keys.signing_account(uscc)
    new = _token_key(node, uscc, active=False)
    data = abi_encode(["address", "address", "string"], [old.address, new.address, node.keys.bid(uscc)])
    pid = c.propose(node.sender_for(proposer), Action.ROTATE_KEY, uscc, data)
    c.approve(node.sender_for(approver), pid)
    c.execute(node.sender_for(proposer), pid)
    node.keys.activate(new.address)
    node.keys.deactivate(old.address)
    return new


def test_governance_vote_issue_and_revoke_signed_through_softhsm2(hsm_node: Node, tmp_path: Path) -> None:
    node = hsm_node
    admins = [m.uscc for m in node.seeds.members if "admin" in m.roles]
    issuer = node.seeds.certificate_types[0].issuers[0]
    voter = issuer if issuer in admins[1:] else admins[1]
    others = [a for a in admins if a != voter]

    # 1. the voter's key moves into the token, approved by two file-backend admins
    moved = _rotate_into_token(node, voter, others[0], others[1])
    assert node.keys.signing_account(voter).address == moved.address
    assert node.consortium.get_member(voter).accounts == (moved.address,)  # type: ignore[union-attr]
    assert [(k.address, k.backend) for k in node.keys.held_keys() if k.uscc == voter and k.active] == [
        (moved.address, KeyBackendKind.PKCS11)]

    # 2. a governance vote signed in the token: admitting an agency whose own key was generated there
    c = node.consortium
    newcomer = _valid_new_uscc()
    newcomer_key = _token_key(node, newcomer, active=True)
    data = ConsortiumClient.admit_data("黑龙江省测试局", node.keys.bid(newcomer), [newcomer_key.address], Role.ISSUER)
    pid = c.propose(node.sender_for(others[0]), Action.ADMIT, newcomer, data)
    vote = c.approve(node.sender_for(voter), pid)
    assert _signed_by(node, vote.tx_hash) == moved.address
    c.execute(node.sender_for(others[0]), pid)
    member = c.get_member(newcomer)
    assert member is not None and member.status == MemberStatus.ACTIVE and member.accounts == (newcomer_key.address,)
    sync_members(node)

    # 3. issue and revoke through the API, as an issuer whose key is in the token
    if issuer != voter:
        _rotate_into_token(node, issuer, others[0], voter)
    issuer_account = node.keys.signing_account(issuer).address
    for api in make_api(node, tmp_path / "api"):
        ct = node.seeds.certificate_types[0]
        docs = sample_values(ct, 2, issuer=node.seeds.member(issuer), seed=11)
        r = api.client.post("/api/v1/certificates/batch?wait=true", json={"type": ct.code, "documents": docs},
                            headers=api.auth(issuer))
        assert r.status_code == 201, r.text
        certs = r.json()["certificates"]
        api.services.index.refresh(force=True)
        verdict = api.client.post("/api/v1/verify", json=certs[0]["document"]).json()
        assert verdict["verdict"] == "valid", verdict
        assert _signed_by(node, verdict["anchor"]["tx_hash"]) == issuer_account

        ident = certs[0]["identifier"]
        assert CertificateId.parse(ident).issuer_uscc == issuer
        revoked = api.client.post(f"/api/v1/certificates/{ident}/revoke", json={"reason": 1},
                                  headers=api.auth(issuer))
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["status"] == "revoked"
        api.services.index.refresh(force=True)
        assert api.client.post("/api/v1/verify", json=certs[0]["document"]).json()["verdict"] == "revoked"
        history = api.client.get(f"/api/v1/certificates/{ident}", headers=api.auth(issuer)).json()["history"]
        assert [e["action"] for e in history] == ["revoke"]
        assert _signed_by(node, history[0]["tx_hash"]) == issuer_account
    # none of these accounts has a private key outside the token
    sealed = {k.address for k in node.keys.held_keys() if k.backend is KeyBackendKind.FILE}
    assert not {moved.address, newcomer_key.address, issuer_account} & sealed
