"""Evidence packages (证据包): a case's records, custody log, on-chain proofs and the consortium trust list in
one zip, signed by the exporting agency, verifiable by a court with or without network.

Layout::

    manifest.json     RFC 8785 canonical JSON: format, case, exporter, chain (id, contract addresses, export
                      block and hash) and the SHA-256 of every other file
    signature.json    secp256k1 recoverable signature (coincurve) over SHA-256(manifest.json), and the signer
    case.json         case number, its on-chain key, owner, sealed state
    records/<id>.json each record's off-chain metadata (whose canonical digest is the on-chain metaDigest)
    custody.json      every step (register, transfer, accept, reject, seal) with tx hash, block number and
                      hash, time, and the signed raw transaction
    trust-list.json   the consortium's members, BIDs, roles and accounts as of the export block
    README.txt

A signed raw transaction proves on its own who signed which call: verification recovers each signer,
checks it is an account of the acting agency in the trust list, and decodes the calldata to compare it with
the records, so the custody chain holds offline "as of" the export block. Online, each transaction and
block is also looked up on the chain, and each record's on-chain state compared.

    >>> info = export_case(service, agency, "哈公行罚〔2026〕17号", open("case.zip", "wb"))     # doctest: +SKIP
    >>> report = verify_package(Path("case.zip"))                                          # doctest: +SKIP
    >>> report.ok, report.as_of_block                                                      # doctest: +SKIP
    (True, 1234)
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import coincurve
import rfc8785
import structlog
from eth_typing import HexStr
from sqlalchemy import select

from chain.backends import ChainBackend
from chain.contracts import b32
from chain.errors import ChainError
from chain.ledgers import ZERO32, EvidenceLedgerClient, decode_call, decode_raw_transaction
from registry.errors import (
    ChainUnavailableError,
    ConflictError,
    PayloadFormatError,
    PayloadTooLargeError,
    RegistryError,
)
from registry.evidence.service import EvidenceService, evidence_metadata, metadata_digest
from registry.identifiers import eth_address_from_public_key
from registry.outbox.steps import hex0x, iso_time, sha256_key
from registry.store.ledger_models import EvidenceCase, EvidenceEvent, EvidenceRecord, StepState

log = structlog.get_logger(__name__)

FORMAT = "lianzheng-evidence-package/1"
SIGNATURE_ALGORITHM = "secp256k1-recoverable/sha256"
MAX_PACKAGE_BYTES = 256 * 1024 * 1024  # uncompressed; a package holds digests and metadata, never content
MAX_MEMBERS = 100_000

_README = """链证 Lianzheng 证据包 / evidence package

manifest.json 列出每个文件的 SHA-256，signature.json 是导出机构对 manifest.json 的签名（secp256k1）。
custody.json 中每一步都附带链上交易（已签名原始交易、交易哈希、区块号与区块哈希）。
核验 / verify:  lianzheng evidence verify-package <this zip> [--offline]

