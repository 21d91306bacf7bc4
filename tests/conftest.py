"""Shared fixtures. Nodes are factories around a real chain: in-process eth-tester, or a real anvil
process on a free port with its own data dir (never 8545). A bootstrapped chain is built once per
session and each test runs on a snapshot that is reverted afterwards, with a fresh copy of the database.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from chain.backends import ChainBackend, EthTesterBackend, RpcBackend
from registry.consortium.members import bootstrap
from registry.node import Node
from registry.store.db import Database
from tests.support import durations, postgres

# Property tests judge results, not speed (speed lives in `lianzheng bench`): hypothesis's default deadline of
# 200 ms per example fails a correct test on a loaded machine, and CI's 2 cores run the suite beside other work.
settings.register_profile("lianzheng", deadline=None)
settings.load_profile("lianzheng")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEEDS = PROJECT_ROOT / "seeds"
MASTER_KEY = bytes(range(32))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", choices=("sqlite", "postgresql"), default=None,
                     help="the database every node of the tests uses (default: $LIANZHENG_TEST_DB or sqlite); "
                     "postgresql starts a cluster of the session's own (tests/support/postgres.py)")


def pytest_configure(config: pytest.Config) -> None:
    chosen = config.getoption("--db")
    if chosen:  # the variable reaches subprocesses and xdist workers too
        os.environ["LIANZHENG_TEST_DB"] = chosen
    postgres.selected_database()  # refuses a misspelt LIANZHENG_TEST_DB before any test runs


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The heaviest test files first (tests/support/durations.py says why). On PostgreSQL, without the in-process
    chain's variants of `chain_node` tests: they prove the node on eth-tester, which the SQLite run does, and their
    database work is the anvil variants' (the in-process chain's bootstrap alone took ~10 s of that run)."""
    if postgres.selected_database() == "postgresql":
        dropped = [item for item in items
                   if getattr(item, "callspec", None) is not None and item.callspec.params.get("chain_node") == "eth-tester"]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            gone = set(dropped)
            items[:] = [item for item in items if item not in gone]
    durations.order_by_weight(items, durations.weights())


def pytest_sessionfinish(session: pytest.Session) -> None:
    postgres.stop_session_cluster()


@pytest.fixture(scope="session")
def postgres_cluster() -> postgres.PostgresCluster:
    """The session's PostgreSQL cluster (started on first use; fails, never skips, without the binaries)."""
    try:
        return postgres.session_cluster()
    except postgres.PostgresMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def postgres_db(postgres_cluster: postgres.PostgresCluster) -> str:
    """A fresh, empty PostgreSQL database for one test module: its SQLAlchemy URL."""
    return postgres_cluster.create_database()


@dataclass
class ChainTemplate:
    """A bootstrapped chain plus the database and deployment file that go with it."""

    backend: ChainBackend
    db_url: str  # a SQLite file, or a PostgreSQL database nobody stays connected to (copied per test)
    deployment_file: Path
    devnet: Any = None

    def snapshot(self) -> Any:
        if isinstance(self.backend, EthTesterBackend):
            return self.backend.snapshot()
        return self.backend.raw("evm_snapshot", [])  # type: ignore[attr-defined]

    def revert(self, snap: Any) -> None:
        if isinstance(self.backend, EthTesterBackend):
            self.backend.revert(snap)
        else:
            self.backend.raw("evm_revert", [snap])  # type: ignore[attr-defined]

    def node(self, tmp: Path) -> Node:
        """A node on this chain with its own copy of the template database."""
        tmp.mkdir(parents=True, exist_ok=True)
        deployment = tmp / "deployment.json"
        shutil.copy(self.deployment_file, deployment)
        return Node.open(db=Database(postgres.copy_database(self.db_url, tmp)), master_key=MASTER_KEY, seeds_dir=SEEDS,
                         backend=self.backend, deployment_file=deployment)


def _build_template(backend: ChainBackend, where: Path) -> ChainTemplate:
    where.mkdir(parents=True, exist_ok=True)
    deployment = where / "deployment.json"
    node = Node.open(db=Database(postgres.database_url(where)), master_key=MASTER_KEY, seeds_dir=SEEDS,
                     backend=backend, deployment_file=deployment)
    bootstrap(node)
    node.db.close()  # nobody connected: PostgreSQL copies a template only then
    return ChainTemplate(backend, node.db.url, deployment)


@pytest.fixture(scope="session")
def eth_tester_template(tmp_path_factory: pytest.TempPathFactory) -> ChainTemplate:
    return _build_template(EthTesterBackend(), tmp_path_factory.mktemp("eth-tester"))


def start_anvil(data_dir: Path, **kwargs: Any) -> Any:
    from chain.devnet import Devnet, free_port

    net = Devnet(data_dir=data_dir, port=kwargs.pop("port", None) or free_port(), **kwargs)
    net.start()
    return net


@pytest.fixture(scope="session")
def anvil_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainTemplate]:
    where = tmp_path_factory.mktemp("anvil")
    net = start_anvil(where / "data")
    try:
        template = _build_template(RpcBackend(net.url), where)
        template.devnet = net
        yield template
    finally:
        net.stop()


@pytest.fixture(params=["eth-tester", "anvil"])
def chain_node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Node]:
    """The same test on both backends (parametrised)."""
    template: ChainTemplate = request.getfixturevalue(
        "eth_tester_template" if request.param == "eth-tester" else "anvil_template")
    yield from _node_on(template, tmp_path)


@pytest.fixture
def anvil_node(anvil_template: ChainTemplate, tmp_path: Path) -> Iterator[Node]:
    yield from _node_on(anvil_template, tmp_path)


@pytest.fixture
def eth_node(eth_tester_template: ChainTemplate, tmp_path: Path) -> Iterator[Node]:
    yield from _node_on(eth_tester_template, tmp_path)


def _node_on(template: ChainTemplate, tmp_path: Path) -> Iterator[Node]:
    snap = template.snapshot()
    node = template.node(tmp_path / "node")
    try:
        yield node
    finally:
        node.db.engine.dispose()
        template.revert(snap)


@pytest.fixture
def fresh_anvil(tmp_path: Path) -> Iterator[Any]:
    """A devnet of its own (for tests that kill and restart the node)."""
    net = start_anvil(tmp_path / "devnet-data")
    try:
        yield net
    finally:
        try:
            net.stop()
        except Exception:
            net.kill()


@dataclass
class Api:
    """The ASGI app over real HTTP semantics (Starlette's TestClient runs the lifespan: the worker runs)."""

    client: Any
    node: Node
    services: Any
    keys: dict[str, str]

    def auth(self, uscc: str) -> dict[str, str]:
        if uscc not in self.keys:
            self.keys[uscc] = self.node.keys.create_api_key(uscc)
        return {"Authorization": f"Bearer {self.keys[uscc]}"}


def make_api(node: Node, tmp_path: Path, **settings: Any) -> Iterator[Api]:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    cfg = Settings(data_dir=tmp_path, env="test", batch_max_age=0.2, **settings)
    app = create_app(node, cfg)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, node, app.state.services, {})


@pytest.fixture
def api(anvil_node: Node, tmp_path: Path) -> Iterator[Api]:
    yield from make_api(anvil_node, tmp_path / "api")


os.environ.setdefault("LIANZHENG_ENV", "test")
