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


def __getattr__(name: str) -> Any:
    """The backends and their types, imported when first asked for (then cached in the module's namespace)."""
    if name == "BackendAccount":
        from registry.consortium.key_backends.account import BackendAccount as value
    elif name in ("KeyBackend", "KeyBackendError", "KeyBackendKind", "KeyRef", "RecoverableSignature"):
        from registry.consortium.key_backends import base

        value = getattr(base, name)
    elif name == "FileKeyBackend":
        from registry.consortium.key_backends.file_backend import FileKeyBackend as value
    elif name in ("Pkcs11Backend", "Pkcs11Config"):
        from registry.consortium.key_backends import pkcs11_backend

        value = getattr(pkcs11_backend, name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
