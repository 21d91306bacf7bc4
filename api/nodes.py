"""What `lianzheng up` prepares before serving, by the kind of node (docs/CONSORTIUM.md):

- the **platform node** (no ``agencies`` in its node.toml): deploys the contracts once and admits the seed
  agencies, holding the keys of every seed agency except those hosted on nodes of their own
  (``external_agencies``: their accounts and BIDs, as their `lianzheng node init --json` printed them);
- an **agency node** (``agencies = [...]``): never deploys nor admits anybody; it needs the consortium's
  deployment.json (`node init --deployment`), reads the members from the chain, and checks that each agency it
  hosts is admitted with the account whose key it holds.

    >>> hosted = prepare_node(settings, node, on_step=print)     # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from api.private_files import private_dir
from api.runtime import key_store
from api.settings import NODE_CONFIG, Settings
from chain.contracts import MemberStatus, Role
from chain.errors import DeploymentError
from registry.consortium.key_backends import KeyBackendKind
from registry.consortium.keys import KeyStore
from registry.consortium.members import ExternalAgency, bootstrap, load_external_agencies, sync_members
from registry.errors import ChainUnavailableError, ConflictError
from registry.node import Node
from registry.store.db import Database

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class NodeConfig:
    """What node.toml records (every key is a Settings field)."""

    agencies: tuple[str, ...]
    rpc_urls: tuple[str, ...]
    key_backend: KeyBackendKind
    pkcs11_module: Path | None
    pkcs11_token: str
    pkcs11_pin_env: str

    def toml(self) -> str:
        # TOML basic strings take JSON's escapes, so json.dumps writes each value safely
        lines = [f"agencies = [{', '.join(json.dumps(a) for a in self.agencies)}]",
                 f"observer = {'false' if self.agencies else 'true'}",
                 f"key_backend = {json.dumps(self.key_backend.value)}"]
        if self.rpc_urls:
            lines.append(f"rpc_urls = {json.dumps(','.join(self.rpc_urls))}")
        if self.key_backend is KeyBackendKind.PKCS11:
            lines += [f"pkcs11_token = {json.dumps(self.pkcs11_token)}",
                      f"pkcs11_pin_env = {json.dumps(self.pkcs11_pin_env)}"]
            if self.pkcs11_module is not None:
                lines.append(f"pkcs11_module = {json.dumps(str(self.pkcs11_module))}")
        return "# written by `lianzheng node init`; LIANZHENG_* variables and flags override it\n" + \
            "\n".join(lines) + "\n"


def node_key_store(settings: Settings) -> KeyStore:
    db = Database(settings.database)
    db.migrate()
    return key_store(settings, db)


def init_node(data_dir: Path, config: NodeConfig, *, deployment: Path | None = None) -> list[dict[str, str]]:
    """Prepare a node's data dir: node.toml, the consortium's deployment.json (if given) and each hosted
    agency's signing key, generated here in the node's own key backend. Returns what the consortium must admit
    (uscc, account, bid, backend per agency)."""
    if (data_dir / NODE_CONFIG).exists():
        raise ConflictError(f"{data_dir / NODE_CONFIG} exists: this data dir is already a node's", code="node_exists")
    private_dir(data_dir)
    (data_dir / NODE_CONFIG).write_text(config.toml())
    if deployment is not None:
        shutil.copyfile(deployment, data_dir / "deployment.json")
    store = node_key_store(Settings(data_dir=data_dir))  # now reading the node.toml just written
    admitted = []
    for uscc in config.agencies:
        account = store.signing_account(uscc) if store.has_signing_key(uscc) else store.create_signing_key(uscc)
        admitted.append({"uscc": uscc, "account": account.address, "bid": store.bid(uscc),
                         "sm2_key": store.sm2_public_key(uscc).hex() if store.has_sm2_key(uscc) else "",
                         "backend": config.key_backend.value})
    return admitted


def external_agencies(settings: Settings) -> dict[str, ExternalAgency]:
    return load_external_agencies(settings.external_agencies) if settings.external_agencies else {}


def hosted_agencies(settings: Settings, node: Node) -> list[str]:
    """The agencies this node acts for: node.toml's list, or (platform) the seed agencies not hosted elsewhere."""
    if not settings.is_platform:
        return list(settings.agencies)
    external = external_agencies(settings)
    return [m.uscc for m in node.seeds.members if m.uscc not in external]


def prepare_node(settings: Settings, node: Node, *, on_step: Callable[[str], None] | None = None) -> list[str]:
    """Make the node ready to serve; returns the agencies it hosts."""
    if settings.is_platform:
        bootstrap(node, on_step=on_step, external=external_agencies(settings))
        hosted = hosted_agencies(settings, node)
        publish_endpoints(settings, node, hosted, on_step=on_step)
        return hosted
    deployment = node.deployment
    if deployment is None:
        raise ChainUnavailableError(f"{settings.deployment_file} is missing: an agency node uses the consortium's "
                                    "deployment (lianzheng node init --deployment FILE)", code="not_deployed")
    try:
        deployment.check(node.backend)
    except DeploymentError as exc:
        raise ChainUnavailableError(f"the consortium's contracts are not on this chain: {exc}",
                                    code="not_deployed") from None
    members = {m.uscc: m for m in sync_members(node)}
    for uscc in settings.agencies:
        account = node.keys.signing_account(uscc).address
        member = members.get(uscc)
        if member is None:
            if on_step:
                on_step(f"{uscc} is not admitted yet: the consortium must admit account {account}")
            continue
        if account.lower() not in {a.lower() for a in member.accounts}:
            raise ConflictError(f"{uscc} is admitted with accounts {list(member.accounts)}, not {account} whose key "
                                "this node holds", code="account_mismatch")
        if on_step:
            on_step(f"hosting {member.name} ({uscc}) with account {account}")
    publish_endpoints(settings, node, settings.agencies, on_step=on_step)
    return list(settings.agencies)


def publish_endpoints(settings: Settings, node: Node, hosted: Sequence[str], *,
                      on_step: Callable[[str], None] | None = None) -> None:
    """Publish this node's public base URL on chain for each active issuing agency it hosts whose endpoint
    differs (other nodes verify its certificates by identifier through it)."""
    if not settings.publish_endpoint:
        return
    consortium = node.consortium
    for uscc in hosted:
        member = consortium.get_member(uscc)
        if member is None or member.status != MemberStatus.ACTIVE or not member.roles & Role.ISSUER:
            continue
        if consortium.endpoint_of(uscc) != settings.public_base:
            consortium.set_endpoint(node.sender_for(uscc), settings.public_base)
            if on_step:
                on_step(f"published {settings.public_base} as the endpoint of {member.name}")
