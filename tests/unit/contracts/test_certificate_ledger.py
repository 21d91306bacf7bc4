"""CertificateLedger: batch anchoring, on-chain RFC 6962 inclusion proofs, per-document status, gas."""

from __future__ import annotations

import pytest

from tests.unit.contracts.conftest import (
    SM3_ROOT,
    USCC_A,
    USCC_B,
    USCC_C,
    USCC_D,
    Action,
    DocStatus,
    Role,
    assert_reverts,
    b32,
    event,
)
from tests.unit.contracts.rfc6962 import inclusion_proof, leaf_hash, merkle_root, node_hash

ZERO32 = b"\0" * 32
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ANCHOR_GAS_LIMIT = 90_000
SHA256_ONLY_STEADY_GAS = 58_270  # anchorBatch(root, count) before the SM3 root (commit 30c37f6), same test


def docs(label: str, n: int) -> list[bytes]:
    return [b32(f"{label}/{i}") for i in range(n)]


class Batch:
    """A batch of document digests with its RFC 6962 root and proofs."""

    def __init__(self, label: str, n: int) -> None:
        self.docs = docs(label, n)
        self.root = merkle_root(self.docs)

    def proof(self, index: int) -> list[bytes]:
        return inclusion_proof(self.docs, index)

    def at(self, index: int) -> tuple[bytes, bytes, int, list[bytes]]:
        """(doc, root, index, proof): the leading arguments of suspend/revoke/supersede."""
        return self.docs[index], self.root, index, self.proof(index)


@pytest.fixture
def world(make_world):
    return make_world()


@pytest.fixture
def ledger(world):
    return world.certificates


@pytest.fixture
def anchored(world, transact):
    """anchored(label, n, issuer=world.b) -> Batch anchored on chain."""

    def make(label: str = "batch", n: int = 8, issuer: str | None = None) -> Batch:
        batch = Batch(label, n)
        transact(world.certificates.functions.anchorBatch(batch.root, SM3_ROOT, n), issuer or world.b)
        return batch

    return make


def state(ledger, doc):
    status, reason, since, root, superseded_by = ledger.functions.documentState(doc).call()
    return {"status": status, "reason": reason, "since": since, "root": root, "supersededBy": superseded_by}


# ---------------------------------------------------------------- the reference tree itself


def test_reference_tree_matches_rfc6962_structure():
    d = docs("ref", 3)
    assert merkle_root(d) == node_hash(node_hash(leaf_hash(d[0]), leaf_hash(d[1])), leaf_hash(d[2]))
    assert inclusion_proof(d, 2) == [node_hash(leaf_hash(d[0]), leaf_hash(d[1]))]
    assert inclusion_proof(d, 0) == [leaf_hash(d[1]), leaf_hash(d[2])]


# ---------------------------------------------------------------- anchoring


def test_anchor_batch_stores_the_batch_and_emits(world, ledger, transact, w3):
    batch = Batch("anchor", 5)
    receipt = transact(ledger.functions.anchorBatch(batch.root, SM3_ROOT, 5), world.b2)
    assert event(receipt, ledger, "BatchAnchored") == {
        "root": batch.root,
        "issuerUscc": USCC_B,
        "issuer": world.b2,
        "sm3Root": SM3_ROOT,
        "count": 5,
    }
    block = w3.eth.get_block(receipt.blockNumber)
    assert ledger.functions.getBatch(batch.root).call() == [world.b2, USCC_B, 5, block.number, block.timestamp,
                                                            SM3_ROOT]
    assert ledger.functions.consortium().call() == world.registry.address


def test_unknown_batch_reads_as_zero(ledger):
    assert ledger.functions.getBatch(b32("nothing")).call() == [ZERO_ADDRESS, ZERO32, 0, 0, 0, ZERO32]


@pytest.mark.parametrize("who", ["outsider", "member without ISSUER_ROLE", "revoker", "auditor"])
def test_anchoring_needs_the_issuer_role(world, ledger, who):
    sender = {"outsider": world.outsider, "member without ISSUER_ROLE": world.d, "revoker": world.c, "auditor": world.e}[who]
    assert_reverts(ledger.functions.anchorBatch(b32("r"), SM3_ROOT, 1), sender, "CertificateLedgerNotIssuer", account=sender)


