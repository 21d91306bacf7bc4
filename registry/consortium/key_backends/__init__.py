"""Where agency signing keys live, behind one seam: a `KeyBackend` generates an agency's secp256k1 key,
gives its public key and signs 32-byte digests as (r, s, recovery id); the private key may never leave it.

- `FileKeyBackend`: keys AES-GCM encrypted under the node's master key in its database (the default).
- `Pkcs11Backend`: keys generated inside a PKCS#11 token (a 密码机 / cloud HSM, SoftHSM2 in tests),
  non-extractable; the node holds only a reference.

`BackendAccount` turns a backend key into what the rest of the code signs with: Ethereum transactions
(chain/sender.py's `TransactionSigner`) and application signatures (registry/crypto/signing.py's `Signer`).

The names load on first use (PEP 562): the backends pull in eth-account, python-pkcs11 and the database
models, which a process that only reads its settings (`lianzheng --help`, api/settings.py) never needs.

    >>> from registry.consortium import key_backends
    >>> key_backends.DEFAULT_PKCS11_MODULE.name
    'libsofthsm2.so'
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.consortium.key_backends.account import BackendAccount
    from registry.consortium.key_backends.base import (
        KeyBackend,
        KeyBackendError,
        KeyBackendKind,
        KeyRef,
        RecoverableSignature,
    )
    from registry.consortium.key_backends.file_backend import FileKeyBackend
    from registry.consortium.key_backends.pkcs11_backend import Pkcs11Backend, Pkcs11Config

# Debian's softhsm2 package (a constant here: reading it loads no backend)
DEFAULT_PKCS11_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")

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


def _module_of(name: str) -> ModuleType:
    if name == "BackendAccount":
        from registry.consortium.key_backends import account

        return account
    if name == "FileKeyBackend":
        from registry.consortium.key_backends import file_backend

        return file_backend
    if name in ("Pkcs11Backend", "Pkcs11Config"):
        from registry.consortium.key_backends import pkcs11_backend

        return pkcs11_backend
    from registry.consortium.key_backends import base

    return base


def __getattr__(name: str) -> Any:
    """The backends and their types, each imported when first asked for (then kept in the module's namespace)."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_module_of(name), name)
    globals()[name] = value
    return value
