"""Processes sharing one listening socket take turns to accept (api/accept_turns.py): two connections made at
once go to two processes, and a process killed with the turn stops no other. Real processes, a real socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.accept_turns import STUCK
from api.settings import PROJECT_ROOT
from tests.support.turns import wait_for_turns

# Each process answers every connection with its pid and closes it.
_ACCEPTOR = """
import asyncio, os, socket, sys
from pathlib import Path
from api.accept_turns import AcceptTurns

async def main():
    turns = AcceptTurns(socket.socket(fileno=int(sys.argv[1])), Path(sys.argv[2]))
    failing = sys.argv[3:] == ["fail-first"]
    async def serve(conn):
        if failing and turns.accepted == 1:
            raise RuntimeError("a bug in serving the first connection")
        conn.sendall(b"%d" % os.getpid())
        conn.close()
    print("ready", flush=True)
    await turns.run(serve)

asyncio.run(main())
"""


def _start(listener: socket.socket, lock: Path, *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _ACCEPTOR, str(listener.fileno()), str(lock), *extra],
                            pass_fds=(listener.fileno(),), stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _served_by(port: int, n: int) -> list[int]:
    """Open ``n`` connections at once, then read which process answered each."""
    conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
    try:
        return [int(c.recv(32)) for c in conns]
    finally:
        for c in conns:
            c.close()


@pytest.fixture
def listener() -> socket.socket:
    sock = socket.create_server(("127.0.0.1", 0), backlog=64)
    sock.set_inheritable(True)
    yield sock
    sock.close()


def test_connections_made_together_are_spread_over_the_processes(listener: socket.socket, tmp_path: Path) -> None:
    lock = tmp_path / "accept.lock"
    procs = [_start(listener, lock) for _ in range(2)]
    try:
        port = listener.getsockname()[1]
        pairs = []
        for _ in range(10):
            wait_for_turns(lock, 2)  # "ready" comes before a process asks for its first turn
            pairs.append(_served_by(port, 2))
        assert all(len(set(pair)) == 2 for pair in pairs), pairs  # left to the kernel: 3-4 pairs in 10 on one
        assert {pid for pair in pairs for pid in pair} == {p.pid for p in procs}
        wait_for_turns(lock, 2)
        four = _served_by(port, 4)
        assert sorted(four.count(p.pid) for p in procs) == [2, 2], four
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_a_process_killed_while_it_holds_the_turn_stops_no_other(listener: socket.socket, tmp_path: Path) -> None:
    lock = tmp_path / "accept.lock"
    first = _start(listener, lock)
    second = _start(listener, lock)
    try:
        port = listener.getsockname()[1]
        wait_for_turns(lock, 2)
        assert sorted(_served_by(port, 2)) == sorted([first.pid, second.pid])
        first.send_signal(signal.SIGKILL)  # it holds the turn or waits for it: either way the lock goes with it
        first.wait()
        started = time.monotonic()
        assert _served_by(port, 5) == [second.pid] * 5
        assert time.monotonic() - started < 5  # a lone process waits HANDOVER (3 ms) between turns
    finally:
        for p in (first, second):
            p.kill()
            p.wait()


def test_a_stopped_process_holding_the_turn_delays_connections_but_stops_none(listener: socket.socket,
                                                                              tmp_path: Path) -> None:
    lock = tmp_path / "accept.lock"
    procs = [_start(listener, lock) for _ in range(2)]
    try:
        port = listener.getsockname()[1]
        wait_for_turns(lock, 2)
        assert sorted(_served_by(port, 2)) == sorted(p.pid for p in procs)
        for frozen_holds in (True, False):  # freeze the process holding the turn, then the one waiting for it
            holder = wait_for_turns(lock, 2)
            stopped = next(p for p in procs if (p.pid == holder) == frozen_holds)
            other = next(p for p in procs if p is not stopped)
            stopped.send_signal(signal.SIGSTOP)
            try:
                started = time.monotonic()
                assert _served_by(port, 3) == [other.pid] * 3
                took = time.monotonic() - started
            finally:
                stopped.send_signal(signal.SIGCONT)
            assert took < 10 * STUCK, took  # STUCK and a fifth a connection at most (a loaded machine: more)
            if frozen_holds:  # taken out of turn, once nothing moved for STUCK
                assert took >= STUCK, took
        served = []
        for _ in range(5):
            wait_for_turns(lock, 2)
            served += _served_by(port, 2)
        assert {p.pid for p in procs} == set(served)  # both accept again
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_a_connection_that_fails_to_be_served_is_closed_and_the_next_ones_are_accepted(listener: socket.socket,
                                                                                      tmp_path: Path) -> None:
    proc = _start(listener, tmp_path / "accept.lock", "fail-first")
    try:
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as first:
            assert first.recv(32) == b""  # closed unanswered
        assert _served_by(port, 3) == [proc.pid] * 3
    finally:
        proc.kill()
        proc.wait()
