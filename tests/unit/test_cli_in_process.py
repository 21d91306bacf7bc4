"""tests/support/cli.py: `lianzheng` run in the test process answers as the installed entry point does (exit code,
stdout, one-line stderr), keeps logs out of its output, and refuses to open a node on a SQLite file this
process has open."""

from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

from tests.support import cli as cli_support
from tests.support.cli import FirstCallReal, _command_words, _quiet_logging_config, in_process, lz


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_in_process_and_real_process_answer_alike(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8 not really a photo")
    env = {**os.environ, "LIANZHENG_DATA_DIR": str(tmp_path / "data"), "LIANZHENG_API_URL": _closed_port_url()}
    args = ["evidence", "verify", str(photo), "--json"]
    real, here = lz(args, env=env, real=True), in_process(args, env=env)
    assert real.returncode == here.returncode == 2
    assert real.stdout == here.stdout == ""
    assert real.stderr == here.stderr and len(here.stderr.strip().splitlines()) == 1 and "api_unreachable" in here.stderr
    usage = in_process(["evidence", "add"], env=env)  # a usage error: the same exit code and line as a process
    assert (usage.returncode, usage.stderr) == (lambda p: (p.returncode, p.stderr))(lz(["evidence", "add"], env=env,
                                                                                        real=True))
    assert usage.returncode != 0 and "file" in usage.stderr
    assert "LIANZHENG_API_URL" not in os.environ or os.environ["LIANZHENG_API_URL"] != env["LIANZHENG_API_URL"]


def test_logs_written_during_a_call_stay_out_of_its_output() -> None:
    with _quiet_logging_config(), CliRunner().isolation() as (out, err, _):
        structlog.get_logger("probe").warning("a line from an API thread")
        structlog.configure(logger_factory=structlog.PrintLoggerFactory())  # what the root callback does: ignored
        structlog.get_logger("probe").warning("another")
    assert out.getvalue() == b"" and err.getvalue() == b""


def test_a_node_on_a_sqlite_file_open_here_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    held = sqlite3.connect(data / "lianzheng.db")  # as a LocalStack's API in a thread would hold it
    try:
        p = in_process(["members", "--json"], env={**os.environ, "LIANZHENG_DATA_DIR": str(data)})
    finally:
        held.close()
    assert p.returncode == 1 and "run it as a real process" in p.stderr, p.stderr


def test_each_command_family_runs_once_as_a_real_process(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _command_words(["--data-dir", "x", "-v", "evidence", "add", "f", "--case", "c"]) == ("evidence", "add")
    assert _command_words(["verify", "x"]) == ("verify",)
    calls: list[tuple[str, tuple[str, ...]]] = []
    monkeypatch.setattr(cli_support, "lz", lambda args, **kw: calls.append(("real", tuple(args))))
    monkeypatch.setattr(cli_support, "in_process", lambda args, **kw: calls.append(("here", tuple(args))))
    cli = FirstCallReal(always_real=[("holder", "grant")])
    for args in (["evidence", "add", "f"], ["evidence", "show", "x"], ["holder", "init"], ["holder", "grant", "g"],
                 ["holder", "show"], ["holder", "grant", "h"], ["evidence", "add", "g"]):
        cli(args)
    assert [where for where, _ in calls] == ["real", "here", "real", "real", "here", "real", "here"]
