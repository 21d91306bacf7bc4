"""The 电子卡包 export (``lianzheng holder export``) and its verification (``lianzheng verify bundle.json``).

Export: each certificate of the holder's wallet becomes a W3C VC 2.0 credential (registry/formats/vc.py). A copy
without an anchor proof (the issuing response and the by-reference blob leave before anchoring) gets one from
``GET /api/v1/certificates/{id}/anchor``; ``Document.with_anchor`` refuses a proof that does not place the
document's own digest. The issuer's ``did:bid`` is the BID the chain shows for the agency that anchored it (from
``POST /api/v1/verify``). The bundle carries the wallet's offline QR payloads beside the credentials and is
written 0600 (it holds the holder's data).

Verify: each credential is re-imported (`from_credential`: every claim must be what its document says), and its
document is verified exactly as a presented document (``POST /api/v1/verify``); then the credential's issuer DID
must be the BID the chain shows. A claim that differs from the document makes the verdict ``tampered``. The
bundle's offline payloads are verified too (``POST /api/v1/verify/offline``) and must name a credential of the
bundle.

    $ lianzheng holder export -o kabao.json
    $ lianzheng verify kabao.json

``holder export`` joins the ``holder`` command group of api/cli/holder_cmds.py (`register`, after it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer

from api.cli._common import console, err_console, print_json, progress, state
from api.cli.options import ApiUrl, JsonOpt, WalletOpt
from registry.errors import PayloadFormatError, ValidationError

if TYPE_CHECKING:
    from api.cli.client import ApiClient
    from registry.certificates.documents import Document

# documents, envelopes, the VC and offline formats and the wallet load inside the functions that use them:
# `lianzheng --help` and the other commands do without them (tests/unit/test_cli_startup.py)

__all__ = ["WalletCertificate", "export", "export_bundle", "verify_credentials", "wallet_certificates"]


def export(ctx: typer.Context,
           out: Annotated[Path | None, typer.Option("-o", "--out", help="the bundle file (0600); default: stdout")] = None,
           wallet: WalletOpt = None, api_url: ApiUrl = None, as_json: JsonOpt = False) -> None:
    """电子卡包 export: every certificate of the wallet as a W3C VC 2.0 credential, with its offline QR codes."""
    from api.cli.client import ApiClient
    from registry.holders.wallet import Wallet

    st = state(ctx)
    w = Wallet(wallet or st.settings.data_dir / "wallet")
    entries = w.certificates()
    client = ApiClient(api_url or st.settings.public_base)
    with progress(transient=True) as bar:
        task = bar.add_task("exporting", total=len(entries) or None, rate="")
        held = wallet_certificates(client, entries)
        exported, results = export_bundle(client, held, holder_key_id=w.key_id)
        bar.update(task, completed=len(entries))
    text = json.dumps(exported, ensure_ascii=False, indent=2) + "\n"
    verdicts = [r.get("verdict") for r in results]
    summary = {"credentials": len(verdicts), "valid": verdicts.count("valid"),
               "offline_qr": sum(len(v) for v in exported["offlineQr"].values()),
               "not_valid": {r["identifier"]: r["verdict"] for r in results if r.get("verdict") != "valid"},
               "file": str(out) if out else None}
    if out is None:
        typer.echo(text, nl=False)
        err_console.print(f"{summary['credentials']} credentials ({summary['valid']} valid), "
                          f"{summary['offline_qr']} offline codes", highlight=False)
        return
    _write_0600(out, text.encode("utf-8"))
    if as_json:
        print_json(summary)
    else:
        console.print(f"exported {summary['credentials']} credentials ({summary['valid']} valid"
                      + "".join(f", {i}: {v}" for i, v in summary["not_valid"].items())
                      + f") and {summary['offline_qr']} offline codes to {out} (mode 0600)", highlight=False)


def _write_0600(path: Path, data: bytes) -> None:
    """``path`` written atomically as a 0600 file (holder data): a temporary file created 0600 with O_EXCL in
    the same folder, fsynced, renamed over ``path``. The folder is the user's and keeps its mode."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class WalletCertificate:
    """One certificate of a holder's wallet: its document (with or without an anchor proof) and the offline QR
    payloads the holder keeps for it."""

    document: Document
    offline_qr: tuple[str, ...] = field(default=())