manifest.json lists the SHA-256 of every file; signature.json is the exporting agency's secp256k1
signature over it. Each custody step carries its signed raw transaction, tx hash, block number and hash.
"""


# ---------------------------------------------------------------------------------------------------- export


@dataclass(frozen=True)
class PackageInfo:
    case_no: str
    records: int
    steps: int
    as_of_block: int
    manifest_sha256: str
    signer: str


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def _trust_list(service: EvidenceService, block: int) -> list[dict[str, Any]]:
    consortium = service.node.consortium
    out = []
    for i in range(int(consortium._call("memberCount", block=block))):
        uscc = bytes(consortium._call("memberAt", i, block=block)).rstrip(b"\0").decode()
        info = consortium.get_member(uscc, block=block)
        if info is not None:
            out.append({"uscc": info.uscc, "name": info.name, "bid": info.bid, "roles": info.roles.names(),
                        "status": info.status.name.lower(), "accounts": list(info.accounts),
                        "admitted_block": info.admitted_block})
    return out


def _step_json(service: EvidenceService, e: EvidenceEvent, record_key: str | None) -> dict[str, Any]:
    raw = e.raw_tx
    if raw is None and e.tx_hash:
        raw = service._raw_tx(e.tx_hash)  # steps found on chain when resuming: fetch the signed bytes
    return {
        "step": e.kind, "record": e.record_id, "record_key": record_key, "case_key": e.case_key, "by": e.actor_uscc,
        "to": e.to_uscc, "purpose": e.purpose, "purpose_digest": e.purpose_digest,
        "digest_rechecked": e.digest_rechecked, "tx_hash": e.tx_hash, "block_number": e.block_number,
        "block_hash": e.block_hash, "block_timestamp": e.block_timestamp, "at": iso_time(e.block_timestamp),
        "account": e.account, "raw_tx": hex0x(raw) if raw else None,
    }


def export_case(service: EvidenceService, agency: str, case_no: str, out: BinaryIO) -> PackageInfo:
    """Write the package of `case_no` to `out`, signed with `agency`'s key. The agency must own the case, be
    involved in one of its records, or be an auditor; every step of the case must be on chain."""
    node = service.node
    view = service.case(agency, case_no)  # access check
    deployment = node.require_deployment()
    w3 = node.backend.w3
    try:
        head = int(w3.eth.block_number)
        head_hash = "0x" + bytes(w3.eth.get_block(head)["hash"]).hex()
        chain_id = int(w3.eth.chain_id)
        trust = _trust_list(service, head)
    except (ChainError, OSError) as exc:
        raise ChainUnavailableError(f"cannot export while the chain is unreachable: {exc}",
                                    code="chain_unavailable") from exc
    files: dict[str, bytes] = {}
    with node.db.session() as s:
        case = s.get(EvidenceCase, view.case_key)
        assert case is not None
        steps = s.scalars(select(EvidenceEvent).where(EvidenceEvent.case_key == case.case_key)
                          .order_by(EvidenceEvent.block_number, EvidenceEvent.id)).all()
        open_steps = [e for e in steps if e.state in (StepState.PENDING.value, StepState.SENT.value)]
        if open_steps:
            raise ConflictError(f"{len(open_steps)} steps of case {case.case_no} are still being anchored; export "
                                f"when they are on chain", code="steps_pending")
        records = s.scalars(select(EvidenceRecord).where(EvidenceRecord.case_key == case.case_key,
                                                         EvidenceRecord.status == "registered")
                            .order_by(EvidenceRecord.id)).all()
        keys = {r.id: r.key for r in records}
        done = [e for e in steps if e.state == StepState.DONE.value and (e.record_id is None or e.record_id in keys)]
        custody = [_step_json(service, e, keys.get(e.record_id or "")) for e in done]
        seal = next((c for c in custody if c["step"] == "seal"), None)
        files["case.json"] = _dumps({
            "case_no": case.case_no, "case_key": case.case_key, "scenario": case.scenario, "owner": case.owner_uscc,
            "sealed": case.sealed, "sealed_block": case.sealed_block, "sealed_at": iso_time(case.sealed_timestamp),
            "seal_tx": seal["tx_hash"] if seal else None})
        for r in records:
            files[f"records/{r.id}.json"] = _dumps({
                "id": r.id, "key": r.key, "metadata": evidence_metadata(r, case.case_no), "meta_digest": r.meta_digest,
                "custodian": r.custodian_uscc, "pending_transfer_to": r.pending_to, "superseded_by": r.superseded_by,
                "timestamp_token": base64.b64encode(r.timestamp_token).decode() if r.timestamp_token else None})
    files["custody.json"] = _dumps(custody)
    files["trust-list.json"] = _dumps({"as_of_block": head, "members": trust})
    files["README.txt"] = _README.encode("utf-8")
    account = node.keys.signing_account(agency)
    exporter = next((m for m in trust if m["uscc"] == agency), None)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "case_key": view.case_key,
        "exported_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "exported_by": {"uscc": agency, "account": account.address, "bid": exporter["bid"] if exporter else None},
        "chain": {"chain_id": chain_id, "evidence_ledger": deployment.address("EvidenceLedger"),
                  "consortium": deployment.address("ConsortiumRegistry"), "as_of_block": head,
                  "as_of_block_hash": head_hash},
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    manifest_bytes = rfc8785.dumps(manifest)
    digest = hashlib.sha256(manifest_bytes).digest()
    # coincurve: hasher=None signs the 32-byte digest as is; 65 bytes r || s || recovery id
    signature = coincurve.PrivateKey(bytes(account.key)).sign_recoverable(digest, hasher=None)
    sig = {"algorithm": SIGNATURE_ALGORITHM, "manifest_sha256": digest.hex(), "signature": signature.hex(),
           "signer": account.address}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", manifest_bytes)
        z.writestr("signature.json", _dumps(sig))
        for name, data in sorted(files.items()):
            z.writestr(name, data)
    log.info("evidence package exported", case=case_no, records=len(records), steps=len(custody), block=head)
    return PackageInfo(case_no, len(records), len(custody), head, digest.hex(), account.address)


# ---------------------------------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class Finding:
    code: str
    subject: str  # the file, record or step concerned
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "subject": self.subject, "message": self.message}


@dataclass(frozen=True)
class PackageReport:
    ok: bool
    mode: str  # "offline" | "online"
    case_no: str | None
    records: int
    steps: int
    as_of_block: int | None
    signer: dict[str, Any] | None
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        if not self.ok:
            first = self.findings[0]
            more = f" (+{len(self.findings) - 1} more)" if len(self.findings) > 1 else ""
            return f"package INVALID: {first.subject}: {first.message}{more}"
        where = (f"offline, as of block {self.as_of_block}" if self.mode == "offline"
                 else f"online: every transaction is still on chain (package as of block {self.as_of_block})")
        signer = (self.signer or {}).get("uscc")
        return (f"package OK: case {self.case_no}, {self.records} records, {self.steps} custody steps, signed by "
                f"{signer}; verified {where}")

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "verdict": "valid" if self.ok else "invalid", "mode": self.mode, "case_no": self.case_no,
                "records": self.records, "steps": self.steps, "as_of_block": self.as_of_block, "signer": self.signer,
                "summary": self.summary, "findings": [f.to_json() for f in self.findings], "notes": self.notes}


class _Checker:
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.notes: list[str] = []

    def fail(self, code: str, subject: str, message: str) -> None:
        self.findings.append(Finding(code, subject, message))


def _read_zip(source: Path | BinaryIO) -> dict[str, bytes]:
    try:
        z = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PayloadFormatError(f"not a zip file: {exc}", code="invalid_package") from exc
    with z:
        infos = z.infolist()
        if len(infos) > MAX_MEMBERS:
            raise PayloadTooLargeError(f"package has {len(infos)} files, at most {MAX_MEMBERS}", code="package_too_large")
        total = sum(i.file_size for i in infos)
        if total > MAX_PACKAGE_BYTES:
            raise PayloadTooLargeError(f"package unpacks to {total} bytes, at most {MAX_PACKAGE_BYTES}",
                                       code="package_too_large")
        out: dict[str, bytes] = {}
        for info in infos:
            name = info.filename
            if info.is_dir():
                continue
            if name.startswith("/") or ".." in name.split("/"):
                raise PayloadFormatError(f"unsafe path in package: {name!r}", code="invalid_package")
            try:
                out[name] = z.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError,
                    RuntimeError) as exc:  # corrupt, truncated, encrypted or oddly compressed member
                raise PayloadFormatError(f"cannot read {name!r} from the package: {exc}", code="invalid_package") from exc
        return out


def _json(files: Mapping[str, bytes], name: str) -> Any:
    try:
        return json.loads(files[name].decode("utf-8"))
    except KeyError:
        raise PayloadFormatError(f"package has no {name}", code="invalid_package") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadFormatError(f"{name} is not valid JSON: {exc}", code="invalid_package") from exc


def verify_package(source: Path | BinaryIO | bytes, *, backend: ChainBackend | None = None) -> PackageReport:
    """Check a package: signature, manifest, each record against its signed registration, the custody
    order, and with `backend` (online) that every transaction and block is still on chain. A package whose
    files do not have the shapes written by `export_case` is refused with PayloadFormatError."""
    files = _read_zip(io.BytesIO(source) if isinstance(source, bytes) else source)
    try:
        return _verify_files(files, backend)
    except RegistryError:
        raise
    except (LookupError, TypeError, ValueError, AttributeError) as exc:  # a JSON value of the wrong shape
        raise PayloadFormatError(f"malformed package content ({type(exc).__name__}: {exc})",
                                 code="invalid_package") from exc


def _verify_files(files: Mapping[str, bytes], backend: ChainBackend | None) -> PackageReport:
    c = _Checker()
    manifest = _json(files, "manifest.json")
    sig = _json(files, "signature.json")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PayloadFormatError(f"not a Lianzheng evidence package (expected format {FORMAT})", code="invalid_package")
    chain = manifest.get("chain") or {}
    as_of = chain.get("as_of_block")
    trust_doc = _json(files, "trust-list.json")
    members = {m["uscc"]: m for m in trust_doc.get("members", [])}
    signer = _check_signature(c, files, manifest, sig, members)
    _check_manifest(c, files, manifest)
    case = _json(files, "case.json")
    custody = _json(files, "custody.json")
    records = {name: _json(files, name) for name in sorted(files) if name.startswith("records/")}
    _check_records(c, records, case, custody, chain, members)
    _check_custody(c, records, case, custody, chain, members)
    mode = "offline"
    if backend is not None:
        mode = "online"
        _check_online(c, backend, records, case, custody, chain)
    ok = not c.findings
    return PackageReport(ok, mode, case.get("case_no"), len(records), len(custody), as_of, signer, c.findings, c.notes)


def _accounts(members: Mapping[str, Any], uscc: str | None) -> set[str]:
    m = members.get(uscc or "")
    return {a.lower() for a in m.get("accounts", [])} if m else set()


def _check_signature(c: _Checker, files: Mapping[str, bytes], manifest: dict[str, Any], sig: Any,
                     members: Mapping[str, Any]) -> dict[str, Any] | None:
    digest = hashlib.sha256(files["manifest.json"]).digest()
    exporter = manifest.get("exported_by") or {}
    try:
        signature = bytes.fromhex(str(sig.get("signature", "")))
        public = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
        address = eth_address_from_public_key(public.format(compressed=False))
    except Exception as exc:  # malformed signature: report, do not crash
        c.fail("bad_signature", "signature.json", f"the signature does not verify over manifest.json: {exc}")
        return None
    if address.lower() != str(exporter.get("account", "")).lower():
        c.fail("bad_signature", "signature.json", f"manifest.json was signed by {address}, not by the exporter's "
                                                  f"account {exporter.get('account')} (manifest edited or re-signed)")
    elif address.lower() not in _accounts(members, exporter.get("uscc")):
        c.fail("unknown_signer", "signature.json", f"signer {address} is not an account of {exporter.get('uscc')} in "
                                                   f"the trust list")
    if rfc8785.dumps(manifest) != files["manifest.json"]:
        c.fail("manifest_not_canonical", "manifest.json", "manifest.json is not in RFC 8785 canonical form")
    return {"uscc": exporter.get("uscc"), "account": address, "bid": exporter.get("bid")}


def _check_manifest(c: _Checker, files: Mapping[str, bytes], manifest: dict[str, Any]) -> None:
    listed: dict[str, str] = manifest.get("files") or {}
    for name, expected in sorted(listed.items()):
        data = files.get(name)
        if data is None:
            c.fail("missing_file", name, "listed in the manifest but missing from the package")
        elif hashlib.sha256(data).hexdigest() != expected:
            c.fail("file_modified", _subject(name), f"{name} does not match the manifest: SHA-256 "
                                                    f"{hashlib.sha256(data).hexdigest()}, signed {expected}")
    for name in sorted(set(files) - set(listed) - {"manifest.json", "signature.json"}):
        c.fail("unexpected_file", name, "in the package but not in the signed manifest")


def _subject(name: str) -> str:
    if name.startswith("records/") and name.endswith(".json"):
        return f"record {name[len('records/'):-len('.json')]}"
    return name


def _decoded(c: _Checker, step: Mapping[str, Any], chain: Mapping[str, Any], subject: str,
             members: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The step's signed transaction, checked: hash, signer (an account of the acting agency), target
    contract and chain; returns (function, arguments)."""
    raw_hex = step.get("raw_tx")
    if not raw_hex:
        c.fail("missing_transaction", subject, f"{step.get('step')} has no signed transaction")
        return None
    try:
        tx = decode_raw_transaction(bytes.fromhex(str(raw_hex).removeprefix("0x")))
    except Exception as exc:
        c.fail("bad_transaction", subject, f"{step.get('step')}: the signed transaction does not decode: {exc}")
        return None
    if tx.tx_hash != str(step.get("tx_hash", "")).lower():
        c.fail("bad_transaction", subject, f"{step.get('step')}: the signed transaction hashes to {tx.tx_hash}, "
                                           f"not {step.get('tx_hash')}")
    if tx.sender.lower() not in _accounts(members, step.get("by")):
        c.fail("wrong_signer", subject, f"{step.get('step')} was signed by {tx.sender}, which is not an account of "
                                        f"{step.get('by')} in the trust list")
    if (tx.to or "").lower() != str(chain.get("evidence_ledger", "")).lower():
        c.fail("bad_transaction", subject, f"{step.get('step')} was sent to {tx.to}, not to the EvidenceLedger")
    if tx.chain_id is not None and tx.chain_id != chain.get("chain_id"):
        c.fail("bad_transaction", subject, f"{step.get('step')} was signed for chain {tx.chain_id}, not "
                                           f"{chain.get('chain_id')}")
    call = decode_call("EvidenceLedger", tx.data)
    if call is None:
        c.fail("bad_transaction", subject, f"{step.get('step')}: the transaction is not an EvidenceLedger call")
    return call


