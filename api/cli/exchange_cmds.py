"""`lianzheng exchange ...`: data-exchange receipts between agencies (数据共享交换链).

Payload files are hashed locally (streaming): only their SHA-256/SM3, size and record count are recorded.

    lianzheng exchange request --agency 11230000MB1A00044B --item SCJG-001 --purpose 核查涉案企业 --legal-basis ...
    lianzheng exchange authorise EX-SCJG-001-20260315-000001            # as the item's provider
    lianzheng exchange deliver EX-SCJG-001-20260315-000001 payload.jsonl --records 120
    lianzheng exchange acknowledge EX-SCJG-001-20260315-000001 received.jsonl --agency 11230000MB1A00044B
    lianzheng exchange list --agency 11230000MB1A00044B --status unacknowledged
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli._common import State, console, print_json, state
from api.cli.evidence_cmds import hash_file
from api.cli.options import Agency, ApiKey, ApiUrl, JsonOpt, agency_client, public_client

exchange_app = typer.Typer(no_args_is_help=True, help="Data exchanges (数据共享交换): request, authorise, deliver, acknowledge.")


def register(app: typer.Typer) -> None:
    app.add_typer(exchange_app, name="exchange")


def _provider_of(st: State, api_url: str | None, exchange_id: str) -> str:
    """The provider of an exchange: the provider of its catalogue item (EX-<item>-<date>-<serial>)."""
    item = exchange_id.removeprefix("EX-").rsplit("-", 2)[0]
    items = public_client(st, api_url).get("/api/v1/catalogue")["items"]
    return next((i["provider"] for i in items if i["code"] == item), "")


def _done(view: dict[str, Any]) -> str:
    last = (view.get("steps") or [{}])[-1]
    if last.get("state") == "done":
        return f"block {last['block_number']}, tx {last['tx_hash']}"
    return "pending: will be anchored when the chain is reachable"


def _out(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(view)
    else:
        console.print(f"{view['id']}: {view['status']} ({_done(view)})", highlight=False)


@exchange_app.command("request")
def request(ctx: typer.Context,
            item: Annotated[str, typer.Option("--item", help="catalogue item code (GET /api/v1/catalogue)")],
            purpose: Annotated[str, typer.Option("--purpose", help="申请事由")],
            legal_basis: Annotated[str, typer.Option("--legal-basis", help="法律依据")],
            provider: Annotated[str | None, typer.Option("--provider", help="default: the item's provider")] = None,
            operator: Annotated[str | None, typer.Option("--operator", envvar="LIANZHENG_OPERATOR")] = None,
            agency: Agency = None, as_json: JsonOpt = False, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """Request a catalogue item from its provider (your agency is the consumer)."""
    client = agency_client(state(ctx), api_url, api_key, agency)
    _out(client.post("/api/v1/exchanges", {"item": item, "purpose": purpose, "legal_basis": legal_basis,
                                           "provider": provider, "operator_id": operator}), as_json)


@exchange_app.command("authorise")
def authorise(ctx: typer.Context, exchange_id: Annotated[str, typer.Argument(metavar="ID")],
              reason: Annotated[str | None, typer.Option("--reason")] = None,
              agency: Agency = None, as_json: JsonOpt = False, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """Grant a request (as the provider)."""
    st = state(ctx)
    client = agency_client(st, api_url, api_key, agency or (None if api_key else _provider_of(st, api_url, exchange_id)))
    _out(client.post(f"/api/v1/exchanges/{exchange_id}/authorise", {"granted": True, "reason": reason}), as_json)


@exchange_app.command("refuse")
def refuse(ctx: typer.Context, exchange_id: Annotated[str, typer.Argument(metavar="ID")],
           reason: Annotated[str, typer.Option("--reason", help="why (recorded; its digest goes on chain)")],
           agency: Agency = None, as_json: JsonOpt = False, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """Refuse a request (as the provider)."""
    st = state(ctx)
    client = agency_client(st, api_url, api_key, agency or (None if api_key else _provider_of(st, api_url, exchange_id)))
    _out(client.post(f"/api/v1/exchanges/{exchange_id}/refuse", {"reason": reason}), as_json)


@exchange_app.command("deliver")
def deliver(ctx: typer.Context, exchange_id: Annotated[str, typer.Argument(metavar="ID")],
            payload: Annotated[Path, typer.Argument(help="the delivered payload (hashed locally)")],
            records: Annotated[int, typer.Option("--records", min=0, help="number of records delivered")],
            agency: Agency = None, as_json: JsonOpt = False, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """Record a delivery (as the provider, after authorisation): payload digest, size, record count."""
    st = state(ctx)
    d = hash_file(payload)
    client = agency_client(st, api_url, api_key, agency or (None if api_key else _provider_of(st, api_url, exchange_id)))
    _out(client.post(f"/api/v1/exchanges/{exchange_id}/deliver",
                     {"sha256": d.sha256_hex, "sm3": d.sm3_hex, "size": d.size, "records": records}), as_json)


@exchange_app.command("acknowledge")
def acknowledge(ctx: typer.Context, exchange_id: Annotated[str, typer.Argument(metavar="ID")],
                received: Annotated[Path, typer.Argument(help="the payload as received (hashed locally)")],
                agency: Agency = None, as_json: JsonOpt = False, api_url: ApiUrl = None,
                api_key: ApiKey = None) -> None:
    """Confirm receipt (as the consumer): acknowledged if the digest matches the delivery, disputed if not.
    Exit 0 when acknowledged, 1 when disputed."""
    d = hash_file(received)
    client = agency_client(state(ctx), api_url, api_key, agency)
    view = client.post(f"/api/v1/exchanges/{exchange_id}/acknowledge", {"sha256": d.sha256_hex})
    _out(view, as_json)
    raise typer.Exit(1 if view["status"] == "disputed" else 0)


@exchange_app.command("show")
def show(ctx: typer.Context, exchange_id: Annotated[str, typer.Argument(metavar="ID")], agency: Agency = None,
         as_json: JsonOpt = False, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """One exchange with its steps (as a party or an auditor)."""
    st = state(ctx)
    client = agency_client(st, api_url, api_key, agency or (None if api_key else _provider_of(st, api_url, exchange_id)))
    view = client.get(f"/api/v1/exchanges/{exchange_id}")
    if as_json:
        print_json(view)
        return
    console.print(f"[bold]{view['id']}[/] {view['item']['code']} {view['item']['name']}: {view['consumer']['short_name']} "
                  f"<- {view['provider']['short_name']}  status {view['status']}", highlight=False)
    for st_ in view["steps"]:
        console.print(f"  {st_['step']:<11} {st_['state']:<7} {st_['by']} {st_.get('at') or ''} {st_.get('tx_hash') or ''}",
                      highlight=False)


@exchange_app.command("list")
def list_cmd(ctx: typer.Context,
             party: Annotated[str | None, typer.Option("--party", help="exchanges involving this agency")] = None,
             item: Annotated[str | None, typer.Option("--item")] = None,
             status: Annotated[str | None, typer.Option("--status", help="e.g. unacknowledged, disputed, open")] = None,
             limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
             agency: Agency = None, as_json: JsonOpt = False, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """Your exchanges (all, for an auditor), filtered."""
    client = agency_client(state(ctx), api_url, api_key, agency)
    params = {k: v for k, v in {"agency": party, "item": item, "status": status, "limit": limit}.items() if v is not None}
    result = client.get("/api/v1/exchanges", params=params)
    if as_json:
        print_json(result)
        return
    table = Table(title=f"{result['count']} exchanges")
    for col in ("id", "item", "consumer", "provider", "status", "records"):
        table.add_column(col)
    for ex in result["exchanges"]:
        table.add_row(ex["id"], ex["item"]["name"] or ex["item"]["code"], ex["consumer"]["short_name"],
                      ex["provider"]["short_name"], ex["status"], str((ex.get("payload") or {}).get("records") or ""))
    console.print(table)
