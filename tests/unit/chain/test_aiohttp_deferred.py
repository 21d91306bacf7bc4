"""aiohttp stays unimported in a process that imports web3 through the chain layer, and web3's asynchronous
provider works as before the first time it is used: it reads a real anvil, and it retries and then raises
aiohttp's own error on a port where nothing listens (chain/_aiohttp_deferred.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import start_anvil


def _run(code: str, *args: str) -> dict[str, Any]:
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    net = start_anvil(tmp_path_factory.mktemp("aiohttp") / "data")
    try:
        yield net
    finally:
        net.stop()


def test_an_api_process_imports_web3_without_aiohttp() -> None:
    seen = _run("""
        import json, sys
        import api.app, registry.node, web3
        from web3.providers.rpc import async_rpc
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("aiohttp", "yarl", "multidict", "frozenlist"))
        print(json.dumps({"loaded": loaded, "aiohttp": type(sys.modules["aiohttp"]).__name__,
                          "session": async_rpc.ClientSession.__module__}))
    """)
    assert seen == {"loaded": ["aiohttp"], "aiohttp": "_StandIn", "session": "chain._aiohttp_deferred"}


@pytest.mark.anvil
def test_the_async_provider_reads_the_chain_and_web3_then_holds_the_real_classes(anvil: Any) -> None:
    seen = _run("""
        import asyncio, json, sys
        import chain
        from web3 import AsyncHTTPProvider, AsyncWeb3, HTTPProvider, Web3
        from web3._utils import http_session_manager
        from web3.providers.rpc import async_rpc
        from web3.utils import async_exception_handling

        async def read():
            w3 = AsyncWeb3(AsyncHTTPProvider(sys.argv[1]))
            try:
                return await w3.eth.chain_id, await w3.eth.get_balance(w3.to_checksum_address("0x" + "00" * 20))
            finally:
                await w3.provider.disconnect()

        chain_id, balance = asyncio.run(read())
        import aiohttp
        held = [m.ClientSession is aiohttp.ClientSession for m in (async_rpc, http_session_manager,
                                                                    async_exception_handling)]
        print(json.dumps({"chain_id": chain_id, "sync_chain_id": Web3(HTTPProvider(sys.argv[1])).eth.chain_id,
                          "balance": balance, "aiohttp": type(sys.modules["aiohttp"]).__name__, "held": held,
                          "error": async_rpc.ClientError is aiohttp.ClientError,
                          "timeout": http_session_manager.ClientTimeout is aiohttp.ClientTimeout}))
    """, anvil.url)
    assert seen["chain_id"] == seen["sync_chain_id"] and isinstance(seen["balance"], int)
    assert seen["aiohttp"] == "module" and seen["held"] == [True, True, True]
    assert seen["error"] is True and seen["timeout"] is True


def test_a_refused_connection_is_retried_and_raised_as_aiohttps_error(tmp_path: Path) -> None:
    """The provider's retry settings took ClientError before any session existed (the stand-in class): the real
    error is caught by it all the same, so every try is made, and the last error is aiohttp's."""
    seen = _run("""
        import asyncio, json, sys
        from chain.devnet import free_port
        from web3 import AsyncHTTPProvider

        provider = AsyncHTTPProvider(f"http://127.0.0.1:{free_port()}")
        settings = provider.exception_retry_configuration  # made now, as on a first request: with the stand-in
        settings.backoff_factor = 0.01
        tries = []
        post = provider._request_session_manager.async_make_post_request

        async def counted(*args, **kwargs):
            tries.append(1)
            return await post(*args, **kwargs)

        provider._request_session_manager.async_make_post_request = counted

        async def call():
            try:
                await provider.make_request("eth_chainId", [])
            except Exception as exc:
                return exc
            finally:
                await provider.disconnect()

        error = asyncio.run(call())
        import aiohttp
        print(json.dumps({"tries": len(tries), "retries": settings.retries,
                          "error": type(error).__module__ + "." + type(error).__name__,
                          "is_client_error": isinstance(error, aiohttp.ClientError),
                          "standin_in_settings": settings.errors[0].__module__}))
    """)
    assert seen["standin_in_settings"] == "chain._aiohttp_deferred"
    assert seen["tries"] == seen["retries"] == 5
    assert seen["is_client_error"] is True and seen["error"].startswith("aiohttp.")


def test_a_module_that_imported_the_stand_in_module_holds_the_real_one_after_first_use() -> None:
    seen = _run("""
        import json, sys, types
        import chain
        holder = types.ModuleType("holder")
        sys.modules["holder"] = holder
        exec("import aiohttp\\nfrom aiohttp import ClientTimeout", holder.__dict__)
        stand_in = holder.aiohttp
        before = type(stand_in).__name__
        timeout = holder.ClientTimeout(total=3)  # made through the stand-in class: the real import happens here
        import aiohttp
        print(json.dumps({"before": before, "module": holder.aiohttp is aiohttp, "cls": holder.ClientTimeout is
                          aiohttp.ClientTimeout, "made": type(timeout) is aiohttp.ClientTimeout,
                          "old_name_answers": stand_in.ClientSession is aiohttp.ClientSession,
                          "web": __import__("aiohttp.web").web.Application.__name__}))
    """)
    assert seen == {"before": "_StandIn", "module": True, "cls": True, "made": True, "old_name_answers": True,
                    "web": "Application"}
