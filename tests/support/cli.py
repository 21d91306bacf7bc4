"""Running `lianzheng` in the tests: as a real process (the installed entry point), or in this process through
`api.cli.main` with its own argv, environment, stdin, stdout and stderr -- the same code path as the entry point
(its error handling, exit codes and one-line diagnoses), without a new interpreter importing the stack again
(about 2 CPU seconds a call on CI's 2 cores, most of the CLI tests' cost).

    p = lz(["evidence", "show", rid, "--json"], env={**os.environ, "LIANZHENG_API_URL": url})
    p = lz(["evidence", "add", ...], env=env, real=True)  # at least one real process per command family

    cli = FirstCallReal()  # per test module: each command family's first call is a real process, the rest in process
    p = cli(["qr", ident, "--out", "a.png"], env=env)

Both return a `subprocess.CompletedProcess[str]` (returncode, stdout, stderr). In process, the command's logs
never mix with the output: structlog keeps writing where it wrote before the call (an API server running in a
thread of this process logs there too, while the command runs), and the command may not reconfigure logging.
Calls are serialised (argv, the environment and the standard streams are the process's).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
from click.testing import CliRunner

LZ = str(Path(sys.executable).parent / "lianzheng")

_LOCK = threading.Lock()


def lz(args: Sequence[str], *, env: Mapping[str, str] | None = None, real: bool = False, cwd: Path | None = None,
       input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`lianzheng ARGS` with `env` as its whole environment (default: this process's)."""
    if real:
        return subprocess.run([LZ, *args], capture_output=True, text=True, env=dict(env) if env is not None else None,
                              cwd=cwd, input=input, timeout=timeout)
    return in_process(args, env=env, cwd=cwd, input=input)


class FirstCallReal:
    """Runs each command family (the first `depth` words of the command: `evidence`, `audit`, `verify` ...) as the
    installed entry point the first time, in process afterwards: every family a module uses is proven once
    through a real process, whatever order its tests run in."""

    def __init__(self, depth: int = 1, *, idle_sqlite: bool = False,
                 always_real: Iterable[tuple[str, ...]] = ()) -> None:
        """`always_real`: commands (their leading words) that always run as real processes, e.g. those that open a
        node on the database of a LocalStack serving in this process; `idle_sqlite`: see `in_process`."""
        self.depth = depth
        self.idle_sqlite = idle_sqlite
        self.always_real = tuple(always_real)
        self.seen: set[tuple[str, ...]] = set()

    def __call__(self, args: Sequence[str], *, env: Mapping[str, str] | None = None, real: bool = False,
                 cwd: Path | None = None, input: str | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        words = _command_words(args)
        command = words[:self.depth]
        real = real or command not in self.seen or any(words[:len(c)] == c for c in self.always_real)
        self.seen.add(command)
        if real:
            return lz(args, env=env, real=True, cwd=cwd, input=input, timeout=timeout)
        return in_process(args, env=env, cwd=cwd, input=input, idle_sqlite=self.idle_sqlite)


def _command_words(args: Sequence[str]) -> tuple[str, ...]:
    words: list[str] = []
    group: Any = _root_command()
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if not words and arg in ("--data-dir", "--rpc-url"):  # the root's options with a value
            rest = rest[1:]
            continue
        if not words and arg.startswith("-"):
            continue
        sub = getattr(group, "commands", {}).get(arg)
        if sub is None:
            break
        words.append(arg)
        group = sub
    return tuple(words)


@functools.cache
def _root_command() -> Any:
    import typer.main

    from api.cli import app

    return typer.main.get_command(app)


def in_process(args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
               input: str | None = None, idle_sqlite: bool = False) -> subprocess.CompletedProcess[str]:
    """`idle_sqlite`: a SQLite database the command opens may be open in this process too, because nothing uses
    it while the command runs (a test's own node, no thread serving it); otherwise that is refused."""
    from api.cli import main

    wanted = dict(os.environ if env is None else env)
    changes: dict[str, str | None] = {k: v for k, v in wanted.items() if os.environ.get(k) != v}
    changes.update({k: None for k in os.environ if k not in wanted})
    with _LOCK, _quiet_logging_config(), _cwd(cwd), _nodes_closed_after(idle_sqlite):
        runner = CliRunner()
        with runner.isolation(input=input, env=changes) as (out, err, _):
            saved_argv = sys.argv
            sys.argv = ["lianzheng", *args]
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = _exit_code(exc.code)
            finally:
                sys.argv = saved_argv
                sys.stdout.flush()
                sys.stderr.flush()
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return subprocess.CompletedProcess([LZ, *args], code, stdout, stderr)


def _exit_code(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # what the interpreter does with sys.exit("message")
    return 1


@contextmanager
def _quiet_logging_config() -> Iterator[None]:
    """Logs keep going where they went before the call (pinned, not to the swapped sys.stdout), and the root
    callback's `logging.basicConfig` / `structlog.configure` (stderr of a real process) change nothing here."""
    saved = structlog.get_config()
    # a PrintLogger given structlog's own `sys.stdout` writes to whatever sys.stdout is when it logs: pin a wrapper
    pinned = {**saved, "logger_factory": structlog.PrintLoggerFactory(file=_Pinned(sys.stdout))} \
        if isinstance(saved.get("logger_factory"), structlog.PrintLoggerFactory) else dict(saved)
    structlog.configure(**pinned)
    configure, basic = structlog.configure, logging.basicConfig
    structlog.configure = lambda *a, **kw: None  # type: ignore[assignment]
    logging.basicConfig = lambda *a, **kw: None  # type: ignore[assignment]
    try:
        yield
    finally:
        structlog.configure, logging.basicConfig = configure, basic  # type: ignore[assignment]
        structlog.configure(**saved)


@contextmanager
def _nodes_closed_after(idle_sqlite: bool) -> Iterator[None]:
    """A node the command builds (`State.node()`) lets go of its database when the command ends, as a process
    would: no connection stays open to a PostgreSQL database a test copies or drops later."""
    import api.runtime

    built: list[Any] = []
    build = api.runtime.build_node

    def recording(settings: Any, *args: Any, **kwargs: Any) -> Any:
        if not idle_sqlite:
            _refuse_a_sqlite_file_open_here(settings.database)
        node = build(settings, *args, **kwargs)
        built.append(node)
        return node

    api.runtime.build_node = recording  # type: ignore[assignment]
    try:
        yield
    finally:
        api.runtime.build_node = build  # type: ignore[assignment]
        for node in built:
            node.db.engine.dispose()


def _refuse_a_sqlite_file_open_here(url: str) -> None:
    """Opening a node on a SQLite file this process already has open (a LocalStack's API in a thread) is what a
    separate process may do, never this one: opening the node opens and closes the file (its 0600 check), and a
    process closing any descriptor of a SQLite file drops every POSIX lock it holds on it -- the API's
    connections' included, which corrupts the database under their writes."""
    if not url.startswith("sqlite:///"):
        return
    path = os.path.realpath(url.removeprefix("sqlite:///"))
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}") == path:
                raise AssertionError(f"this command opens {path}, a SQLite database this process has open: run it "
                                     "as a real process (real=True)")


class _Pinned:
    """A stream that stays the one it was made with, whatever sys.stdout becomes."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return int(self._stream.write(text))

    def flush(self) -> None:
        self._stream.flush()


@contextmanager
def _cwd(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)
