"""A whole local system in one process: a devnet on a free port, a bootstrapped node, the API served
by uvicorn in a thread, and one API key per agency. Used by `lianzheng bench` and by the tests that
drive the CLI and the browser against real HTTP. For benchmarks the API runs in processes of its own
(``server_process=True``): one, or ``api_processes`` sharing one listening socket as `lianzheng up --workers N`
runs them (with a PostgreSQL ``database_url``; one of them leads: registry/store/leader.py).

    >>> with LocalStack(Path("/tmp/lz")) as stack:          # doctest: +SKIP
    ...     httpx.get(stack.url + "/healthz")
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from api.app import create_app
from api.nodes import prepare_node
from api.private_files import write_private
from api.runtime import build_node
from api.settings import Settings
from api.supervisor import api_commands
from chain.devnet import Devnet, free_port


class LocalStack:
    def __init__(self, data_dir: Path, *, port: int | None = None, devnet_port: int | None = None,
                 devnet: Devnet | None = None, server_process: bool = False, api_processes: int = 1,
                 **settings: Any) -> None:
        if api_processes > 1 and not (server_process and str(settings.get("database_url", "")).startswith("postgresql")):
            raise ValueError("several API processes need server_process=True and a PostgreSQL database_url")
        self.data_dir = data_dir
        self.port = port or free_port()
        self.devnet_port = devnet_port or (devnet.port if devnet else free_port())
        settings.setdefault("publish_endpoint", False)  # one transaction per issuer: only the tests that need it
        self.settings = Settings(data_dir=data_dir, port=self.port, devnet_port=self.devnet_port, env="test",
                                 **settings)
        self.devnet = devnet or Devnet(data_dir=data_dir, port=self.devnet_port)
        self._own_devnet = devnet is None
        # In a separate process the server does not share the GIL with the caller (benchmarks): the
        # caller's node then reads the same database, and `services`/`app` are not available.
        self.server_process = server_process
        self.api_processes = api_processes
        self._extra_settings = settings
        self._procs: list[subprocess.Popen[bytes]] = []
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.api_keys: dict[str, str] = {}

    def __enter__(self) -> LocalStack:
        self.devnet.start()
        try:
            self._start()
        except BaseException:  # `with` calls __exit__ only after __enter__ returns: stop what this one started
            self.__exit__(None, None, None)  # (a SIGTERM's SystemExit during the bootstrap's seconds, too)
            raise
        return self

    def _start(self) -> None:
        self.node = build_node(self.settings)
        hosted = prepare_node(self.settings, self.node)
        self.api_keys = {uscc: self.node.keys.create_api_key(uscc, label="stack") for uscc in hosted}
        write_private(self.data_dir / "api-keys.json", json.dumps(self.api_keys, indent=2))
        if self.server_process:
            self._start_process()
            return
        self.app = create_app(self.node, self.settings)
        self.services = self.app.state.services
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)

    def _start_process(self) -> None:
        env = {**os.environ, "LIANZHENG_DATA_DIR": str(self.data_dir), "LIANZHENG_PORT": str(self.port),
               "LIANZHENG_DEVNET_PORT": str(self.devnet_port), "LIANZHENG_ENV": "test"}
        env.update({f"LIANZHENG_{k.upper()}": str(v) for k, v in self._extra_settings.items()})
        commands, listener = api_commands("127.0.0.1", self.port, self.api_processes)  # as `up --workers N` does
        try:
            # Their logs (JSON lines, one per request) go to a file: a pipe nobody drains would fill and block it.
            # Each is recorded as soon as it runs, so that __exit__ stops it whatever interrupts the others' start.
            with open(self.log_file, "ab") as log:
                for command in commands:
                    self._procs.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log,
                                                        pass_fds=() if listener is None else (listener.fileno(),)))
        finally:
            if listener is not None:
                listener.close()  # the processes hold it now
        deadline = time.monotonic() + 120  # a loaded machine (2 cores, many test runs) imports slowly
        while True:
            if any(proc.poll() is not None for proc in self._procs):
                err = self.log_file.read_bytes()[-2000:].decode(errors="replace")
                raise RuntimeError(f"an API server process exited: {err[-500:]}")
            if self._serving():
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the API server processes did not start")
            time.sleep(0.05)

    def _serving(self) -> bool:
        """Every API process serves: one accepts a connection, several have each logged uvicorn's "Application
        startup complete" (with one shared socket a connection would not say which process took it)."""
        if self.api_processes == 1:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False
        lines = self.log_file.read_bytes().decode(errors="replace").count("Application startup complete")
        return lines >= self.api_processes

    @property
    def log_file(self) -> Path:
        """The server process's log (server_process=True): JSON lines, redacted (api/logging.py)."""
        return self.data_dir / "server.log"

    @property
    def server_pid(self) -> int | None:
        """The first API process's (server_process=True)."""
        return self._procs[0].pid if self._procs else None

    @property
    def server_pids(self) -> list[int]:
        return [proc.pid for proc in self._procs]

    @property
    def server_running(self) -> bool:
        """Every API process started by this stack still runs (server_process=True)."""
        return bool(self._procs) and all(proc.poll() is None for proc in self._procs)

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.server is not None:
            self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
        if self._own_devnet:
            self.devnet.stop()

    def auth(self, uscc: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_keys[uscc]}"}


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0
