"""issue, revoke, suspend, reinstate, supersede, verify, disclose, sample."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli._common import State, console, err_console, print_json, progress, state
from api.cli.options import Agency, ApiKey, ApiUrl, JsonOpt, RequiredAgency, client_for, public_client
from api.cli.wallet_cmds import verify_credentials
from api.private_files import ISSUED_DIR, write_private
from registry.errors import ValidationError

# the domain modules (documents, identifiers, formats, holders, seeds) load inside the commands that use them:
# `lianzheng --help` and the other commands do without them (tests/unit/test_cli_startup.py)


def register(app: typer.Typer) -> None:
    app.command("issue")(issue)
    app.command("revoke")(revoke)
    app.command("suspend")(suspend)
    app.command("reinstate")(reinstate)
    app.command("supersede")(supersede)
    app.command("verify")(verify)
    app.command("disclose")(disclose)
    app.command("sample")(sample)


def read_documents(path: Path) -> list[dict[str, Any]]:
    """A JSON list of field objects, or a CSV whose header row names the fields (UTF-8, BOM allowed)."""
    if str(path) == "-":
        text = sys.stdin.read()
    else:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError as exc:
            raise ValidationError(f"no such file: {path}", code="file_not_found") from exc
        except UnicodeDecodeError as exc:
            raise ValidationError(f"{path} is not UTF-8 text", code="invalid_file") from exc
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{path} is not valid JSON: {exc}", code="invalid_json") from exc
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise ValidationError(f"{path} must hold a JSON list of objects", code="invalid_file")
        return [d.get("fields", d) if isinstance(d.get("fields"), dict) and "format" not in d else d for d in data]
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise ValidationError(f"{path} has no rows (expected a JSON list or a CSV with a header)", code="invalid_file")
    return [{k: (None if v == "" else v) for k, v in row.items() if k} for row in rows]


def _save_issued(st: State, issued: list[dict[str, Any]]) -> Path:
    """The agency's own copy: documents with their QR keys (the server keeps neither). Holder data and the
    decryption key: 0600 files in a 0700 folder, created with those modes (api/private_files.py)."""
    folder = st.settings.data_dir / ISSUED_DIR
    for item in issued:
        write_private(folder / f"{item['identifier']}.json", json.dumps(item, ensure_ascii=False))
    return folder


def issue(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON list or CSV of field values ('-' for stdin)")],
    agency: RequiredAgency,
    type_code: Annotated[str, typer.Option("--type", help="证照类型代码")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per document: id, status")] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="wait until every document is anchored")] = True,
    chunk: Annotated[int, typer.Option("--chunk", min=1, max=10_000, help="documents per request")] = 1000,
    seal: Annotated[str | None, typer.Option("--seal", envvar="LIANZHENG_SEAL",
                                             help="seal every document with this seal of the agency (its id, "
                                                  "ES...; `lianzheng seal list`)")] = None,
    holder_key: Annotated[str | None, typer.Option(
        "--holder-key", envvar="LIANZHENG_HOLDER_KEY",
        help="bind every document to this holder key: a wallet folder, key/PEM file or base64url SPKI")] = None,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Issue certificates from a file through the API (batched, with a progress bar); with --seal, each under
    the agency's seal (用章): an unknown, foreign, suspended, revoked or expired seal is refused before anything
    is stored."""
    from registry.holders.wallet import load_public_key

    st = state(ctx)
    docs = read_documents(file)
    bound = None if holder_key is None else load_public_key(holder_key).spki_b64url
    client = client_for(st, api_url, api_key, agency)
    issued: list[dict[str, Any]] = []
    start = time.perf_counter()
    with progress(transient=True) as bar:  # transient: a failure leaves one line of diagnosis, not a half bar
        task = bar.add_task("issuing", total=len(docs), rate="")
        for i in range(0, len(docs), chunk):
            part = docs[i:i + chunk]
            try:
                last = i + chunk >= len(docs)
                # the last request waits: the server anchors what is pending at once instead of at the batch age
                path = "/api/v1/certificates/batch" + ("?wait=true" if wait and last else "")
                body: dict[str, Any] = {"type": type_code, "documents": part}
                if seal:
                    body["seal"] = seal
                if bound is not None:
                    body["holder_keys"] = [bound] * len(part)
                result = client.post(path, body)
            except ValidationError as exc:
                if "index" in exc.details:
                    exc.message = f"document {i + int(exc.details['index'])} of {file}: {exc.message.split(': ', 1)[-1]}"
                    exc.args = (exc.message,)
                raise
            issued.extend(result["certificates"])
            rate = len(issued) / max(time.perf_counter() - start, 1e-9)
            bar.update(task, advance=len(part), rate=f"{rate:,.0f} docs/s")
        if wait:
            anchor_task = bar.add_task("anchoring", total=len(issued), rate="")
            pending = [c["identifier"] for c in issued]
            statuses: dict[str, str] = {}
            deadline = time.monotonic() + 600
            while pending:
                found: dict[str, str] = {}
                for j in range(0, len(pending), 10_000):
                    found.update(client.post("/api/v1/certificates/status",
                                             {"identifiers": pending[j:j + 10_000]})["statuses"])
                statuses.update(found)
                pending = [p for p in pending if found.get(p, "pending") == "pending"]
                done = len(issued) - len(pending)
                bar.update(anchor_task, completed=done,
                           rate=f"{done / max(time.perf_counter() - start, 1e-9):,.0f} docs/s")
                if pending:
                    if time.monotonic() > deadline:
                        raise ValidationError(f"{len(pending)} documents still pending after 600 s", code="timeout")
                    time.sleep(0.2)
            for c in issued:
                c["status"] = statuses.get(c["identifier"], c["status"])
    folder = _save_issued(st, issued)
    elapsed = time.perf_counter() - start
    summary = (f"{len(issued)} certificates {'anchored' if wait else 'accepted'} in {elapsed:.1f} s "
               f"({len(issued) / max(elapsed, 1e-9):,.0f} docs/s); documents and QR keys saved in {folder}")
    if as_json:
        for c in issued:
            print_json({"id": c["identifier"], "status": c["status"], "qr_url": c["qr_url"]})
        err_console.print(summary, highlight=False)
    else:
        console.print(summary, highlight=False)


