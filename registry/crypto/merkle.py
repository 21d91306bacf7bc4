"""Merkle trees exactly as RFC 6962 §2.1 / RFC 9162 §2.1 define them, over SHA-256 or SM3.

- leaf hash  = H(0x00 || entry), interior node = H(0x01 || left || right) (RFC 9162 §2.1.1: the distinct
  prefixes stop a leaf from being passed off as an interior node, a second-preimage attack);
- a tree of n > 1 leaves splits at k, the largest power of two strictly below n;
- the empty tree's root is H("") (RFC 6962 §2.1).

The split-at-a-power-of-two tree is the same tree one gets by hashing level by level, pairing nodes left
to right and promoting an unpaired last node unchanged to the next level. This module computes it that
way (iteratively, with the hash constructor bound to a local), which takes about a second for a million
leaves in CPython. `MerkleTree` keeps every level so that many proofs over one tree are cheap, and
`all_inclusion_proofs` builds the audit path of every leaf of a batch at once.

Verification follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) and never raises on
malformed input: a wrong index, size or length simply does not verify.

>>> entries = [b"a", b"b", b"c"]
>>> root = merkle_root(entries)
>>> proof = inclusion_proof(entries, 2)
>>> verify_inclusion(b"c", 2, 3, proof, root)
True
>>> old = merkle_root(entries[:2])
>>> verify_consistency(2, 3, old, root, consistency_proof(entries, 2))
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from registry.crypto.hashing import DIGEST_SIZE, HashObject, hash_constructor
from registry.errors import ValidationError

__all__ = [
    "MerkleTree",
    "all_inclusion_proofs",
    "consistency_proof",
    "consistency_proof_from_leaf_hashes",
    "empty_root",
    "inclusion_proof",
    "inclusion_proof_from_leaf_hashes",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_from_audit_path",
    "root_from_leaf_hashes",
    "root_of_hashed_leaves",
    "verify_consistency",
    "verify_inclusion",
    "verify_inclusion_leaf_hash",
]

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

_Ctor = Callable[[bytes], HashObject]


# --- hashing primitives -------------------------------------------------------------------------------


def leaf_hash(entry: bytes, *, algorithm: str = "sha256") -> bytes:
    """RFC 6962 §2.1: MTH({d}) = H(0x00 || d)."""
    return hash_constructor(algorithm)(_LEAF_PREFIX + bytes(entry)).digest()


def node_hash(left: bytes, right: bytes, *, algorithm: str = "sha256") -> bytes:
    """RFC 6962 §2.1: interior node = H(0x01 || left || right)."""
    return hash_constructor(algorithm)(_NODE_PREFIX + left + right).digest()


def empty_root(*, algorithm: str = "sha256") -> bytes:
    """RFC 6962 §2.1: the hash of an empty list is the hash of an empty string."""
    return hash_constructor(algorithm)(b"").digest()


def _leaf_hashes(entries: Iterable[bytes], ctor: _Ctor) -> list[bytes]:
    return [ctor(_LEAF_PREFIX + bytes(e)).digest() for e in entries]


def _next_level(level: Sequence[bytes], ctor: _Ctor) -> list[bytes]:
    # Pair neighbours left to right; an unpaired last node is promoted unchanged. This is exactly the
    # RFC 6962 split at the largest power of two (the left subtree is always complete).
    pairs = iter(level)
    nxt = [ctor(_NODE_PREFIX + a + b).digest() for a, b in zip(pairs, pairs, strict=False)]
    if len(level) & 1:
        nxt.append(level[-1])
    return nxt


def _check_leaf_hashes(hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(hashes):
        if not isinstance(h, (bytes, bytearray)) or len(h) != DIGEST_SIZE:
            found = f"{len(h)} bytes" if isinstance(h, (bytes, bytearray)) else type(h).__name__
            raise ValidationError(
                f"leaf hash {i} must be {DIGEST_SIZE} bytes, got {found}",
                code="invalid_leaf_hash",
                details={"index": i},
            )


# --- a tree with all its levels ----------------------------------------------------------------------


class MerkleTree:
    """All levels of the RFC 6962 tree over ``leaf_hashes``; cheap repeated proofs.

    ``levels[0]`` are the leaf hashes, ``levels[-1] == [root]``. Node ``levels[j][i]`` is MTH of leaves
    ``[i * 2**j, min((i + 1) * 2**j, size))`` — every subtree RFC 6962's recursion visits is such a node.
    """

    __slots__ = ("algorithm", "levels", "size")

    def __init__(self, leaf_hashes: Sequence[bytes], *, algorithm: str = "sha256") -> None:
        ctor = hash_constructor(algorithm)
        leaves = list(leaf_hashes)
        _check_leaf_hashes(leaves)
        self.algorithm = algorithm
        self.size = len(leaves)
        levels: list[list[bytes]] = [leaves]
        while len(levels[-1]) > 1:
            levels.append(_next_level(levels[-1], ctor))
        self.levels = levels

    @classmethod
    def from_entries(cls, entries: Iterable[bytes], *, algorithm: str = "sha256") -> MerkleTree:
        return cls(_leaf_hashes(entries, hash_constructor(algorithm)), algorithm=algorithm)

    @property
    def root(self) -> bytes:
        if self.size == 0:
            return empty_root(algorithm=self.algorithm)
        return self.levels[-1][0]

    def _node(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a range that is a node of this tree (lo aligned to the next power of two)."""
        j = (hi - lo - 1).bit_length()  # smallest j with 2**j >= hi - lo
        return self.levels[j][lo >> j]

    def inclusion_proof(self, index: int) -> list[bytes]:
        """RFC 6962 §2.1.1 audit path PATH(index, D[n]), leaf side first."""
        _check_index(index, self.size)
        proof: list[bytes] = []
        i = index
        for level in self.levels[:-1]:
            sibling = i ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            # else: i is the promoted last node of an odd level, no sibling at this height
            i >>= 1
        return proof

    def all_inclusion_proofs(self) -> list[list[bytes]]:
        """The audit path of every leaf, O(n log n) total."""
        levels = self.levels[:-1]
        lengths = [len(level) for level in levels]
        proofs: list[list[bytes]] = []
        for index in range(self.size):
            proof: list[bytes] = []
            i = index
            for level, length in zip(levels, lengths, strict=True):
                sibling = i ^ 1
                if sibling < length:
                    proof.append(level[sibling])
                i >>= 1
            proofs.append(proof)
        return proofs

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """RFC 6962 §2.1.2 PROOF(m, D[n]); empty when m == 0 or m == n."""
        n = self.size
        if isinstance(old_size, bool) or not isinstance(old_size, int) or not 0 <= old_size <= n:
            raise ValidationError(
                f"old tree size must be between 0 and {n}, got {old_size!r}",
                code="invalid_tree_size",
                details={"old_size": old_size, "new_size": n},
            )
        if old_size in (0, n):
            return []
        proof: list[bytes] = []
        # Iterative SUBPROOF(m, D[lo:hi], b); appended hashes are collected leaf side first.
        lo, hi, m, complete = 0, n, old_size, True
        suffix: list[bytes] = []
        while m != hi - lo:
            k = 1 << ((hi - lo - 1).bit_length() - 1)  # largest power of two < hi - lo
            if m <= k:
                suffix.append(self._node(lo + k, hi))
                hi = lo + k
            else:
                suffix.append(self._node(lo, lo + k))
                lo, m, complete = lo + k, m - k, False
        if not complete:
            proof.append(self._node(lo, hi))
        proof.extend(reversed(suffix))
        return proof


