"""``lianzheng qr``, ``lianzheng print`` and ``lianzheng trust-list pull|show``.

The agency's copy of each issued document and its QR key is in ``<data dir>/issued/<identifier>.json`` (written
by ``lianzheng issue``); the server has neither. A by-reference QR is drawn here from the saved link, so the
key never leaves this machine; an offline QR must be signed with the agency's key, which lives with the API
server, so the key goes to ``GET /api/v1/certificates/{id}/qr`` in the ``X-Document-Key`` header.

    $ lianzheng qr 1.2.156.3005.2....001.7 --mode offline --out licence.png
    $ lianzheng print 1.2.156.3005.2....001.7 --pdf -o licence.pdf    # sealed, PAdES-signed (0600)
    $ lianzheng trust-list pull            # then, with no network:
    $ lianzheng verify photo-of-licence.jpg --json
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer

from api.cli._common import console, err_console, print_json, state
from api.cli.options import Agency, ApiKey, ApiUrl, JsonOpt, client_for
from registry.errors import NotFoundError, PayloadFormatError, ValidationError

if TYPE_CHECKING:  # the heavy modules load when a command runs, not for every `lianzheng` invocation
    import httpx

    from api.cli.client import ApiClient
    from registry.consortium.trust_list import TrustList

TRUST_LIST_FILE = "trust-list.json"  # api.cli.qr_scan.TRUST_LIST_FILE

trust_app = typer.Typer(no_args_is_help=True, help="The signed trust list for offline verification.")

ModeOpt = Annotated[str, typer.Option("--mode", help="ref: link with the key (needs the network to verify); "
                                      "offline: signed payload, verifiable with a cached trust list")]


def register(app: typer.Typer) -> None:
    app.command("qr")(qr)
    app.command("print")(print_certificate)
    trust_app.command("pull")(trust_pull)
    trust_app.command("show")(trust_show)
    app.add_typer(trust_app, name="trust-list")


def _issuer(identifier: str) -> str:
    from registry.identifiers import CertificateId

    return CertificateId.parse(identifier).issuer_uscc


def _saved(data_dir: Path, identifier: str) -> dict[str, Any]:
    _issuer(identifier)  # a malformed identifier is refused before looking for a file
    path = data_dir / "issued" / f"{identifier}.json"
    if not path.exists():
        raise NotFoundError(f"no saved copy of {identifier} in {path.parent}: only the agency that issued it with "
                            "`lianzheng issue` here has its QR key", code="no_saved_certificate")
    saved = json.loads(path.read_text(encoding="utf-8"))
    if "#" not in saved.get("qr_url", ""):
        raise ValidationError(f"{path} has no QR key (qr_url without '#')", code="missing_key")
    return saved  # type: ignore[no-any-return]


def _get_bytes(client: ApiClient, path: str, **kwargs: Any) -> httpx.Response:
    """GET a binary or HTML response, mapping API errors to domain errors like ApiClient.request does."""
    return client.response("GET", path, **kwargs)


def _check_mode(mode: str) -> str:
    if mode not in ("ref", "offline"):
        raise ValidationError(f"--mode must be ref or offline, got {mode!r}", code="invalid_mode")
    return mode


def qr(
    ctx: typer.Context,
    identifier: Annotated[str, typer.Argument(help="证照标识 of a certificate issued from this data dir")],
    out: Annotated[Path, typer.Option("--out", help="output file (.png or .svg)")],
    mode: ModeOpt = "ref",
    scale: Annotated[int, typer.Option("--scale", min=1, max=40, help="pixels per module")] = 8,
    hide: Annotated[str | None, typer.Option("--hide", help="offline: comma-separated fields to hide")] = None,
    max_version: Annotated[int, typer.Option("--max-version", min=1, max=40, help="offline: largest QR version")] = 25,
    agency: Agency = None, api_url: ApiUrl = None, api_key: ApiKey = None,
) -> None:
    """Write a certificate's QR code (PNG or SVG, by the file suffix)."""
    st = state(ctx)
    saved = _saved(st.settings.data_dir, identifier)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise ValidationError(f"--out must end in .png or .svg, got {out.name!r}", code="invalid_format")
    if _check_mode(mode) == "ref":
        from registry.formats.images import qr_png, qr_svg  # segno and Pillow: only drawing a QR here loads them

        url = saved["qr_url"]
        data = qr_png(url, scale=scale) if fmt == "png" else qr_svg(url, scale=scale, title=identifier).encode()
        note = "by reference"
    else:
        client = client_for(st, api_url, api_key, agency or _issuer(identifier))
        params: dict[str, Any] = {"mode": "offline", "format": fmt, "scale": scale, "max_version": max_version}
        if hide:
            params["hide"] = hide
        r = _get_bytes(client, f"/api/v1/certificates/{quote(identifier, safe='')}/qr", params=params,
                       headers={"X-Document-Key": saved["qr_url"].split("#", 1)[1]})
        data = r.content
        hidden = r.headers.get("x-qr-hidden-fields", "")
        note = f"offline, version {r.headers.get('x-qr-version')}" + (f", hidden: {hidden}" if hidden else "")
    out.write_bytes(data)
    err_console.print(f"wrote {out} ({note})", highlight=False)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by its owner only (0600): a printed certificate holds the holder's data."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
    finally:
        os.close(fd)