def test_a_suspended_issuer_cannot_anchor(world, ledger, govern, transact):
    govern(world.registry, Action.SUSPEND, USCC_B, proposer=world.a)
    assert_reverts(ledger.functions.anchorBatch(b32("r"), SM3_ROOT, 1), world.b, "CertificateLedgerNotIssuer", account=world.b)
    govern(world.registry, Action.REINSTATE, USCC_B, proposer=world.a)
    transact(ledger.functions.anchorBatch(b32("r"), SM3_ROOT, 1), world.b)


def test_a_root_is_anchored_once(world, ledger, anchored):
    batch = anchored("dup", 3)
    assert_reverts(ledger.functions.anchorBatch(batch.root, SM3_ROOT, 3), world.b, "CertificateLedgerRootExists", root=batch.root)
    assert_reverts(ledger.functions.anchorBatch(batch.root, SM3_ROOT, 3), world.a, "CertificateLedgerRootExists", root=batch.root)


def test_an_empty_batch_is_refused(world, ledger):
    assert_reverts(ledger.functions.anchorBatch(b32("r"), SM3_ROOT, 0), world.b, "CertificateLedgerInvalidBatch", count=0)


def test_a_batch_without_its_sm3_root_is_refused(world, ledger, transact):
    assert_reverts(ledger.functions.anchorBatch(b32("r"), ZERO32, 3), world.b, "CertificateLedgerMissingSm3Root",
                   root=b32("r"))
    transact(ledger.functions.anchorBatch(b32("r"), SM3_ROOT, 3), world.b)  # the same root with one is anchored


def test_batches_keep_their_own_sm3_roots(world, ledger, transact):
    """The SM3 root belongs to its batch: two batches, two roots, each read back under its SHA-256 root."""
    first, second = Batch("sm3-a", 3), Batch("sm3-b", 4)
    transact(ledger.functions.anchorBatch(first.root, b32("sm3/a"), 3), world.b)
    transact(ledger.functions.anchorBatch(second.root, b32("sm3/b"), 4), world.b)
    assert ledger.functions.getBatch(first.root).call()[5] == b32("sm3/a")
    assert ledger.functions.getBatch(second.root).call()[5] == b32("sm3/b")


def test_batches_keep_their_issuer_after_key_rotation_and_account_reuse(world, ledger, transact, govern, new_account):
    """The issuer table is keyed by (account, USCC): a batch stays attributed to whoever anchored it."""
    old = Batch("before-rotation", 2)
    transact(ledger.functions.anchorBatch(old.root, SM3_ROOT, 2), world.b)
    fresh = new_account()
    govern(world.registry, Action.ROTATE_KEY, USCC_B, world.b, fresh, "", proposer=world.a)
    # the freed account now joins C (an issuer after a role change)
    govern(world.registry, Action.ADD_ACCOUNT, USCC_C, world.b, proposer=world.a)
    govern(world.registry, Action.SET_ROLES, USCC_C, int(Role.ISSUER), proposer=world.a)
    reused = Batch("reused-account", 3)
    transact(ledger.functions.anchorBatch(reused.root, SM3_ROOT, 3), world.b)
    rotated = Batch("after-rotation", 4)
    transact(ledger.functions.anchorBatch(rotated.root, SM3_ROOT, 4), fresh)
    assert ledger.functions.getBatch(old.root).call()[:3] == [world.b, USCC_B, 2]
    assert ledger.functions.getBatch(reused.root).call()[:3] == [world.b, USCC_C, 3]
    assert ledger.functions.getBatch(rotated.root).call()[:3] == [fresh, USCC_B, 4]


# ---------------------------------------------------------------- gas


