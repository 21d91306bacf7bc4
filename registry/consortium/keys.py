"""Agency signing keys (encrypted at rest under the master key) and agency API keys (stored hashed).

    >>> store = KeyStore(db, master_key=os.urandom(32))           # doctest: +SKIP
    >>> account = store.create_signing_key("11230000MB0000001X")  # doctest: +SKIP
    >>> token = store.create_api_key("11230000MB0000001X")        # doctest: +SKIP
    >>> store.authenticate(token)                                  # doctest: +SKIP
    '11230000MB0000001X'
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import select

from registry.crypto.signing import SignatureAlgorithm, Signer
from registry.errors import AuthenticationError, NotFoundError, ValidationError
from registry.store.db import AgencyKey, ApiKey, Database, utcnow

API_KEY_PREFIX = "lzk_"
_KEY_VERSION = b"\x01"


class KeyStore:
    def __init__(self, db: Database, *, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValidationError(f"master key must be 32 bytes, got {len(master_key)}", code="invalid_master_key")
        self._db = db
        self._aead = AESGCM(master_key)
        # HMAC key for lookups that must not reveal what they index (registry/certificates/idempotency.py):
        # derived, so the master key itself is used for one purpose only
        self._mac_key = hmac.digest(master_key, b"lianzheng/mac/1", "sha256")
        self._accounts: dict[str, LocalAccount] = {}
        self._signers: dict[tuple[str, SignatureAlgorithm], Signer] = {}

    def mac(self, purpose: str, data: bytes) -> str:
        """HMAC-SHA256 (hex) of ``data`` under a key derived from the master key, separated by ``purpose``:
        a database copy alone cannot test guesses against it."""
        return hmac.new(self._mac_key, purpose.encode() + b"\x00" + data, hashlib.sha256).hexdigest()

    # -- signing keys ------------------------------------------------------------------------------
    def _seal(self, secret: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return _KEY_VERSION + nonce + self._aead.encrypt(nonce, secret, aad)

    def _open(self, blob: bytes, aad: bytes) -> bytes:
        if blob[:1] != _KEY_VERSION:
            raise ValidationError("unknown key encryption version", code="invalid_key_blob")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], aad)
        except Exception as exc:
            raise AuthenticationError(
                "cannot decrypt an agency key: wrong master key (LIANZHENG_MASTER_KEY)", code="wrong_master_key"
            ) from exc

    def seal_secret(self, secret: bytes, aad: bytes) -> bytes:
        """Encrypt another kind of agency secret (e.g. a note key, registry/logs/note_keys.py) like a signing key."""
        return self._seal(secret, aad)

    def open_secret(self, blob: bytes, aad: bytes) -> bytes:
        return self._open(blob, aad)

    def create_signing_key(self, uscc: str, *, active: bool = True) -> LocalAccount:
        """A new key for the agency. `active=False` for a key rotation still awaiting its on-chain approval."""
        account: LocalAccount = Account.create()
        self.import_signing_key(uscc, bytes(account.key), active=active)
        return account

    def import_signing_key(self, uscc: str, private_key: bytes, *, active: bool = True) -> LocalAccount:
        account: LocalAccount = Account.from_key(private_key)
        aad = f"{uscc}:{account.address}".encode()
        with self._db.session() as s:
            if s.get(AgencyKey, account.address) is None:
                s.add(AgencyKey(address=account.address, uscc=uscc, ciphertext=self._seal(private_key, aad),
                                active=active))
        self._accounts[account.address] = account
        return account

    def signing_account(self, uscc: str) -> LocalAccount:
        """The agency's active signing account (the newest active key)."""
        with self._db.session() as s:
            row = s.scalars(
                select(AgencyKey).where(AgencyKey.uscc == uscc, AgencyKey.active.is_(True))
                .order_by(AgencyKey.created_at.desc())
            ).first()
            if row is None:
                raise NotFoundError(f"no signing key for agency {uscc} in this data dir", code="no_signing_key")
            if row.address in self._accounts:
                return self._accounts[row.address]
            key = self._open(row.ciphertext, f"{uscc}:{row.address}".encode())
        account: LocalAccount = Account.from_key(key)
        self._accounts[account.address] = account
        return account

    def signer(self, uscc: str, algorithm: SignatureAlgorithm = SignatureAlgorithm.SECP256K1) -> Signer:
        """The agency's active key as a `Signer` (registry.crypto.signing), for signatures that are not
        transactions: trust lists, offline QR payloads, evidence packages, checkpoints, audit reports."""
        account = self.signing_account(uscc)
        signer = self._signers.get((account.address, algorithm))
        if signer is None:
            signer = Signer.from_private_key(bytes(account.key), algorithm)
            self._signers[(account.address, algorithm)] = signer
        return signer

    def has_signing_key(self, uscc: str) -> bool:
        with self._db.session() as s:
            return s.scalars(select(AgencyKey.address).where(AgencyKey.uscc == uscc)).first() is not None

    def activate(self, address: str) -> None:
        with self._db.session() as s:
            row = s.get(AgencyKey, address)
            if row is None:
                raise NotFoundError(f"no key {address} in this data dir", code="no_signing_key")
            row.active = True

    def deactivate(self, address: str) -> None:
        with self._db.session() as s:
            row = s.get(AgencyKey, address)
            if row is not None:
                row.active = False
        self._accounts.pop(address, None)

    # -- API keys ----------------------------------------------------------------------------------
    @staticmethod
    def _hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def create_api_key(self, uscc: str, *, label: str = "") -> str:
        """A new API key for the agency. Shown once; only its hash is kept."""
        token = API_KEY_PREFIX + secrets.token_urlsafe(32)
        with self._db.session() as s:
            s.add(ApiKey(uscc=uscc, prefix=token[:12], key_hash=self._hash(token), label=label))
        return token

    def authenticate(self, token: str) -> str:
        """The USCC of the agency owning `token`; AuthenticationError otherwise."""
        if not token or not token.startswith(API_KEY_PREFIX) or len(token) > 200:
            raise AuthenticationError("missing or malformed API key (expected 'Authorization: Bearer lzk_...')")
        digest = self._hash(token)
        with self._db.session() as s:
            row = s.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()
            if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, digest):
                raise AuthenticationError("unknown or revoked API key", code="invalid_api_key")
            return row.uscc

    def revoke_api_key(self, prefix: str) -> int:
        with self._db.session() as s:
            rows = s.scalars(select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))).all()
            for row in rows:
                row.revoked_at = utcnow()
            return len(rows)