def _check_records(c: _Checker, records: Mapping[str, Any], case: Mapping[str, Any], custody: list[dict[str, Any]],
                   chain: Mapping[str, Any], members: Mapping[str, Any]) -> None:
    if hex0x(sha256_key(str(case.get("case_no", "")))) != case.get("case_key"):
        c.fail("case_mismatch", "case.json", "case_key is not the SHA-256 of case_no")
    registrations = {s.get("record"): s for s in custody if s.get("step") == "register"}
    for name, rec in records.items():
        rid = rec.get("id")
        subject = f"record {rid}"
        meta = rec.get("metadata") or {}
        digest = metadata_digest(meta)
        if digest != rec.get("meta_digest"):
            c.fail("metadata_mismatch", subject, f"its metadata hashes to {digest}, not to the recorded metaDigest "
                                                 f"{rec.get('meta_digest')}")
        if meta.get("id") != rid or f"records/{rid}.json" != name or hex0x(sha256_key(str(rid))) != rec.get("key"):
            c.fail("record_mismatch", subject, "the file name, id and key do not agree")
        if meta.get("case_no") != case.get("case_no"):
            c.fail("record_mismatch", subject, f"belongs to case {meta.get('case_no')!r}, not {case.get('case_no')!r}")
        token = rec.get("timestamp_token")
        token_digest = (meta.get("acquisition") or {}).get("timestamp_token_sha256")
        if token_digest and (not token or hashlib.sha256(base64.b64decode(token)).hexdigest() != token_digest):
            c.fail("timestamp_token_mismatch", subject, "the RFC 3161 token does not match the digest in the metadata")
        reg = registrations.get(rid)
        if reg is None:
            c.fail("not_registered", subject, "no registration step in custody.json")
            continue
        call = _decoded(c, reg, chain, subject, members)
        if call is None:
            continue
        fn, args = call
        content = meta.get("content") or {}
        supersedes = meta.get("supersedes")
        expected = {
            "id": sha256_key(str(rid)), "caseId": bytes.fromhex(str(case.get("case_key", "0x"))[2:] or "00"),
            "sha256Digest": _hex_bytes(content.get("sha256")), "sm3Digest": _hex_bytes(content.get("sm3")),
            "size": content.get("size"), "metaDigest": _hex_bytes(digest),
            "supersedes": sha256_key(supersedes) if supersedes else ZERO32,
        }
        if fn != "register":
            c.fail("bad_transaction", subject, f"its registration transaction calls {fn}, not register")
            continue
        for arg, want in expected.items():
            if args.get(arg) != want:
                got = args.get(arg)
                shown = hex0x(got) if isinstance(got, bytes) else got
                what = "metaDigest (the metadata was edited)" if arg == "metaDigest" else arg
                c.fail("registration_mismatch", subject, f"{what} differs from the signed registration "
                                                         f"{reg.get('tx_hash')}: registered {shown}")
        if reg.get("by") != (meta.get("collector") or {}).get("uscc"):
            c.fail("registration_mismatch", subject, "registered by another agency than the collector")


