"""Agency signing keys (encrypted at rest under the master key) and agency API keys (stored hashed).

Each agency has two signing keys: its secp256k1 key (its Ethereum account: transactions, and the ES256K
proofs of the `intl` profile) and its SM2 key (the SM2-SM3 proofs of the `gm` profile, registered for it on
chain in ConsortiumRegistry and its BID's key in gm). `proof_signer` is the one that signs application-level
records under the store's crypto profile. SM2 keys always live in the file backend: SoftHSM2 (and PKCS#11 v2.40)
defines no SM2 mechanism, so a node whose transaction keys are in a token keeps its SM2 keys sealed here.

    >>> store = KeyStore(db, master_key=os.urandom(32))           # doctest: +SKIP
    >>> account = store.create_signing_key("11230000MB0000001X")  # doctest: +SKIP
    >>> token = store.create_api_key("11230000MB0000001X")        # doctest: +SKIP
    >>> store.authenticate(token)                                  # doctest: +SKIP
    '11230000MB0000001X'
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import select

from registry.consortium.bid import bid_from_secp256k1_public_key, bid_from_sm2_public_key
from registry.consortium.key_backends import (
    BackendAccount,
    FileKeyBackend,
    KeyBackend,
    KeyBackendError,
    KeyBackendKind,
    Pkcs11Backend,
)
from registry.consortium.key_backends.file_backend import TOKEN_REFERENCE, is_sealed
from registry.consortium.mac_key import MacKey
from registry.crypto import sm2
from registry.crypto.hashing import sm3
from registry.crypto.profiles import CryptoProfile
from registry.crypto.proofs import ES256KSigner, ProofSigner
from registry.crypto.signing import SignatureAlgorithm, Signer
from registry.errors import AuthenticationError, NotFoundError
from registry.store.db import AgencyKey, AgencySm2Key, ApiKey, Database, utcnow

API_KEY_PREFIX = "lzk_"

# What signs an agency's transactions: eth-account's LocalAccount for file keys (fast, the key is in hand),
# a BackendAccount for token keys (each signature made by the token)
AgencyAccount = LocalAccount | BackendAccount


@dataclass(frozen=True)
class HeldKey:
    """One agency key this node holds (what `lianzheng keys list` prints)."""

    uscc: str
    address: str
    backend: KeyBackendKind
    active: bool


class KeyStore:
    """An agency's keys, wherever they live: every key has a row in `agency_keys` (so activation for
    rotations works the same for all), holding either the sealed key (file backend) or a reference to the
    PKCS#11 token that holds it. New keys go to ``default_backend``."""

    def __init__(self, db: Database, *, master_key: bytes, token: Pkcs11Backend | None = None,
                 default_backend: KeyBackendKind = KeyBackendKind.FILE,
                 profile: CryptoProfile = CryptoProfile.GM) -> None:
        if default_backend is KeyBackendKind.PKCS11 and token is None:
            raise KeyBackendError("the pkcs11 key backend needs a token (LIANZHENG_PKCS11_*)", code="no_pkcs11_token")
        self._db = db
        self.profile = profile
        self._file = FileKeyBackend(db, master_key=master_key, profile=profile)
        self._sm2: dict[str, sm2.SM2Signer] = {}  # key id -> unsealed key
        self._token = token
        self.default_backend = default_backend
        # HMAC key for lookups that must not reveal what they index (registry/certificates/idempotency.py):
        # derived, so the master key itself is used for one purpose only
        self.mac_key = MacKey(hmac.digest(master_key, b"lianzheng/mac/1", "sha256"))
        self._signers: dict[tuple[str, SignatureAlgorithm], Signer] = {}

    def use_profile(self, profile: CryptoProfile) -> None:
        """Sign and seal new records under ``profile`` from now on (records of either profile still open)."""
        self.profile = profile
        self._file.profile = profile

    def mac(self, purpose: str, data: bytes) -> str:
        """HMAC-SHA256 (hex) of ``data`` under a key derived from the master key, separated by ``purpose``:
        a database copy alone cannot test guesses against it."""
        return self.mac_key.mac(purpose, data)

    # -- signing keys ------------------------------------------------------------------------------
    def backend(self, kind: KeyBackendKind) -> KeyBackend:
        if kind is KeyBackendKind.FILE:
            return self._file
        if self._token is None:
            raise KeyBackendError("this node has no PKCS#11 token configured (LIANZHENG_PKCS11_*)",
                                  code="no_pkcs11_token")
        return self._token

    def create_signing_key(self, uscc: str, *, active: bool = True,
                           backend: KeyBackendKind | None = None) -> AgencyAccount:
        """A new key for the agency, generated in ``backend`` (default: the node's). `active=False` for a
        key rotation still awaiting its on-chain approval. An agency's first key comes with its SM2 key."""
        kind = backend or self.default_backend
        if not self.has_sm2_key(uscc):
            self.create_sm2_key(uscc)
        if kind is KeyBackendKind.FILE:
            return self._file.store(uscc, bytes(Account.create().key), active=active)
        ref = self.backend(kind).generate(uscc)
        with self._db.session() as s:
            s.add(AgencyKey(address=ref.address, uscc=uscc, ciphertext=TOKEN_REFERENCE + kind.value.encode(),
                            active=active))
        return BackendAccount(self.backend(kind), ref.address)

    def seal_secret(self, secret: bytes, aad: bytes) -> bytes:
        """Encrypt another kind of agency secret (e.g. a note key, registry/logs/note_keys.py) like a file key."""
        return self._file.seal(secret, aad)

    def open_secret(self, blob: bytes, aad: bytes) -> bytes:
        return self._file.open(blob, aad)

    def import_signing_key(self, uscc: str, private_key: bytes, *, active: bool = True) -> LocalAccount:
        return self._file.store(uscc, private_key, active=active)

    def _active_row(self, uscc: str) -> tuple[str, bytes]:
        with self._db.session() as s:
            row = s.scalars(
                select(AgencyKey).where(AgencyKey.uscc == uscc, AgencyKey.active.is_(True))
                .order_by(AgencyKey.created_at.desc())
            ).first()
            if row is None:
                raise NotFoundError(f"no signing key for agency {uscc} in this data dir", code="no_signing_key")
            return row.address, row.ciphertext[:1]

    def signing_account(self, uscc: str) -> AgencyAccount:
        """The agency's active signing account (the newest active key)."""
        address, kind = self._active_row(uscc)
        if is_sealed(kind):
            return self._file.local_account(address)
        return BackendAccount(self.backend(KeyBackendKind.PKCS11), address)

    def public_key(self, uscc: str) -> bytes:
        """The 65-byte uncompressed public key of the agency's active key (for its BID)."""
        address, kind = self._active_row(uscc)
        return self.backend(KeyBackendKind.FILE if is_sealed(kind) else KeyBackendKind.PKCS11).public_key(address)

    def bid(self, uscc: str) -> str:
        """The agency's BID (registry/consortium/bid.py): in the gm profile derived from its active SM2 key
        (BID crypto type ``z``), in intl (or for an agency without an SM2 key) from its secp256k1 key."""
        if self.profile is CryptoProfile.GM and self.has_sm2_key(uscc):
            return bid_from_sm2_public_key(self.sm2_public_key(uscc))
        return bid_from_secp256k1_public_key(self.public_key(uscc))

    # -- SM2 keys (application signatures in the gm profile) -----------------------------------------
    def create_sm2_key(self, uscc: str, *, active: bool = True) -> sm2.SM2Signer:
        """A new SM2 key for the agency, sealed in the file backend. `active=False` for a rotation still
        awaiting its on-chain approval (`activate_sm2_key` once the chain has it)."""
        return self.import_sm2_key(uscc, sm2.SM2Signer.generate(), active=active)

    def import_sm2_key(self, uscc: str, signer: sm2.SM2Signer, *, active: bool = True) -> sm2.SM2Signer:
        public = sm2_raw_public_key(signer)
        key_id = sm2_key_id(public)
        with self._db.session() as s:
            if s.get(AgencySm2Key, key_id) is None:
                s.add(AgencySm2Key(key_id=key_id, uscc=uscc, public_key=public, active=active,
                                   ciphertext=self._file.seal(signer.private_key_pem(), _sm2_aad(uscc, key_id))))
        self._sm2[key_id] = signer
        return signer

    def has_sm2_key(self, uscc: str) -> bool:
        with self._db.session() as s:
            return s.scalars(select(AgencySm2Key.key_id).where(AgencySm2Key.uscc == uscc,
                                                               AgencySm2Key.active.is_(True))).first() is not None

    def sm2_signer(self, uscc: str) -> sm2.SM2Signer:
        """The agency's active SM2 key (the newest active one)."""
        return self._sm2_by_id(self._active_sm2_row(uscc)[0])

    def sm2_public_key(self, uscc: str) -> bytes:
        """The 64-byte public key (x || y) of the agency's active SM2 key: what ConsortiumRegistry holds."""
        return self._active_sm2_row(uscc)[1]

    def activate_sm2_key(self, public_key: bytes) -> None:
        """Make ``public_key`` the agency's active SM2 key (after the chain approved the rotation); the
        agency's other SM2 keys are deactivated (records they signed before the rotation still verify)."""
        key_id = sm2_key_id(public_key)
        with self._db.session() as s:
            row = s.get(AgencySm2Key, key_id)
            if row is None:
                raise NotFoundError(f"no SM2 key {key_id[:16]}… in this data dir", code="no_signing_key")
            for other in s.scalars(select(AgencySm2Key).where(AgencySm2Key.uscc == row.uscc)):
                other.active = other.key_id == key_id

    def _active_sm2_row(self, uscc: str) -> tuple[str, bytes]:
        with self._db.session() as s:
            row = s.scalars(select(AgencySm2Key).where(AgencySm2Key.uscc == uscc, AgencySm2Key.active.is_(True))
                            .order_by(AgencySm2Key.created_at.desc())).first()
            if row is None:
                raise NotFoundError(f"no SM2 signing key for agency {uscc} in this data dir", code="no_signing_key")
            return row.key_id, bytes(row.public_key)

    def _sm2_by_id(self, key_id: str) -> sm2.SM2Signer:
        signer = self._sm2.get(key_id)
        if signer is None:
            with self._db.session() as s:
                row = s.get(AgencySm2Key, key_id)
                if row is None:
                    raise NotFoundError(f"no SM2 key {key_id[:16]}… in this data dir", code="no_signing_key")
                pem = self._file.open(row.ciphertext, _sm2_aad(row.uscc, key_id))
            signer = self._sm2[key_id] = sm2.SM2Signer.from_pem(pem)
        return signer

    def proof_signer(self, uscc: str) -> ProofSigner:
        """What signs the agency's application-level records (registry.crypto.proofs) under this store's
        profile: its SM2 key in gm, its secp256k1 key as ES256K in intl."""
        if self.profile is CryptoProfile.GM:
            return self.sm2_signer(uscc)
        account = self.signing_account(uscc)
        if isinstance(account, BackendAccount):
            return ES256KSigner.from_recoverable_key(account)
        return ES256KSigner.from_private_key(bytes(account.key))

    def signer(self, uscc: str, algorithm: SignatureAlgorithm = SignatureAlgorithm.SECP256K1) -> Signer:
        """The agency's active key as a `Signer` (registry.crypto.signing), for signatures that are not
        transactions: trust lists, offline QR payloads, evidence packages, checkpoints, audit reports."""
        account = self.signing_account(uscc)
        signer = self._signers.get((account.address, algorithm))
        if signer is None:
            if isinstance(account, BackendAccount):
                signer = Signer.from_key(account)
            else:
                signer = Signer.from_private_key(bytes(account.key), algorithm)
            self._signers[(account.address, algorithm)] = signer
        return signer

    def held_keys(self) -> list[HeldKey]:
        with self._db.session() as s:
            rows = s.scalars(select(AgencyKey).order_by(AgencyKey.uscc, AgencyKey.created_at)).all()
            return [HeldKey(uscc=r.uscc, address=r.address, active=bool(r.active),
                            backend=KeyBackendKind.FILE if is_sealed(r.ciphertext) else KeyBackendKind.PKCS11)
                    for r in rows]

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
        self._file.forget(address)

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


def sm2_raw_public_key(signer: sm2.SM2Signer) -> bytes:
    """The 64-byte x || y of an SM2 key (what the chain and BIDs use; the 0x04 prefix dropped)."""
    return sm2.raw_public_key(signer.public_key)


def sm2_key_id(public_key: bytes) -> str:
    """The hex SM3 of a 64-byte SM2 public key: its row id here and its fingerprint in proofs."""
    return sm3(bytes(public_key)).hex()


def _sm2_aad(uscc: str, key_id: str) -> bytes:
    return f"{uscc}:sm2:{key_id}".encode()
