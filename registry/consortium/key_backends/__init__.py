"""Where agency signing keys live, behind one seam: a `KeyBackend` generates an agency's secp256k1 key,
gives its public key and signs 32-byte digests as (r, s, recovery id); the private key may never leave it.

- `FileKeyBackend`: keys AES-GCM encrypted under the node's master key in its database (the default).
- `Pkcs11Backend`: keys generated inside a PKCS#11 token (a 密码机 / cloud HSM, SoftHSM2 in tests),
  non-extractable; the node holds only a reference.

`BackendAccount` turns a backend key into what the rest of the code signs with: Ethereum transactions
(chain/sender.py's `TransactionSigner`) and application signatures (registry/crypto/signing.py's `Signer`).
"""

from __future__ import annotations

from registry.consortium.key_backends.account import BackendAccount
from registry.consortium.key_backends.base import (
    KeyBackend,
    KeyBackendError,
    KeyBackendKind,
    KeyRef,
    RecoverableSignature,
)
from registry.consortium.key_backends.file_backend import FileKeyBackend
from registry.consortium.key_backends.pkcs11_backend import DEFAULT_PKCS11_MODULE, Pkcs11Backend, Pkcs11Config

__all__ = [
    "DEFAULT_PKCS11_MODULE",
    "BackendAccount",
    "FileKeyBackend",
    "KeyBackend",
    "KeyBackendError",
    "KeyBackendKind",
    "KeyRef",
    "Pkcs11Backend",
    "Pkcs11Config",
    "RecoverableSignature",
]