def _hex_bytes(value: Any) -> bytes | None:
    try:
        return bytes.fromhex(str(value).removeprefix("0x"))
    except ValueError:
        return None


def _check_custody(c: _Checker, records: Mapping[str, Any], case: Mapping[str, Any], custody: list[dict[str, Any]],
                   chain: Mapping[str, Any], members: Mapping[str, Any]) -> None:
    """Replay the custody state machine in chain order, as the contract would."""
    by_id = {rec.get("id"): rec for rec in records.values()}
    custodian: dict[str, str] = {}
    pending: dict[str, str | None] = {}
    sealed_at: int | None = None
    last = (-1, -1)
    as_of = chain.get("as_of_block") or 0
    for i, step in enumerate(custody):
        kind, rid, by = step.get("step"), str(step.get("record") or ""), str(step.get("by") or "")
        subject = f"record {rid}" if rid else "case"
        where = f"step {i} ({kind})"
        to = str(step.get("to") or "") or None
        position = (int(step.get("block_number") or 0), i)
        if position < last:
            c.fail("custody_order", subject, f"{where} is out of chain order")
        last = position
        if position[0] > as_of:
            c.fail("custody_order", subject, f"{where} is in block {position[0]}, after the export block {as_of}")
        if kind != "register":
            call = _decoded(c, step, chain, subject, members)
            if call is not None:
                _check_call(c, step, call, subject, where)
        if kind == "seal":
            if by != case.get("owner"):
                c.fail("custody_order", "case", f"sealed by {by}, not by the case owner {case.get('owner')}")
            sealed_at = position[0]
            continue
        if rid not in by_id:
            c.fail("custody_order", subject, f"{where} concerns a record that is not in the package")
            continue
        if sealed_at is not None and kind in ("register", "transfer", "accept"):
            c.fail("custody_order", subject, f"{where} happened after the case was sealed")
        if kind == "register":
            if rid in custodian:
                c.fail("custody_order", subject, "registered twice")
            custodian[rid], pending[rid] = by, None
        elif rid not in custodian:
            c.fail("custody_order", subject, f"{where} comes before the record's registration")
        elif kind == "transfer":
            if by != custodian[rid] or pending[rid] is not None or to in (None, by):
                c.fail("custody_order", subject, f"{where}: {by} transferred it while {custodian[rid]} held it"
                                                 + (f" with a transfer to {pending[rid]} pending" if pending[rid] else ""))
            pending[rid] = to
        elif kind in ("accept", "reject"):
            if pending.get(rid) != by:
                c.fail("custody_order", subject, f"{where}: {by} answered a transfer addressed to {pending.get(rid)}")
            if kind == "accept":
                custodian[rid] = by
            pending[rid] = None
    for rid, rec in by_id.items():
        if rid in custodian and (rec.get("custodian") != custodian[rid] or rec.get("pending_transfer_to") != pending[rid]):
            c.fail("custody_mismatch", f"record {rid}", f"the custody log ends with {custodian[rid]} holding it, but the "
                                                        f"record says {rec.get('custodian')}")
    if bool(case.get("sealed")) != (sealed_at is not None):
        c.fail("custody_mismatch", "case", "case.json and the custody log disagree on whether the case is sealed")


