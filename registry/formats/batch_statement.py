"""The batch statement: what an issuing agency signs once per anchored batch for the offline QR payloads of
both crypto profiles (docs/CRYPTO.md): with its SM2 key in the `gm` profile, with its secp256k1 account key in
`intl`.

A payload carries its batch's statement: the agency's signature over where the batch was anchored and both of
its roots, and the moment it signed. The payload's fields lead to the SHA-256 batch root through its audit
path, so the statement binds every field of every document of the batch, while an offline verifier checks one
signature per batch (an SM2 verification costs ~0.4 ms, a secp256k1 recovery ~0.04 ms; a cache of verified
statements makes the rest of a batch's payloads cost no signature check at all). A payload may instead carry
the issuer's recoverable secp256k1 signature over its own body (registry.formats.lz2): the first intl form,
still read and verified, no longer written.

Signed bytes (fixed layout, 110 bytes, the same in every language and for both keys)::

    "LZ-BATCH-1" (10 ASCII bytes) || chain_id (8, big-endian) || ledger (20) || batch_root (32)
        || sm3_batch_root (32; zeros for a batch anchored without one) || signed_at (8, big-endian unix seconds)

- gm: signed with SM2-SM3 (GB/T 32918.2, distinguishing id ``1234567812345678``, DER), exactly as
  ``openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt distid:1234567812345678`` would. On the wire
  (registry.formats.lz2) ``[signed_at: uint, key_id: bstr .size 8, signature: bstr (DER)]``; ``key_id`` (the
  first 8 bytes of SM3 over the 64-byte key x || y) names which of the agency's registered SM2 keys signed.
  Whether that key was the agency's at ``signed_at`` is the verifier's trust decision (a trust list v2
  ``sm2_keys`` entry).
- intl: ECDSA over SHA-256 of those bytes, recoverable (``r || s || recid``, 65 bytes, as an intl payload
  signature, registry.crypto.signing RECOVERABLE). On the wire ``[signed_at: uint, signature: bstr .size 65]``:
  the signer is the account that recovers, and whether it is a member's is the verifier's trust decision. The
  bytes begin with ``LZ-BATCH-1``, never with the CBOR array a payload body begins with, so the two kinds of
  signature made with one account key cannot stand for each other.

The chain, ledger and roots are not repeated on the wire: the verifier takes them from the payload body, from
the root the body leads to, and from the trust list's SM3 root of that batch. In memory an intl statement is a
`BatchStatement` with an empty ``key_id``.

>>> from registry.crypto.sm2 import SM2Signer, raw_public_key
>>> signer = SM2Signer.generate()
>>> st = sign_statement(signer, chain_id=31337, ledger=bytes(20), batch_root=bytes(32), sm3_root=None,
...                     signed_at=1_700_000_000)
>>> message = statement_bytes(31337, bytes(20), bytes(32), None, st.signed_at)
>>> len(message), st.key_id == key_id(raw_public_key(signer.public_key)), st.scheme
(110, True, 'sm2')
>>> intl = sign_statement(bytes(31) + b"\\x01", chain_id=31337, ledger=bytes(20), batch_root=bytes(32),
...                       sm3_root=None, signed_at=1_700_000_000)
>>> intl.scheme, len(intl.signature), statement_signer(intl, message)
('secp256k1', 65, '0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf')
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Literal

from registry.crypto import sm2
from registry.crypto.hashing import sm3
from registry.crypto.signing import SIGNATURE_SIZE, SignatureScheme, Signer, recover_or_none
from registry.errors import ValidationError

__all__ = ["DOMAIN", "KEY_ID_LEN", "BatchStatement", "key_id", "sign_statement", "statement_bytes",
           "statement_signer"]

DOMAIN = b"LZ-BATCH-1"
KEY_ID_LEN = 8
_MAX_DER = 72  # SEQUENCE { INTEGER r, INTEGER s } with two 33-byte integers
_U64 = 2**64


@dataclass(frozen=True)
class BatchStatement:
    """A statement as a payload carries it (see the module docstring): an SM2 one names its key by ``key_id``;
    an intl one has an empty ``key_id`` and a 65-byte recoverable signature."""

    signed_at: int
    key_id: bytes
    signature: bytes  # SM2: DER; intl: r || s || recid

    def __post_init__(self) -> None:
        if type(self.signed_at) is not int or not 0 <= self.signed_at < _U64:
            raise ValidationError("batch statement signed_at must be an integer in 0..2**64-1",
                                  code="invalid_payload_field")
        if not isinstance(self.key_id, bytes) or len(self.key_id) not in (0, KEY_ID_LEN):
            raise ValidationError(f"batch statement key_id must be {KEY_ID_LEN} bytes (SM2) or empty (secp256k1)",
                                  code="invalid_payload_field")
        if not isinstance(self.signature, bytes):
            raise ValidationError("batch statement signature must be bytes", code="invalid_payload_field")
        if self.key_id and not 8 <= len(self.signature) <= _MAX_DER:
            raise ValidationError(f"batch statement SM2 signature must be DER of 8..{_MAX_DER} bytes",
                                  code="invalid_payload_field")
        if not self.key_id and len(self.signature) != SIGNATURE_SIZE:
            raise ValidationError(f"batch statement secp256k1 signature must be {SIGNATURE_SIZE} bytes "
                                  "(r || s || recid)", code="invalid_payload_field")

    @property
    def scheme(self) -> Literal["sm2", "secp256k1"]:
        return "sm2" if self.key_id else "secp256k1"


def key_id(public_key: bytes) -> bytes:
    """The short id of a 64-byte SM2 public key x || y: the first 8 bytes of its SM3 digest."""
    return sm3(bytes(public_key))[:KEY_ID_LEN]


def statement_bytes(chain_id: int, ledger: bytes, batch_root: bytes, sm3_root: bytes | None, signed_at: int) -> bytes:
    """The signed bytes (module docstring); ``sm3_root`` None (no SM3 root anchored) is 32 zero bytes."""
    if len(ledger) != 20 or len(batch_root) != 32 or (sm3_root is not None and len(sm3_root) != 32):
        raise ValidationError("batch statement: ledger is 20 bytes, roots 32", code="invalid_payload_field")
    return DOMAIN + struct.pack(">Q", chain_id) + ledger + batch_root + (sm3_root or bytes(32)) + \
        struct.pack(">Q", signed_at)


def sign_statement(signer: sm2.SM2Signer | Signer | bytes, *, chain_id: int, ledger: bytes, batch_root: bytes,
                   sm3_root: bytes | None, signed_at: int) -> BatchStatement:
    """The agency's statement over one batch, with its SM2 key (gm) or its secp256k1 account key (intl): a
    `Signer`, whose key may stay in an HSM, or the 32 private bytes."""
    message = statement_bytes(chain_id, ledger, batch_root, sm3_root, signed_at)
    if isinstance(signer, sm2.SM2Signer):
        return BatchStatement(signed_at, key_id(sm2.raw_public_key(signer.public_key)), signer.sign(message))
    account = signer if isinstance(signer, Signer) else Signer.from_private_key(bytes(signer))
    return BatchStatement(signed_at, b"", account.sign(hashlib.sha256(message).digest(), SignatureScheme.RECOVERABLE))


def statement_signer(statement: BatchStatement, message: bytes) -> str | None:
    """The EIP-55 account whose key made an intl ``statement`` over ``message`` (`statement_bytes`), or None
    when no key recovers. Any other message recovers another account (or none)."""
    if statement.key_id:
        raise ValidationError("an SM2 statement names its key; only an intl statement recovers its signer",
                              code="invalid_payload_field")
    return recover_or_none(hashlib.sha256(message).digest(), statement.signature, SignatureScheme.RECOVERABLE)
