"""The anchor proof of a certificate document: where its digest sits in a batch tree anchored on chain.

The batch tree's entries are the documents' 32-byte SHA-256 digests (RFC 6962 leaf = H(0x00 || digest));
`AnchorProof.to_json` is the ``anchor`` member of a ``lianzheng/cert/1`` document (registry.certificates.documents).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils.address import is_address, to_checksum_address

from registry.crypto import merkle
from registry.errors import PayloadFormatError, ValidationError

__all__ = ["AnchorProof"]

_HEX32_0X = re.compile(r"0x[0-9a-fA-F]{64}")


def _bytes32(value: Any, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        found = f"{len(value)} bytes" if isinstance(value, (bytes, bytearray)) else type(value).__name__
        raise ValidationError(f"anchor {what} must be 32 bytes, got {found}", code="invalid_anchor")
    return bytes(value)


def _count(value: Any, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(f"anchor {what} must be an integer >= {minimum}, got {value!r}", code="invalid_anchor")
    return value


def _address(value: Any, what: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise ValidationError(f"anchor {what} must be a 0x-prefixed 20-byte address, got {value!r}",
                              code="invalid_anchor")
    return to_checksum_address(value)


@dataclass(frozen=True, slots=True)
class AnchorProof:
    """Where a document digest sits on chain: its RFC 6962 audit path in the batch tree whose root was
    anchored by ``tx_hash`` in ``block_number`` on ``ledger`` (the CertificateLedger contract address).

    The batch tree's entries are the documents' 32-byte SHA-256 digests (leaf = H(0x00 || digest)).
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

    def __post_init__(self) -> None:
        _bytes32(self.batch_root, "batch_root")
        _bytes32(self.tx_hash, "tx_hash")
        if not isinstance(self.path, (list, tuple)):
            raise ValidationError(f"anchor path must be a list of hashes, got {type(self.path).__name__}",
                                  code="invalid_anchor")
        object.__setattr__(self, "path", tuple(_bytes32(p, f"path[{i}]") for i, p in enumerate(self.path)))
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

    def includes(self, document_digest: bytes) -> bool:
        """RFC 9162 §2.1.3.2: does the audit path lead from ``document_digest`` to ``batch_root``?"""
        return merkle.verify_inclusion(document_digest, self.index, self.size, list(self.path), self.batch_root)

    def to_json(self) -> dict[str, Any]:
        return {
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

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> AnchorProof:
        """Parse `to_json` output; PayloadFormatError(code="invalid_anchor") on any problem."""
        try:
            if not isinstance(obj, Mapping):
                raise ValidationError(f"anchor must be an object, got {type(obj).__name__}")
            names = [f.name for f in dataclasses.fields(cls)]
            if set(obj) != set(names):
                raise ValidationError(f"anchor keys must be {sorted(names)}, got {sorted(map(str, obj))}")
            hexes = {k: _hex32(obj[k], k) for k in ("batch_root", "tx_hash")}
            path = obj["path"]
            if not isinstance(path, list):
                raise ValidationError(f"anchor path must be a list, got {type(path).__name__}")
            return cls(**{**obj, **hexes, "path": tuple(_hex32(p, "path") for p in path)})
        except ValidationError as exc:
            raise PayloadFormatError(f"invalid anchor proof: {exc.message}", code="invalid_anchor") from None


def _hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX32_0X.fullmatch(value):
        raise ValidationError(f"anchor {what} must be 0x + 64 hex digits, got {str(value)[:80]!r}")
    return bytes.fromhex(value[2:])
