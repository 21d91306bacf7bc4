"""Witness processes (``lianzheng witness serve``) started by this machine: for `lianzheng up` (the seed
consortium's three witnesses, supervised with the API by api/supervisor.py), `lianzheng consortium up` and the
tests. Each has its own data dir (its keys, its state, its database), its own chain connections and its own
port, remembered in ``<data dir>/witness.json`` so that its URL, which the gateway pins its vkey under, stays
the same from run to run.

    >>> procs = seed_witnesses(settings, node)       # keys made, accounts registered on the Backbone  # doctest: +SKIP
    >>> start_witnesses(procs)                       # each answers GET /vkey                          # doctest: +SKIP
    >>> ",".join(p.url for p in procs)               # the gateway's LIANZHENG_WITNESS_URLS            # doctest: +SKIP
    >>> for p in procs: p.stop()                                                                        # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from api.private_files import write_private
from api.runtime import build_node, main_backend
from api.settings import Settings
from chain.devnet import free_port
from registry.logs.backbone import connect_backbone, witness_usccs
from registry.logs.cosigning import log_vkeys
from registry.logs.witness import WitnessIdentity, witness_identity
from registry.node import Node

__all__ = ["WITNESS_DIR", "WitnessProcess", "seed_witnesses", "start_witnesses", "witness_env"]

WITNESS_DIR = "witnesses"  # <gateway data dir>/witnesses/<USCC>/ for the witnesses `lianzheng up` starts
PROJECT_ROOT = Path(__file__).resolve().parents[1]
_CONFIG = "witness.json"
# what a witness must not inherit from the environment of the node that starts it: that node's database and
# key token (a witness keeps its own keys in its own data dir), its API settings and its witness list
_NOT_INHERITED = ("LIANZHENG_DATABASE_URL", "LIANZHENG_KEY_BACKEND", "LIANZHENG_PKCS11_TOKEN", "LIANZHENG_PORT",
                  "LIANZHENG_HOST", "LIANZHENG_WITNESS_URLS", "LIANZHENG_WITNESS_QUORUM", "LIANZHENG_DEPLOYMENT")


def witness_env(data_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a witness process: `base` (default: this one) without the starting node's own
    database, key and API settings, with the witness's data dir, and this checkout importable."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _NOT_INHERITED}
    env["LIANZHENG_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


@dataclass
class WitnessProcess:
    """One witness agency's process: `start()` it and wait until it answers, or hand `command()` and `env()` to
    a supervisor; `stop()` it (SIGTERM, then SIGKILL)."""

    agency: str
    data_dir: Path
    rpc_url: str
    deployment: Path
    log_keys: Sequence[str] = ()
    main_rpc_url: str | None = None  # the Backbone's chain; None: the sub-chain
    backbone: Path | None = None  # backbone.json; None: beside the deployment file
    port: int = 0  # 0: the port in <data dir>/witness.json, else a free one (then remembered there)
    poll: float = 1.0
    host: str = "127.0.0.1"
    base_env: Mapping[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        config = self._config()
        if not self.port:
            self.port = int(config.get("port") or free_port(self.host))
        if config.get("port") != self.port or config.get("agency") != self.agency:
            config.update(agency=self.agency, port=self.port)
            write_private(self.data_dir / _CONFIG, json.dumps(config, indent=2))

    def follow(self, deployment: str) -> None:
        """Record the deployment (chain and Backbone) this witness follows. If it followed another one (the
        devnet was reset and redeployed), its C2SP state (the sizes it cosigned of logs that no longer exist)
        is set aside as ``witness-state.<old>.json``: a new chain's logs start again from size 0."""
        config = self._config()
        old = config.get("deployment")
        state = self.data_dir / "witness-state.json"
        if old and old != deployment and state.exists():
            state.rename(self.data_dir / f"witness-state.{str(old).replace(':', '-')}.json")
        if old != deployment:
            write_private(self.data_dir / _CONFIG, json.dumps({**config, "deployment": deployment}, indent=2))

    def _config(self) -> dict[str, Any]:
        path = self.data_dir / _CONFIG
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def settings(self) -> Settings:
        """The witness's own Settings (its data dir and chain; never the starting node's database or token)."""
        return Settings(data_dir=self.data_dir, rpc_urls=self.rpc_url, database_url="", key_backend="file",
                        pkcs11_token="")

    def identity(self) -> WitnessIdentity:
        """Its Backbone account and C2SP vkey, from its own data dir (created there on first use)."""
        node = build_node(self.settings())
        try:
            return witness_identity(node, self.agency)
        finally:
            node.db.engine.dispose()

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "api.cli", "--data-dir", str(self.data_dir), "witness", "serve",
               "--agency", self.agency, "--host", self.host, "--port", str(self.port), "--rpc-url", self.rpc_url,
               "--deployment", str(self.deployment), "--poll", str(self.poll)]
        if self.main_rpc_url:
            cmd += ["--main-rpc-url", self.main_rpc_url]
        if self.backbone is not None:
            cmd += ["--backbone", str(self.backbone)]
        for key in self.log_keys:
            cmd += ["--log-key", key]
        return cmd

    def env(self) -> dict[str, str]:
        return witness_env(self.data_dir, self.base_env)

    def spawn(self) -> WitnessProcess:
        """Start the process (its output goes to <data dir>/witness.log); see `wait_ready`."""
        if not self.log_keys:
            raise ValueError(f"witness {self.agency}: no log keys to trust")
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._log is None:
            self._log = open(self.data_dir / "witness.log", "ab")  # noqa: SIM115 (open while the child runs)
        self.proc = subprocess.Popen(self.command(), cwd=PROJECT_ROOT, env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/vkey", timeout=2) as r:  # noqa: S310 (our own http URL)
                return r.status == 200 and bool(json.loads(r.read()).get("agency") == self.agency)
        except (OSError, ValueError):
            return False

    def wait_ready(self, timeout: float = 90.0) -> WitnessProcess:
        """Until it answers GET /vkey as its agency; RuntimeError if it exits, TimeoutError after `timeout`."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"witness {self.agency} exited with {self.proc.returncode}: {self.log_tail()}")
            if self.answers():
                return self
            time.sleep(0.1)  # polling the condition (the port answering as this witness), bounded by `timeout`
        raise TimeoutError(f"witness {self.agency} did not answer on {self.url} within {timeout:.0f} s")

    def start(self, timeout: float = 90.0) -> WitnessProcess:
        return self.spawn().wait_ready(timeout)

    def log_tail(self, chars: int = 2000) -> str:
        path = self.data_dir / "witness.log"
        return path.read_text(encoding="utf-8", errors="replace")[-chars:] if path.exists() else ""

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM (uvicorn finishes its requests, the Backbone loop its round), SIGKILL after `grace`."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close_log()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None


def start_witnesses(procs: Sequence[WitnessProcess], timeout: float = 90.0) -> list[WitnessProcess]:
    """Start them all at once, then wait until each answers (stopping all of them if one does not)."""
    try:
        for p in procs:
            p.spawn()
        for p in procs:
            p.wait_ready(timeout)
    except BaseException:
        for p in procs:
            p.stop()
        raise
    return list(procs)


def seed_witnesses(settings: Settings, node: Node, *, root: Path | None = None) -> list[WitnessProcess]:
    """The witness processes of this node's witness agencies (the seed consortium's 省司法厅, 哈尔滨中院,
    哈尔滨公证处), each in ``<root or data dir>/witnesses/<USCC>/``: their keys made where missing, their
    accounts registered on the Backbone in place of the agency keys (run by the Backbone owner's node), and
    told to trust this gateway's log keys. Not started."""
    base = (root or settings.data_dir).resolve() / WITNESS_DIR
    backbone_main = main_backend(settings, node)
    main_urls = settings.main_rpc_url_list
    procs = [WitnessProcess(uscc, base / uscc, settings.rpc_url_list[0], settings.deployment_file.resolve(),
                            main_rpc_url=",".join(main_urls) if main_urls else None)
             for uscc in witness_usccs(node)]
    accounts = {p.agency: p.identity().account for p in procs}
    link = connect_backbone(node, backbone_main, witness_accounts=accounts)  # writes backbone.json beside the deployment
    keys = log_vkeys(node)
    deployment = node.require_deployment()  # created_at: a devnet reset redeploys at the same addresses
    followed = f"{deployment.chain_id}:{deployment.created_at}:{link.chain_id}:{link.contract.address}"
    for p in procs:
        p.log_keys = keys
        p.follow(followed)
    return procs
