"""Keys encrypted under the node's master key, one row per key in the node's database (`agency_keys`); the
associated data binds each ciphertext to its agency and account.

The first byte of a sealed blob names its construction, so either opens whatever the crypto profile is now:

- ``0x01``: AES-256-GCM (the `intl` profile): ``0x01 || nonce (12) || ciphertext || tag (16)``.
- ``0x03``: SM4-CTR then HMAC-SM3 (the `gm` profile, GB/T 32907 + GB/T 32905): ``0x03 ||`` a version-2
  envelope of registry.formats.envelope sealed with the master key as its 32-byte key (``0x02 || iv (16) ||
  ciphertext || tag (32)``, subkeys k_enc || k_mac = HMAC-SM3(master key, "lianzheng/envelope/2")). A third
  party checks one with OpenSSL alone as that module's docstring shows (tests/unit/crypto/test_key_files.py).
"""

from __future__ import annotations

import os

import coincurve
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import select

from registry.consortium.key_backends.base import KeyBackendError, KeyBackendKind, KeyRef, RecoverableSignature
from registry.crypto.profiles import CryptoProfile
from registry.errors import AuthenticationError, ValidationError
from registry.formats import envelope
from registry.store.db import AgencyKey, Database

SEALED = b"\x01"  # first byte of a row's ciphertext: AES-GCM sealed private key
TOKEN_REFERENCE = b"\x02"  # ... or: the key lives in a PKCS#11 token, the row only names it
SEALED_SM4 = b"\x03"  # ... or: SM4-CTR + HMAC-SM3 sealed private key (the gm profile)
_SEALED_KINDS = (SEALED, SEALED_SM4)


def is_sealed(blob: bytes) -> bool:
    """True when ``blob`` holds a key sealed here (either construction), not a reference to a token."""
    return blob[:1] in _SEALED_KINDS


class FileKeyBackend:
    def __init__(self, db: Database, *, master_key: bytes, profile: CryptoProfile = CryptoProfile.GM) -> None:
        if len(master_key) != 32:
            raise ValidationError(f"master key must be 32 bytes, got {len(master_key)}", code="invalid_master_key")
        self._db = db
        self._master_key = master_key
        self._aead = AESGCM(master_key)
        self.profile = profile
        self._accounts: dict[str, LocalAccount] = {}

    @property
    def kind(self) -> KeyBackendKind:
        return KeyBackendKind.FILE

    def seal(self, secret: bytes, aad: bytes) -> bytes:
        """Encrypt under the master key, bound to `aad` (what the secret belongs to): SM4-CTR + HMAC-SM3 in
        the gm profile, AES-256-GCM in intl (see the module docstring)."""
        if self.profile is CryptoProfile.GM:
            _, blob = envelope.seal(secret, aad=aad, key=self._master_key,
                                    algorithm=envelope.EnvelopeAlgorithm.SM4_CTR_HMAC_SM3)
            return SEALED_SM4 + blob
        nonce = os.urandom(12)
        return SEALED + nonce + self._aead.encrypt(nonce, secret, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        """Decrypt a blob of either construction (its first byte says which)."""
        if blob[:1] not in _SEALED_KINDS:
            raise ValidationError("unknown key encryption version", code="invalid_key_blob")
        try:
            if blob[:1] == SEALED_SM4:
                return envelope.open_(blob[1:], self._master_key, aad=aad)
            return self._aead.decrypt(blob[1:13], blob[13:], aad)
        except Exception as exc:  # InvalidTag, ProofError(decrypt_failed), a truncated blob
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
            if row is None or not is_sealed(row.ciphertext):
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
                    if is_sealed(r.ciphertext)]
        return [self._ref(uscc, self.local_account(address)) for uscc, address in rows]

    def _ref(self, uscc: str, account: LocalAccount) -> KeyRef:
        return KeyRef(uscc=uscc, address=account.address, public_key=self.public_key(account.address),
                      backend=KeyBackendKind.FILE)
