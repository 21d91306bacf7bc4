"""The system `openssl` (3.x, which implements SM2/SM3/SM4) as the independent side of the interop tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl binary is not installed")
SM2_ID = "distid:1234567812345678"


def openssl(*args: str | Path, stdin: bytes = b"", check: bool = True) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *map(str, args)], input=stdin, capture_output=True, check=check, timeout=30)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
