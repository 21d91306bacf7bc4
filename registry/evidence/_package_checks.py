"""The offline checks of an evidence package (registry.evidence.package): the exporter's signature over
manifest.json, the manifest's file digests, each record against its signed registration transaction, and the
custody log replayed in chain order as the contract would. Each problem is a `Finding`, never an exception.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785

from chain.contracts import b32
from chain.ledgers import ZERO32, decode_call, decode_raw_transaction
from registry.consortium.signers import check_in_member, signed_at
from registry.crypto.hashing import hex0x, sha256_key
from registry.crypto.proofs import PROOF_MEMBER, verify_json
from registry.crypto.signing import SignatureScheme, recover
from registry.errors import SignatureError
from registry.evidence.service import metadata_digest

__all__ = ["Checker", "Finding", "check_custody", "check_manifest", "check_records", "check_signature", "hex_bytes"]


@dataclass(frozen=True)
class Finding:
    code: str
    subject: str  # the file, record or step concerned
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "subject": self.subject, "message": self.message}




class Checker:
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.notes: list[str] = []

    def fail(self, code: str, subject: str, message: str) -> None:
        self.findings.append(Finding(code, subject, message))


def _accounts(members: Mapping[str, Any], uscc: str | None) -> set[str]:
    m = members.get(uscc or "")
    return {a.lower() for a in m.get("accounts", [])} if m else set()


def check_signature(c: Checker, files: Mapping[str, bytes], manifest: dict[str, Any], sig: Any,
                     members: Mapping[str, Any]) -> dict[str, Any] | None:
    """The exporter's signature over manifest.json: a proof (SM2-SM3 or ES256K, registry.crypto.proofs) whose
    key was the exporter's at export time per the package's trust list, or the first release's recoverable
    secp256k1 signature."""
    exporter = manifest.get("exported_by") or {}
    if rfc8785.dumps(manifest) != files["manifest.json"]:
        c.fail("manifest_not_canonical", "manifest.json", "manifest.json is not in RFC 8785 canonical form")
    if isinstance(sig, Mapping) and "alg" in sig:
        return _check_proof(c, manifest, sig, members)
    digest = hashlib.sha256(files["manifest.json"]).digest()
    try:
        signature = bytes.fromhex(str(sig.get("signature", "")))
        address = recover(digest, signature, SignatureScheme.RECOVERABLE)
    except (ValueError, TypeError, AttributeError, SignatureError) as exc:  # malformed signature: report, do not crash
        c.fail("bad_signature", "signature.json", f"the signature does not verify over manifest.json: {exc}")
        return None
    if address.lower() != str(exporter.get("account", "")).lower():
        c.fail("bad_signature", "signature.json", f"manifest.json was signed by {address}, not by the exporter's "
                                                  f"account {exporter.get('account')} (manifest edited or re-signed)")
    elif address.lower() not in _accounts(members, exporter.get("uscc")):
        c.fail("unknown_signer", "signature.json", f"signer {address} is not an account of {exporter.get('uscc')} in "
                                                   f"the trust list")
    return {"uscc": exporter.get("uscc"), "account": address, "bid": exporter.get("bid")}


def _check_proof(c: Checker, manifest: dict[str, Any], proof: Mapping[str, Any],
                 members: Mapping[str, Any]) -> dict[str, Any] | None:
    exporter = manifest.get("exported_by") or {}
    uscc = str(exporter.get("uscc"))
    try:
        signed_by = verify_json({**manifest, PROOF_MEMBER: dict(proof)})
    except SignatureError as exc:
        c.fail("bad_signature", "signature.json", f"the signature does not verify over manifest.json: {exc.message}")
        return None
    try:
        key = check_in_member(members.get(uscc), signed_by, uscc, at=signed_at(str(manifest.get("exported_at"))))
    except SignatureError as exc:
        c.fail("unknown_signer", "signature.json", exc.message)
        return None
    return {"uscc": uscc, "account": exporter.get("account"), "bid": exporter.get("bid"), "alg": signed_by.alg.value,
            "key": key.value}


def check_manifest(c: Checker, files: Mapping[str, bytes], manifest: dict[str, Any]) -> None:
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


def _decoded(c: Checker, step: Mapping[str, Any], chain: Mapping[str, Any], subject: str,
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


def check_records(c: Checker, records: Mapping[str, Any], case: Mapping[str, Any], custody: list[dict[str, Any]],
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
            "sha256Digest": hex_bytes(content.get("sha256")), "sm3Digest": hex_bytes(content.get("sm3")),
            "size": content.get("size"), "metaDigest": hex_bytes(digest),
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


def hex_bytes(value: Any) -> bytes | None:
    try:
        return bytes.fromhex(str(value).removeprefix("0x"))
    except ValueError:
        return None


def check_custody(c: Checker, records: Mapping[str, Any], case: Mapping[str, Any], custody: list[dict[str, Any]],
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


def _check_call(c: Checker, step: Mapping[str, Any], call: tuple[str, dict[str, Any]], subject: str,
                where: str) -> None:
    fn, args = call
    key = hex_bytes(step.get("record_key")) if step.get("record_key") else None
    kind = step.get("step")
    expected: dict[str, Any]
    if kind == "seal":
        expected = {"_fn": "sealCase", "caseId": hex_bytes(step.get("case_key"))}
    elif kind == "transfer":
        expected = {"_fn": "transfer", "id": key, "toUscc": b32(str(step.get("to"))),
                    "purposeDigest": hex_bytes(step.get("purpose_digest")),
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
