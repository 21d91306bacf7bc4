"""Domain errors. One root, a subclass per kind of failure; every error carries a machine-readable
`code` (snake_case, stable, shown to API clients) and a human message saying what was expected and
what was found. api/ maps the classes to HTTP statuses in one table.

Where registry code calls chain/, `chain_boundary` turns "the chain cannot be reached" into this package's
one `ChainUnavailableError` (the chain layer has its own, chain.errors.ChainUnavailableError, which never
leaves the registry).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chain import errors as chain_errors


class RegistryError(Exception):
    """Root of every domain error."""

    default_code = "registry_error"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details: dict[str, Any] = dict(details or {})


class ValidationError(RegistryError, ValueError):
    """Input is malformed or breaks a rule (bad USCC, missing field, wrong type code ...)."""

    default_code = "invalid_input"


class PayloadTooLargeError(ValidationError):
    """A request, batch or file is over its limit."""

    default_code = "payload_too_large"


class NotFoundError(RegistryError, LookupError):
    """The identifier names nothing we know."""

    default_code = "not_found"


class AuthenticationError(RegistryError):
    """No credentials, or credentials we do not recognise."""

    default_code = "unauthenticated"


class PermissionDeniedError(RegistryError, PermissionError):
    """The caller is known but may not do this (another agency's record, a missing role)."""

    default_code = "forbidden"


class ConflictError(RegistryError):
    """The request contradicts the current state (already revoked, sealed case, duplicate ...)."""

    default_code = "conflict"


class ChainUnavailableError(RegistryError):
    """The chain could not be reached; the answer is unknown, never valid or invalid."""

    default_code = "chain_unavailable"


class ProofError(RegistryError):
    """A Merkle proof, signature or digest does not check out."""

    default_code = "invalid_proof"


class PayloadFormatError(ValidationError):
    """A QR payload, package or file is not in a format we issue."""

    default_code = "invalid_payload"


class SignatureError(ProofError):
    """A signature is malformed or recovers no key (registry.crypto.signing)."""

    default_code = "bad_signature"


@contextmanager
def chain_boundary(doing: str, *, hint: str = "", code: str = "chain_unavailable") -> Iterator[None]:
    """Run chain reads or writes for ``doing`` ("cannot export the case"); an unreachable chain (chain/'s
    ChainUnavailableError, or an OSError from a dropped connection) becomes `ChainUnavailableError`.

    Also a decorator (``@chain_boundary("reading the index")``). Contract reverts and transaction failures
    pass through: they are answers from the chain, not its absence.
    """
    try:
        yield
    except (chain_errors.ChainUnavailableError, OSError) as exc:
        raise ChainUnavailableError(f"{doing}: 区块链不可达 / chain unreachable ({exc}){hint}", code=code,
                                    details={"reason": type(exc).__name__}) from exc
