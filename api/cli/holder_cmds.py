"""holder init | show | add | present | grant | revoke-grant | grants | certificates: the CLI wallet
(registry/holders/wallet.py). The passphrase comes from LIANZHENG_HOLDER_PASSPHRASE or a prompt; the wallet
folder from --wallet / LIANZHENG_WALLET (default: <data dir>/wallet)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli._common import State, console, err_console, print_json, progress, state
from api.cli.options import ApiUrl, JsonOpt, WalletOpt
from api.cli.wallet_cmds import export
from registry.errors import ValidationError

if TYPE_CHECKING:
    from api.cli.client import ApiClient
    from registry.holders.keys import HolderKey
    from registry.holders.wallet import Wallet

# the wallet, documents, envelopes and holder statements load inside the commands that use them: `lianzheng
# --help` and the other commands do without them (tests/unit/test_cli_startup.py)

Passphrase = Annotated[str | None, typer.Option("--passphrase", envvar="LIANZHENG_HOLDER_PASSPHRASE",
                                                help="the wallet passphrase (prompted for when not set)",
                                                show_default=False)]


def register(app: typer.Typer) -> None:
    holder = typer.Typer(no_args_is_help=True, help="the holder's wallet: key, certificates, presentations, grants")
    app.add_typer(holder, name="holder")
    holder.command("init")(init)
    holder.command("show")(show)
    holder.command("add")(add)
    holder.command("present")(present)
    holder.command("grant")(grant)
    holder.command("revoke-grant")(revoke_grant)
    holder.command("grants")(grants)
    holder.command("certificates")(certificates)
    holder.command("export")(export)  # 电子卡包: W3C VC 2.0 (api/cli/wallet_cmds.py)


def _wallet(st: State, path: Path | None) -> Wallet:
    from registry.holders.wallet import Wallet

    return Wallet(path or st.settings.data_dir / "wallet")


def _passphrase(given: str | None, *, confirm: bool = False) -> str:
    if given:
        return given
    value = typer.prompt("wallet passphrase", hide_input=True, confirmation_prompt=confirm)
    if not value:
        raise ValidationError("the wallet passphrase must not be empty", code="missing_passphrase")
    return str(value)


def _unlock(wallet: Wallet, passphrase: str | None) -> HolderKey:
    with progress(transient=True) as bar:  # scrypt takes a moment
        bar.add_task("unlocking the wallet key", total=None, rate="")
        return wallet.unlock(_passphrase(passphrase))


def _client(st: State, api_url: str | None) -> ApiClient:
    from api.cli.client import ApiClient

    return ApiClient(api_url or st.settings.public_base)


def init(ctx: typer.Context, wallet: WalletOpt = None, passphrase: Passphrase = None,
         holder_code: Annotated[str | None, typer.Option("--holder-code", help="持证主体代码 (ID number or USCC), "
                                                          "kept in the wallet only")] = None,
         as_json: JsonOpt = False) -> None:
    """Create a wallet with a new P-256 holder key, encrypted at rest (scrypt + AES-256-GCM, files 0600)."""
    from registry.holders.wallet import Wallet

    w = _wallet(state(ctx), wallet)
    secret = _passphrase(passphrase, confirm=True)
    with progress(transient=True) as bar:
        bar.add_task("deriving the wallet key (scrypt)", total=None, rate="")
        made = Wallet.create(w.path, secret, holder_code=holder_code)
    out = {"wallet": str(made.path), "key_id": made.key_id, "public_key": made.public.spki_b64url}
    if as_json:
        print_json(out)
    else:
        console.print(f"wallet {made.path}\nkey id {made.key_id}\npublic key (give it to the issuing agency: "
                      f"`lianzheng cert issue --holder-key`) {made.public.spki_b64url}", highlight=False)


def show(ctx: typer.Context, wallet: WalletOpt = None, as_json: JsonOpt = False) -> None:
    """The wallet's key id and public key, its certificates and grants (no passphrase needed)."""
    w = _wallet(state(ctx), wallet)
    out = {"wallet": str(w.path), "key_id": w.key_id, "public_key": w.public.spki_b64url,
           "holder_code": w.holder_code, "certificates": [c["identifier"] for c in w.certificates()],
           "grants": [{"digest": g["digest"], "status": g.get("status")} for g in w.grants()]}
    if as_json:
        print_json(out)
        return
    console.print(f"key id {out['key_id']}\npublic key {out['public_key']}", highlight=False)
    console.print(f"{len(out['certificates'])} certificates, {len(out['grants'])} grants", highlight=False)