def print_certificate(
    ctx: typer.Context,
    identifier: Annotated[str, typer.Argument(help="证照标识 of a certificate issued from this data dir")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="output file (default: <identifier>.html, or .pdf "
                                             "with --pdf); written 0600")] = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="the sealed PDF: one A4 page with the seal image, PAdES-signed "
                                      "with the seal's certificate (the certificate must have been issued under a "
                                      "seal)")] = False,
    mode: ModeOpt = "ref",
    agency: Agency = None, api_url: ApiUrl = None, api_key: ApiKey = None,
) -> None:
    """Write the printable certificate: HTML (A4, print it from a browser) or, with --pdf, the signed PDF."""
    st = state(ctx)
    saved = _saved(st.settings.data_dir, identifier)
    target = out or Path(f"{identifier}.{'pdf' if pdf else 'html'}")
    client = client_for(st, api_url, api_key, agency or _issuer(identifier))
    params = {"mode": _check_mode(mode), **({"format": "pdf"} if pdf else {})}
    r = _get_bytes(client, f"/api/v1/certificates/{quote(identifier, safe='')}/print", params=params,
                   headers={"X-Document-Key": saved["qr_url"].split("#", 1)[1]})
    if pdf and (not r.content.startswith(b"%PDF-") or "application/pdf" not in r.headers.get("content-type", "")):
        raise PayloadFormatError(f"the server did not answer with a PDF ({r.headers.get('content-type')})",
                                 code="not_a_pdf")
    _write_private(target, r.content)
    err_console.print(f"wrote {target}" + (f" ({len(r.content)} bytes, PAdES-signed)" if pdf else ""),
                      highlight=False)


def _summary(trust: TrustList) -> dict[str, Any]:
    return {"as_of": trust.body["as_of"], "operator": trust.signer, "chain_id": trust.chain_id,
            "members": len(trust.members), "batches": len(trust.batches),
            "revoked": sum(d.status == "revoked" for d in trust.documents.values()),
            "suspended": sum(d.status == "suspended" for d in trust.documents.values()),
            "superseded": sum(d.status == "superseded" for d in trust.documents.values()),
            "seal_ca_sha256": (trust.body.get("seal_ca") or {}).get("sha256")}  # the root sealed PDFs chain to


def _print_summary(trust: TrustList, where: Path, as_json: bool) -> None:
    summary = {**_summary(trust), "file": str(where)}
    if as_json:
        print_json(summary)
        return
    console.print(f"trust list as of block {summary['as_of']['block']} ({summary['as_of']['time']}): "
                  f"{summary['members']} members, {summary['batches']} anchored batches, {summary['revoked']} revoked, "
                  f"{summary['suspended']} suspended; signed by operator {summary['operator']}; {where}", highlight=False)


def trust_pull(
    ctx: typer.Context,
    operator: Annotated[str | None, typer.Option("--operator", envvar="LIANZHENG_OPERATOR",
                                                 help="pin this operator account (default: the one pinned "
                                                      "before, or the first list's signer)")] = None,
    as_json: JsonOpt = False,
    api_url: ApiUrl = None,
) -> None:
    """Download the signed trust list, check its signature and cache it for offline verification."""
    # lazy import: zxing-cpp, Pillow and numpy: only photo decoding loads them
    from api.cli.client import ApiClient
    from api.cli.qr_scan import save_trust_list

    st = state(ctx)
    signed = ApiClient(api_url or st.settings.public_base).get("/api/v1/trust-list")
    trust = save_trust_list(st.settings.data_dir, signed, operator=operator)
    _print_summary(trust, st.settings.data_dir / TRUST_LIST_FILE, as_json)


def trust_show(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Check and summarise the cached trust list (no network)."""
    # lazy import: zxing-cpp, Pillow and numpy: only photo decoding loads them
    from api.cli.qr_scan import load_trust_list

    st = state(ctx)
    _print_summary(load_trust_list(st.settings.data_dir), st.settings.data_dir / TRUST_LIST_FILE, as_json)
