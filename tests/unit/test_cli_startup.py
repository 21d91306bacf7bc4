"""The `lianzheng` command starts without the heavy stack (issue 16): building the command tree and printing any
command's `--help` loads no web3, eth-account, SQLAlchemy, FastAPI, uvicorn, pyHanko, fpdf2 ... and a command that
only talks to a node over HTTP loads none of the chain, database or web-server modules either.

Structural, not timed: each check runs in a fresh interpreter (a subprocess, so that nothing this test session
imported counts) and reads `sys.modules` afterwards. The modules load inside the commands that need them
(api/cli/*.py, `State.node()` in api/cli/_common.py, registry/consortium/key_backends/__init__.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# never needed to build the command tree or print help
HEAVY = ("web3", "eth_account", "eth_keyfile", "eth_abi", "eth_keys", "py_ecc.bls", "fastapi", "starlette", "uvicorn",
         "pyhanko", "fpdf", "sqlalchemy", "alembic", "psycopg", "pkcs11", "httpx", "PIL", "segno", "zxingcpp", "numpy",
         "cbor2", "pydantic_settings", "api.app", "api.runtime", "api.settings", "chain.backends", "chain.contracts",
         "registry.node", "registry.store.db", "registry.audit.replay", "registry.logs.log")
# never needed by a command that only talks to a node's HTTP API
CHAIN_DB_WEB = ("web3", "eth_account", "eth_keyfile", "py_ecc.bls", "fastapi", "starlette", "uvicorn", "pyhanko", "fpdf",
                "sqlalchemy", "alembic", "pkcs11", "chain.backends", "registry.node", "registry.store.db")

_HELP_EVERYWHERE = """
import json, sys
import typer
from typer.testing import CliRunner
from api.cli import app

def walk(command, path):
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from walk(sub, [*path, name])

runner, failed, paths = CliRunner(), [], list(walk(typer.main.get_command(app), []))
for path in paths:
    result = runner.invoke(app, [*path, "--help"], prog_name="lianzheng")
    if result.exit_code != 0 or "Usage:" not in result.output:
        failed.append([path, result.exit_code, result.output[-200:]])
loaded = sorted(m for m in json.loads(sys.argv[1]) if m in sys.modules)
print(json.dumps({"helps": len(paths), "failed": failed, "loaded": loaded}))
"""

_RUN_MAIN = """
import json, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["lianzheng", *json.loads(sys.argv[1])]
from api.cli import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}), file=sys.__stdout__)
"""


def _python(tmp_path: Path, code: str, *args: str) -> tuple[dict[str, object], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIANZHENG_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "120"}
    for name in ("LIANZHENG_API_URL", "LIANZHENG_API_KEY", "LIANZHENG_AGENCY", "LIANZHENG_RPC_URLS"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300)
    assert done.stdout.strip(), done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _closed_port_url() -> str:
    """A local URL nobody listens on: the command fails to connect (exit 2, one line) after doing its imports."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_every_help_page_builds_without_the_heavy_stack(tmp_path: Path) -> None:
    out, _ = _python(tmp_path, _HELP_EVERYWHERE, json.dumps(HEAVY))
    assert out["failed"] == []
    assert int(str(out["helps"])) > 80  # the whole tree was walked (root, groups and every command)
    assert out["loaded"] == []


def test_the_installed_entry_point_prints_help_without_the_heavy_stack(tmp_path: Path) -> None:
    """`python -m api.cli --help` runs `main()` as `lianzheng --help` does."""
    out, _ = _python(tmp_path, _RUN_MAIN, json.dumps(["--help"]), json.dumps(HEAVY))
    assert out == {"code": 0, "loaded": []}


IDENTIFIER = "1.2.156.3005.2.11100000MB0143028R001.11230000MB1A00028M.000000000001.001.E"


@pytest.mark.parametrize("args", [
    ["verify", IDENTIFIER],
    ["revoke", IDENTIFIER, "--reason", "1", "--api-key", "k"],
    ["evidence", "verify", "{file}"],
    ["evidence", "show", "EV-XZZF-20260315-000001", "--api-key", "k"],
    ["exchange", "list", "--api-key", "k"],
    ["seal", "list", "--api-key", "k"],
    ["usage", "list", "--agency", "11230000MB1A00044B", "--api-key", "k"],
    # no --api-key: the command reads its settings (api/settings.py) for the agency's key, finds none, refuses
    ["exchange", "list", "--agency", "11230000MB1A00044B"],
], ids=["verify", "revoke", "evidence-verify", "evidence-show", "exchange-list", "seal-list", "usage-list",
        "exchange-list-settings"])
def test_http_commands_load_no_chain_database_or_web_server(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8 not really a photo")
    argv = [a.replace("{file}", str(tmp_path / "photo.jpg")) for a in args] + ["--api-url", _closed_port_url()]
    out, stderr = _python(tmp_path, _RUN_MAIN, json.dumps(argv), json.dumps(CHAIN_DB_WEB))
    expected = "no_api_key" if "--agency" in args and "--api-key" not in args else "api_unreachable"
    assert out["code"] == 2 and expected in stderr, stderr  # it got as far as the HTTP request (or the key lookup)
    assert out["loaded"] == []


def test_the_api_app_loads_the_pdf_stack_only_for_a_sealed_pdf(tmp_path: Path) -> None:
    """Every API server process and every test that builds an app imports api.app; only `?format=pdf` needs
    pyHanko and fpdf2 (tests/integration/test_seal_pdf.py serves that PDF and validates it)."""
    out, _ = _python(tmp_path, "import json, sys, api.app\n"
                     "print(json.dumps({'loaded': sorted(m for m in sys.argv[1].split(',') if m in sys.modules)}))",
                     "pyhanko,pyhanko_certvalidator,fpdf,fontTools,py_ecc.bls12_381.bls12_381_pairing")
    assert out == {"loaded": []}