def _issuer_of(identifier: str) -> str:
    from registry.identifiers import CertificateId

    return CertificateId.parse(identifier).issuer_uscc


def _change(ctx: typer.Context, identifier: str, action: str, body: dict[str, Any], agency: str | None,
            api_url: str | None, api_key: str | None, as_json: bool) -> None:
    st = state(ctx)
    client = client_for(st, api_url, api_key, agency or _issuer_of(identifier))
    view = client.post(f"/api/v1/certificates/{identifier}/{action}", body)
    if as_json:
        print_json(view)
    else:
        console.print(f"{identifier}: {view['status']}")




def revoke(ctx: typer.Context, identifier: str,
           reason: Annotated[int, typer.Option(
               "--reason", help="1 信息错误, 2 依法撤销, 3 主体注销, 4 证照遗失, 5 违法违规, 6 被替代, 9 其他")],
           agency: Agency = None, api_url: ApiUrl = None, api_key: ApiKey = None, as_json: JsonOpt = False) -> None:
    """Revoke a certificate (final)."""
    _change(ctx, identifier, "revoke", {"reason": reason}, agency, api_url, api_key, as_json)


def suspend(ctx: typer.Context, identifier: str, agency: Agency = None, api_url: ApiUrl = None,
            api_key: ApiKey = None, as_json: JsonOpt = False) -> None:
    """Suspend a certificate (reversible)."""
    _change(ctx, identifier, "suspend", {}, agency, api_url, api_key, as_json)


def reinstate(ctx: typer.Context, identifier: str, agency: Agency = None, api_url: ApiUrl = None,
              api_key: ApiKey = None, as_json: JsonOpt = False) -> None:
    """Reinstate a suspended certificate."""
    _change(ctx, identifier, "reinstate", {}, agency, api_url, api_key, as_json)


def supersede(ctx: typer.Context, identifier: str,
              file: Annotated[Path, typer.Argument(help="JSON object with the corrected field values")],
              agency: Agency = None, api_url: ApiUrl = None, api_key: ApiKey = None,
              as_json: JsonOpt = False) -> None:
    """Issue a corrected version and mark this certificate superseded."""
    [fields] = read_documents(file)[:1]
    st = state(ctx)
    client = client_for(st, api_url, api_key, agency or _issuer_of(identifier))
    result = client.post(f"/api/v1/certificates/{identifier}/supersede", {"fields": fields})
    _save_issued(st, [result["replacement"]])
    if as_json:
        print_json(result)
    else:
        console.print(f"{identifier}: superseded by {result['replacement']['identifier']}")


