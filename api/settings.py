"""The one place configuration is read. Every value can be set by a `LIANZHENG_*` environment variable;
CLI flags override them; below both, a data dir's `node.toml` (written by `lianzheng node init`).
Library code (chain/, registry/) never reads the environment: it is handed what it needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from registry.consortium.key_backends import DEFAULT_PKCS11_MODULE

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DEVNET_PORT = 8545
NODE_CONFIG = "node.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIANZHENG_", extra="ignore", frozen=True)

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = Path("var")
    seeds_dir: Path = PROJECT_ROOT / "seeds"

    # chain: the managed devnet unless RPC URLs are given (comma-separated, tried in order with failover)
    rpc_urls: str = ""
    poa: bool = False  # QBFT/Clique chains: inject ExtraDataToPOAMiddleware
    devnet_port: int = DEFAULT_DEVNET_PORT
    rpc_timeout: float = 10.0
    anvil: Path | None = None  # explicit anvil binary

    database_url: str = ""  # default: sqlite in the data dir; postgresql+psycopg://... for several API processes
    master_key: SecretStr | None = None  # encrypts agency keys at rest; dev generates one in the data dir

    # where new agency keys are generated (docs/KEYS.md): "file" (encrypted under the master key in the
    # database) or "pkcs11" (inside a token: a 密码机 / cloud HSM; SoftHSM2 for development)
    key_backend: Literal["file", "pkcs11"] = "file"
    pkcs11_module: Path = DEFAULT_PKCS11_MODULE
    pkcs11_token: str = ""  # the token's label
    pkcs11_pin_env: str = "LIANZHENG_PKCS11_PIN"  # the variable holding the user PIN (never in a file)

    # a node hosting some agencies only (`lianzheng node init` writes them to node.toml): it never deploys nor
    # admits seeds; empty = the platform node (deploys once, hosts every seed agency not in external_agencies)
    agencies: list[str] = []
    observer: bool = False  # a node hosting no agency (an auditor's): it verifies and audits, holds no ledger key
    external_agencies: Path | None = None  # JSON from other nodes' `node init --json`: seed agencies hosted there
    # publish public_base on chain as the endpoint of each issuing agency hosted here (verification by identifier
    # on other nodes asks it: registry/certificates/remote.py)
    publish_endpoint: bool = True

    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = ""  # what QR codes point at; default http://<host>:<port>

    batch_size: int = Field(default=1000, ge=1, le=10_000)
    batch_max_age: float = Field(default=2.0, gt=0)
    max_batch_documents: int = 10_000
    # worker processes validating, building and sealing large issuing requests (registry/certificates/
    # parallel.py); None: cpu_count (at least 1); 0: build in the API process
    build_processes: int | None = Field(default=None, ge=0, le=64)
    max_request_bytes: int = 16 * 1024 * 1024
    # verifications (POST /api/v1/verify) running at once, each in a worker thread; the rest wait on the event
    # loop (api/routes/verify.py: more threads than cores only fight over the interpreter lock)
    verify_threads: int = Field(default=2, ge=1, le=64)

    # logs: JSON lines on stderr, redacted (api/logging.py); one access-log line per request
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = True

    # 星火·链网 backbone, checkpoints and audit (registry/logs/checkpoints.py, registry/audit/replay.py)
    main_rpc_urls: str = ""  # the main chain holding the Backbone, comma-separated; default: the business chain
    main_poa: bool = False
    checkpoint_interval: float = Field(default=60.0, ge=0)  # seconds a ledger event may wait; 0: no gateway here
    checkpoint_events: int = Field(default=1000, ge=1)  # ... or this many waiting events
    checkpoint_deadline: float = Field(default=600.0, gt=0)  # audit: events uncovered longer are a finding
    witness_urls: str = ""  # C2SP witness processes (`lianzheng witness serve`), comma-separated; "": in process
    witness_quorum: int = Field(default=2, ge=1)  # k of those witnesses must cosign before a Backbone submission

    # 国密 (registry/crypto/profiles.py, docs/CRYPTO.md): what new records are signed/sealed with (SM2-SM3
    # proofs, SM4 envelopes and key files, SM2 BIDs in gm); old ones of either profile keep verifying.
    crypto_profile: Literal["gm", "intl"] = "gm"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # node.toml lives in the data dir, so the data dir is known before it is read: flag, then variable
        given = init_settings.init_kwargs.get("data_dir") if isinstance(init_settings, InitSettingsSource) else None
        data_dir = Path(given or os.environ.get("LIANZHENG_DATA_DIR") or "var")
        node_toml = TomlConfigSettingsSource(settings_cls, toml_file=data_dir / NODE_CONFIG)
        return init_settings, env_settings, dotenv_settings, node_toml, file_secret_settings

    @property
    def pkcs11_pin(self) -> str:
        pin = os.environ.get(self.pkcs11_pin_env, "")
        if not pin:
            raise ValueError(f"the PKCS#11 user PIN is read from ${self.pkcs11_pin_env}, which is not set")
        return pin

    @property
    def main_rpc_url_list(self) -> list[str]:
        return [u.strip() for u in self.main_rpc_urls.split(",") if u.strip()]

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_prod(self) -> Settings:
        if self.env == "prod" and self.master_key is None:
            raise ValueError("LIANZHENG_MASTER_KEY must be set when LIANZHENG_ENV=prod")
        if self.key_backend == "pkcs11" and not self.pkcs11_token:
            raise ValueError("LIANZHENG_PKCS11_TOKEN (the token label) must be set with LIANZHENG_KEY_BACKEND=pkcs11")
        if self.env == "prod" and not self.rpc_urls:
            raise ValueError("LIANZHENG_RPC_URLS must be set when LIANZHENG_ENV=prod (no managed devnet)")
        return self

    @property
    def rpc_url_list(self) -> list[str]:
        urls = [u.strip() for u in self.rpc_urls.split(",") if u.strip()]
        return urls or [f"http://127.0.0.1:{self.devnet_port}"]

    @property
    def is_platform(self) -> bool:
        """The platform node deploys the contracts and admits the seed agencies; an agency node does neither."""
        return not self.agencies and not self.observer

    @property
    def uses_devnet(self) -> bool:
        return not self.rpc_urls.strip()

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'lianzheng.db').resolve()}"

    @property
    def resolved_build_processes(self) -> int:
        # lazy: registry.certificates.parallel loads the node and chain stack (web3, eth-account, py_ecc: ~1.5 CPU s),
        # which every CLI command reading its settings (the HTTP clients too) would otherwise import
        from registry.certificates.parallel import default_processes

        return default_processes() if self.build_processes is None else self.build_processes

    @property
    def public_base(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def deployment_file(self) -> Path:
        return self.data_dir / "deployment.json"
