"""Who holds the accept turn of `api.accept_turns` and who waits for it, read from the kernel's /proc/locks, so
that tests wait on that condition instead of sleeping: a process that has printed "ready" (or logged uvicorn's
"Application startup complete") has not yet asked for the turn."""

from __future__ import annotations

import os
import time
from pathlib import Path


def turn_state(lock: Path) -> tuple[int | None, set[int]]:
    """The pid holding the flock on ``lock`` (None when nobody does) and the pids blocked waiting for it."""
    st = lock.stat()
    file_id = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    holder, waiters = None, set()
    for line in Path("/proc/locks").read_text().splitlines():
        # "1: FLOCK  ADVISORY  WRITE 4372 00:2f:1234 0 EOF", a blocked request: "1: -> FLOCK  ADVISORY ..."
        parts = line.split()
        blocked = len(parts) > 1 and parts[1] == "->"
        if blocked:
            del parts[1]
        if len(parts) < 6 or parts[1] != "FLOCK" or parts[5] != file_id:
            continue
        if blocked:
            waiters.add(int(parts[4]))
        else:
            holder = int(parts[4])
    return holder, waiters


def wait_for_turns(lock: Path, processes: int, timeout: float = 60) -> int:
    """Wait until one process holds the turn and ``processes - 1`` others wait for it; return the holder's pid."""
    deadline = time.monotonic() + timeout
    while True:
        if lock.exists():
            holder, waiters = turn_state(lock)
            if holder is not None and len(waiters - {holder}) == processes - 1:
                return holder
        if time.monotonic() > deadline:
            raise AssertionError(f"no turn taking among {processes} processes on {lock} after {timeout:.0f} s")
        time.sleep(0.005)
