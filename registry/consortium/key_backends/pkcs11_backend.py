"""Keys generated and kept inside a PKCS#11 token (a 密码机 or cloud HSM in production, SoftHSM2 in
tests). Each key pair is made by the token (C_GenerateKeyPair) with CKA_TOKEN, CKA_SENSITIVE and
not CKA_EXTRACTABLE, so no call of this module (or of anyone holding the PIN) can read the private part;
signing is CKM_ECDSA over the digest inside the token. Objects are labelled with the agency's USCC and
identified (CKA_ID) by the key's 20-byte account.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pkcs11
from asn1crypto.core import OctetString
from eth_utils.crypto import keccak
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from registry.consortium.key_backends.base import (
    KeyBackendError,
    KeyBackendKind,
    KeyRef,
    RecoverableSignature,
    recoverable_from_raw,
)
from registry.crypto.signing import checksum_address

CURVE = "secp256k1"


@dataclass(frozen=True)
class Pkcs11Config:
    module: Path
    token_label: str
    user_pin: str  # from the environment variable the node's settings name, never from a file


def _account_of(public_key: bytes) -> bytes:
    return bytes(keccak(public_key[1:])[-20:])


class Pkcs11Backend:
    """One logged-in session on the token, used under a lock (a PKCS#11 session is not for concurrent
    operations)."""

    def __init__(self, config: Pkcs11Config) -> None:
        if not config.module.is_file():
            raise KeyBackendError(f"PKCS#11 module {config.module} not found (install softhsm2, or set "
                                  "LIANZHENG_PKCS11_MODULE to your HSM's library)", code="pkcs11_module_missing")
        try:
            token = pkcs11.lib(str(config.module)).get_token(token_label=config.token_label)
            try:
                self._session = token.open(user_pin=config.user_pin, rw=True)
            except pkcs11.UserAlreadyLoggedIn:
                # PKCS#11 login is per process: another backend here already logged in, and every new
                # session of this process shares that login
                self._session = token.open(rw=True)
        except pkcs11.NoSuchToken as exc:
            raise KeyBackendError(f"no PKCS#11 token labelled {config.token_label!r} in {config.module}",
                                  code="pkcs11_token_missing") from exc
        except pkcs11.PKCS11Error as exc:
            raise KeyBackendError(f"cannot log in to PKCS#11 token {config.token_label!r}: {type(exc).__name__}",
                                  code="pkcs11_login_failed") from exc
        self.config = config
        self._lock = threading.Lock()
        self._public: dict[str, bytes] = {}
        self._private: dict[str, Any] = {}

    @property
    def kind(self) -> KeyBackendKind:
        return KeyBackendKind.PKCS11

    def close(self) -> None:
        with self._lock:
            self._session.close()

    def generate(self, uscc: str) -> KeyRef:
        with self._lock:
            params = self._session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(CURVE)}, local=True)
            # the id is set after generation: it is the account, known only once the token made the key
            public, private = params.generate_keypair(
                store=True, label=uscc,
                public_template={Attribute.TOKEN: True},
                private_template={Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                                  Attribute.EXTRACTABLE: False, Attribute.SIGN: True})
            point = bytes(OctetString.load(public[Attribute.EC_POINT]).native)
            account = _account_of(point)
            public[Attribute.ID] = account
            private[Attribute.ID] = account
        address = checksum_address(account)
        self._public[address] = point
        return KeyRef(uscc=uscc, address=address, public_key=point, backend=KeyBackendKind.PKCS11)

    def _find(self, address: str, object_class: ObjectClass) -> Any:
        account = bytes.fromhex(address.removeprefix("0x"))
        try:
            return self._session.get_key(object_class=object_class, key_type=KeyType.EC, id=account)
        except pkcs11.NoSuchKey as exc:
            raise KeyBackendError(f"no key {address} in PKCS#11 token {self.config.token_label!r}",
                                  code="no_signing_key") from exc

    def public_key(self, address: str) -> bytes:
        point = self._public.get(address)
        if point is None:
            with self._lock:
                point = bytes(OctetString.load(self._find(address, ObjectClass.PUBLIC_KEY)[Attribute.EC_POINT]).native)
            self._public[address] = point
        return point

    def sign_digest(self, address: str, digest: bytes) -> RecoverableSignature:
        public = self.public_key(address)
        with self._lock:
            key = self._private.get(address)
            if key is None:
                key = self._private[address] = self._find(address, ObjectClass.PRIVATE_KEY)
            raw = bytes(key.sign(digest, mechanism=Mechanism.ECDSA))
        return recoverable_from_raw(digest, raw, public)

    def list_keys(self) -> list[KeyRef]:
        with self._lock:
            found = [(str(k[Attribute.LABEL]), bytes(OctetString.load(k[Attribute.EC_POINT]).native))
                     for k in self._session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                                                         Attribute.KEY_TYPE: KeyType.EC})]
        return sorted((KeyRef(uscc=label, address=checksum_address(_account_of(point)), public_key=point,
                              backend=KeyBackendKind.PKCS11) for label, point in found),
                      key=lambda ref: (ref.uscc, ref.address))