def add(ctx: typer.Context, source: Annotated[str, typer.Argument(help="the issued certificate (JSON file with "
                                                                        "document and qr_url) or a QR URL")],
        wallet: WalletOpt = None, as_json: JsonOpt = False) -> None:
    """Keep a certificate the holder received in the wallet."""
    from registry.certificates.documents import Document
    from registry.formats import envelope

    w = _wallet(state(ctx), wallet)
    path = Path(source)
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        document = data.get("document") if "document" in data else data
        doc = Document.from_json(document)
        if doc.bound and doc.holder_key_digest != w.key_id:
            raise ValidationError(f"{doc.identifier} is bound to another holder key", code="holder_mismatch")
        target = w.add_certificate(doc.identifier, link=data.get("qr_url"), document=document)
        identifier = doc.identifier
    else:
        identifier, _ = envelope.parse_ref_url(source)
        target = w.add_certificate(identifier, link=source)
    if as_json:
        print_json({"identifier": identifier, "file": str(target)})
    else:
        console.print(f"added {identifier}", highlight=False)


def _document(w: Wallet, identifier: str) -> dict[str, Any]:
    entry = w.certificate(identifier)
    if not entry.get("document"):
        raise ValidationError(f"the wallet has no document for {identifier} (add the issued JSON)",
                              code="no_document")
    return dict(entry["document"])


def present(ctx: typer.Context, identifier: str, wallet: WalletOpt = None, passphrase: Passphrase = None,
            verifier: Annotated[str | None, typer.Option("--verifier", help="who verifies (the challenge's "
                                                         "verifier id)")] = None,
            hide: Annotated[str | None, typer.Option("--hide", help="fields to hide, comma-separated")] = None,
            api_url: ApiUrl = None, as_json: JsonOpt = False) -> None:
    """Present a bound certificate: sign a fresh challenge from the verifying node; show its verdict."""
    from registry.certificates.documents import Document
    from registry.holders.presentation import Challenge, sign_presentation

    st = state(ctx)
    w = _wallet(st, wallet)
    doc = Document.from_json(_document(w, identifier))
    if hide:
        doc = doc.disclose([h.strip() for h in hide.split(",") if h.strip()])
    key = _unlock(w, passphrase)
    client = _client(st, api_url)
    challenge = Challenge.parse(client.post("/api/v1/presentations/challenge",
                                            {"verifier": verifier} if verifier else None))
    signed = sign_presentation(key, doc.digest_sha256.hex(), challenge)
    result = client.post("/api/v1/presentations", {"document": doc.to_json(), "presentation": signed})
    if as_json:
        print_json(result)
        return
    p = result.get("presentation") or {}
    console.print(f"{result['verdict_zh']} / {result['verdict']}; {p.get('verdict')}"
                  + (f" ({p.get('reason')})" if p.get("reason") else ""), highlight=False)


