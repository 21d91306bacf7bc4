"""Files holding secrets or holder data are 0600 in 0700 directories (issue 10, item 6): the documents and QR
keys `lianzheng issue` saves, the SQLite database and its WAL files, the master key and the dev API keys;
created with those modes, and narrowed at startup when an older version left them readable."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from api.runtime import build_node
from api.settings import Settings
from api.stack import LocalStack
from chain.devnet import DEVNET_CHAIN_ID
from registry.store.db import Database

pytestmark = pytest.mark.anvil

LZ = [sys.executable, "-m", "api.cli"]
SECRETS = ("lianzheng.db", "lianzheng.db-wal", "lianzheng.db-shm", "master.key", "api-keys.json")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("files") / "var", batch_max_age=0.2) as s:
        yield s


def test_issued_documents_and_their_keys_are_owner_only(stack: LocalStack, tmp_path: Path) -> None:
    env = {**os.environ, "LIANZHENG_DATA_DIR": str(stack.data_dir), "LIANZHENG_API_URL": stack.url,
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    ct = next(t for t in stack.node.seeds.certificate_types if t.name == "营业执照")
    sample = subprocess.run([*LZ, "sample", "--type", ct.code, "--count", "3"], env=env, capture_output=True,
                            text=True, check=True).stdout
    (tmp_path / "docs.json").write_text(sample, encoding="utf-8")
    old_umask = os.umask(0o022)  # a usual umask: files would be 0644 unless created 0600
    try:
        issued = subprocess.run([*LZ, "issue", "--agency", ct.issuers[0], "--type", ct.code, str(tmp_path / "docs.json"),
                                 "--json"], env=env, capture_output=True, text=True)
    finally:
        os.umask(old_umask)
    assert issued.returncode == 0, issued.stderr
    ids = [json.loads(line)["id"] for line in issued.stdout.splitlines()]
    folder = stack.data_dir / "issued"
    assert mode(folder) == 0o700
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == sorted(f"{i}.json" for i in ids)
    for f in files:
        assert mode(f) == 0o600
        saved = json.loads(f.read_text(encoding="utf-8"))
        assert "#" in saved["qr_url"]  # the decryption key is in there: hence 0600
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_the_database_keys_and_data_dir_are_owner_only(stack: LocalStack) -> None:
    assert mode(stack.data_dir) == 0o700
    for name in SECRETS:
        path = stack.data_dir / name
        if name.endswith(("-wal", "-shm")) and not path.exists():
            continue  # only while a connection is open
        assert mode(path) == 0o600, name
    assert (stack.data_dir / "lianzheng.db-wal").exists()  # the API's connections are open: WAL files checked


def test_startup_narrows_files_an_older_version_left_readable(tmp_path: Path) -> None:
    data = tmp_path / "old"
    (data / "issued").mkdir(parents=True)
    os.chmod(data, 0o755)
    os.chmod(data / "issued", 0o755)
    loose = [data / "issued" / "1.2.156.json", data / "api-keys.json", data / "master.key"]
    for path in loose:
        path.write_text("{}" if path.suffix == ".json" else os.urandom(32).hex())
        os.chmod(path, 0o644)
    db = data / "lianzheng.db"
    db.touch(mode=0o644)
    os.chmod(db, 0o644)
    node = build_node(Settings(data_dir=data, env="test"))  # what every command and the server do first
    try:
        assert mode(data) == 0o700 and mode(data / "issued") == 0o700
        for path in [*loose, db]:
            assert mode(path) == 0o600, path
        with node.db.session() as s:  # SQLite's WAL files inherit the database file's mode
            s.execute(text("create table if not exists t (x int)"))
        assert mode(data / "lianzheng.db-wal") == 0o600
    finally:
        node.db.engine.dispose()


def test_a_new_database_is_created_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        db = Database(f"sqlite:///{tmp_path / 'new' / 'x.db'}")
        db.migrate()
    finally:
        os.umask(old_umask)
    assert mode(tmp_path / "new") == 0o700
    assert mode(tmp_path / "new" / "x.db") == 0o600
    assert mode(tmp_path / "new" / "x.db-wal") == 0o600
    db.engine.dispose()


def test_make_run_uses_lianzheng_data_dir_when_it_is_set() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("LIANZHENG_DATA_DIR", "DATA_DIR", "MAKEFLAGS")}

    def dry_run(**extra: str) -> str:
        out = subprocess.run(["make", "-n", "-s", "--no-print-directory", "-o", "install", "run"], cwd=root,
                             env={**env, **extra}, capture_output=True, text=True, check=True).stdout
        return out.strip().splitlines()[-1]

    assert dry_run().endswith("--data-dir var up")
    assert dry_run(LIANZHENG_DATA_DIR="/srv/lianzheng").endswith("--data-dir /srv/lianzheng up")


def test_the_readme_states_the_devnet_chain_id() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"chain id {DEVNET_CHAIN_ID} by default" in readme and "31337 by default" not in readme
