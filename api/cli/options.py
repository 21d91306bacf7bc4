"""The options every command that talks to the API shares (`--api-url`, `--api-key`, `--agency`, `--json`),
each overridable by its LIANZHENG_* environment variable, and the HTTP clients they build.

    @app.command()
    def status(ctx: typer.Context, identifier: str, agency: Agency = None, api_url: ApiUrl = None,
               api_key: ApiKey = None, as_json: JsonOpt = False) -> None:
        client = agency_client(state(ctx), api_url, api_key, agency)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli._common import State
from registry.errors import ValidationError

if TYPE_CHECKING:  # httpx loads when a command builds a client, not for `--help`
    from api.cli.client import ApiClient

ApiUrl = Annotated[str | None, typer.Option("--api-url", envvar="LIANZHENG_API_URL",
                                            help="the Lianzheng API (default: the local server)")]
ApiKey = Annotated[str | None, typer.Option("--api-key", envvar="LIANZHENG_API_KEY",
                                            help="agency API key (dev default: <data dir>/api-keys.json)")]
Agency = Annotated[str | None, typer.Option("--agency", envvar="LIANZHENG_AGENCY",
                                            help="acting agency USCC (default: the obvious one, e.g. the issuer "
                                                 "in the identifier)")]
RequiredAgency = Annotated[str, typer.Option("--agency", envvar="LIANZHENG_AGENCY", help="acting agency USCC")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _key(st: State, api_key: str | None, agency: str | None) -> str | None:
    from api.cli.client import dev_api_key

    key = api_key or (dev_api_key(st.settings.data_dir, agency) if agency else None)
    if agency and not key:
        raise ValidationError(f"no API key for agency {agency}: pass --api-key or create one with "
                              f"`lianzheng agency key create {agency}`", code="no_api_key")
    return key


def client_for(st: State, api_url: str | None, api_key: str | None, agency: str | None) -> ApiClient:
    """A client acting as `agency` (its dev key) or as the owner of `api_key`; anonymous without either."""
    from api.cli.client import ApiClient

    return ApiClient(api_url or st.settings.public_base, api_key=_key(st, api_key, agency))


def agency_client(st: State, api_url: str | None, api_key: str | None, agency: str | None) -> ApiClient:
    """As `client_for`, but some agency must act."""
    key = _key(st, api_key, agency)
    if not key:
        raise ValidationError("which agency acts? pass --agency USCC or --api-key", code="no_agency")
    from api.cli.client import ApiClient

    return ApiClient(api_url or st.settings.public_base, api_key=key)


def public_client(st: State, api_url: str | None) -> ApiClient:
    from api.cli.client import ApiClient

    return ApiClient(api_url or st.settings.public_base)
WalletOpt = Annotated[Path | None, typer.Option("--wallet", envvar="LIANZHENG_WALLET",
                                                help="the wallet folder (default: <data dir>/wallet)")]
