"""`lianzheng evidence ...`: register files, move custody, seal cases, verify files and evidence packages.

Files are hashed here, streaming in constant memory (SHA-256 and SM3 in one pass): only digests and
metadata go to the API, never the content. Commands act as an agency through the HTTP API with its API key
(in dev: <data dir>/api-keys.json); when --agency is omitted the acting agency is the obvious one (the
custodian transfers, the recipient accepts, the case owner seals).

    lianzheng evidence add photo.jpg --case 哈公行罚〔2026〕17号 --scenario 行政执法 --agency 11230000MB1A00044B --json
    lianzheng evidence transfer EV-XZZF-20260315-000001 --to 11230000MB1A00036G --purpose 移送审查
    lianzheng evidence verify photo.jpg --id EV-XZZF-20260315-000001
    lianzheng evidence export 哈公行罚〔2026〕17号 --out case.zip && lianzheng evidence verify-package case.zip --offline
"""

from __future__ import annotations

import base64
import datetime as dt
import getpass
import mimetypes
import os
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from api.cli._common import State, console, err_console, print_json, progress, state
from api.cli.options import Agency, ApiKey, ApiUrl, JsonOpt, agency_client, public_client
from registry import errors as registry_errors
from registry.errors import ValidationError

if TYPE_CHECKING:
    from registry.crypto.hashing import FileDigests

# hashing, package verification and the chain backend load inside the commands that use them: `lianzheng --help`
# and the other commands do without them (tests/unit/test_cli_startup.py)

evidence_app = typer.Typer(no_args_is_help=True, help="Evidence records (存证): register, custody, seal, verify, export.")



def register(app: typer.Typer) -> None:
    app.add_typer(evidence_app, name="evidence")


# -- helpers -------------------------------------------------------------------------------------------


class _ProgressReader:
    """A binary file whose reads advance a progress bar (digest_file uses readinto)."""

    def __init__(self, fh: BinaryIO, bar: Progress, task: Any) -> None:
        self._fh, self._bar, self._task = fh, bar, task

    def readinto(self, buffer: Any) -> int:
        n = self._fh.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            self._bar.advance(self._task, n)
        return int(n or 0)


def hash_file(path: Path) -> FileDigests:
    """SHA-256 + SM3 + size in one streaming pass (1 MiB buffer; memory does not grow with the file)."""
    from registry.crypto.hashing import digest_file

    if not path.is_file():
        raise ValidationError(f"no such file: {path}", code="file_not_found")
    size = path.stat().st_size
    if size < 64 * 1024 * 1024:
        return digest_file(path)
    with path.open("rb") as fh, progress(transient=True) as bar:
        task = bar.add_task(f"hashing {path.name}", total=size, rate="")
        return digest_file(_ProgressReader(fh, bar, task))  # type: ignore[arg-type]


def _anchor_line(view: dict[str, Any]) -> str:
    reg = view.get("registered")
    if view.get("pending_steps"):
        return "pending: stored, will be anchored when the chain is reachable"
    if reg:
        return f"block {reg['block_number']}, tx {reg['tx_hash']}"
    return view.get("status", "")


def _custodian_of(st: State, api_url: str | None, record_id: str) -> dict[str, Any]:
    return public_client(st, api_url).get(f"/api/v1/evidence/{record_id}/status")  # type: ignore[no-any-return]


def _owner_of(st: State, api_url: str | None, case_no: str) -> str:
    status = public_client(st, api_url).get("/api/v1/evidence/cases/status", params={"case_no": case_no})
    return str(status["owner"]["uscc"])


def _show_record(view: dict[str, Any]) -> None:
    console.print(f"[bold]{view['id']}[/]  {view['type_name']} ({view['scenario']})  status: {view['status']}  "
                  f"case sealed: {view['case_sealed']}", highlight=False)
    console.print(f"  sha256 {view['content']['sha256']}  sm3 {view['content']['sm3']}  {view['content']['size']} bytes",
                  highlight=False)
    chain = " -> ".join(c.get("short_name") or c["uscc"] for c in view.get("custody_chain", []))
    console.print(f"  custody: {escape(chain)}" + (f"  (offered to {view['pending_transfer_to']['uscc']})"
                                                    if view.get("pending_transfer_to") else ""), highlight=False)
    for e in view.get("custody_log", []):
        console.print(f"  {e['step']:<9} {e['state']:<7} {e['by']}  {e.get('at') or ''}  {e.get('tx_hash') or ''}",
                      highlight=False)


# -- commands ------------------------------------------------------------------------------------------


