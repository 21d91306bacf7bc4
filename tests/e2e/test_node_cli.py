"""`lianzheng node init` and `lianzheng keys list --json` from the command line: each node generates its
own agencies' keys (in a file backend or a real SoftHSM2 token), and a node's data dir holds no key of
another node's agency."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from api.runtime import key_store
from api.settings import Settings
from registry.consortium.key_backends.file_backend import FileKeyBackend
from registry.store.db import Database
from tests.support.softhsm import USER_PIN, init_token

LZ = str(Path(sys.executable).parent / "lianzheng")
AGENCY_A = "11230000MB0000001X"  # a seed agency's USCC shape; these nodes never touch a chain
AGENCY_B = "11230000MB1A0001X0"


def _valid(uscc: str) -> str:
    from stdnum.cn import uscc as lib

    body = uscc[:16]
    for c in "0123456789ABCDEFGHJKLMNPQRTUWXY":
        try:
            return str(lib.validate(body + c + lib.calc_check_digit(body + c)))
        except Exception:
            continue
    raise AssertionError("no valid USCC")


def lz(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    p = subprocess.run([LZ, "--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=120,
                       env={**os.environ, **(env or {})})
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def token_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    config = init_token(tmp_path_factory.mktemp("softhsm"), label="node-b")
    return {"SOFTHSM2_CONF": os.environ["SOFTHSM2_CONF"], "NODE_B_PIN": USER_PIN, "TOKEN": config.token_label}


def test_node_init_and_keys_list_round_trip_with_a_token_and_a_file_backend(
        tmp_path: Path, token_env: dict[str, str]) -> None:
    a_uscc, b_uscc = _valid(AGENCY_A), _valid(AGENCY_B)
    node_a, node_b = tmp_path / "node-a", tmp_path / "node-b"
    a = lz(node_a, "node", "init", "--agency", a_uscc, "--key-backend", "file", "--json")
    b = lz(node_b, "node", "init", "--agency", b_uscc, "--key-backend", "pkcs11", "--pkcs11-token",
           token_env["TOKEN"], "--pkcs11-pin-env", "NODE_B_PIN", "--json", env=token_env)
    assert [x["uscc"] for x in a["agencies"]] == [a_uscc] and [x["uscc"] for x in b["agencies"]] == [b_uscc]
    assert all(x["bid"].startswith("did:bid:") for x in a["agencies"] + b["agencies"])

    listed_a = lz(node_a, "keys", "list", "--json")
    listed_b = lz(node_b, "keys", "list", "--json", env=token_env)  # node.toml names the token and PIN variable
    assert listed_a["key_backend"] == "file" and listed_b["key_backend"] == "pkcs11"
    assert [(k["uscc"], k["account"], k["bid"], k["backend"]) for k in listed_a["keys"]] == [
        (a_uscc, a["agencies"][0]["account"], a["agencies"][0]["bid"], "file")]
    assert [(k["uscc"], k["account"], k["bid"], k["backend"]) for k in listed_b["keys"]] == [
        (b_uscc, b["agencies"][0]["account"], b["agencies"][0]["bid"], "pkcs11")]

    # node B's data dir holds nothing of agency A: not its private key in any encoding, not its account
    settings_a = Settings(data_dir=node_a)
    files_a = key_store(settings_a, Database(settings_a.database))
    private_a = bytes(files_a._file.local_account(a["agencies"][0]["account"]).key)
    assert Account.from_key(private_a).address == a["agencies"][0]["account"]
    master_a = bytes.fromhex((node_a / "master.key").read_text().strip())
    needles = {private_a, private_a.hex().encode(), private_a.hex().upper().encode(), base64.b64encode(private_a),
               master_a, master_a.hex().encode(), a["agencies"][0]["account"][2:].lower().encode(),
               a["agencies"][0]["account"][2:].encode(), a_uscc.encode()}
    scanned = 0
    for path in node_b.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            scanned += 1
            for needle in needles:
                assert needle not in content and needle not in content.lower(), f"{path} holds agency A's {needle!r}"
    assert scanned >= 2  # node.toml and the database at least
    # and node B's key store cannot open A's encrypted key even if given its row: B has another master key
    settings_b = Settings(data_dir=node_b)
    assert (node_b / "master.key").read_bytes() != (node_a / "master.key").read_bytes()
    assert FileKeyBackend(Database(settings_b.database), master_key=bytes(32)).list_keys() == []
