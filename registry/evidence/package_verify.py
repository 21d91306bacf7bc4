"""Verifying an evidence package (registry.evidence.package): offline "as of" the export block, or online
against the chain (every transaction and block still there, each record's on-chain state).

    >>> report = verify_package(Path("case.zip"))          # doctest: +SKIP
    >>> report.ok, report.as_of_block                      # doctest: +SKIP
    (True, 1234)
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from chain.backends import ChainBackend
from chain.blocks import BlockReader
from chain.ledgers import ZERO32, EvidenceLedgerClient
from registry.crypto.hashing import hex0x, sha256_key
from registry.errors import PayloadFormatError, PayloadTooLargeError, RegistryError, chain_boundary
from registry.evidence._package_checks import (
    Checker,
    Finding,
    check_custody,
    check_manifest,
    check_records,
    check_signature,
    hex_bytes,
)

__all__ = ["FORMAT", "MAX_MEMBERS", "MAX_PACKAGE_BYTES", "Finding", "PackageReport", "verify_package"]

FORMAT = "lianzheng-evidence-package/1"
MAX_PACKAGE_BYTES = 256 * 1024 * 1024  # uncompressed; a package holds digests and metadata, never content
MAX_MEMBERS = 100_000
_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


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


def _read_zip(source: Path | BinaryIO) -> dict[str, bytes]:
    try:
        z = zipfile.ZipFile(source)
    # NotImplementedError: a central directory entry claiming a later zip version ("zip file version 6.4");
    # ValueError (UnicodeDecodeError too) and EOFError: a directory that lies about names or lengths
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
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
                raise PayloadFormatError(f"cannot read {name!r} from the package: {exc}",
                                         code="invalid_package") from exc
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
    c = Checker()
    manifest = _json(files, "manifest.json")
    sig = _json(files, "signature.json")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PayloadFormatError(f"not a Lianzheng evidence package (expected format {FORMAT})", code="invalid_package")
    chain = manifest.get("chain") or {}
    as_of = chain.get("as_of_block")
    trust_doc = _json(files, "trust-list.json")
    members = {m["uscc"]: m for m in trust_doc.get("members", [])}
    signer = check_signature(c, files, manifest, sig, members)
    check_manifest(c, files, manifest)
    case = _json(files, "case.json")
    custody = _json(files, "custody.json")
    records = {name: _json(files, name) for name in sorted(files) if name.startswith("records/")}
    check_records(c, records, case, custody, chain, members)
    check_custody(c, records, case, custody, chain, members)
    mode = "offline"
    if backend is not None:
        mode = "online"
        _check_online(c, backend, records, case, custody, chain)
    ok = not c.findings
    return PackageReport(ok, mode, case.get("case_no"), len(records), len(custody), as_of, signer, c.findings, c.notes)


def _check_online(c: Checker, backend: ChainBackend, records: Mapping[str, Any], case: Mapping[str, Any],
                  custody: list[dict[str, Any]], chain: Mapping[str, Any]) -> None:
    blocks = BlockReader(backend)
    with chain_boundary("cannot check the package online", hint="; use --offline to verify as of the export block"):
        chain_id = blocks.chain_id()
        if chain_id != chain.get("chain_id"):
            c.fail("wrong_chain", "chain", f"the node serves chain {chain_id}, the package is for {chain.get('chain_id')}")
            return
        as_of = int(chain.get("as_of_block") or 0)
        head = blocks.head()
        if head < as_of:
            c.fail("chain_rewound", "chain", f"the chain is at block {head}, before the export block {as_of}")
            return
        header = blocks.header(as_of)
        if header is None or header.hash != chain.get("as_of_block_hash"):
            c.fail("chain_rewritten", "chain", f"block {as_of} on chain is not the one the package was exported at")
        hashes = [str(s.get("tx_hash")) for s in custody]
        receipts = blocks.receipts([h for h in dict.fromkeys(hashes) if _TX_HASH.fullmatch(h)])
        for step, tx_hash in zip(custody, hashes, strict=True):
            subject = f"record {step.get('record')}" if step.get("record") else "case"
            r = receipts.get(tx_hash)
            if r is None or r.status != 1:
                c.fail("not_on_chain", subject, f"{step.get('step')} transaction {step.get('tx_hash')} is not on chain")
                continue
            if r.block_number != step.get("block_number") or r.block_hash != step.get("block_hash"):
                c.fail("not_on_chain", subject, f"{step.get('step')} is in block {r.block_number} on chain, the "
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
        case_state = ledger.get_case(hex_bytes(case.get("case_key")) or ZERO32)
        if case.get("sealed") and not case_state.sealed:
            c.fail("chain_mismatch", "case", "the package says sealed; the chain does not")
        elif case_state.sealed and not case.get("sealed"):
            c.notes.append("the case was sealed after the export")

