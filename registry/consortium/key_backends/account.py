"""A backend key as an account: signs Ethereum transactions (chain/sender.py's `TransactionSigner`) and
recoverable digests (the key source of registry/crypto/signing.py's `Signer`) without ever holding the
private key. File-backend keys keep eth-account's `LocalAccount` for transactions (the fast path)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import coincurve
from eth_account._utils.legacy_transactions import (  # eth-account's public API signs only with a key in hand
    Transaction,
    encode_transaction,
    serializable_unsigned_transaction_from_dict,
)
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from registry.consortium.key_backends.base import KeyBackend


@dataclass(frozen=True)
class SignedTx:
    raw_transaction: HexBytes
    hash: HexBytes


@dataclass(frozen=True)
class BackendAccount:
    backend: KeyBackend
    address: str

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTx:
        """The signed raw transaction: the backend signs the transaction hash, v is derived as eth-account
        does (EIP-155 for legacy transactions with a chain id, the bare recovery id for typed ones)."""
        unsigned = serializable_unsigned_transaction_from_dict(tx)
        sig = self.backend.sign_digest(self.address, bytes(unsigned.hash()))
        if isinstance(unsigned, TypedTransaction):
            v = sig.recovery_id
        elif isinstance(unsigned, Transaction):  # EIP-155: the unsigned form carries the chain id in v
            v = sig.recovery_id + 35 + 2 * int(unsigned.v)
        else:
            v = sig.recovery_id + 27
        raw = bytes(encode_transaction(unsigned, vrs=(v, sig.r, sig.s)))
        return SignedTx(raw_transaction=HexBytes(raw), hash=HexBytes(keccak(raw)))

    # -- the `RecoverableKey` of registry.crypto.signing (coincurve.PrivateKey's shape) -----------------
    @property
    def public_key(self) -> coincurve.PublicKey:
        return coincurve.PublicKey(self.backend.public_key(self.address))

    def sign_recoverable(self, message: bytes, hasher: None = None) -> bytes:
        """65 bytes r || s || recid over the 32-byte ``message`` as is (``hasher`` must be None)."""
        if hasher is not None:
            raise ValueError("a backend key signs digests only (hasher=None)")
        return self.backend.sign_digest(self.address, message).to_bytes()
