"""Witness processes for tests: `lianzheng witness serve` as real subprocesses on free ports, each with its own
data dir, waited on until they answer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from chain.devnet import free_port
from registry.logs.backbone import gateway_uscc
from registry.logs.cosigning import log_origin
from registry.logs.log import LEDGERS
from registry.logs.note import SignatureType
from registry.logs.note_keys import NoteKeys
from registry.node import Node

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def log_vkeys(node: Node) -> list[str]:
    chain_id = node.require_deployment().chain_id
    keys = NoteKeys(node)
    return [keys.key(gateway_uscc(node), SignatureType.ED25519, log_origin(chain_id, ledger)).verifier.vkey()
            for ledger in LEDGERS]


@dataclass
class WitnessProcess:
    agency: str
    data_dir: Path
    rpc_url: str
    deployment: Path
    vkeys: list[str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, deadline: float = 90.0) -> WitnessProcess:
        cmd = [sys.executable, "-m", "api.cli", "witness", "serve", "--agency", self.agency, "--port", str(self.port),
               "--data-dir", str(self.data_dir), "--rpc-url", self.rpc_url, "--deployment", str(self.deployment)]
        for v in self.vkeys:
            cmd += ["--log-key", v]
        env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), LIANZHENG_ENV="test")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "witness.log", "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"witness exited: {(self.data_dir / 'witness.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)  # polling the condition (the port answering), bounded by the deadline
        raise TimeoutError(f"witness on {self.url} did not answer in {deadline}s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