def _check_index(index: int, size: int) -> None:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
        raise ValidationError(
            f"leaf index out of range: expected 0 <= index < {size}, got {index!r}",
            code="invalid_leaf_index",
            details={"index": index, "size": size},
        )


# --- entry-level API -----------------------------------------------------------------------------------


def root_from_leaf_hashes(hashes: Sequence[bytes], *, algorithm: str = "sha256") -> bytes:
    """MTH over already-hashed leaves (e.g. hidden fields, documents of a batch)."""
    ctor = hash_constructor(algorithm)
    if not hashes:
        return ctor(b"").digest()
    _check_leaf_hashes(hashes)
    level = list(hashes)
    while len(level) > 1:
        level = _next_level(level, ctor)
    return level[0]


def root_of_hashed_leaves(hashes: list[bytes], ctor: _Ctor) -> bytes:
    """`root_from_leaf_hashes` without checking the leaf hashes, for callers whose leaves are digests they just
    made (the offline verifier's per-payload document tree: 20 leaves, 19 nodes); ``ctor`` from
    `hash_constructor`. The same levels: neighbours paired left to right, an unpaired last node promoted."""
    if not hashes:
        return ctor(b"").digest()
    level = hashes
    while len(level) > 1:
        odd = level[-1] if len(level) & 1 else None
        pairs = iter(level)  # zip(pairs, pairs): neighbours without slicing the level twice
        level = [ctor(_NODE_PREFIX + a + b).digest() for a, b in zip(pairs, pairs)]  # noqa: B905 - odd one: below
        if odd is not None:
            level.append(odd)
    return level[0]


