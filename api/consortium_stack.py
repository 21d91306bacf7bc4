"""`lianzheng consortium up`: a whole local consortium for newcomers and tests, every part a process of its own.

- one devnet (anvil);
- the **platform** node (省政务服务局 and most seed agencies; it deploys the contracts and runs the checkpoint
  gateway);
- **node A** hosting 省公安厅 and 省司法厅 (an admin) with keys in its own encrypted key file;
- **node B** hosting 省市场监管局 (an admin) with its key generated inside a SoftHSM2 token (PKCS#11);
- an **auditor** node hosting no agency (it verifies and audits with no ledger key).

Each agency node generates its own keys (`node init`), the platform admits them with the accounts those nodes
printed, and the admissions that need more approvals than the platform's admins can give are approved by the
admins on nodes A and B with their own keys (governance from each member's own node). Nodes share nothing but
the chain: each has its own data dir, database, key store and API.

    >>> with LocalConsortium(Path("var/consortium")) as c:       # doctest: +SKIP
    ...     c.nodes["a"].url
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from api.nodes import NodeConfig, init_node
from api.private_files import private_dir, write_private
from api.runtime import build_node
from api.settings import NODE_CONFIG, Settings
from chain.devnet import Devnet, free_port
from registry.consortium.key_backends import DEFAULT_PKCS11_MODULE, KeyBackendKind
from registry.consortium.members import open_admissions
from registry.errors import ConflictError
from registry.node import Node

POLICE = "11230000MB1A00044B"  # 省公安厅
JUSTICE = "11230000MB1A00036G"  # 省司法厅 (admin, witness agency)
MARKET = "11230000MB1A00028M"  # 省市场监管局 (admin)
TOKEN_LABEL = "lianzheng-node-b"
PIN_ENV = "LIANZHENG_NODE_B_PIN"


@dataclass
class NodeProcess:
    name: str
    data_dir: Path
    port: int
    agencies: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_keys(self) -> dict[str, str]:
        """The dev API keys `up` wrote for the agencies this node hosts."""
        path = self.data_dir / "api-keys.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir)


class LocalConsortium:
    def __init__(self, root: Path, *, devnet_port: int | None = None, base_port: int | None = None,
                 checkpoint_interval: float = 5.0) -> None:
        self.root = root.resolve()
        self.devnet = Devnet(data_dir=self.root / "chain", port=devnet_port or free_port())
        self.checkpoint_interval = checkpoint_interval
        ports = [base_port + i for i in range(4)] if base_port else [free_port() for _ in range(4)]
        self.nodes = {
            "platform": NodeProcess("platform", self.root / "platform", ports[0]),
            "a": NodeProcess("a", self.root / "node-a", ports[1], (POLICE, JUSTICE)),
            "b": NodeProcess("b", self.root / "node-b", ports[2], (MARKET,)),
            "auditor": NodeProcess("auditor", self.root / "auditor", ports[3]),
        }
        self.pin = os.environ.get(PIN_ENV) or os.urandom(6).hex()

    @property
    def rpc_url(self) -> str:
        return self.devnet.url

    # -- set-up ------------------------------------------------------------------------------------
    def _softhsm(self) -> dict[str, str]:
        """Node B's own SoftHSM2 token (a 密码机 in production): its config, token and PIN variable."""
        util = shutil.which("softhsm2-util")
        if util is None or not DEFAULT_PKCS11_MODULE.is_file():
            raise ConflictError("SoftHSM2 is missing: apt-get install -y softhsm2 (make test installs it)",
                                code="softhsm_missing")
        where = self.root / "node-b-token"
        conf = where / "softhsm2.conf"
        env = {"SOFTHSM2_CONF": str(conf), PIN_ENV: self.pin}
        if not conf.exists():
            (where / "tokens").mkdir(parents=True, exist_ok=True)
            conf.write_text(f"directories.tokendir = {where / 'tokens'}\nobjectstore.backend = file\n"
                            "log.level = ERROR\n")
            subprocess.run([util, "--init-token", "--free", "--label", TOKEN_LABEL, "--pin", self.pin,
                            "--so-pin", os.urandom(8).hex()], check=True, capture_output=True,
                           env={**os.environ, **env})
            write_private(where / "pin", self.pin)
        else:
            self.pin = (where / "pin").read_text().strip()
            env[PIN_ENV] = self.pin
        return env

    def _init_nodes(self) -> list[dict[str, str]]:
        """`node init` for the agency and auditor nodes (once); returns the agencies the platform must admit.
        Node B's runs as a process of its own: the PKCS#11 module reads its token config when first loaded."""
        external: list[dict[str, str]] = []
        self.nodes["b"].env = self._softhsm()
        for n in (self.nodes["a"], self.nodes["b"], self.nodes["auditor"]):
            if n.name == "b":
                if not (n.data_dir / NODE_CONFIG).exists():
                    self.lz("b", "node", "init", "--agency", *n.agencies, "--rpc-url", self.rpc_url, "--key-backend",
                            "pkcs11", "--pkcs11-token", TOKEN_LABEL, "--pkcs11-pin-env", PIN_ENV)
                listed = json.loads(self.lz("b", "keys", "list", "--json"))["keys"]
                external += [{"uscc": k["uscc"], "account": k["account"], "bid": k["bid"], "sm2_key": k["sm2_key"]}
                             for k in listed if k["active"]]
                continue
            if not (n.data_dir / NODE_CONFIG).exists():
                init_node(n.data_dir, NodeConfig(agencies=n.agencies, rpc_urls=(self.rpc_url,),
                                                 key_backend=KeyBackendKind.FILE, pkcs11_module=None,
                                                 pkcs11_token="", pkcs11_pin_env=PIN_ENV))
            node = self._node(n.name)
            external += [{"uscc": u, "account": node.keys.signing_account(u).address, "bid": node.keys.bid(u),
                          "sm2_key": node.keys.sm2_public_key(u).hex() if node.keys.has_sm2_key(u) else ""}
                         for u in n.agencies]
            node.db.engine.dispose()
        write_private(self.root / "external-agencies.json", json.dumps({"agencies": external}, indent=2))
        return external

    def lz(self, name: str, *args: str, timeout: float = 120.0) -> str:
        """Run `lianzheng` on one node's data dir, as that node's operator would; returns stdout."""
        n = self.nodes[name]
        p = subprocess.run([sys.executable, "-m", "api.cli", "--data-dir", str(n.data_dir), *args],
                           env={**os.environ, **n.env}, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise ConflictError(f"lianzheng {' '.join(args[:3])} on node {name} failed: {p.stderr.strip()[-400:]}",
                                code="node_command_failed")
        return p.stdout

    def _node(self, name: str) -> Node:
        """A node's parts in this process (platform, A and the auditor: file keys only)."""
        assert name != "b", "node B's token is used by its own processes only"
        return build_node(self.nodes[name].settings())

    def _bootstrap(self) -> None:
        """Deploy and admit: the platform proposes and approves with its own admins; admins on nodes A and B
        approve what is still short of approvals from their own nodes, with their own keys."""
        platform = self.nodes["platform"]
        private_dir(platform.data_dir)
        write_private(platform.data_dir / NODE_CONFIG,
                      f'rpc_urls = "{self.rpc_url}"\nexternal_agencies = "{self.root / "external-agencies.json"}"\n'
                      f"checkpoint_interval = {self.checkpoint_interval}\n")
        node = self._node("platform")
        from api.nodes import prepare_node  # the platform's own preparation: deploy, admit, publish endpoints

        for _round in range(len(node.seeds.members) + 1):
            prepare_node(platform.settings(), node)
            deployment = platform.data_dir / "deployment.json"
            for n in (self.nodes["a"], self.nodes["b"], self.nodes["auditor"]):
                shutil.copyfile(deployment, n.data_dir / "deployment.json")
            pending = self._pending_admissions(node)
            if not pending:
                break
            other = self._node("a")  # node A's admin (省司法厅) approves from node A, with its own key
            if other.consortium.get_member(JUSTICE) is not None:
                for pid in pending:
                    if not other.consortium.has_approved(pid, JUSTICE):
                        other.consortium.approve(other.sender_for(JUSTICE), pid)
            else:  # 省司法厅's own admission waits for 省市场监管局, whose key is in node B's token: node B approves
                for pid in pending:
                    if other.consortium.get_proposal(pid).uscc == JUSTICE:
                        self.lz("b", "consortium", "approve", str(pid), "--as", MARKET)
            other.db.engine.dispose()
        node.db.engine.dispose()

    @staticmethod
    def _pending_admissions(node: Node) -> list[int]:
        """Open ADMIT proposals of agencies not admitted yet."""
        return [pid for (uscc, _), pid in open_admissions(node).items() if node.consortium.get_member(uscc) is None]

    # -- processes ---------------------------------------------------------------------------------
    def _start(self, n: NodeProcess) -> None:
        env = {**os.environ, **n.env, "LIANZHENG_DATA_DIR": str(n.data_dir), "LIANZHENG_ENV": "dev"}
        log = open(n.data_dir / "node.log", "ab")  # noqa: SIM115 (closed with the process)
        n.proc = subprocess.Popen([sys.executable, "-m", "api.cli", "up", "--port", str(n.port)], env=env,
                                  stdout=log, stderr=log, start_new_session=True)
        log.close()

    def _wait(self, n: NodeProcess, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if n.proc is not None and n.proc.poll() is not None:
                tail = (n.data_dir / "node.log").read_bytes()[-1500:].decode(errors="replace")
                raise RuntimeError(f"node {n.name} exited: {tail}")
            try:
                with socket.create_connection(("127.0.0.1", n.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"node {n.name} did not start in {timeout:.0f} s") from None
                time.sleep(0.1)

    def __enter__(self) -> LocalConsortium:
        self.root.mkdir(parents=True, exist_ok=True)
        self.devnet.start()
        try:
            self._init_nodes()
            self._bootstrap()
            for n in self.nodes.values():
                self._start(n)
            for n in self.nodes.values():
                self._wait(n)
        except BaseException:
            self.__exit__()
            raise
        return self

    def stop_node(self, name: str) -> None:
        n = self.nodes[name]
        if n.proc is not None and n.proc.poll() is None:
            n.proc.terminate()
            try:
                n.proc.wait(20)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait(5)

    def __exit__(self, *exc: object) -> None:
        for name in self.nodes:
            self.stop_node(name)
        self.devnet.stop()
