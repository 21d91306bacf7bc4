"""Domain errors. One root, a subclass per kind of failure; every error carries a machine-readable
`code` (snake_case, stable, shown to API clients) and a human message saying what was expected and
what was found. api/ maps the classes to HTTP statuses in one table.
"""

from __future__ import annotations

from typing import Any


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