def test_anchor_batch_gas(world, ledger, transact):
    """Steady state (the issuing account anchored before): two new storage slots (the packed batch record and
    the SM3 root) + one event. Issue 13 allows the SM3 root at most +25 gas per document at batch 1,000 over the
    SHA-256-only anchor, whose steady state was 58,270 gas (measured before the SM3 root was added)."""
    first = transact(ledger.functions.anchorBatch(merkle_root(docs("gas-0", 1000)), b32("sm3/0"), 1000), world.b)
    batch = Batch("gas-1", 1000)
    steady = transact(ledger.functions.anchorBatch(batch.root, b32("sm3/1"), 1000), world.b)
    worst = transact(ledger.functions.anchorBatch(b"\xff" * 32, b"\xff" * 32, 2**32 - 1), world.b)  # no zero calldata
    print(
        f"\nanchorBatch gas: first by an account {first.gasUsed}, steady {steady.gasUsed}, "
        f"worst-case calldata {worst.gasUsed}; {steady.gasUsed / 1000:.1f} gas/doc for 1,000 documents "
        f"(+{(steady.gasUsed - SHA256_ONLY_STEADY_GAS) / 1000:.1f} for the SM3 root)"
    )
    assert steady.gasUsed < ANCHOR_GAS_LIMIT
    assert worst.gasUsed < ANCHOR_GAS_LIMIT
    assert steady.gasUsed / 1000 < 100
    assert (steady.gasUsed - SHA256_ONLY_STEADY_GAS) / 1000 <= 25
    assert first.gasUsed < 175_000  # once per (account, USCC): the issuer table entry


# ---------------------------------------------------------------- inclusion proofs


@pytest.fixture
def verifier(deploy, accounts):
    """A ledger for the pure verifyInclusion view (no consortium needed)."""
    contract, _ = deploy("CertificateLedger", accounts[0])
    return contract.functions.verifyInclusion


@pytest.mark.parametrize("size", range(1, 18))
def test_every_leaf_of_trees_of_size_1_to_17_verifies(verifier, size):
    batch = Batch(f"tree-{size}", size)
    for index in range(size):
        doc, root, _, proof = batch.at(index)
        assert verifier(doc, index, size, proof, root).call() is True, (size, index)
        # the same proof does not prove another position
        assert verifier(doc, (index + 1) % size, size, proof, root).call() is (size == 1), (size, index)
        if proof:  # nor survives a flipped bit
            tampered = [*proof[:-1], bytes([proof[-1][0] ^ 1]) + proof[-1][1:]]
            assert verifier(doc, index, size, tampered, root).call() is False, (size, index)


@pytest.mark.parametrize("size", [1, 2, 5, 16, 17])
def test_inclusion_proofs_bind_document_root_index_and_path_length(verifier, size):
    batch = Batch(f"bind-{size}", size)
    for index in {0, size - 1}:
        doc, root, _, proof = batch.at(index)
        assert verifier(b32("other"), index, size, proof, root).call() is False
        assert verifier(doc, index, size, proof, b32("other root")).call() is False
        assert verifier(doc, size, size, proof, root).call() is False  # index out of range
        assert verifier(doc, index, size, [*proof, b32("extra")], root).call() is False
        if proof:
            assert verifier(doc, index, size, proof[:-1], root).call() is False


def test_a_leaf_hash_passed_as_a_document_does_not_verify(verifier):
    """RFC 6962 domain separation: an interior node cannot be presented as a leaf."""
    batch = Batch("second-preimage", 4)
    inner = node_hash(leaf_hash(batch.docs[0]), leaf_hash(batch.docs[1]))
    right = batch.proof(0)[-1]  # MTH of leaves 2..3
    assert batch.root == node_hash(inner, right)
    assert verifier(inner, 0, 2, [right], batch.root).call() is False


def test_size_zero_verifies_nothing(verifier):
    assert verifier(b32("x"), 0, 0, [], leaf_hash(b32("x"))).call() is False


# ---------------------------------------------------------------- status transitions


def test_suspend_and_reinstate(world, ledger, anchored, transact):
    batch = anchored("s", 6)
    doc, root, index, proof = batch.at(4)
    receipt = transact(ledger.functions.suspend(doc, root, index, proof), world.b)
    assert event(receipt, ledger, "DocumentSuspended") == {"doc": doc, "root": root, "by": world.b}
    assert state(ledger, doc) == {
        "status": DocStatus.SUSPENDED,
        "reason": 0,
        "since": receipt.blockNumber,
        "root": root,
        "supersededBy": ZERO32,
    }
    receipt = transact(ledger.functions.reinstate(doc), world.b2)
    assert event(receipt, ledger, "DocumentReinstated") == {"doc": doc, "root": root, "by": world.b2}
    assert state(ledger, doc) == {
        "status": DocStatus.ISSUED,
        "reason": 0,
        "since": receipt.blockNumber,
        "root": root,
        "supersededBy": ZERO32,
    }