def merkle_root(entries: Iterable[bytes], *, algorithm: str = "sha256") -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash of raw ``entries``: the leaves hashed in one pass, then
    `root_of_hashed_leaves` (no checks of digests made here)."""
    ctor = hash_constructor(algorithm)
    return root_of_hashed_leaves([ctor(_LEAF_PREFIX + e).digest() for e in entries], ctor)


def inclusion_proof_from_leaf_hashes(hashes: Sequence[bytes], index: int, *, algorithm: str = "sha256") -> list[bytes]:
    return MerkleTree(hashes, algorithm=algorithm).inclusion_proof(index)


def inclusion_proof(entries: Sequence[bytes], index: int, *, algorithm: str = "sha256") -> list[bytes]:
    """RFC 6962 §2.1.1 audit path for ``entries[index]``."""
    return MerkleTree.from_entries(entries, algorithm=algorithm).inclusion_proof(index)


def all_inclusion_proofs(leaf_hashes: Sequence[bytes], *, algorithm: str = "sha256") -> list[list[bytes]]:
    """Audit paths for every leaf at once (the anchoring worker's batch mode), O(n log n)."""
    return MerkleTree(leaf_hashes, algorithm=algorithm).all_inclusion_proofs()


def consistency_proof_from_leaf_hashes(
    hashes: Sequence[bytes], old_size: int, *, algorithm: str = "sha256"
) -> list[bytes]:
    return MerkleTree(hashes, algorithm=algorithm).consistency_proof(old_size)


def consistency_proof(entries: Sequence[bytes], old_size: int, *, algorithm: str = "sha256") -> list[bytes]:
    """RFC 6962 §2.1.2 consistency proof between the first ``old_size`` entries and all of them."""
    return MerkleTree.from_entries(entries, algorithm=algorithm).consistency_proof(old_size)


# --- verification (RFC 9162 §2.1.3.2, §2.1.4.2) ----------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_digest(value: object) -> bool:
    return isinstance(value, (bytes, bytearray)) and len(value) == DIGEST_SIZE


def _is_path(proof: object) -> bool:
    return isinstance(proof, (list, tuple)) and all(_is_digest(p) for p in proof)


def verify_inclusion_leaf_hash(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes, *, algorithm: str = "sha256"
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` place ``leaf_hash`` at ``index`` in a tree of ``size`` with ``root``?"""
    hash_constructor(algorithm)  # an unsupported algorithm: its error
    if not (_is_int(index) and _is_int(size) and _is_digest(leaf_hash) and _is_digest(root) and _is_path(proof)):
        return False
    if not 0 <= index < size:
        return False
    return root_from_audit_path(bytes(leaf_hash), index, size, proof, algorithm=algorithm) == bytes(root)


def root_from_audit_path(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], *,
                         algorithm: str = "sha256") -> bytes | None:
    """RFC 9162 §2.1.3.2 steps 1-6, returning the computed root ``r`` instead of comparing it (None when the
    path does not fit ``index`` and ``size``; ``0 <= index < size`` and 32-byte steps are the caller's to
    check). Interior nodes are H(0x01 || left || right) (RFC 6962 §2.1), the hash constructor bound once."""
    ctor = hash_constructor(algorithm)
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = ctor(_NODE_PREFIX + p + r).digest()
            while not fn & 1 and fn != 0:  # step ii: skip levels where this node was promoted
                fn >>= 1
                sn >>= 1
        else:
            r = ctor(_NODE_PREFIX + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    entry: object, index: int, size: int, proof: Sequence[bytes], root: bytes, *, algorithm: str = "sha256"
) -> bool:
    """Verify the audit path of a raw ``entry`` (hashed here as a leaf); False for anything but bytes (the
    entry may come from untrusted JSON)."""
    if not isinstance(entry, (bytes, bytearray, memoryview)):
        return False
    return verify_inclusion_leaf_hash(
        leaf_hash(bytes(entry), algorithm=algorithm), index, size, proof, root, algorithm=algorithm
    )


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
    *,
    algorithm: str = "sha256",
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (old_size, old_root) a prefix of (new_size, new_root)?

    Edge cases beyond the RFC's 0 < m < n: m == n needs an empty proof and equal roots; m == 0 needs an
    empty proof and ``old_root`` equal to the empty-tree hash (every tree extends the empty tree).
    """
    ctor = hash_constructor(algorithm)
    if not (_is_int(old_size) and _is_int(new_size) and _is_digest(old_root) and _is_digest(new_root)):
        return False
    if not _is_path(proof) or not 0 <= old_size <= new_size:
        return False
    old_root, new_root = bytes(old_root), bytes(new_root)
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    if old_size == 0:
        return len(proof) == 0 and old_root == ctor(b"").digest()
    if len(proof) == 0:
        return False
    path = [bytes(p) for p in proof]
    if old_size & (old_size - 1) == 0:  # exact power of two: the old root is itself a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = ctor(_NODE_PREFIX + c + fr).digest()
            sr = ctor(_NODE_PREFIX + c + sr).digest()
            while not fn & 1 and fn != 0:  # step ii: skip levels where this node was promoted
                fn >>= 1
                sn >>= 1
        else:
            sr = ctor(_NODE_PREFIX + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