def grant(ctx: typer.Context, identifier: str,
          purpose: Annotated[str, typer.Option("--purpose", help="申请事由 (at most 200 characters)")],
          to_agency: Annotated[str | None, typer.Option("--to-agency", help="the grantee agency's USCC")] = None,
          to_person: Annotated[str | None, typer.Option("--to-person", help="the grantee's ID number")] = None,
          days: Annotated[float, typer.Option("--days", min=0.0001, help="valid for this many days")] = 7.0,
          fields: Annotated[str | None, typer.Option("--fields", help="only these fields, comma-separated")] = None,
          wrap: Annotated[bool, typer.Option("--wrap/--no-wrap", help="wrap the document key for the grantee "
                                                                      "agency (免证办)")] = True,
          wallet: WalletOpt = None, passphrase: Passphrase = None, api_url: ApiUrl = None,
          as_json: JsonOpt = False) -> None:
    """Grant a party the use of a certificate (授权他人用证): signed, anchored, with its QR text."""
    from registry.certificates.documents import Document
    from registry.holders.grants import Grant, Grantee

    st = state(ctx)
    if (to_agency is None) == (to_person is None):
        raise ValidationError("name exactly one grantee: --to-agency USCC or --to-person ID", code="missing_grantee")
    w = _wallet(st, wallet)
    entry = w.certificate(identifier)
    doc = Document.from_json(_document(w, identifier))
    client = _client(st, api_url)
    salt = None
    if to_agency is not None:
        grantee = Grantee.agency(to_agency)
    else:
        grantee, salt = Grantee.person(str(to_person))
    key = _unlock(w, passphrase)
    now = int(time.time())
    grant_id = secrets.token_hex(16)  # the wrapped key is bound to it (AAD)
    wrapped = None
    if to_agency is not None and wrap and entry.get("link"):
        from registry.formats import envelope
        from registry.holders.exchange import check_statement
        from registry.holders.wrapping import wrap_key

        statement = client.get(f"/api/v1/agencies/{to_agency}/exchange-key")
        exchange = check_statement(statement, st.node().consortium, agency=to_agency)
        _, document_key = envelope.parse_ref_url(entry["link"])
        wrapped = wrap_key(document_key, exchange, grant_id=grant_id)
    signed = Grant.build(certificate=doc.digest_sha256.hex(), issuer=doc.issuer_uscc, holder_key=key.public,
                         grantee=grantee, purpose=purpose, not_before=now - 60, expires=now + int(days * 86400),
                         fields=[f.strip() for f in fields.split(",") if f.strip()] if fields else None,
                         wrapped_key=wrapped, grant_id=grant_id).sign(key)
    view = client.post("/api/v1/grants", {"grant": signed.to_json()})
    qr = signed.qr(salt)
    w.add_grant(signed.to_json(), signed.digest.hex(), qr=qr, person_salt=salt, status=view["status"])
    if as_json:
        print_json({**view, "qr": qr})
    else:
        console.print(f"grant {view['digest']} {view['status']} until {view['expires']}\n{qr}", highlight=False)


def revoke_grant(ctx: typer.Context, digest: str, wallet: WalletOpt = None, passphrase: Passphrase = None,
                 api_url: ApiUrl = None, as_json: JsonOpt = False) -> None:
    """Revoke a grant (the holder's signed statement, anchored)."""
    from registry.holders.grants import GrantRevocation

    st = state(ctx)
    w = _wallet(st, wallet)
    key = _unlock(w, passphrase)
    statement = GrantRevocation.build(digest, int(time.time())).sign(key).to_json()
    view = _client(st, api_url).post(f"/api/v1/grants/{digest}/revoke", {"revocation": statement})
    w.update_grant(digest, status=view["status"], revocation=statement)
    if as_json:
        print_json(view)
    else:
        console.print(f"grant {digest} {view['status']}", highlight=False)


def _me(st: State, w: Wallet, passphrase: str | None, api_url: str | None, path: str) -> Any:
    from registry.holders.request_auth import authorization_header

    key = _unlock(w, passphrase)
    client = _client(st, api_url)
    return client.get(path, headers={"Authorization": authorization_header(key, "GET", path)})


def grants(ctx: typer.Context, wallet: WalletOpt = None, passphrase: Passphrase = None, api_url: ApiUrl = None,
           as_json: JsonOpt = False) -> None:
    """The holder's grants as the node knows them (a holder-signed request)."""
    st = state(ctx)
    found = _me(st, _wallet(st, wallet), passphrase, api_url, "/api/v1/holders/me/grants")
    if as_json:
        print_json(found)
        return
    for g in found["grants"]:
        console.print(f"{g['digest'][:16]}… {g['status']:8} {g['identifier']} {g['grantee']['kind']} "
                      f"until {g['expires']}: {g['purpose']}", highlight=False)
    err_console.print(f"{found['count']} grants ({dt.datetime.now(dt.UTC):%H:%M:%S} UTC)")


def certificates(ctx: typer.Context, wallet: WalletOpt = None, passphrase: Passphrase = None,
                 api_url: ApiUrl = None, as_json: JsonOpt = False) -> None:
    """The certificates bound to the holder's key, as the node knows them (a holder-signed request)."""
    st = state(ctx)
    found = _me(st, _wallet(st, wallet), passphrase, api_url, "/api/v1/holders/me/certificates")
    if as_json:
        print_json(found)
        return
    for c in found["certificates"]:
        console.print(f"{c['identifier']} {c['status']}", highlight=False)
