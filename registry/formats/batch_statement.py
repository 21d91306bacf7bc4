"""The batch statement: what an issuing agency signs with SM2, once per anchored batch, for the offline QR
payloads of the `gm` crypto profile (docs/CRYPTO.md).

An `intl` payload carries the issuer's recoverable secp256k1 signature over its own body (one signature per
payload). A `gm` payload instead carries its batch's statement: the agency's SM2 signature over where the batch
was anchored and both of its roots, and the moment it signed. The payload's fields lead to the SHA-256 batch
root through its audit path, so the statement binds every field of every document of the batch, while an
offline verifier checks one SM2 signature per batch (SM2 verification costs ~0.4 ms; a cache of verified
statements makes the rest of a batch's payloads cost no signature check at all).

Signed bytes (fixed layout, 110 bytes, the same in every language)::

    "LZ-BATCH-1" (10 ASCII bytes) || chain_id (8, big-endian) || ledger (20) || batch_root (32)
        || sm3_batch_root (32; zeros for a batch anchored without one) || signed_at (8, big-endian unix seconds)

signed with SM2-SM3 (GB/T 32918.2, distinguishing id ``1234567812345678``, DER), exactly as
``openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt distid:1234567812345678`` would. On the wire (registry.
formats.lz2) the statement is ``[signed_at: uint, key_id: bstr .size 8, signature: bstr (DER)]``: the chain,
ledger and roots are not repeated (the verifier takes them from the payload body, from the root the body
leads to, and from the trust list's SM3 root of that batch), and ``key_id`` (the first 8 bytes of SM3 over
the 64-byte key x || y) names which of the agency's registered SM2 keys signed. Whether that key was the
agency's at ``signed_at`` is the verifier's trust decision (a trust list v2 ``sm2_keys`` entry).

>>> from registry.crypto.sm2 import SM2Signer, raw_public_key
>>> signer = SM2Signer.generate()
>>> st = sign_statement(signer, chain_id=31337, ledger=bytes(20), batch_root=bytes(32), sm3_root=None,
...                     signed_at=1_700_000_000)
>>> message = statement_bytes(31337, bytes(20), bytes(32), None, st.signed_at)
>>> len(message), st.key_id == key_id(raw_public_key(signer.public_key))
(110, True)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from registry.crypto import sm2
from registry.crypto.hashing import sm3
from registry.errors import ValidationError

__all__ = ["DOMAIN", "KEY_ID_LEN", "BatchStatement", "key_id", "sign_statement", "statement_bytes"]

DOMAIN = b"LZ-BATCH-1"
KEY_ID_LEN = 8
_MAX_DER = 72  # SEQUENCE { INTEGER r, INTEGER s } with two 33-byte integers
_U64 = 2**64


@dataclass(frozen=True)
class BatchStatement:
    """A statement as a payload carries it (see the module docstring)."""

    signed_at: int
    key_id: bytes
    signature: bytes  # DER

    def __post_init__(self) -> None:
        if type(self.signed_at) is not int or not 0 <= self.signed_at < _U64:
            raise ValidationError("batch statement signed_at must be an integer in 0..2**64-1",
                                  code="invalid_payload_field")
        if not isinstance(self.key_id, bytes) or len(self.key_id) != KEY_ID_LEN:
            raise ValidationError(f"batch statement key_id must be {KEY_ID_LEN} bytes", code="invalid_payload_field")
        if not isinstance(self.signature, bytes) or not 8 <= len(self.signature) <= _MAX_DER:
            raise ValidationError(f"batch statement signature must be DER of 8..{_MAX_DER} bytes",
                                  code="invalid_payload_field")


def key_id(public_key: bytes) -> bytes:
    """The short id of a 64-byte SM2 public key x || y: the first 8 bytes of its SM3 digest."""
    return sm3(bytes(public_key))[:KEY_ID_LEN]


def statement_bytes(chain_id: int, ledger: bytes, batch_root: bytes, sm3_root: bytes | None, signed_at: int) -> bytes:
    """The signed bytes (module docstring); ``sm3_root`` None (no SM3 root anchored) is 32 zero bytes."""
    if len(ledger) != 20 or len(batch_root) != 32 or (sm3_root is not None and len(sm3_root) != 32):
        raise ValidationError("batch statement: ledger is 20 bytes, roots 32", code="invalid_payload_field")
    return DOMAIN + struct.pack(">Q", chain_id) + ledger + batch_root + (sm3_root or bytes(32)) + \
        struct.pack(">Q", signed_at)


def sign_statement(signer: sm2.SM2Signer, *, chain_id: int, ledger: bytes, batch_root: bytes,
                   sm3_root: bytes | None, signed_at: int) -> BatchStatement:
    """The agency's statement over one batch."""
    message = statement_bytes(chain_id, ledger, batch_root, sm3_root, signed_at)
    return BatchStatement(signed_at, key_id(sm2.raw_public_key(signer.public_key)), signer.sign(message))
