"""Files that hold secrets or holder data are the owner's alone: 0600 in 0700 directories, created with
that mode (never written first and narrowed after), and narrowed again at startup for files an older
version left readable.

What counts (the data dir, `var/` by default):

| path                                   | holds                                     | mode |
|----------------------------------------|-------------------------------------------|------|
| `<data dir>/`                          | everything below                          | 0700 |
| `lianzheng.db` (+ `-wal`, `-shm`, `-journal`) | agency keys (encrypted), API key hashes, ciphertexts | 0600 |
| `master.key`                           | the key that encrypts agency keys         | 0600 |
| `api-keys.json`                        | dev API keys in clear                     | 0600 |
| `issued/`, `issued/<id>.json`          | holder documents and their QR keys        | 0700 / 0600 |

Public data may stay world-readable: the devnet's state (`devnet/`, what any node of the chain holds),
`deployment.json`, the trust-list cache and checkpoint links (signed public lists of members and keys).

    >>> import tempfile, stat
    >>> d = Path(tempfile.mkdtemp())
    >>> write_private(d / "issued" / "x.json", "{}")
    >>> oct(stat.S_IMODE((d / "issued" / "x.json").stat().st_mode)), oct(stat.S_IMODE((d / "issued").stat().st_mode))
    ('0o600', '0o700')
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
SECRET_FILES = ("master.key", "api-keys.json", "lianzheng.db", "lianzheng.db-wal", "lianzheng.db-shm",
                "lianzheng.db-journal")
ISSUED_DIR = "issued"


def private_dir(path: Path) -> Path:
    """`path` (and missing parents) as a 0700 directory; an existing one is narrowed to 0700."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR)
    return path


def write_private(path: Path, data: str | bytes) -> None:
    """Write `path` atomically as a 0600 file in a 0700 directory: a temporary file opened with mode 0600
    (O_EXCL, so never a file someone else prepared), fsynced, then renamed over `path`."""
    private_dir(path.parent)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def secure_tree(data_dir: Path) -> None:
    """At startup: the data dir 0700, its secret files 0600, the issued documents 0600 in a 0700 folder."""
    private_dir(data_dir)
    for name in SECRET_FILES:
        _narrow(data_dir / name)
    issued = data_dir / ISSUED_DIR
    if issued.is_dir():
        private_dir(issued)
        for path in issued.iterdir():
            _narrow(path)


def _narrow(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, PRIVATE_FILE)