def test_revoke_an_issued_document(world, ledger, anchored, transact):
    batch = anchored("r", 3)
    doc, root, index, proof = batch.at(2)
    receipt = transact(ledger.functions.revoke(doc, root, index, proof, 7), world.b)
    assert event(receipt, ledger, "DocumentRevoked") == {"doc": doc, "root": root, "reason": 7, "by": world.b}
    assert state(ledger, doc) == {
        "status": DocStatus.REVOKED,
        "reason": 7,
        "since": receipt.blockNumber,
        "root": root,
        "supersededBy": ZERO32,
    }


def test_revoke_a_suspended_document(world, ledger, anchored, transact):
    batch = anchored("rs", 3)
    transact(ledger.functions.suspend(*batch.at(1)), world.b)
    # once recorded under its root, no new proof is needed
    receipt = transact(ledger.functions.revoke(batch.docs[1], batch.root, 0, [], 255), world.b)
    assert event(receipt, ledger, "DocumentRevoked")["reason"] == 255
    assert state(ledger, batch.docs[1])["status"] == DocStatus.REVOKED


def test_supersede_links_to_the_corrected_reissue(world, ledger, anchored, transact):
    old = anchored("old", 4)
    new = anchored("new", 2)
    receipt = transact(ledger.functions.supersede(*old.at(3), *new.at(1)), world.b)
    assert event(receipt, ledger, "DocumentSuperseded") == {
        "oldDoc": old.docs[3],
        "newDoc": new.docs[1],
        "root": old.root,
        "by": world.b,
    }
    assert state(ledger, old.docs[3]) == {
        "status": DocStatus.SUPERSEDED,
        "reason": 0,
        "since": receipt.blockNumber,
        "root": old.root,
        "supersededBy": new.docs[1],
    }
    assert state(ledger, new.docs[1])["status"] == DocStatus.ISSUED  # the reissue itself is untouched


def test_supersede_a_suspended_document_within_the_same_batch(world, ledger, anchored, transact):
    batch = anchored("same", 5)
    transact(ledger.functions.suspend(*batch.at(0)), world.b)
    transact(ledger.functions.supersede(*batch.at(0), *batch.at(4)), world.b)
    assert state(ledger, batch.docs[0])["supersededBy"] == batch.docs[4]


def test_invalid_transitions_are_refused(world, ledger, anchored, transact):
    batch = anchored("t", 8)
    other = anchored("t-other", 2)
    suspended, revoked, superseded, issued = (batch.at(i) for i in range(4))
    transact(ledger.functions.suspend(*suspended), world.b)
    transact(ledger.functions.revoke(*revoked, 1), world.b)
    transact(ledger.functions.supersede(*superseded, *other.at(0)), world.b)
    f = ledger.functions

    def refused(call, doc, frm, to):
        assert_reverts(call, world.b, "CertificateLedgerInvalidTransition", doc=doc, **{"from": frm, "to": to})

    S, R, X, ISS = DocStatus.SUSPENDED, DocStatus.REVOKED, DocStatus.SUPERSEDED, DocStatus.ISSUED
    refused(f.suspend(*suspended), suspended[0], S, S)
    refused(f.suspend(*revoked), revoked[0], R, S)
    refused(f.suspend(*superseded), superseded[0], X, S)
    refused(f.reinstate(revoked[0]), revoked[0], R, ISS)
    refused(f.reinstate(superseded[0]), superseded[0], X, ISS)
    refused(f.revoke(*revoked, 2), revoked[0], R, R)
    refused(f.revoke(*superseded, 2), superseded[0], X, R)
    refused(f.supersede(*revoked, *other.at(1)), revoked[0], R, X)
    refused(f.supersede(*superseded, *other.at(1)), superseded[0], X, X)
    refused(f.supersede(*issued, *issued), issued[0], ISS, X)  # a document cannot supersede itself
    # reinstating a document that is recorded but not suspended
    transact(f.suspend(*issued), world.b)
    transact(f.reinstate(issued[0]), world.b)
    refused(f.reinstate(issued[0]), issued[0], ISS, ISS)


