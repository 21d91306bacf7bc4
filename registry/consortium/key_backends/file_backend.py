"""Keys AES-GCM encrypted under the node's master key, one row per key in the node's database
(`agency_keys`); the associated data binds each ciphertext to its agency and account."""

from __future__ import annotations

import os

import coincurve
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import select

from registry.consortium.key_backends.base import KeyBackendError, KeyBackendKind, KeyRef, RecoverableSignature
from registry.errors import AuthenticationError, ValidationError
from registry.store.db import AgencyKey, Database

SEALED = b"\x01"  # first byte of a row's ciphertext: AES-GCM sealed private key
TOKEN_REFERENCE = b"\x02"  # ... or: the key lives in a PKCS#11 token, the row only names it


class FileKeyBackend:
    def __init__(self, db: Database, *, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValidationError(f"master key must be 32 bytes, got {len(master_key)}", code="invalid_master_key")
        self._db = db
        self._aead = AESGCM(master_key)
        self._accounts: dict[str, LocalAccount] = {}

    @property
    def kind(self) -> KeyBackendKind:
        return KeyBackendKind.FILE

    def seal(self, secret: bytes, aad: bytes) -> bytes:
        """AES-256-GCM under the master key, bound to `aad` (what the secret belongs to)."""
        nonce = os.urandom(12)
        return SEALED + nonce + self._aead.encrypt(nonce, secret, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        if blob[:1] != SEALED:
            raise ValidationError("unknown key encryption version", code="invalid_key_blob")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], aad)
        except Exception as exc:
            raise AuthenticationError(
                "cannot decrypt an agency key: wrong master key (LIANZHENG_MASTER_KEY)", code="wrong_master_key"
            ) from exc

    def store(self, uscc: str, private_key: bytes, *, active: bool = True) -> LocalAccount:
        account: LocalAccount = Account.from_key(private_key)
        aad = f"{uscc}:{account.address}".encode()
        with self._db.session() as s:
            if s.get(AgencyKey, account.address) is None:
                s.add(AgencyKey(address=account.address, uscc=uscc, ciphertext=self.seal(private_key, aad),
                                active=active))
        self._accounts[account.address] = account
        return account

    def generate(self, uscc: str) -> KeyRef:
        account = self.store(uscc, bytes(Account.create().key))
        return self._ref(uscc, account)

    def local_account(self, address: str) -> LocalAccount:
        """The decrypted key as an eth-account `LocalAccount`: the fast path for transactions."""
        cached = self._accounts.get(address)
        if cached is not None:
            return cached
        with self._db.session() as s:
            row = s.get(AgencyKey, address)
            if row is None or row.ciphertext[:1] != SEALED:
                raise KeyBackendError(f"no encrypted key {address} in this data dir", code="no_signing_key")
            key = self.open(row.ciphertext, f"{row.uscc}:{row.address}".encode())
        account: LocalAccount = Account.from_key(key)
        self._accounts[address] = account
        return account

    def forget(self, address: str) -> None:
        self._accounts.pop(address, None)

    def public_key(self, address: str) -> bytes:
        return bytes(coincurve.PrivateKey(bytes(self.local_account(address).key)).public_key.format(compressed=False))

    def sign_digest(self, address: str, digest: bytes) -> RecoverableSignature:
        raw = coincurve.PrivateKey(bytes(self.local_account(address).key)).sign_recoverable(digest, hasher=None)
        return RecoverableSignature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64])

    def list_keys(self) -> list[KeyRef]:
        with self._db.session() as s:
            rows = [(r.uscc, r.address) for r in s.scalars(select(AgencyKey).order_by(AgencyKey.uscc))
                    if r.ciphertext[:1] == SEALED]
        return [self._ref(uscc, self.local_account(address)) for uscc, address in rows]

    def _ref(self, uscc: str, account: LocalAccount) -> KeyRef:
        return KeyRef(uscc=uscc, address=account.address, public_key=self.public_key(account.address),
                      backend=KeyBackendKind.FILE)
