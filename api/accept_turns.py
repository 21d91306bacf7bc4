"""API processes that share one listening socket (`lianzheng up --workers N`) take turns to accept, one
connection per turn, so that connections are spread evenly over the processes -- an accept mutex, as nginx's
``accept_mutex``.

Left to the kernel, every process waits on the socket and the first one awake accepts whatever is queued: two
clients that connect together (a gateway's pool of two keep-alive connections, `lianzheng bench verify`'s two
clients) both land on one process a third of the time or more, and that process serves both on one core while the others
idle (docs/PERFORMANCE.md: 1,130 documents verified per second against 2,000 when spread). Here only the
process holding the turn waits on the socket; it accepts one connection, gives the turn up and asks for it
again `HANDOVER` later, so that a process already waiting for the turn takes it first.

The turn is an exclusive ``flock`` on a file of the node's data directory, which each process opens itself
(a lock on the inherited socket would be one lock for all of them: flock locks belong to the open file). The
kernel releases it when its holder dies, so a process killed while holding the turn (`kill -9`) stops no
other; one that holds it and does not accept (stopped, or its event loop held up) delays a connection by
`STUCK` and a fifth at most: the others accept it out of turn. Each process waits for the turn in a thread of its own, so
the event loop serves its connections meanwhile.

    >>> server = TurnTakingServer(uvicorn.Config(app), listener, data_dir / "accept.lock")  # doctest: +SKIP
    >>> server.run()                                                                          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import select
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
import uvicorn

__all__ = ["HANDOVER", "STUCK", "AcceptTurns", "TurnTakingServer"]

log = structlog.get_logger(__name__)

HANDOVER = 0.003  # seconds a process that has just accepted waits before asking for the next turn, so that one
# already waiting takes it first (flock does not queue fairly): a process alone accepts a connection per HANDOVER
STUCK = 1.0  # seconds a connection may wait while another process holds the turn before this one accepts it too


class AcceptTurns:
    """Accepts connections on ``listener`` one per turn of the lock at ``lock_path`` and hands each to
    ``serve``; `run` returns only when cancelled. A connection left waiting `STUCK` seconds while another
    process holds the turn (stopped, or too busy to accept) is accepted here anyway: a process that cannot
    accept does not stop the others."""

    def __init__(self, listener: socket.socket, lock_path: Path) -> None:
        self.listener = listener
        self.lock_path = lock_path
        self.accepted = 0
        self._asks: queue.SimpleQueue[tuple[float, Callable[[], None]] | None] = queue.SimpleQueue()
        self._asked: asyncio.Future[None] | None = None  # the turn asked for, set once it is held

    async def run(self, serve: Callable[[socket.socket], Awaitable[None]]) -> None:
        loop = asyncio.get_running_loop()
        self.listener.setblocking(False)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        waiter = threading.Thread(target=self._wait_for_turns, args=(fd,), name="accept-turns", daemon=True)
        waiter.start()
        try:
            while True:
                if await self._turn(loop, fd):
                    try:
                        conn, _ = await loop.sock_accept(self.listener)
                    finally:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                else:
                    try:
                        conn, _ = self.listener.accept()
                    except BlockingIOError:  # another process took it meanwhile
                        continue
                self.accepted += 1
                os.pwrite(fd, struct.pack("<qq", os.getpid(), self.accepted), 0)  # progress, for `_turn`'s look
                try:
                    await serve(conn)
                except OSError:  # the client went away before its connection was set up
                    conn.close()
                except Exception as exc:  # a bug: this connection is lost, the next ones are still accepted
                    conn.close()
                    log.error("accepted connection not served", error_type=type(exc).__name__)
        finally:
            if self._asked is not None and self._asked.done():  # held, and never used
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._asks.put(None)  # the thread closes the file once past the turn it may be waiting for

    async def _turn(self, loop: asyncio.AbstractEventLoop, fd: int) -> bool:
        """True once this process holds the turn; False when a connection has waited `STUCK` seconds while
        another process holds it. The turn asked for stays asked for (one request at a time): a later call
        finds it held. If `run` ends first, the turn taken after is released when its thread closes the file
        (closing it drops the lock)."""
        if self._asked is None:
            got = self._asked = loop.create_future()
            after_a_turn = self.accepted > 0

            def taken() -> None:
                if not got.cancelled():
                    got.set_result(None)

            def ask() -> None:
                with contextlib.suppress(RuntimeError):  # the loop is closed: the process is stopping
                    loop.call_soon_threadsafe(taken)

            self._asks.put((HANDOVER if after_a_turn else 0.0, ask))
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(self._asked), STUCK)
            except TimeoutError:
                if not _waiting(self.listener):
                    continue
                # A connection waits. Stuck only if nobody accepts anything for a while longer: the file holds
                # the last accept's (pid, count), which every accept rewrites.
                progress = os.pread(fd, 16, 0)
                await asyncio.wait([self._asked], timeout=STUCK / 5)  # the turn may come meanwhile
                if not self._asked.done() and _waiting(self.listener) and os.pread(fd, 16, 0) == progress:
                    return False
                continue
            self._asked = None
            return True

    def _wait_for_turns(self, fd: int) -> None:
        try:
            while (asked := self._asks.get()) is not None:
                delay, ask = asked
                time.sleep(delay)
                fcntl.flock(fd, fcntl.LOCK_EX)
                ask()
        finally:
            os.close(fd)


def _waiting(listener: socket.socket) -> bool:
    """A connection waits to be accepted (the listening socket is readable)."""
    return bool(select.select([listener], [], [], 0)[0])


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