@evidence_app.command("add")
def add(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="the file to register (hashed locally, never uploaded)")],
    case_no: Annotated[str, typer.Option("--case", help="案件/执法编号")],
    scenario: Annotated[str, typer.Option("--scenario", help="行政执法 | 刑罚执行 | 公证")],
    agency: Agency = None,
    type_code: Annotated[str | None, typer.Option("--type", help="evidence type (default: by scenario, media type)")] = None,
    media_type: Annotated[str | None, typer.Option("--media-type", help="default: guessed from the file name")] = None,
    authority: Annotated[str | None, typer.Option("--authority", help="执法主体 (default: the agency's name)")] = None,
    legal_basis: Annotated[str | None, typer.Option("--legal-basis", help="法律依据 (default: the evidence type's)")] = None,
    operator: Annotated[str | None, typer.Option("--operator", envvar="LIANZHENG_OPERATOR",
                                                 help="real-name operator id (执法证号); default: the login name")] = None,
    device: Annotated[str | None, typer.Option("--device", help="acquisition device or source")] = None,
    place: Annotated[str | None, typer.Option("--place", help="acquisition place")] = None,
    acquired_at: Annotated[str | None, typer.Option("--acquired-at", help="ISO 8601; default: the file's mtime")] = None,
    timestamp_token: Annotated[Path | None, typer.Option("--timestamp-token", help="RFC 3161 token (DER) file")] = None,
    supersedes: Annotated[str | None, typer.Option("--supersedes", help="the record this one corrects")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="why the correction")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    seal: Annotated[str | None, typer.Option("--seal", envvar="LIANZHENG_SEAL",
                                             help="issue the record under one of the agency's seals (ES...)")] = None,
    as_json: JsonOpt = False,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Register a file as evidence: prints its record (with `id`)."""
    st = state(ctx)
    client = agency_client(st, api_url, api_key, agency)
    digests = hash_file(file)
    mt = media_type or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    if legal_basis is None:
        types = public_client(st, api_url).get("/api/v1/evidence-types")["types"]
        of_scenario = [t for t in types if t["scenario"] == scenario]
        chosen = [t for t in of_scenario if t["code"] == type_code] or [t for t in of_scenario if mt in t["media_types"]]
        chosen = chosen or of_scenario
        legal_basis = chosen[0]["legal_basis"] if chosen else None
    if authority is None and agency:
        members = public_client(st, api_url).get("/api/v1/members")["members"]
        authority = next((m["name"] for m in members if m["uscc"] == agency), None)
    token = base64.b64encode(timestamp_token.read_bytes()).decode() if timestamp_token else None
    when = acquired_at or dt.datetime.fromtimestamp(file.stat().st_mtime).astimezone().isoformat(timespec="seconds")
    body = {
        "case_no": case_no, "scenario": scenario, "type": type_code, "sha256": digests.sha256_hex, "sm3": digests.sm3_hex,
        "size": digests.size, "media_type": mt, "authority": authority, "legal_basis": legal_basis,
        "operator_id": operator or getpass.getuser(), "filename": file.name, "description": description,
        "acquisition": {"device": device, "tool": "lianzheng-cli", "tool_version": _version(), "place": place,
                        "acquired_at": when},
        "timestamp_token": token, "supersedes": supersedes, "correction_reason": reason,
    }
    if seal is not None:
        body["seal"] = seal
    view = client.post("/api/v1/evidence", body)
    if as_json:
        print_json(view)
    else:
        sealed = f", sealed with {view['seal']}" if view.get("seal") else ""
        console.print(f"{view['id']}: {view['status']} ({_anchor_line(view)}){sealed}", highlight=False)


def _version() -> str:
    try:
        return metadata.version("lianzheng")
    except metadata.PackageNotFoundError:
        return "dev"


@evidence_app.command("transfer")
def transfer(ctx: typer.Context, record_id: Annotated[str, typer.Argument(metavar="ID")],
             to: Annotated[str, typer.Option("--to", help="USCC of the receiving agency")],
             purpose: Annotated[str, typer.Option("--purpose", help="why custody moves")] = "移交保管 / custody transfer",
             rechecked: Annotated[bool, typer.Option("--rechecked", help="the content was re-hashed before sending")] = False,
             agency: Agency = None, as_json: JsonOpt = False, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """Offer custody of a record to another agency (as its current custodian)."""
    st = state(ctx)
    acting = agency or (None if api_key else _custodian_of(st, api_url, record_id)["custodian"]["uscc"])
    view = agency_client(st, api_url, api_key, acting).post(
        f"/api/v1/evidence/{record_id}/transfer", {"to": to, "purpose": purpose, "digest_rechecked": rechecked})
    if as_json:
        print_json(view)
    else:
        console.print(f"{record_id}: offered to {to} ({_step_state(view)})", highlight=False)


def _step_state(view: dict[str, Any]) -> str:
    last = (view.get("custody_log") or [{}])[-1]
    if last.get("state") == "done":
        return f"block {last['block_number']}, tx {last['tx_hash']}"
    return "pending: will be anchored when the chain is reachable"


@evidence_app.command("accept")
def accept(ctx: typer.Context, record_id: Annotated[str, typer.Argument(metavar="ID")],
           file: Annotated[Path | None, typer.Option("--file", help="re-check the received content first")] = None,
           agency: Agency = None, as_json: JsonOpt = False, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """Take custody of a record offered to your agency (optionally re-checking the file)."""
    st = state(ctx)
    acting = agency
    if acting is None and not api_key:
        offered = _custodian_of(st, api_url, record_id).get("pending_transfer_to")
        if not offered:
            raise ValidationError(f"{record_id} has no pending transfer", code="no_pending_transfer")
        acting = offered["uscc"]
    body: dict[str, Any] = {}
    if file is not None:
        d = hash_file(file)
        body = {"sha256": d.sha256_hex, "sm3": d.sm3_hex}
    view = agency_client(st, api_url, api_key, acting).post(f"/api/v1/evidence/{record_id}/accept", body)
    if as_json:
        print_json(view)
    else:
        console.print(f"{record_id}: now held by {view['custodian']['uscc']} ({_step_state(view)})", highlight=False)


@evidence_app.command("reject")
def reject(ctx: typer.Context, record_id: Annotated[str, typer.Argument(metavar="ID")],
           reason: Annotated[str | None, typer.Option("--reason")] = None,
           agency: Agency = None, as_json: JsonOpt = False, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """Decline a transfer offered to your agency."""
    st = state(ctx)
    acting = agency
    if acting is None and not api_key:
        offered = _custodian_of(st, api_url, record_id).get("pending_transfer_to")
        acting = offered["uscc"] if offered else None
    view = agency_client(st, api_url, api_key, acting).post(f"/api/v1/evidence/{record_id}/reject", {"reason": reason})
    if as_json:
        print_json(view)
    else:
        console.print(f"{record_id}: transfer declined; held by {view['custodian']['uscc']}", highlight=False)


@evidence_app.command("seal")
def seal(ctx: typer.Context, case_no: Annotated[str, typer.Argument(metavar="CASE")], agency: Agency = None,
         as_json: JsonOpt = False, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """Seal a case (as its owner): its records are frozen afterwards."""
    st = state(ctx)
    acting = agency or (None if api_key else _owner_of(st, api_url, case_no))
    view = agency_client(st, api_url, api_key, acting).post("/api/v1/evidence/cases/seal", {"case_no": case_no})
    if as_json:
        print_json(view)
    else:
        when = view["sealed_at"] or "pending: will be anchored when the chain is reachable"
        console.print(f"case {case_no}: sealed ({when}), {len(view['records'])} records", highlight=False)


@evidence_app.command("show")
def show(ctx: typer.Context, record_id: Annotated[str, typer.Argument(metavar="ID")], agency: Agency = None,
         as_json: JsonOpt = False, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """A record with its custody log (as an involved agency; default: the custodian)."""
    st = state(ctx)
    acting = agency or (None if api_key else _custodian_of(st, api_url, record_id)["custodian"]["uscc"])
    view = agency_client(st, api_url, api_key, acting).get(f"/api/v1/evidence/{record_id}")
    if as_json:
        print_json(view)
    else:
        _show_record(view)


@evidence_app.command("case")
def case(ctx: typer.Context, case_no: Annotated[str, typer.Argument(metavar="CASE")], agency: Agency = None,
         as_json: JsonOpt = False, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """A case and its records (as an involved agency; default: the owner)."""
    st = state(ctx)
    acting = agency or (None if api_key else _owner_of(st, api_url, case_no))
    view = agency_client(st, api_url, api_key, acting).get("/api/v1/evidence/cases", params={"case_no": case_no})
    if as_json:
        print_json(view)
        return
    table = Table(title=f"case {case_no} ({view['scenario']}) — owner {view['owner']['short_name']}, "
                        f"sealed: {view['sealed']}")
    for col in ("id", "type", "sha256", "custodian", "status"):
        table.add_column(col)
    for r in view["records"]:
        table.add_row(r["id"], r["type_name"], r["content"]["sha256"][:16] + "…", r["custodian"]["short_name"], r["status"])
    console.print(table)


@evidence_app.command("verify")
def verify(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="the file to check (hashed locally)")],
           record_id: Annotated[str | None, typer.Option("--id", help="the record it must match")] = None,
           case_no: Annotated[str | None, typer.Option("--case", help="the case one of whose records it must match")] = None,
           as_json: JsonOpt = False, api_url: ApiUrl = None) -> None:
    """Is this file unaltered since it was registered? Exit 0 when unaltered, 1 otherwise."""
    st = state(ctx)
    d = hash_file(file)
    result = public_client(st, api_url).post("/api/v1/evidence/verify", {
        "sha256": d.sha256_hex, "sm3": d.sm3_hex, "size": d.size, "id": record_id, "case_no": case_no})
    if as_json:
        print_json(result)
    else:
        colour = {"unaltered": "green", "cannot_verify": "yellow"}.get(result["verdict"], "red")
        console.print(f"[bold {colour}]{result['verdict']}[/]  {escape(result['summary_zh'])}", highlight=False)
        console.print(f"  {escape(result['summary'])}", highlight=False)
        for c in result["checks"]:
            console.print(f"  {c['status']:<8} {c['check']:<10} {escape(c['detail'])}", highlight=False)
    raise typer.Exit(0 if result["verdict"] == "unaltered" else 1)


@evidence_app.command("export")
def export(ctx: typer.Context, case_no: Annotated[str, typer.Argument(metavar="CASE")],
           out: Annotated[Path, typer.Option("--out", help="where to write the package (zip)")],
           agency: Agency = None, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """Export a case's evidence package (records, custody log, proofs, trust list), signed by your agency."""
    st = state(ctx)
    acting = agency or (None if api_key else _owner_of(st, api_url, case_no))
    client = agency_client(st, api_url, api_key, acting)
    tmp = out.with_name(out.name + ".part")
    try:
        with client.http.stream("GET", "/api/v1/evidence/cases/export", params={"case_no": case_no}) as r:
            if r.status_code >= 400:
                r.read()
                raise _http_error(r)
            with tmp.open("wb") as fh:
                for chunk in r.iter_bytes(1 << 16):
                    fh.write(chunk)
            block = r.headers.get("x-lianzheng-as-of-block")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    console.print(f"wrote {out} ({out.stat().st_size:,} bytes; as of block {block})", highlight=False)