def verify(ctx: typer.Context,
           target: Annotated[str, typer.Argument(help="a document JSON file, a VC 2.0 credential or 电子卡包 export "
                                                 "(JSON), a QR photo, a QR URL/payload, or an identifier")],
           as_json: JsonOpt = False, api_url: ApiUrl = None) -> None:
    """Verify a certificate; exit status 0 when valid, 1 otherwise."""
    st = state(ctx)
    result = verify_target(st, target, api_url)
    if as_json:
        print_json(result)
    else:
        render_verdict(result)
    raise typer.Exit(0 if result.get("verdict") == "valid" else 1)


def verify_target(st: State, target: str, api_url: str | None) -> dict[str, Any]:
    from registry.identifiers import CertificateId

    client = public_client(st, api_url)
    path = Path(target)
    try:
        is_file = path.is_file()
    except OSError:  # QR payload text can be longer than a file name may be (ENAMETOOLONG)
        is_file = False
    if is_file:
        data = path.read_bytes()
        if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"):
            # lazy import: zxing-cpp, Pillow and numpy: only photo decoding loads them
            from api.cli import qr_scan

            return qr_scan.verify_photo(st, data, client)
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(f"{target} is neither a JSON document nor an image", code="invalid_file") from exc
        from registry.formats.vc import BUNDLE_FORMAT

        if isinstance(body, dict) and ("@context" in body or body.get("format") == BUNDLE_FORMAT):
            return verify_credentials(client, body)  # a VC 2.0 credential or a 电子卡包 export (api/cli/wallet_cmds.py)
        if isinstance(body, dict) and "document" in body and "format" not in body:
            body = body["document"]
        return client.post("/api/v1/verify", body)  # type: ignore[no-any-return]
    try:
        CertificateId.parse(target)
    except ValidationError:
        try:
            # lazy import: zxing-cpp, Pillow and numpy: only photo decoding loads them
            from api.cli import qr_scan
        except ImportError:
            raise ValidationError(f"{target!r} is not a file or a certificate identifier", code="invalid_target") from None
        return qr_scan.verify_text(st, target, client)
    return client.post("/api/v1/verify", {"identifier": target})  # type: ignore[no-any-return]


def render_verdict(result: dict[str, Any]) -> None:
    colour = {"valid": "green", "suspended": "yellow", "expired": "yellow", "not_yet_valid": "yellow",
              "cannot_verify": "yellow"}.get(
        result.get("verdict", ""), "red")
    console.print(f"[bold {colour}]{result.get('verdict_zh')} / {result.get('verdict_en')}[/]  {result.get('identifier') or ''}")
    for c in result.get("checks", []):
        console.print(f"  {c['status']:<8} {c['name']:<10} {c['reason_zh']} / {c['reason_en']}")


def disclose(ctx: typer.Context,
             file: Annotated[Path, typer.Argument(help="a certificate document (JSON)")],
             hide: Annotated[str, typer.Option("--hide", help="comma-separated field names to hide")],
             out: Annotated[Path | None, typer.Option("--out")] = None) -> None:
    """Make a copy with some fields hidden (their leaf hashes kept): it still verifies."""
    from registry.certificates.documents import Document

    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"cannot read a JSON document from {file}: {exc}", code="invalid_file") from exc
    if isinstance(body, dict) and "document" in body and "format" not in body:
        body = body["document"]
    doc = Document.from_json(body)
    names = [h.strip() for h in hide.split(",") if h.strip()]
    text = json.dumps(doc.disclose(names).to_json(), ensure_ascii=False, indent=2)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        err_console.print(f"wrote {out} ({len(names)} fields hidden)")
    else:
        typer.echo(text)


def sample(ctx: typer.Context,
           type_code: Annotated[str, typer.Option("--type", help="证照类型代码")],
           count: Annotated[int, typer.Option("--count", min=1, max=1_000_000)] = 10,
           agency: Agency = None,
           seed: Annotated[int | None, typer.Option("--seed")] = None) -> None:
    """N realistic, valid sample documents of a type (fake holders) as a JSON list."""
    from api.devtools.samples import sample_values
    from registry.seeds import load_seeds

    seeds = load_seeds(state(ctx).settings.seeds_dir)
    cert_type = seeds.certificate_type(type_code)
    issuer = seeds.member(agency or cert_type.issuers[0])
    typer.echo(json.dumps(sample_values(cert_type, count, issuer=issuer, seed=seed), ensure_ascii=False))
