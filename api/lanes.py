"""The bounded lane verifications run in (api/routes/verify.py says why): at most N at once, each in a worker
thread, the others waiting their turn on the event loop. The bound is on work, not on waiting: a verification
that asks another node for a record gives its slot back for the request (`outside_the_lane`, entered by
registry/certificates/remote.py), so a slow member node cannot hold every slot.

    >>> lane = VerificationLane(2)
    >>> anyio.run(lane.run, len, b"abc")
    3
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio
import anyio.from_thread
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
        limiter, task = self.limiter(), asyncio.current_task()

        def in_slot() -> T:
            _held.slot = (limiter, task)
            try:
                return fn(*args)
            finally:
                _held.slot = None

        return await anyio.to_thread.run_sync(in_slot, limiter=limiter)


_held = threading.local()  # (limiter, borrowing task) of the slot the current worker thread runs in, if any


@contextlib.contextmanager
def outside_the_lane() -> Iterator[None]:
    """While inside: the current thread's verification slot is free for another verification (the thread waits
    on the network, not on the processor); it is taken back, in turn, on the way out. Outside a lane: nothing."""
    slot = getattr(_held, "slot", None)
    if slot is None:
        yield
        return
    limiter, task = slot
    anyio.from_thread.run_sync(limiter.release_on_behalf_of, task)
    _held.slot = None
    try:
        yield
    finally:
        anyio.from_thread.run(limiter.acquire_on_behalf_of, task)
        _held.slot = slot