def test_reinstating_an_unknown_document_is_refused(world, ledger, anchored):
    batch = anchored("u", 2)
    assert_reverts(ledger.functions.reinstate(batch.docs[0]), world.b, "CertificateLedgerUnknownDocument", doc=batch.docs[0])


def test_reason_zero_is_refused(world, ledger, anchored):
    batch = anchored("z", 2)
    assert_reverts(ledger.functions.revoke(*batch.at(0), 0), world.b, "CertificateLedgerInvalidReason", reason=0)


def test_unknown_roots_are_refused(world, ledger, anchored):
    batch = anchored("k", 2)
    ghost = Batch("never-anchored", 2)
    f = ledger.functions
    for call in (f.suspend(*ghost.at(0)), f.revoke(*ghost.at(0), 1), f.supersede(*ghost.at(0), *batch.at(1))):
        assert_reverts(call, world.b, "CertificateLedgerUnknownRoot", root=ghost.root)
    assert_reverts(f.supersede(*batch.at(0), *ghost.at(1)), world.b, "CertificateLedgerUnknownRoot", root=ghost.root)


# ---------------------------------------------------------------- proofs on the write path


def test_a_wrong_proof_is_refused(world, ledger, anchored):
    batch = anchored("p", 7)
    doc, root, index, proof = batch.at(3)
    f = ledger.functions
    bad = {"doc": doc, "root": root}
    assert_reverts(f.suspend(doc, root, index + 1, proof), world.b, "CertificateLedgerInvalidProof", **bad)
    assert_reverts(f.suspend(doc, root, index, proof[:-1]), world.b, "CertificateLedgerInvalidProof", **bad)
    assert_reverts(f.revoke(doc, root, index, list(reversed(proof)), 1), world.b, "CertificateLedgerInvalidProof", **bad)
    stranger = b32("not in the batch")
    assert_reverts(f.revoke(stranger, root, index, proof, 1), world.b, "CertificateLedgerInvalidProof", doc=stranger, root=root)
    assert_reverts(f.suspend(doc, root, 7, proof), world.b, "CertificateLedgerInvalidProof", **bad)


def test_supersede_needs_a_valid_proof_of_the_new_document(world, ledger, anchored):
    old = anchored("o", 2)
    new = anchored("n", 3)
    new_doc, new_root, _, new_proof = new.at(2)
    assert_reverts(
        ledger.functions.supersede(*old.at(0), new_doc, new_root, 1, new_proof),
        world.b,
        "CertificateLedgerInvalidProof",
        doc=new_doc,
        root=new_root,
    )
    assert state(ledger, old.docs[0])["status"] == DocStatus.ISSUED


def test_a_document_known_under_another_root_is_refused(world, ledger, transact):
    shared = b32("shared document")
    first = [shared, b32("x1")]
    second = [b32("y1"), shared, b32("y2")]
    r1, r2 = merkle_root(first), merkle_root(second)
    transact(ledger.functions.anchorBatch(r1, SM3_ROOT, 2), world.b)
    transact(ledger.functions.anchorBatch(r2, SM3_ROOT, 3), world.b)
    transact(ledger.functions.suspend(shared, r1, 0, inclusion_proof(first, 0)), world.b)
    assert_reverts(
        ledger.functions.revoke(shared, r2, 1, inclusion_proof(second, 1), 1),
        world.b,
        "CertificateLedgerInvalidProof",
        doc=shared,
        root=r2,
    )
    # and as a replacement recorded elsewhere
    old = [b32("old doc")]
    r3 = merkle_root(old)
    transact(ledger.functions.anchorBatch(r3, SM3_ROOT, 1), world.b)
    assert_reverts(
        ledger.functions.supersede(old[0], r3, 0, [], shared, r2, 1, inclusion_proof(second, 1)),
        world.b,
        "CertificateLedgerInvalidProof",
        doc=shared,
        root=r2,
    )


# ---------------------------------------------------------------- who may change a status


