"""Errors raised by the chain layer. One root, a subclass per kind of failure.

The chain layer knows transactions, accounts and contract errors, not certificates: the registry
translates these into domain errors at its boundary.
"""

from __future__ import annotations

from typing import Any


class ChainError(Exception):
    """Root of every error raised by `chain`."""


class CompileError(ChainError):
    """The Solidity compiler failed or its output was unusable."""


class ArtifactError(ChainError):
    """A compiled artifact is missing, malformed or does not match its source."""


class ChainUnavailableError(ChainError, ConnectionError):
    """No JSON-RPC endpoint answered."""


class TransactionError(ChainError):
    """A transaction could not be sent or was not mined in time."""


class TransactionTimeoutError(TransactionError, TimeoutError):
    """A receipt did not arrive within the timeout."""


class DeploymentError(ChainError):
    """deployment.json is missing, for another chain, or its contracts are gone."""


class DevnetError(ChainError):
    """The managed anvil devnet could not be started, stopped or reached."""


class ContractRevertError(ChainError):
    """A contract call reverted.

    `name` is the custom error's name (``ConsortiumUnauthorized``) when it could be decoded against
    the ABI, else ``"Revert"``; `args` maps the error's parameter names to decoded values.
    """

    def __init__(self, name: str, args: dict[str, Any] | None = None, *, contract: str = "", raw: bytes = b"") -> None:
        self.name = name
        self.args_by_name: dict[str, Any] = dict(args or {})
        self.contract = contract
        self.raw = raw
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in self.args_by_name.items())
        where = f"{contract}: " if contract else ""
        super().__init__(f"{where}{name}({rendered})")


def _render(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return repr(value) if isinstance(value, str) else str(value)
