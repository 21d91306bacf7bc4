"""A SoftHSM2 token of its own for a test session: a private config (SOFTHSM2_CONF) with its own token
directory, one token initialised with softhsm2-util. Missing softhsm2 is a failure with the fix in it,
never a skip (`make test` installs it)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from registry.consortium.key_backends import DEFAULT_PKCS11_MODULE, Pkcs11Backend, Pkcs11Config

TOKEN_LABEL = "lianzheng-test"
SPARE_LABEL = "lianzheng-spare"  # never logged in to: for the wrong-PIN test
USER_PIN = "246810"
SO_PIN = "13579111"


def require_softhsm() -> str:
    util = shutil.which("softhsm2-util")
    assert util is not None and DEFAULT_PKCS11_MODULE.is_file(), (
        "SoftHSM2 is missing: install it with `apt-get install -y softhsm2` (make test does: make system-deps)")
    return util


def init_token(where: Path, label: str = TOKEN_LABEL) -> Pkcs11Config:
    """Point this process's SoftHSM2 at a fresh token directory under ``where`` and create one token there.
    The environment variable must be set before the module is first loaded (C_Initialize reads it)."""
    util = require_softhsm()
    tokens = where / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = where / "softhsm2.conf"
    if "SOFTHSM2_CONF" in os.environ and Path(os.environ["SOFTHSM2_CONF"]) != conf:
        tokens = Path(os.environ["SOFTHSM2_CONF"]).parent / "tokens"  # already loaded in this process: reuse
        conf = Path(os.environ["SOFTHSM2_CONF"])
    else:
        conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
        os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run([util, "--init-token", "--free", "--label", label, "--pin", USER_PIN, "--so-pin", SO_PIN],
                   check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)})
    return Pkcs11Config(module=DEFAULT_PKCS11_MODULE, token_label=label, user_pin=USER_PIN)


@functools.cache
def shared_backend() -> Pkcs11Backend:
    """This test process's token, opened once. SoftHSM2 sees only the tokens that existed when the module
    was first initialised, and PKCS#11 login is per process, so every in-process test shares one token
    (made, with a spare one, before the first load) and one logged-in backend."""
    where = Path(tempfile.mkdtemp(prefix="softhsm-"))
    config = init_token(where, TOKEN_LABEL)
    init_token(where, SPARE_LABEL)
    return Pkcs11Backend(config)
