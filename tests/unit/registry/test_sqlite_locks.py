"""A second engine on a SQLite file this process already serves keeps the first one's locks (registry/store/db.py
`_private_sqlite_file` never opens an existing file: closing any descriptor of a file drops every POSIX lock the
process holds on it). Checked from another process: it must not think itself the database's last user (which
checkpoints and deletes the write-ahead log under the first engine's feet: 'database disk image is malformed')."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from registry.store.db import make_engine

_OPEN_AND_CLOSE = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=5)
c.execute("SELECT count(*) FROM t").fetchone()
c.close()
"""

def test_another_process_is_not_the_last_user_while_this_one_serves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "node" / "lianzheng.db"
    first = make_engine(f"sqlite:///{path}")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    raw = first.raw_connection()  # this process serves the database (WAL mode, see make_engine)
    try:
        raw.driver_connection.execute("CREATE TABLE t (x)")  # type: ignore[union-attr]
        raw.driver_connection.commit()  # type: ignore[union-attr]
        make_engine(f"sqlite:///{path}").dispose()  # a second node object on the file, in this process
        subprocess.run([sys.executable, "-c", _OPEN_AND_CLOSE, str(path)], check=True, timeout=60)
        assert Path(f"{path}-wal").exists(), "another process checkpointed and removed the log this one uses"
    finally:
        raw.close()
        first.dispose()


def test_an_existing_file_is_narrowed_to_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "lianzheng.db"
    path.write_bytes(b"")
    path.chmod(0o644)
    make_engine(f"sqlite:///{path}").dispose()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
