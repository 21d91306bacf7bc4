"""`lianzheng seal ...`: an agency's e-seals (电子印章): register (制章), list, suspend, reinstate, revoke.

The image (PNG or SVG) is checked by the server (type, size, dimensions); the seal's SESeal is signed by the
seal maker on the platform node and its digests go on chain by the agency's own key.

    lianzheng seal create --agency 11230000MB1A00028M --name 黑龙江省市场监督管理局行政许可专用章 \\
        --category permit --image seal.png --valid-until 2031-12-31
    lianzheng seal list --agency 11230000MB1A00028M
    lianzheng seal suspend ES11230000MB1A00028M0001 --reason 印章保管人变更 --agency 11230000MB1A00028M
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli._common import console, print_json, state
from api.cli.options import Agency, ApiKey, ApiUrl, JsonOpt, agency_client
from registry.errors import ValidationError
from registry.seals.categories import CATEGORIES

seal_app = typer.Typer(no_args_is_help=True, help="E-seals (电子印章): create, list, suspend, reinstate, revoke.")

SealId = Annotated[str, typer.Argument(metavar="SEAL_ID", help="the seal's id (ES...)")]


def register(app: typer.Typer) -> None:
    app.add_typer(seal_app, name="seal")


def _when(text: str | None, option: str) -> str | None:
    """A date (midnight Beijing time) or an ISO 8601 time with offset, as the API takes it."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time(), dt.timezone(dt.timedelta(hours=8))).isoformat()
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{option} must be a date (2031-12-31) or an ISO 8601 time, got {text!r}",
                              code="invalid_seal_validity") from None
    if value.tzinfo is None:
        raise ValidationError(f"{option} needs a UTC offset (e.g. +08:00)", code="invalid_seal_validity")
    return value.isoformat()


def _line(view: dict[str, Any]) -> str:
    last = (view.get("steps") or [{}])[-1]
    where = (f"block {last['block_number']}, tx {last['tx_hash']}" if last.get("state") == "done"
             else "pending: will be anchored when the chain is reachable")
    return f"{view['id']} {view['name']}: {view['status']} ({where})"


def _out(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(view)
    else:
        console.print(_line(view), highlight=False)


@seal_app.command("create")
def create(ctx: typer.Context,
           name: Annotated[str, typer.Option("--name", help="印章名称")],
           image: Annotated[Path, typer.Option("--image", help="the seal image: PNG or SVG", exists=True,
                                               dir_okay=False, readable=True)],
           valid_until: Annotated[str, typer.Option("--valid-until", help="date or ISO 8601 time")],
           category: Annotated[str, typer.Option("--category", help=", ".join(f"{k} ({v})" for k, v in
                                                                           CATEGORIES.items()))] = "official",
           valid_from: Annotated[str | None, typer.Option("--valid-from", help="default: now")] = None,
           width_mm: Annotated[int, typer.Option("--width-mm")] = 40,
           height_mm: Annotated[int, typer.Option("--height-mm")] = 40,
           agency: Agency = None, as_json: JsonOpt = False, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """Register a seal of your agency (its image, key digest and validity go on chain)."""
    from registry.seals.images import MAX_BYTES  # Pillow: only this command loads it

    if image.stat().st_size > MAX_BYTES:
        raise ValidationError(f"{image} has {image.stat().st_size} bytes; a seal image may have at most {MAX_BYTES}",
                              code="seal_image_too_large")
    body = {"name": name, "category": category, "image": base64.b64encode(image.read_bytes()).decode(),
            "valid_until": _when(valid_until, "--valid-until"), "width_mm": width_mm, "height_mm": height_mm}
    if valid_from is not None:
        body["valid_from"] = _when(valid_from, "--valid-from")
    _out(agency_client(state(ctx), api_url, api_key, agency).post("/api/v1/seals", body), as_json)


@seal_app.command("list")
def list_seals(ctx: typer.Context, agency: Agency = None, as_json: JsonOpt = False, api_url: ApiUrl = None,
               api_key: ApiKey = None) -> None:
    """Your agency's seals."""
    result = agency_client(state(ctx), api_url, api_key, agency).get("/api/v1/seals")
    if as_json:
        print_json(result)
        return
    table = Table("id", "name", "category", "status", "valid until", "image sha256")
    for s in result["seals"]:
        table.add_row(s["id"], s["name"], s["category_name"], s["status"], s["valid_until"], s["image_sha256"][:16])
    console.print(table)


def _change(action: str) -> Any:
    def command(ctx: typer.Context, seal_id: SealId,
                reason: Annotated[str | None, typer.Option("--reason", help="recorded; its digest goes on chain")] = None,
                agency: Agency = None, as_json: JsonOpt = False, api_url: ApiUrl = None,
                api_key: ApiKey = None) -> None:
        client = agency_client(state(ctx), api_url, api_key, agency)
        body = {} if action == "reinstate" else {"reason": reason}
        _out(client.post(f"/api/v1/seals/{seal_id}/{action}", body), as_json)

    command.__doc__ = {"suspend": "Suspend a seal (reversible): sealing with it is refused.",
                       "reinstate": "Reinstate a suspended seal.", "revoke": "Revoke a seal for good."}[action]
    return command


for _action in ("suspend", "reinstate", "revoke"):
    seal_app.command(_action)(_change(_action))
