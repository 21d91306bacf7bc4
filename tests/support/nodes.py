"""A second Lianzheng node on the chain of a `LocalStack` (issue 11: nodes share nothing but the chain).

`AgencyNode` is one deployment of its own: its own data dir, database, key store and API (uvicorn in a thread),
connected to the stack's devnet with the stack's deployment file copied in. It hosts one NEW agency whose
signing key is generated in this node's key store and which the consortium admits through governance (an ADMIT
proposal from one of the stack's admins, approved by the others until the threshold, executed): the stack's
node never sees the new agency's key, and this node never holds a key of the stack's agencies.

    with LocalStack(tmp / "a") as a, AgencyNode(tmp / "b", a) as b:
        plain_http.get(b.url + "/api/v1/evidence?role=incoming", headers=b.auth())
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from api.app import create_app
from api.runtime import build_node
from api.settings import Settings
from api.stack import LocalStack
from chain.contracts import Action, ConsortiumClient, Role
from chain.devnet import free_port
from registry.consortium.members import sync_members
from registry.node import Node
from tests.support import postgres

NEW_AGENCY = "91230100MA1CXQ2T7L"  # a well-formed USCC of no seed member
DEV_FUNDS = 10**21


def admit(stack_node: Node, uscc: str, name: str, bid: str, account: str, roles: Role) -> int:
    """Admit a member through governance with the admin keys the stack's node holds: one admin proposes,
    the others approve until `requiredApprovals()`, the proposer executes. Returns the proposal id."""
    consortium = stack_node.consortium
    admins = [m.uscc for m in stack_node.seeds.members if "admin" in m.roles and stack_node.keys.has_signing_key(m.uscc)]
    data = ConsortiumClient.admit_data(name, bid, [account], int(roles))
    proposal = consortium.propose(stack_node.sender_for(admins[0]), Action.ADMIT, uscc, data)
    for other in admins[1:consortium.required_approvals()]:
        consortium.approve(stack_node.sender_for(other), proposal)
    consortium.execute(stack_node.sender_for(admins[0]), proposal)
    return proposal


class AgencyNode:
    """A node hosting one new agency, admitted on the stack's chain, serving its own API."""

    def __init__(self, data_dir: Path, stack: LocalStack, *, uscc: str = NEW_AGENCY, name: str = "哈尔滨市中级人民法院",
                 roles: Role = Role.EVIDENCE | Role.EXCHANGE, port: int | None = None, **settings: Any) -> None:
        self.data_dir = data_dir
        self.stack = stack
        self.uscc = uscc
        self.name = name
        self.roles = roles
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings.setdefault("database_url", postgres.database_url(data_dir))  # SQLite, or PostgreSQL (--db)
        self.settings = Settings(data_dir=data_dir, port=self.port, env="test", rpc_urls=stack.devnet.url,
                                 checkpoint_interval=0, **settings)
        self.server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.api_key = ""

    def __enter__(self) -> AgencyNode:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.stack.settings.deployment_file, self.settings.deployment_file)
        self.node = build_node(self.settings)
        self.account = self.node.keys.create_signing_key(self.uscc).address
        self.node.backend.fund(self.account, DEV_FUNDS)
        admit(self.stack.node, self.uscc, self.name, self.node.keys.bid(self.uscc), self.account, self.roles)
        sync_members(self.node)
        sync_members(self.stack.node)
        self.api_key = self.node.keys.create_api_key(self.uscc, label="agency-node")
        self.app = create_app(self.node, self.settings)
        self.services = self.app.state.services
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the agency node's API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
        self.node.db.engine.dispose()

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll until `probe()` is truthy (the other node's inbox has applied the event)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
