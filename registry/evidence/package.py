"""Evidence packages (证据包): a case's records, custody log, on-chain proofs and the consortium trust list in
one zip, signed by the exporting agency, verifiable by a court with or without network. This module
exports; registry.evidence.package_verify verifies (its names are re-exported here).

Layout::

    manifest.json     RFC 8785 canonical JSON: format, case, exporter, chain (id, contract addresses, export
                      block and hash) and the SHA-256 of every other file
    signature.json    the exporting agency's proof over manifest.json (registry.crypto.proofs: {type, alg, key,
                      signature}; SM2-SM3 in the gm profile, ES256K in intl), which is RFC 8785 already, so
                      `openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678 -pubin
                      -inkey key.pem -in manifest.json -sigfile sig.der` checks it (docs/CRYPTO.md). Packages
                      of the first release carry {algorithm: "secp256k1-recoverable/sha256", signature, signer}
                      and still verify.
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
import json
import zipfile
from dataclasses import dataclass
from typing import Any, BinaryIO

import rfc8785
import structlog
from sqlalchemy import select

from registry.clock import iso_time
from registry.consortium.signers import sm2_key_entry
from registry.crypto.hashing import hex0x
from registry.crypto.proofs import PROOF_MEMBER, sign_json
from registry.errors import ConflictError, chain_boundary
from registry.evidence.package_verify import FORMAT, Finding, PackageReport, verify_package
from registry.evidence.service import EvidenceService, evidence_metadata
from registry.store.ledger_models import EvidenceCase, EvidenceEvent, EvidenceRecord, StepState

log = structlog.get_logger(__name__)

SIGNATURE_ALGORITHM = "secp256k1-recoverable/sha256"  # the first release's signature.json (still verified)

_README = """链证 Lianzheng 证据包 / evidence package

manifest.json 列出每个文件的 SHA-256，signature.json 是导出机构对 manifest.json 的签名（SM2-SM3 或 ES256K）。
custody.json 中每一步都附带链上交易（已签名原始交易、交易哈希、区块号与区块哈希）。
核验 / verify:  lianzheng evidence verify-package <this zip> [--offline]

manifest.json lists the SHA-256 of every file; signature.json is the exporting agency's signature
over it (SM2-SM3 or ES256K, with its public key). Each custody step carries its signed raw transaction, tx
hash, block number and hash.
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
    sm2_keys: dict[str, list[dict[str, Any]]] = {}
    for record in consortium.sm2_keys(from_block=service.node.require_deployment().first_block, to_block=block):
        sm2_keys.setdefault(record.uscc, []).append(sm2_key_entry(record))
    out = []
    for i in range(int(consortium._call("memberCount", block=block))):
        uscc = bytes(consortium._call("memberAt", i, block=block)).rstrip(b"\0").decode()
        info = consortium.get_member(uscc, block=block)
        if info is not None:
            out.append({"uscc": info.uscc, "name": info.name, "bid": info.bid, "roles": info.roles.names(),
                        "status": info.status.name.lower(), "accounts": list(info.accounts),
                        "sm2_keys": sm2_keys.get(info.uscc, []), "admitted_block": info.admitted_block})
    return out


def _step_json(service: EvidenceService, e: EvidenceEvent, record_key: str | None) -> dict[str, Any]:
    raw = e.raw_tx
    if raw is None and e.tx_hash:
        raw = service.node.blocks.raw_transaction(e.tx_hash)  # steps found on chain when resuming: the signed bytes
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
    with chain_boundary("cannot export while the chain is unreachable"):
        head = node.blocks.head()
        header = node.blocks.header(head)
        assert header is not None  # the head block exists: we just read its number
        head_hash = header.hash
        chain_id = node.blocks.chain_id()
        trust = _trust_list(service, head)
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
    account = node.keys.signing_account(agency).address
    signer = node.keys.proof_signer(agency)
    exporter = next((m for m in trust if m["uscc"] == agency), None)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "case_key": view.case_key,
        "exported_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "exported_by": {"uscc": agency, "account": account, "bid": exporter["bid"] if exporter else None},
        "chain": {"chain_id": chain_id, "evidence_ledger": deployment.address("EvidenceLedger"),
                  "consortium": deployment.address("ConsortiumRegistry"), "as_of_block": head,
                  "as_of_block_hash": head_hash},
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    manifest_bytes = rfc8785.dumps(manifest)
    digest = hashlib.sha256(manifest_bytes).digest()
    sig = sign_json(manifest, signer)[PROOF_MEMBER]  # signs exactly manifest_bytes (RFC 8785 of the manifest)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", manifest_bytes)
        z.writestr("signature.json", _dumps(sig))
        for name, data in sorted(files.items()):
            z.writestr(name, data)
    log.info("evidence package exported", case=case_no, records=len(records), steps=len(custody), block=head)
    return PackageInfo(case_no, len(records), len(custody), head, digest.hex(), account)


__all__ = ["FORMAT", "SIGNATURE_ALGORITHM", "Finding", "PackageInfo", "PackageReport", "export_case", "verify_package"]
