"""The bounded lane verifications run in (api/routes/verify.py says why): at most N at once, each in a worker
thread, the others waiting their turn on the event loop.

    >>> lane = VerificationLane(2)
    >>> anyio.run(lane.run, len, b"abc")
    3
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")


class VerificationLane:
    """Runs verifications in worker threads, at most ``threads`` at once; the others wait on the event loop.
    One limiter per event loop (an app may be served by several loops in turn: the tests' clients)."""

    def __init__(self, threads: int) -> None:
        if threads < 1:
            raise ValueError(f"verify threads must be at least 1, got {threads}")
        self.threads = threads
        self._limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
            weakref.WeakKeyDictionary())

    def limiter(self) -> anyio.CapacityLimiter:
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            limiter = self._limiters[loop] = anyio.CapacityLimiter(self.threads)
        return limiter

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter())
