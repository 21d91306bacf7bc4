"""RFC 6962 / 9162 Merkle trees: known vectors, a recursive reference implementation written straight from
RFC 6962 §2.1, and properties (every proof verifies, every tampered proof fails)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from registry.crypto import merkle
from registry.crypto.hashing import hash_function
from registry.errors import ValidationError

# --- the reference: RFC 6962 §2.1 as written (recursive, split at the largest power of two < n) -------


def ref_mth(entries: list[bytes], algorithm: str = "sha256") -> bytes:
    h = hash_function(algorithm)
    n = len(entries)
    if n == 0:
        return h(b"")
    if n == 1:
        return h(b"\x00" + entries[0])
    k = 1 << ((n - 1).bit_length() - 1)
    return h(b"\x01" + ref_mth(entries[:k], algorithm) + ref_mth(entries[k:], algorithm))


def ref_path(m: int, entries: list[bytes], algorithm: str = "sha256") -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return ref_path(m, entries[:k], algorithm) + [ref_mth(entries[k:], algorithm)]
    return ref_path(m - k, entries[k:], algorithm) + [ref_mth(entries[:k], algorithm)]


def ref_subproof(m: int, entries: list[bytes], b: bool, algorithm: str = "sha256") -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if b else [ref_mth(entries, algorithm)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return ref_subproof(m, entries[:k], b, algorithm) + [ref_mth(entries[k:], algorithm)]
    return ref_subproof(m - k, entries[k:], False, algorithm) + [ref_mth(entries[:k], algorithm)]


def ref_proof(m: int, entries: list[bytes], algorithm: str = "sha256") -> list[bytes]:
    return ref_subproof(m, entries, True, algorithm)


entries_st = st.lists(st.binary(max_size=12), max_size=70)
nonempty_entries_st = st.lists(st.binary(max_size=12), min_size=1, max_size=70)
algorithms = st.sampled_from(["sha256", "sm3"])

# --- known vectors: the certificate-transparency test tree (RFC 6962 reference tests) ------------------

CT_LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
             bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


@pytest.mark.parametrize("size", range(len(CT_ROOTS)))
def test_root_matches_the_certificate_transparency_test_tree(size: int) -> None:
    assert merkle.merkle_root(CT_LEAVES[:size]).hex() == CT_ROOTS[size]


def test_inclusion_proof_matches_the_certificate_transparency_vector() -> None:
    proof = merkle.inclusion_proof(CT_LEAVES, 0)
    assert [p.hex() for p in proof] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]


@pytest.mark.parametrize(("old", "new", "expected"), [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
])
def test_consistency_proof_matches_the_certificate_transparency_vectors(old: int, new: int,
                                                                       expected: list[str]) -> None:
    proof = merkle.consistency_proof(CT_LEAVES[:new], old)
    assert [p.hex() for p in proof] == expected
    assert merkle.verify_consistency(old, new, bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new]), proof)


def test_leaf_and_node_hashes_use_the_domain_separation_prefixes() -> None:
    assert merkle.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    a, b = b"a" * 32, b"b" * 32
    assert merkle.node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert merkle.empty_root(algorithm="sm3") == hash_function("sm3")(b"")


# --- equivalence with the reference ---------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(entries_st, algorithms)
def test_level_by_level_root_equals_the_recursive_rfc_definition(entries: list[bytes], algorithm: str) -> None:
    assert merkle.merkle_root(entries, algorithm=algorithm) == ref_mth(entries, algorithm)


@settings(max_examples=100, deadline=None)
@given(nonempty_entries_st, algorithms, st.data())
def test_inclusion_proof_equals_the_rfc_path_and_verifies(entries: list[bytes], algorithm: str,
                                                          data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(entries) - 1))
    proof = merkle.inclusion_proof(entries, index, algorithm=algorithm)
    assert proof == ref_path(index, entries, algorithm)
    root = merkle.merkle_root(entries, algorithm=algorithm)
    assert merkle.verify_inclusion(entries[index], index, len(entries), proof, root, algorithm=algorithm)


@settings(max_examples=100, deadline=None)
@given(nonempty_entries_st, algorithms, st.data())
def test_consistency_proof_equals_the_rfc_proof_and_verifies(entries: list[bytes], algorithm: str,
                                                             data: st.DataObject) -> None:
    old = data.draw(st.integers(0, len(entries)))
    proof = merkle.consistency_proof(entries, old, algorithm=algorithm)
    if 0 < old < len(entries):
        assert proof == ref_proof(old, entries, algorithm)
    else:
        assert proof == []
    assert merkle.verify_consistency(old, len(entries), ref_mth(entries[:old], algorithm),
                                     ref_mth(entries, algorithm), proof, algorithm=algorithm)


def test_every_leaf_and_every_prefix_of_trees_up_to_40_leaves_verifies() -> None:
    for n in range(1, 41):
        entries = [i.to_bytes(2, "big") for i in range(n)]
        hashes = [merkle.leaf_hash(e) for e in entries]
        tree = merkle.MerkleTree(hashes)
        assert tree.root == ref_mth(entries)
        proofs = merkle.all_inclusion_proofs(hashes)
        for i in range(n):
            assert proofs[i] == tree.inclusion_proof(i) == ref_path(i, entries)
            assert merkle.verify_inclusion_leaf_hash(hashes[i], i, n, proofs[i], tree.root)
        for m in range(n + 1):
            proof = tree.consistency_proof(m)
            assert merkle.verify_consistency(m, n, ref_mth(entries[:m]), tree.root, proof), (m, n)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=300))
def test_all_inclusion_proofs_equal_the_individual_proofs(hashes: list[bytes]) -> None:
    proofs = merkle.all_inclusion_proofs(hashes)
    root = merkle.root_from_leaf_hashes(hashes)
    assert len(proofs) == len(hashes)
    for i in {0, len(hashes) // 2, len(hashes) - 1}:
        assert proofs[i] == merkle.inclusion_proof_from_leaf_hashes(hashes, i)
    assert all(merkle.verify_inclusion_leaf_hash(h, i, len(hashes), p, root)
               for i, (h, p) in enumerate(zip(hashes, proofs, strict=True)))


def test_sha256_and_sm3_trees_differ() -> None:
    assert merkle.merkle_root([b"a", b"b"]) != merkle.merkle_root([b"a", b"b"], algorithm="sm3")


def test_consistency_proof_from_leaf_hashes_matches_entries() -> None:
    entries = [bytes([i]) for i in range(11)]
    hashes = [merkle.leaf_hash(e) for e in entries]
    assert merkle.consistency_proof_from_leaf_hashes(hashes, 7) == merkle.consistency_proof(entries, 7)


# --- tampering and malformed input ------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=2, max_size=40), st.data())
def test_a_tampered_inclusion_proof_fails(entries: list[bytes], data: st.DataObject) -> None:
    n = len(entries)
    index = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(entries, index)
    root = merkle.merkle_root(entries)
    which = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    bad = list(proof)
    bad[which] = bytes(b ^ (1 << (bit % 8)) if j == bit // 8 else b for j, b in enumerate(bad[which]))
    assert not merkle.verify_inclusion(entries[index], index, n, bad, root)
    assert not merkle.verify_inclusion(entries[index], index, n, proof[:-1], root)
    assert not merkle.verify_inclusion(entries[index], index, n, [*proof, proof[0]], root)
    assert not merkle.verify_inclusion(entries[index] + b"!", index, n, proof, root)
    other = data.draw(st.integers(0, n - 1))
    assume(other != index and entries[other] != entries[index])
    assert not merkle.verify_inclusion(entries[index], other, n, proof, root)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=3, max_size=40), st.data())
def test_a_tampered_consistency_proof_fails(entries: list[bytes], data: st.DataObject) -> None:
    n = len(entries)
    old = data.draw(st.integers(1, n - 1))
    proof = merkle.consistency_proof(entries, old)
    old_root, new_root = merkle.merkle_root(entries[:old]), merkle.merkle_root(entries)
    which = data.draw(st.integers(0, len(proof) - 1))
    bad = list(proof)
    bad[which] = bytes([bad[which][0] ^ 1]) + bad[which][1:]
    assert not merkle.verify_consistency(old, n, old_root, new_root, bad)
    assert not merkle.verify_consistency(old, n, old_root, new_root, proof[:-1])
    assert not merkle.verify_consistency(old, n, new_root, old_root, proof)
    changed = [*entries[: old - 1], entries[old - 1] + b"x", *entries[old:]]
    assert not merkle.verify_consistency(old, n, merkle.merkle_root(changed[:old]), new_root, proof)


@pytest.mark.parametrize("args", [
    (b"a", 3, 3),          # index == size
    (b"a", 5, 3),          # index > size
    (b"a", -1, 3),         # negative index
    (b"a", True, 3),       # bool is not an index
    (b"a", 0, 0),          # empty tree
    (b"a", 0, "3"),        # size of the wrong type
    ("a", 0, 3),           # entry not bytes
])
def test_verify_inclusion_returns_false_on_malformed_input(args: tuple[object, object, object]) -> None:
    entries = [b"a", b"b", b"c"]
    proof, root = merkle.inclusion_proof(entries, 0), merkle.merkle_root(entries)
    entry, index, size = args
    assert merkle.verify_inclusion(entry, index, size, proof, root) is False  # type: ignore[arg-type]


def test_verify_functions_return_false_on_wrong_lengths_and_types() -> None:
    entries = [b"a", b"b", b"c"]
    proof, root = merkle.inclusion_proof(entries, 1), merkle.merkle_root(entries)
    assert merkle.verify_inclusion(b"b", 1, 3, proof, root)
    assert not merkle.verify_inclusion(b"b", 1, 3, [proof[0][:31], proof[1]], root)
    assert not merkle.verify_inclusion(b"b", 1, 3, proof, root[:16])
    assert not merkle.verify_inclusion(b"b", 1, 3, "not a list", root)  # type: ignore[arg-type]
    assert not merkle.verify_inclusion(b"b", 1, 3, [None, None], root)  # type: ignore[list-item]
    assert not merkle.verify_inclusion_leaf_hash(b"short", 1, 3, proof, root)
    old = merkle.merkle_root(entries[:2])
    cproof = merkle.consistency_proof(entries, 2)
    assert merkle.verify_consistency(2, 3, old, root, cproof)
    assert not merkle.verify_consistency(3, 2, old, root, cproof)
    assert not merkle.verify_consistency(-1, 3, old, root, cproof)
    assert not merkle.verify_consistency(2, 3, old[:5], root, cproof)
    assert not merkle.verify_consistency(2, 3, old, root, [])
    assert not merkle.verify_consistency(2, 3, old, root, [b"x" * 31])
    assert not merkle.verify_consistency(2, 2.0, old, root, cproof)  # type: ignore[arg-type]


def test_consistency_edge_cases_need_empty_proofs() -> None:
    entries = [b"a", b"b", b"c"]
    root = merkle.merkle_root(entries)
    empty = merkle.empty_root()
    assert merkle.verify_consistency(3, 3, root, root, [])
    assert not merkle.verify_consistency(3, 3, root, root, [root])
    assert not merkle.verify_consistency(3, 3, root, empty, [])
    assert merkle.verify_consistency(0, 3, empty, root, [])
    assert not merkle.verify_consistency(0, 3, root, root, [])
    assert merkle.verify_consistency(0, 0, empty, empty, [])


def test_proof_generation_refuses_out_of_range_arguments() -> None:
    with pytest.raises(ValidationError, match=r"expected 0 <= index < 3, got 3"):
        merkle.inclusion_proof([b"a", b"b", b"c"], 3)
    with pytest.raises(ValidationError, match="between 0 and 3"):
        merkle.consistency_proof([b"a", b"b", b"c"], 4)
    with pytest.raises(ValidationError, match="expected 0 <= index < 0"):
        merkle.inclusion_proof([], 0)
    with pytest.raises(ValidationError, match="leaf hash 1 must be 32 bytes, got 3 bytes"):
        merkle.root_from_leaf_hashes([b"x" * 32, b"abc"])


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValidationError, match="expected one of sha256, sm3, got 'md5'") as info:
        merkle.merkle_root([b"a"], algorithm="md5")
    assert info.value.code == "unsupported_algorithm"