@evidence_app.command("verify-package")
def verify_package_cmd(ctx: typer.Context, package: Annotated[Path, typer.Argument(help="an exported package (zip)")],
                       offline: Annotated[bool, typer.Option("--offline", help="no network: as of the export block")] = False,
                       as_json: JsonOpt = False) -> None:
    """Check a package: signature, manifest, records, custody order, and online that every transaction is
    still on chain. Exit 0 when valid, 1 when not."""
    from registry.evidence.package import verify_package

    if not package.is_file():
        raise ValidationError(f"no such file: {package}", code="file_not_found")
    backend = None
    if not offline:
        from chain.backends import RpcBackend

        st = state(ctx)
        urls = st.settings.rpc_url_list if st.settings.rpc_urls else [_devnet_url(st)]
        backend = RpcBackend(urls, timeout=st.settings.rpc_timeout)
    with package.open("rb") as fh:
        report = verify_package(fh, backend=backend)
    if as_json:
        print_json(report.to_json())
    else:
        colour = "green" if report.ok else "red"
        console.print(f"[bold {colour}]{escape(report.summary)}[/]", highlight=False)
        for f in report.findings:
            console.print(f"  [red]{escape(f.code)}[/] {escape(f.subject)}: {escape(f.message)}", highlight=False)
        for note in report.notes:
            console.print(f"  note: {escape(note)}", highlight=False)
    if not report.ok and not as_json:
        err_console.print(f"error [package_invalid]: {escape(report.findings[0].subject)}: "
                          f"{escape(report.findings[0].message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(0 if report.ok else 1)


def _http_error(r: Any) -> Exception:
    """The domain error of an API error response (same mapping as ApiClient)."""
    e = registry_errors
    by_status: dict[int, type[e.RegistryError]] = {401: e.AuthenticationError, 403: e.PermissionDeniedError,
                                                   404: e.NotFoundError, 409: e.ConflictError, 422: e.ValidationError,
                                                   503: e.ChainUnavailableError}
    try:
        err = r.json()["error"]
        code, message = err["code"], err["message"]
    except (ValueError, KeyError, TypeError):
        code, message = "http_error", f"HTTP {r.status_code}"
    return by_status.get(r.status_code, e.RegistryError)(message, code=code)


def _devnet_url(st: State) -> str:
    from chain.devnet import Devnet

    return Devnet.from_data_dir(st.settings.data_dir).url
