"""The one place configuration is read. Every value can be set by a `LIANZHENG_*` environment variable;
CLI flags override them. Library code (chain/, registry/) never reads the environment: it is handed
what it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DEVNET_PORT = 8545


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

    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = ""  # what QR codes point at; default http://<host>:<port>

    batch_size: int = Field(default=1000, ge=1, le=10_000)
    batch_max_age: float = Field(default=2.0, gt=0)
    max_batch_documents: int = 10_000
    max_request_bytes: int = 16 * 1024 * 1024

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

    @property
    def main_rpc_url_list(self) -> list[str]:
        return [u.strip() for u in self.main_rpc_urls.split(",") if u.strip()]

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_prod(self) -> Settings:
        if self.env == "prod" and self.master_key is None:
            raise ValueError("LIANZHENG_MASTER_KEY must be set when LIANZHENG_ENV=prod")
        if self.env == "prod" and not self.rpc_urls:
            raise ValueError("LIANZHENG_RPC_URLS must be set when LIANZHENG_ENV=prod (no managed devnet)")
        return self

    @property
    def rpc_url_list(self) -> list[str]:
        urls = [u.strip() for u in self.rpc_urls.split(",") if u.strip()]
        return urls or [f"http://127.0.0.1:{self.devnet_port}"]

    @property
    def uses_devnet(self) -> bool:
        return not self.rpc_urls.strip()

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'lianzheng.db').resolve()}"

    @property
    def public_base(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def deployment_file(self) -> Path:
        return self.data_dir / "deployment.json"
