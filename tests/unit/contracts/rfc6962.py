"""RFC 6962 Merkle trees, written from the RFC's definitions: the reference the contract tests check the ledgers'
batch roots and inclusion proofs against (independent of registry/crypto/merkle.py, which the service uses).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["inclusion_proof", "leaf_hash", "merkle_root", "node_hash"]


def leaf_hash(entry: bytes) -> bytes:
    """RFC 6962 §2.1: MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 §2.1: SHA-256(0x01 || MTH(left) || MTH(right))."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(entries: Sequence[bytes]) -> bytes:
    """RFC 6962 MTH(D[n])."""
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hash(entries[0])
    k = _split(n)
    return node_hash(merkle_root(entries[:k]), merkle_root(entries[k:]))


def inclusion_proof(entries: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n]), bottom to top."""
    n = len(entries)
    if n <= 1:
        return []
    k = _split(n)
    if index < k:
        return inclusion_proof(entries[:k], index) + [merkle_root(entries[k:])]
    return inclusion_proof(entries[k:], index - k) + [merkle_root(entries[:k])]