def _check_call(c: _Checker, step: Mapping[str, Any], call: tuple[str, dict[str, Any]], subject: str,
                where: str) -> None:
    fn, args = call
    key = _hex_bytes(step.get("record_key")) if step.get("record_key") else None
    kind = step.get("step")
    expected: dict[str, Any]
    if kind == "seal":
        expected = {"_fn": "sealCase", "caseId": _hex_bytes(step.get("case_key"))}
    elif kind == "transfer":
        expected = {"_fn": "transfer", "id": key, "toUscc": b32(str(step.get("to"))),
                    "purposeDigest": _hex_bytes(step.get("purpose_digest")),
                    "digestRechecked": bool(step.get("digest_rechecked"))}
    elif kind == "accept":
        expected = {"_fn": "accept", "id": key, "digestRechecked": bool(step.get("digest_rechecked"))}
    else:
        expected = {"_fn": "reject", "id": key}
    if fn != expected.pop("_fn"):
        c.fail("bad_transaction", subject, f"{where}: the signed transaction calls {fn}")
        return
    for arg, want in expected.items():
        if args.get(arg) != want:
            c.fail("custody_mismatch", subject, f"{where}: {arg} differs from the signed transaction {step.get('tx_hash')}")


def _check_online(c: _Checker, backend: ChainBackend, records: Mapping[str, Any], case: Mapping[str, Any],
                  custody: list[dict[str, Any]], chain: Mapping[str, Any]) -> None:
    w3 = backend.w3
    try:
        if int(w3.eth.chain_id) != chain.get("chain_id"):
            c.fail("wrong_chain", "chain", f"the node serves chain {w3.eth.chain_id}, the package is for "
                                           f"{chain.get('chain_id')}")
            return
        as_of = int(chain.get("as_of_block") or 0)
        head = int(w3.eth.block_number)
        if head < as_of:
            c.fail("chain_rewound", "chain", f"the chain is at block {head}, before the export block {as_of}")
            return
        if "0x" + bytes(w3.eth.get_block(as_of)["hash"]).hex() != chain.get("as_of_block_hash"):
            c.fail("chain_rewritten", "chain", f"block {as_of} on chain is not the one the package was exported at")
        for step in custody:
            subject = f"record {step.get('record')}" if step.get("record") else "case"
            try:
                r = w3.eth.get_transaction_receipt(HexStr(str(step.get("tx_hash"))))
            except ChainError:
                raise
            except Exception:
                r = None
            if r is None or int(r["status"]) != 1:
                c.fail("not_on_chain", subject, f"{step.get('step')} transaction {step.get('tx_hash')} is not on chain")
                continue
            if int(r["blockNumber"]) != step.get("block_number") or "0x" + bytes(r["blockHash"]).hex() != step.get(
                    "block_hash"):
                c.fail("not_on_chain", subject, f"{step.get('step')} is in block {r['blockNumber']} on chain, the "
                                                f"package says {step.get('block_number')}")
        ledger = EvidenceLedgerClient(backend, str(chain.get("evidence_ledger")))
        for rec in records.values():
            meta = rec.get("metadata") or {}
            state = ledger.get_record(sha256_key(str(rec.get("id"))))
            subject = f"record {rec.get('id')}"
            content = meta.get("content") or {}
            if state is None:
                c.fail("not_on_chain", subject, "the record is not on chain")
                continue
            if (hex0x(state.meta_digest) != rec.get("meta_digest") or state.sha256.hex() != content.get("sha256")
                    or state.sm3.hex() != content.get("sm3") or state.size != content.get("size")):
                c.fail("chain_mismatch", subject, "the on-chain digests differ from the package")
            if state.custodian_uscc != rec.get("custodian"):
                c.notes.append(f"{subject}: custody moved since the export (now {state.custodian_uscc})")
        case_state = ledger.get_case(_hex_bytes(case.get("case_key")) or ZERO32)
        if case.get("sealed") and not case_state.sealed:
            c.fail("chain_mismatch", "case", "the package says sealed; the chain does not")
        elif case_state.sealed and not case.get("sealed"):
            c.notes.append("the case was sealed after the export")
    except (ChainError, OSError) as exc:
        raise ChainUnavailableError(f"cannot check the package online: the chain is unreachable ({exc}); "
                                    f"use --offline to verify as of the export block", code="chain_unavailable") from exc


__all__ = ["FORMAT", "Finding", "PackageInfo", "PackageReport", "export_case", "verify_package"]