def document_from_offline(text: str) -> Document:
    """The document an offline QR payload carries (its shown fields with their salts, its hidden fields' leaf
    hashes in both algorithms); ValidationError when it hides a field without the SM3 part (the SM3 digest
    could not be recomputed). Its anchor comes from the node (`anchored`): the payload has no transaction."""
    from registry.certificates.documents import DisclosedField, Document, HiddenField
    from registry.formats.lz2 import decode_payload

    p = decode_payload(text)
    missing = sorted(set(p.hidden) - set(p.sm3_hidden))
    if missing:
        raise ValidationError(f"offline payload of {p.identifier} hides {missing[0]!r} without its SM3 leaf hash: "
                              "add the certificate by its link instead", code="incomplete_offline_payload")
    fields = {name: DisclosedField(salt=salt, value=value) for name, (salt, value) in p.disclosed.items()}
    hidden = {name: HiddenField(sha256=h, sm3=p.sm3_hidden[name]) for name, h in p.hidden.items()}
    doc = Document(identifier=p.identifier, type_code=p.type_code, fields=fields, hidden=hidden, digest_sha256=b"",
                   digest_sm3=b"", salt_seed=p.salt_seed or None)
    sha, sm3 = doc.compute_digests()
    return dataclasses.replace(doc, digest_sha256=sha, digest_sm3=sm3)


def wallet_certificates(client: ApiClient, entries: Sequence[Mapping[str, Any]]) -> list[WalletCertificate]:
    """The wallet's certificates as documents (registry/holders/wallet.py entries): the saved document, else the
    by-reference blob opened with its link's key (fetched from ``client``'s node), else the offline payload's."""
    from registry.certificates.documents import Document
    from registry.formats import envelope

    out = []
    for entry in entries:
        offline = entry.get("offline")
        qrs = (offline,) if isinstance(offline, str) and offline else ()
        if isinstance(entry.get("document"), Mapping):
            doc = Document.from_json(entry["document"])
        elif isinstance(entry.get("link"), str):
            identifier, key = envelope.parse_ref_url(entry["link"])
            blob = client.response("GET", f"/api/v1/certificates/{quote(identifier, safe='')}/blob").content
            doc = Document.from_json(envelope.open_(blob, key, aad=envelope.aad_for(identifier)))
        elif qrs:
            doc = document_from_offline(qrs[0])
        else:
            raise ValidationError(f"wallet entry {str(entry.get('identifier'))[:80]} has no document, link or "
                                  "offline code", code="invalid_wallet")
        if doc.identifier != entry.get("identifier"):
            raise ValidationError(f"wallet entry {str(entry.get('identifier'))[:80]} holds {doc.identifier}",
                                  code="invalid_wallet")
        out.append(WalletCertificate(doc, qrs))
    return out


def anchored(client: ApiClient, document: Document) -> Document:
    """``document`` with its anchor proof (fetched when it has none)."""
    from registry.certificates.documents import AnchorProof

    if document.anchor is not None:
        return document
    proof = client.get(f"/api/v1/certificates/{quote(document.identifier, safe='')}/anchor")
    return document.with_anchor(AnchorProof.from_json(proof))


