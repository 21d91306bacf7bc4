"""API processes that share one listening socket (`lianzheng up --workers N`) take turns to accept, one
connection per turn, so that connections are spread evenly over the processes -- an accept mutex, as nginx's
``accept_mutex``.

Left to the kernel, every process waits on the socket and the first one awake accepts whatever is queued: two
clients that connect together (a gateway's pool of two keep-alive connections, `lianzheng bench verify`'s two
clients) both land on one process half the time, and that process serves both on one core while the others
idle (docs/PERFORMANCE.md: 1,130 documents verified per second against 2,000 when spread). Here only the
process holding the turn waits on the socket; it accepts one connection, gives the turn up and asks for it
again only once another process has taken it, or after `GRACE` when none does.

The turn is an exclusive ``flock`` on a file of the node's data directory, which each process opens itself
(a lock on the inherited socket would be one lock for all of them: flock locks belong to the open file). The
kernel releases it when its holder dies, so a process killed while holding the turn (`kill -9`) stops no
other. Each process waits for the turn in a thread of its own, so the event loop serves its connections
meanwhile.

    >>> server = TurnTakingServer(uvicorn.Config(app), listener, data_dir / "accept.lock")  # doctest: +SKIP
    >>> server.run()                                                                          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import socket
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvicorn

__all__ = ["GRACE", "HANDOVER", "AcceptTurns", "TurnTakingServer"]

HANDOVER = 0.001  # seconds between looks, after a turn, at whether another process has taken the next one
GRACE = 0.02  # seconds after which a process takes the next turn too when no other has (none may be running)


class AcceptTurns:
    """Accepts connections on ``listener`` one per turn of the lock at ``lock_path`` and hands each to
    ``serve``; `run` returns only when cancelled."""

    def __init__(self, listener: socket.socket, lock_path: Path) -> None:
        self.listener = listener
        self.lock_path = lock_path
        self.accepted = 0
        self._asks: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()

    async def run(self, serve: Callable[[socket.socket], Awaitable[None]]) -> None:
        loop = asyncio.get_running_loop()
        self.listener.setblocking(False)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        waiter = threading.Thread(target=self._wait_for_turns, args=(fd,), name="accept-turns", daemon=True)
        waiter.start()
        try:
            while True:
                await self._turn(loop)
                try:
                    conn, _ = await loop.sock_accept(self.listener)
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                self.accepted += 1
                try:
                    await serve(conn)
                except OSError:  # the client went away before its connection was set up
                    conn.close()
                await self._hand_over(loop, fd)
        finally:
            self._asks.put(None)  # the thread closes the file once past the turn it may be waiting for

    async def _hand_over(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        """After a turn, until another process holds the turn (this one then queues behind it), or `GRACE`
        seconds: a waiting process may need a moment to be scheduled, and the one that just accepted would
        otherwise often take the turn back before it (flock does not queue fairly)."""
        deadline = loop.time() + GRACE
        while loop.time() < deadline:
            await asyncio.sleep(HANDOVER)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            fcntl.flock(fd, fcntl.LOCK_UN)  # free: nobody has taken it yet

    async def _turn(self, loop: asyncio.AbstractEventLoop) -> None:
        """Until this process holds the turn. Cancelled meanwhile, the turn taken after is released when `run`'s
        thread closes the file (closing it drops the lock)."""
        got = loop.create_future()

        def taken() -> None:
            if not got.cancelled():
                got.set_result(None)

        def ask() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the process is stopping
                loop.call_soon_threadsafe(taken)

        self._asks.put(ask)
        await got

    def _wait_for_turns(self, fd: int) -> None:
        try:
            while (ask := self._asks.get()) is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
                ask()
        finally:
            os.close(fd)


class TurnTakingServer(uvicorn.Server):
    """A uvicorn server whose connections come from `AcceptTurns` on ``listener`` (the socket `up` bound and
    handed down) instead of a listener of its own; everything else (lifespan, connections, graceful shutdown)
    is uvicorn's."""

    def __init__(self, config: uvicorn.Config, listener: socket.socket, lock_path: Path) -> None:
        super().__init__(config)
        self.turns = AcceptTurns(listener, lock_path)
        self._accepting: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the lifespan; no listener: the turns accept
        config = self.config

        def protocol() -> asyncio.Protocol:  # as uvicorn's own create_protocol
            http: Any = config.http_protocol_class
            made: asyncio.Protocol = http(config=config, server_state=self.server_state, app_state=self.lifespan.state)
            return made

        async def serve(conn: socket.socket) -> None:
            await asyncio.get_running_loop().connect_accepted_socket(protocol, conn)

        self._accepting = asyncio.create_task(self.turns.run(serve), name="accept-turns")

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._accepting is not None:  # stop accepting first, as uvicorn closes its listeners first
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
        self.turns.listener.close()
        await super().shutdown(sockets)