def test_another_agency_cannot_revoke_suspend_reinstate_or_supersede(world, ledger, anchored, transact):
    batch = anchored("cross", 4)
    own = anchored("own-a", 2, issuer=world.a)
    f = ledger.functions
    for sender in (world.a, world.c, world.d, world.outsider):
        refused = {"account": sender, "issuerUscc": USCC_B}
        assert_reverts(f.revoke(*batch.at(0), 1), sender, "CertificateLedgerUnauthorized", **refused)
        assert_reverts(f.suspend(*batch.at(0)), sender, "CertificateLedgerUnauthorized", **refused)
        assert_reverts(f.supersede(*batch.at(0), *batch.at(1)), sender, "CertificateLedgerUnauthorized", **refused)
    transact(f.suspend(*batch.at(2)), world.b)
    assert_reverts(f.reinstate(batch.docs[2]), world.a, "CertificateLedgerUnauthorized", account=world.a, issuerUscc=USCC_B)
    # an issuer cannot point its document at another issuer's batch
    assert_reverts(
        f.supersede(*batch.at(0), *own.at(0)), world.b, "CertificateLedgerUnauthorized", account=world.b, issuerUscc=USCC_A
    )
    assert state(ledger, batch.docs[0])["status"] == DocStatus.ISSUED


def test_a_delegated_revoker_may_act_until_the_delegation_is_withdrawn(world, ledger, anchored, transact):
    batch = anchored("delegated", 4)
    transact(world.registry.functions.setRevokerDelegate(USCC_C, True), world.b)
    f = ledger.functions
    receipt = transact(f.suspend(*batch.at(0)), world.c)
    assert event(receipt, ledger, "DocumentSuspended")["by"] == world.c
    transact(f.reinstate(batch.docs[0]), world.c)
    transact(f.revoke(*batch.at(1), 3), world.c)
    transact(f.supersede(*batch.at(2), *batch.at(3)), world.c)
    transact(world.registry.functions.setRevokerDelegate(USCC_C, False), world.b)
    assert_reverts(f.revoke(*batch.at(0), 1), world.c, "CertificateLedgerUnauthorized", account=world.c, issuerUscc=USCC_B)


def test_a_delegate_without_the_revoker_role_is_refused(world, ledger, anchored, transact):
    batch = anchored("no-revoker", 2)
    transact(world.registry.functions.setRevokerDelegate(USCC_D, True), world.b)
    assert_reverts(
        ledger.functions.revoke(*batch.at(0), 1), world.d, "CertificateLedgerUnauthorized", account=world.d, issuerUscc=USCC_B
    )


def test_a_suspended_issuer_cannot_revoke_its_own_documents(world, ledger, anchored, govern):
    batch = anchored("suspended-issuer", 2)
    govern(world.registry, Action.SUSPEND, USCC_B, proposer=world.a)
    assert_reverts(
        ledger.functions.revoke(*batch.at(0), 1), world.b, "CertificateLedgerUnauthorized", account=world.b, issuerUscc=USCC_B
    )


# ---------------------------------------------------------------- a large batch


def test_revoking_one_document_of_a_1000_document_batch_leaves_the_others_untouched(world, ledger, transact):
    batch = Batch("big", 1000)
    transact(ledger.functions.anchorBatch(batch.root, SM3_ROOT, 1000), world.b)
    transact(ledger.functions.revoke(*batch.at(617), 4), world.b)
    assert state(ledger, batch.docs[617])["status"] == DocStatus.REVOKED
    for index in (0, 616, 618, 999):
        assert state(ledger, batch.docs[index]) == {
            "status": DocStatus.ISSUED,
            "reason": 0,
            "since": 0,
            "root": ZERO32,
            "supersededBy": ZERO32,
        }
        doc, root, _, proof = batch.at(index)
        assert ledger.functions.verifyInclusion(doc, index, 1000, proof, root).call() is True
    # a neighbour can still be acted on independently
    transact(ledger.functions.suspend(*batch.at(618)), world.b)
    assert state(ledger, batch.docs[618])["status"] == DocStatus.SUSPENDED
    assert state(ledger, batch.docs[617])["status"] == DocStatus.REVOKED
