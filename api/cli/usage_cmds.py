"""`lianzheng usage ...` (用证记录, 免证办) and `lianzheng indicators usage-rate` (电子证照用证率).

A grant is given as the file the holder's wallet wrote (`lianzheng holder grant ... --out grant.json`), or as its
QR text (``lianzheng:grant:...``) in the file; a presentation as the JSON file the holder's wallet signed.

    lianzheng usage record 1.2.156.3005.2.... --grant grant.json --purpose 办理企业开办 --agency 11230000MB1A00044B
    lianzheng usage fetch 1.2.156.3005.2.... --grant grant.json --purpose 办理社保转移 --out document.json
    lianzheng usage list --agency 11230000MB1A00044B
    lianzheng indicators usage-rate --by type
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli._common import console, err_console, print_json, state
from api.cli.options import ApiKey, ApiUrl, JsonOpt, RequiredAgency, agency_client, public_client
from registry.errors import ValidationError

usage_app = typer.Typer(no_args_is_help=True, help="Usage records (用证记录) and 免证办 fetches, with the holder's consent.")
indicators_app = typer.Typer(no_args_is_help=True, help="Plan indicators (电子证照用证率).")

MAX_SIGNED_FILE = 256 * 1024

GrantFile = Annotated[Path | None, typer.Option("--grant", help="the holder-signed grant (JSON, or its QR text)")]
PresentationFile = Annotated[Path | None, typer.Option("--presentation", help="the holder's signed presentation (JSON)")]
Purpose = Annotated[str, typer.Option("--purpose", help="the matter (申请事由); only a salted digest goes on chain")]
Operator = Annotated[str | None, typer.Option("--operator", envvar="LIANZHENG_OPERATOR")]


def register(app: typer.Typer) -> None:
    app.add_typer(usage_app, name="usage")
    app.add_typer(indicators_app, name="indicators")


def read_signed(path: Path, what: str) -> Any:
    """A holder-signed object from a file: JSON, or (a grant) its QR text, passed to the server as given."""
    try:
        if path.stat().st_size > MAX_SIGNED_FILE:
            raise ValidationError(f"{path} is larger than {MAX_SIGNED_FILE} bytes", code=f"invalid_{what}")
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read the {what} file {path}: {exc}", code=f"invalid_{what}") from None
    if text.startswith("lianzheng:"):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{path} is neither JSON nor a lianzheng: QR text: {exc}", code=f"invalid_{what}") from None


def _consent(grant: Path | None, presentation: Path | None) -> dict[str, Any]:
    if (grant is None) == (presentation is None):
        raise ValidationError("pass exactly one of --grant or --presentation (the holder's consent)",
                              code="missing_consent")
    return {"grant": read_signed(grant, "grant")} if grant else {"presentation": read_signed(presentation, "presentation")}  # type: ignore[arg-type]


def _line(view: dict[str, Any]) -> str:
    anchor = view.get("anchor")
    where = (f"block {anchor['block_number']}, tx {anchor['tx_hash']}" if anchor
             else "pending: anchored when the chain is reachable")
    return f"{view['id']}: {view['status']} ({where})"


@usage_app.command("record")
def record(ctx: typer.Context, certificate: Annotated[str, typer.Argument(help="identifier or document digest")],
           purpose: Purpose, agency: RequiredAgency, grant: GrantFile = None, presentation: PresentationFile = None,
           operator: Operator = None, as_json: JsonOpt = False, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """Record that your agency used a certificate for a matter, with the holder's grant or presentation."""
    body = {"certificate": certificate, "purpose": purpose, "operator_id": operator, **_consent(grant, presentation)}
    view = agency_client(state(ctx), api_url, api_key, agency).post("/api/v1/usages", body)
    print_json(view) if as_json else console.print(_line(view), highlight=False)


@usage_app.command("fetch")
def fetch(ctx: typer.Context, certificate: Annotated[str, typer.Argument(help="the certificate identifier")],
          purpose: Purpose, agency: RequiredAgency,
          grant: Annotated[Path, typer.Option("--grant", help="the holder-signed grant naming your agency")],
          out: Annotated[Path | None, typer.Option("--out", help="write the document here (0600); default: stdout")] = None,
          operator: Operator = None, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """免证办: fetch and open the certificate with the holder's grant (the usage is recorded)."""
    body = {"certificate": certificate, "purpose": purpose, "operator_id": operator, "grant": read_signed(grant, "grant")}
    answer = agency_client(state(ctx), api_url, api_key, agency).post("/api/v1/usages/fetch", body)
    text = json.dumps(answer["document"], ensure_ascii=False, indent=2)
    if out is None:
        typer.echo(text)
    else:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the plaintext: owner only
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    # the document went to stdout: the usage line goes to stderr, so stdout stays one JSON document
    (err_console if out is None else console).print(_line(answer["usage"]), highlight=False)


@usage_app.command("list")
def list_usages(ctx: typer.Context, agency: RequiredAgency,
                certificate: Annotated[str | None, typer.Option("--certificate", help="identifier or digest")] = None,
                limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100, as_json: JsonOpt = False,
                api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """The usages your agency recorded (every usage for an auditor)."""
    params: dict[str, Any] = {"limit": limit, **({"certificate": certificate} if certificate else {})}
    result = agency_client(state(ctx), api_url, api_key, agency).get("/api/v1/usages", params=params)
    if as_json:
        print_json(result)
        return
    table = Table("用证记录 id", "机构 agency", "证照 certificate", "方式 channel", "事由 purpose", "时间 time", "状态")
    for u in result["usages"]:
        cert = u["certificate"]["identifier"] or u["certificate"]["digest"]
        table.add_row(u["id"], u["agency"].get("short_name") or u["agency"].get("uscc"), cert, u["channel"],
                      u["purpose"], u["used_at"] or "", u["status"])
    console.print(table)
    console.print(f"{result['count']} usage(s)", highlight=False)


@indicators_app.command("usage-rate")
def usage_rate(ctx: typer.Context,
               by: Annotated[str, typer.Option("--by", help="agency | type | month")] = "agency",
               as_json: JsonOpt = False, api_url: ApiUrl = None) -> None:
    """电子证照用证率: certificates used at least once / issued, per agency, type or month of issue."""
    result = public_client(state(ctx), api_url).get("/api/v1/indicators/usage-rate", params={"by": by})
    if as_json:
        print_json(result)
        return
    table = Table("分组 group", "已签发 issued", "已使用 used", "用证率 rate")
    for g in result["groups"]:
        label = f"{g['name']} ({g['key']})" if g["name"] and g["name"] != g["key"] else g["key"]
        table.add_row(label, str(g["issued"]), str(g["used"]), _pct(g["rate"]))
    console.print(table)
    t = result["total"]
    console.print(f"总体 overall: {_pct(t['rate'])} ({t['used']}/{t['issued']}); 目标 target {_pct(result['target'])}",
                  highlight=False)


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"
