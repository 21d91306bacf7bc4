"""Builds the running system from Settings (the only module that turns configuration into objects)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from api.private_files import private_dir, secure_tree
from api.settings import Settings
from chain.backends import ChainBackend, RpcBackend
from chain.devnet import Devnet
from registry.consortium.key_backends import KeyBackendKind, Pkcs11Backend, Pkcs11Config
from registry.consortium.keys import KeyStore
from registry.crypto.profiles import CryptoProfile
from registry.errors import ValidationError
from registry.node import Node
from registry.store.db import Database


def master_key(settings: Settings) -> bytes:
    """LIANZHENG_MASTER_KEY (base64 or hex of 32 bytes); in dev/test a key generated once in the data dir."""
    if settings.master_key is not None:
        raw = settings.master_key.get_secret_value().strip()
        for decode in (bytes.fromhex, lambda s: base64.b64decode(s, validate=True)):
            try:
                key = decode(raw)
            except ValueError:
                continue
            if len(key) == 32:
                return key
        raise ValidationError("LIANZHENG_MASTER_KEY must be 32 bytes in hex or base64", code="invalid_master_key")
    path = settings.data_dir / "master.key"
    if not path.exists():
        private_dir(settings.data_dir)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex())
    return bytes.fromhex(path.read_text().strip())


def devnet(settings: Settings) -> Devnet:
    return Devnet(data_dir=settings.data_dir, port=settings.devnet_port, binary=settings.anvil)


def backend(settings: Settings) -> RpcBackend:
    return RpcBackend(settings.rpc_url_list, poa=settings.poa, timeout=settings.rpc_timeout)


def secure_data_dir(settings: Settings) -> None:
    """The data dir 0700 and the secrets in it 0600, whatever an older version left (api/private_files.py)."""
    secure_tree(settings.data_dir)


def token(settings: Settings) -> Pkcs11Backend | None:
    """The PKCS#11 token holding agency keys, when one is configured (docs/KEYS.md)."""
    if not settings.pkcs11_token:
        return None
    return Pkcs11Backend(Pkcs11Config(module=settings.pkcs11_module, token_label=settings.pkcs11_token,
                                      user_pin=settings.pkcs11_pin))


def build_node(settings: Settings) -> Node:
    secure_data_dir(settings)
    node = Node.open(
        db=Database(settings.database),
        master_key=master_key(settings),
        seeds_dir=Path(settings.seeds_dir),
        backend=backend(settings),
        deployment_file=settings.deployment_file,
    )
    node.keys = key_store(settings, node.db)  # with its token, if any (Node.open builds the file-only one)
    return node


def key_store(settings: Settings, db: Database) -> KeyStore:
    return KeyStore(db, master_key=master_key(settings), token=token(settings),
                    default_backend=KeyBackendKind(settings.key_backend),
                    profile=CryptoProfile(settings.crypto_profile))


def main_backend(settings: Settings, node: Node) -> ChainBackend:
    """The main chain holding the Backbone: `main_rpc_urls`, else the business chain itself."""
    urls = settings.main_rpc_url_list
    if not urls or urls == settings.rpc_url_list:
        return node.backend
    return RpcBackend(urls, poa=settings.main_poa, timeout=settings.rpc_timeout)
