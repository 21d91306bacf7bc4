"""The anchor proof of a certificate document: where its digests sit in the batch trees anchored on chain.

A batch is anchored as two RFC 6962 trees over the same leaf order: the SHA-256 tree, whose entries are the
documents' 32-byte SHA-256 digests (leaf = SHA-256(0x00 || digest)), and the SM3 tree, whose entries are their
SM3 digests (leaf = SM3(0x00 || digest), GB/T 32905). `AnchorProof.to_json` is the ``anchor`` member of a
``lianzheng/cert/1`` document (registry.certificates.documents); its SM3 members ``sm3_root`` and ``sm3_path``
are present together or not at all (documents anchored before SM3 roots went on chain have neither: their SM3
check is reported as not available, never as valid).

>>> from registry.crypto.merkle import MerkleTree
>>> sha = MerkleTree.from_entries([b"\x01" * 32, b"\x02" * 32])
>>> sm3 = MerkleTree.from_entries([b"\x03" * 32, b"\x04" * 32], algorithm="sm3")
>>> a = AnchorProof(batch_root=sha.root, index=1, size=2, path=tuple(sha.inclusion_proof(1)), chain_id=31337,
...                 ledger="0x" + "11" * 20, tx_hash=bytes(32), block_number=5, block_timestamp=1_700_000_000,
...                 issuer_account="0x" + "22" * 20, sm3_root=sm3.root, sm3_path=tuple(sm3.inclusion_proof(1)))
>>> a.includes(b"\x02" * 32), a.includes_sm3(b"\x04" * 32), a.includes_sm3(b"\x03" * 32)
(True, True, False)
>>> AnchorProof.from_json(a.to_json()) == a
True
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils.address import is_address, to_checksum_address

from registry.crypto import merkle
from registry.errors import PayloadFormatError, ValidationError

__all__ = ["AnchorProof"]

_HEX32_0X = re.compile(r"0x[0-9a-fA-F]{64}")
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]*")


def _bytes32(value: Any, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        found = f"{len(value)} bytes" if isinstance(value, (bytes, bytearray)) else type(value).__name__
        raise ValidationError(f"anchor {what} must be 32 bytes, got {found}", code="invalid_anchor")
    return bytes(value)


def _steps(path: list[Any] | tuple[Any, ...], what: str) -> tuple[bytes, ...]:
    """An audit path as a tuple of 32-byte ``bytes``: as it is when it is one already (from_json makes them so)."""
    if type(path) is tuple and all(type(p) is bytes and len(p) == 32 for p in path):
        return path
    return tuple(_bytes32(p, f"{what}[{i}]") for i, p in enumerate(path))


def _count(value: Any, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(f"anchor {what} must be an integer >= {minimum}, got {value!r}", code="invalid_anchor")
    return value


def _address(value: Any, what: str) -> str:
    checksummed = _checksummed(value) if isinstance(value, str) else None
    if checksummed is None:
        raise ValidationError(f"anchor {what} must be a 0x-prefixed 20-byte address, got {value!r}",
                              code="invalid_anchor")
    return checksummed


@functools.lru_cache(maxsize=4096)
def _checksummed(value: str) -> str | None:
    """EIP-55 form of an address, None when `value` is not one. Cached: each check is a Keccak-256 or two, and an
    anchor names the same few accounts and ledgers on every verification of a presented document."""
    return to_checksum_address(value) if is_address(value) else None


@dataclass(frozen=True, slots=True)
class AnchorProof:
    """Where a document digest sits on chain: its RFC 6962 audit path in the batch tree whose root was
    anchored by ``tx_hash`` in ``block_number`` on ``ledger`` (the CertificateLedger contract address).

    The batch tree's entries are the documents' 32-byte SHA-256 digests (leaf = H(0x00 || digest)).
    ``sm3_root`` and ``sm3_path`` place the document's SM3 digest in the batch's SM3 tree (anchored beside
    ``batch_root``, same index and size); both None for an anchor made before SM3 roots went on chain.
    """

    batch_root: bytes
    index: int
    size: int
    path: tuple[bytes, ...]
    chain_id: int
    ledger: str
    tx_hash: bytes
    block_number: int
    block_timestamp: int
    issuer_account: str
    sm3_root: bytes | None = None
    sm3_path: tuple[bytes, ...] | None = None

    def __post_init__(self) -> None:
        _bytes32(self.batch_root, "batch_root")
        _bytes32(self.tx_hash, "tx_hash")
        if not isinstance(self.path, (list, tuple)):
            raise ValidationError(f"anchor path must be a list of hashes, got {type(self.path).__name__}",
                                  code="invalid_anchor")
        object.__setattr__(self, "path", _steps(self.path, "path"))
        object.__setattr__(self, "batch_root", bytes(self.batch_root))
        object.__setattr__(self, "tx_hash", bytes(self.tx_hash))
        _count(self.size, "size", 1)
        if _count(self.index, "index") >= self.size:
            raise ValidationError(f"anchor index must be below size {self.size}, got {self.index}",
                                  code="invalid_anchor")
        _count(self.chain_id, "chain_id", 1)
        _count(self.block_number, "block_number")
        _count(self.block_timestamp, "block_timestamp")
        object.__setattr__(self, "ledger", _address(self.ledger, "ledger"))
        object.__setattr__(self, "issuer_account", _address(self.issuer_account, "issuer_account"))
        if (self.sm3_root is None) != (self.sm3_path is None):
            raise ValidationError("anchor sm3_root and sm3_path go together: give both or neither",
                                  code="invalid_anchor")
        if self.sm3_root is not None and self.sm3_path is not None:
            object.__setattr__(self, "sm3_root", _bytes32(self.sm3_root, "sm3_root"))
            if not isinstance(self.sm3_path, (list, tuple)):
                raise ValidationError(f"anchor sm3_path must be a list of hashes, got {type(self.sm3_path).__name__}",
                                      code="invalid_anchor")
            object.__setattr__(self, "sm3_path", _steps(self.sm3_path, "sm3_path"))

    def includes(self, document_digest: bytes) -> bool:
        """RFC 9162 §2.1.3.2: does the audit path lead from ``document_digest`` to ``batch_root``?"""
        return merkle.verify_inclusion(document_digest, self.index, self.size, list(self.path), self.batch_root)

    def includes_sm3(self, document_sm3: bytes) -> bool:
        """Does the SM3 audit path lead from the SM3 document digest to ``sm3_root``? False without one."""
        if self.sm3_root is None or self.sm3_path is None:
            return False
        return merkle.verify_inclusion(document_sm3, self.index, self.size, list(self.sm3_path), self.sm3_root,
                                       algorithm="sm3")

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "batch_root": "0x" + self.batch_root.hex(),
            "index": self.index,
            "size": self.size,
            "path": ["0x" + p.hex() for p in self.path],
            "chain_id": self.chain_id,
            "ledger": self.ledger,
            "tx_hash": "0x" + self.tx_hash.hex(),
            "block_number": self.block_number,
            "block_timestamp": self.block_timestamp,
            "issuer_account": self.issuer_account,
        }
        if self.sm3_root is not None and self.sm3_path is not None:  # absent: an anchor from before SM3 roots
            obj["sm3_root"] = "0x" + self.sm3_root.hex()
            obj["sm3_path"] = ["0x" + p.hex() for p in self.sm3_path]
        return obj

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> AnchorProof:
        """Parse `to_json` output; PayloadFormatError(code="invalid_anchor") on any problem."""
        try:
            if not isinstance(obj, Mapping):
                raise ValidationError(f"anchor must be an object, got {type(obj).__name__}")
            names = [f.name for f in dataclasses.fields(cls)]
            required = set(names) - set(_SM3_KEYS)
            keys = set(obj) - (set(_SM3_KEYS) if set(_SM3_KEYS) <= set(obj) else set())
            if keys != required:
                raise ValidationError(f"anchor keys must be {sorted(required)} (and optionally both of "
                                      f"{list(_SM3_KEYS)}), got {sorted(map(str, obj))}")
            hexes = {k: _hex32(obj[k], k) for k in ("batch_root", "tx_hash")}
            paths = {k: _hex32_list(obj[k], k) for k in ("path", "sm3_path") if k in obj}
            if "sm3_root" in obj:
                hexes["sm3_root"] = _hex32(obj["sm3_root"], "sm3_root")
            return cls(**{**obj, **hexes, **paths})
        except ValidationError as exc:
            raise PayloadFormatError(f"invalid anchor proof: {exc.message}", code="invalid_anchor") from None


_SM3_KEYS = ("sm3_root", "sm3_path")


def _hex32_list(value: Any, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise ValidationError(f"anchor {what} must be a list, got {type(value).__name__}")
    # the common case at once: every step a text of 66 characters, "0x" each, hex digits all (one regex over
    # the joined digits instead of one per step); anything else is named step by step below
    if all(type(p) is str and len(p) == 66 and p.startswith("0x") for p in value):
        digits = "".join([p[2:] for p in value])
        if _HEX_DIGITS.fullmatch(digits):
            raw = bytes.fromhex(digits)
            return tuple([raw[i:i + 32] for i in range(0, len(raw), 32)])
    return tuple(_hex32(p, what) for p in value)


def _hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX32_0X.fullmatch(value):
        raise ValidationError(f"anchor {what} must be 0x + 64 hex digits, got {str(value)[:80]!r}")
    return bytes.fromhex(value[2:])
