"""The registry's one ChainUnavailableError: chain/'s is translated at the boundary, reverts pass through."""

from __future__ import annotations

import pytest

from chain import errors as chain_errors
from registry.errors import ChainUnavailableError, chain_boundary


def test_an_unreachable_chain_becomes_the_registry_error() -> None:
    with pytest.raises(ChainUnavailableError, match="cannot read the head: .*chain unreachable") as err:
        with chain_boundary("cannot read the head"):
            raise chain_errors.ChainUnavailableError("no JSON-RPC endpoint answered")
    assert err.value.code == "chain_unavailable"
    assert isinstance(err.value.__cause__, chain_errors.ChainUnavailableError)


def test_a_dropped_connection_becomes_the_registry_error_with_the_given_code_and_hint() -> None:
    with pytest.raises(ChainUnavailableError, match="use --offline$") as err:
        with chain_boundary("cannot check online", hint="; use --offline", code="offline_only"):
            raise ConnectionResetError("reset by peer")
    assert err.value.code == "offline_only"


def test_a_revert_is_an_answer_not_an_outage() -> None:
    with pytest.raises(chain_errors.ContractRevertError):
        with chain_boundary("calling"):
            raise chain_errors.ContractRevertError("ConsortiumUnauthorized")


def test_it_also_decorates_a_function() -> None:
    @chain_boundary("syncing")
    def sync() -> None:
        raise chain_errors.ChainUnavailableError("down")

    with pytest.raises(ChainUnavailableError, match="syncing"):
        sync()