def export_bundle(client: ApiClient, certificates: Sequence[WalletCertificate], *, holder_key_id: str | None,
                  now: dt.datetime | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the export bundle, the verification result of each certificate as exported). ``client`` talks to the
    node whose base URL goes into the credentials (context and status URLs)."""
    from registry.formats.vc import bundle, to_credential

    if not certificates:
        raise ValidationError("the wallet holds no certificate to export", code="empty_wallet")
    credentials, results = [], []
    offline: dict[str, list[str]] = {}
    for item in certificates:
        doc = anchored(client, item.document)
        result = client.post("/api/v1/verify", doc.to_json())
        bid = (result.get("issuer") or {}).get("bid")
        if not isinstance(bid, str):
            raise ValidationError(f"{doc.identifier}: the chain shows no issuing agency for it "
                                  f"({result.get('verdict')}): it cannot be exported", code="issuer_unknown")
        credentials.append(to_credential(doc, issuer_did=bid, base_url=client.base_url))
        results.append(result)
        if item.offline_qr:
            offline.setdefault(doc.identifier, []).extend(item.offline_qr)
    return bundle(credentials, offline_qr=offline, holder_key_id=holder_key_id,
                  exported=now or dt.datetime.now(dt.UTC)), results


def _check(name: str, ok: bool, zh: str, en: str, **details: Any) -> dict[str, Any]:
    return {"name": name, "status": "VALID" if ok else "INVALID", "reason_zh": zh, "reason_en": en,
            "details": details}


def _with_verdict(result: dict[str, Any], verdict: str) -> dict[str, Any]:
    from registry.certificates.verification import VERDICT_TEXT

    zh, en = VERDICT_TEXT[verdict]
    return {**result, "verdict": verdict, "verdict_zh": zh, "verdict_en": en}


def verify_credential(client: ApiClient, vc: Any) -> dict[str, Any]:
    """The verification result of one credential: its document's, with a ``credential`` check first."""
    from registry.formats.vc import from_credential

    try:
        imported = from_credential(vc)
    except PayloadFormatError as exc:
        if exc.code != "credential_mismatch":
            raise
        ident = vc.get("id") if isinstance(vc, Mapping) else None
        check = _check("credential", False, f"凭证声明与其中的链证文档不符：{exc.message}",
                       f"the credential's claims differ from its Lianzheng document: {exc.message}",
                       members=exc.details.get("members", []))
        return _with_verdict({"identifier": ident, "checks": [check]}, "tampered")
    result: dict[str, Any] = client.post("/api/v1/verify", imported.document.to_json())
    issuer = result.get("issuer") or {}
    errors = imported.issuer_errors(issuer.get("bid")) if issuer else []
    if errors:
        check = _check("credential", False, "凭证的颁发者标识与链上颁发机构不符：" + "; ".join(errors),
                       "the credential's issuer is not the agency the chain shows: " + "; ".join(errors))
        result = _with_verdict(result, "unknown_issuer")
    elif issuer:
        check = _check("credential", True, f"凭证声明与链证文档一致，颁发者 {imported.issuer_did} 即链上颁发机构",
                       f"the claims are those of its Lianzheng document; issuer {imported.issuer_did} is the agency "
                       "the chain shows", status=imported.status_url)
    else:
        check = {**_check("credential", True, "凭证声明与链证文档一致（颁发机构未能核验）",
                          "the claims are those of its Lianzheng document (the issuer could not be checked)"),
                 "status": "SKIPPED"}
    return {**result, "checks": [check, *result.get("checks", [])], "credential": vc.get("id")}


def verify_credentials(client: ApiClient, obj: Any) -> dict[str, Any]:
    """A lone credential's result, or for a bundle one result over all its credentials and offline payloads:
    valid only when every one of them is (``credentials`` and ``offline_qr`` hold each result)."""
    from registry.formats.vc import parse_bundle

    credentials, offline = parse_bundle(obj)
    results = [verify_credential(client, vc) for vc in credentials]
    if "@context" in obj:
        return results[0]
    known = {r.get("identifier") for r in results}
    qr_results = []
    for identifier, payloads in offline.items():
        for payload in payloads:
            r = client.post("/api/v1/verify/offline", {"payload": payload})
            if r.get("identifier") != identifier or identifier not in known:
                r = _with_verdict({**r, "checks": [_check("bundle", False, "离线码与卡包中的证照不对应",
                                                          "the offline code is not one of the bundle's certificates",
                                                          listed_as=identifier)]}, "tampered")
            qr_results.append(r)
    checks = [_check(f"credential[{i}]", r["verdict"] == "valid", f"{r.get('identifier')}：{r['verdict_zh']}",
                     f"{r.get('identifier')}: {r['verdict_en']}") for i, r in enumerate(results)]
    checks += [_check(f"offline_qr[{i}]", r["verdict"] == "valid", f"离线码 {r.get('identifier')}：{r['verdict_zh']}",
                      f"offline code {r.get('identifier')}: {r['verdict_en']}") for i, r in enumerate(qr_results)]
    worst = next((r["verdict"] for r in [*results, *qr_results] if r["verdict"] != "valid"), "valid")
    return _with_verdict({"identifier": f"{len(results)} credentials, {len(qr_results)} offline codes",
                          "checks": checks, "credentials": results, "offline_qr": qr_results}, worst)
