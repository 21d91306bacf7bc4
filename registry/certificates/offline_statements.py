"""The issuer's batch statements of offline QR payloads (registry.certificates.offline): signed once per batch
and key in a process, with the agency's SM2 key (gm) or its secp256k1 account key (intl); and the verifier's
cache of parsed SM2 keys and verified SM2 statements.

    >>> statement = batch_statement(node.keys.sm2_signer(uscc), anchor)       # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

from registry.certificates.anchor_proof import AnchorProof
from registry.crypto import sm2
from registry.crypto.signing import Signer
from registry.errors import SignatureError
from registry.formats.batch_statement import BatchStatement, sign_statement

__all__ = ["Sm2Cache", "batch_statement"]

_CACHE_SIZE = 4096
_STATEMENTS: OrderedDict[tuple[bytes, int, bytes, bytes, bytes], BatchStatement] = OrderedDict()
_STATEMENTS_LOCK = threading.Lock()


def batch_statement(signer: sm2.SM2Signer | Signer | bytes, anchor: AnchorProof, *,
                    signed_at: int | None = None) -> BatchStatement:
    """The issuer's statement over ``anchor``'s batch (registry.formats.batch_statement) with its SM2 key or its
    secp256k1 account key (a `Signer`, or the 32 private bytes). Signed once per batch and key in this process
    (the statement is the same for every document of the batch) unless ``signed_at`` (unix seconds; default:
    now) is given."""
    ledger = bytes.fromhex(anchor.ledger.removeprefix("0x"))
    if not isinstance(signer, sm2.SM2Signer | Signer):
        signer = Signer.from_private_key(bytes(signer))
    # keys by their public half: SM2's raw key, an account's address
    public = sm2.raw_public_key(signer.public_key) if isinstance(signer, sm2.SM2Signer) else signer.account
    key = (public, anchor.chain_id, ledger, anchor.batch_root, anchor.sm3_root or b"")
    if signed_at is None:
        with _STATEMENTS_LOCK:
            if (cached := _STATEMENTS.get(key)) is not None:
                _STATEMENTS.move_to_end(key)
                return cached
    when = max(int(time.time()), anchor.block_timestamp) if signed_at is None else signed_at
    statement = sign_statement(signer, chain_id=anchor.chain_id, ledger=ledger, batch_root=anchor.batch_root,
                               sm3_root=anchor.sm3_root, signed_at=when)
    if signed_at is None:
        with _STATEMENTS_LOCK:
            _STATEMENTS[key] = statement
            while len(_STATEMENTS) > _CACHE_SIZE:
                _STATEMENTS.popitem(last=False)
    return statement


class Sm2Cache:
    """SM2 public keys parsed once, and the digests of (key, statement, signature) triples already verified:
    a batch's payloads all carry the same statement, so a verifier checks its signature once (thread-safe)."""

    def __init__(self) -> None:
        self._keys: dict[bytes, sm2.SM2PublicKey] = {}
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def verified(self, key: bytes, message: bytes, signature: bytes) -> bool:
        digest = hashlib.sha256(key + message + signature).digest()
        if digest in self._verified:  # one dict lookup (atomic under the GIL): every payload of a verified batch
            return True
        with self._lock:
            public = self._keys.get(key)
        if public is None:
            try:
                public = sm2.public_key_from_raw(key)
            except SignatureError:
                return False
            with self._lock:
                self._keys[key] = public
        try:
            sm2.verify_with_key(message, signature, public)
        except SignatureError:
            return False
        with self._lock:
            self._verified[digest] = None
            while len(self._verified) > _CACHE_SIZE:
                self._verified.popitem(last=False)
        return True
