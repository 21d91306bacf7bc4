"""The e-seal tables (电子印章, registry/seals/) against SealRegistry as the replay rebuilt it.

* ``seals`` (the seals made here): each registered seal's agency, digests, validity and status as the chain
  has them, and the SESeal's contents (esID, name, category, image, signer key) as what the chain's
  ``sealInfoDigest`` commits to (``seal_mismatch``); the image file against the registered ``imageDigest``
  (``seal_image_mismatch``, naming whose image it is when it is another registered seal's); a seal that
  claims to be on chain but is not (``db_record_not_on_chain``), a seal of an agency hosted here that the
  database does not know, on the node that makes seals (``chain_record_not_in_db``).
* ``seal_maker_keys``: each key's digest and algorithm are its public key's, and a published one was
  published by the maker it names (``seal_mismatch``).
* ``seal_steps``: each done row against the event of its transaction (``step_mismatch``, ``anchor_mismatch``).
* ``seal_chain_events`` (the seal index every verification reads): each row is the chain's event at its
  transaction and log index, and no event older than the index's newest is missing (``seal_index_mismatch``).
* ``sealed_signatures``: each signature of an anchored record is readable, over that record's identifier and
  on-chain digests, by a seal of the record's own agency whose registration it matches, with the signatures
  verifying (``sealed_signature_invalid``), and the seal was Active at the record's anchoring block and inside
  its validity at the signing time (``seal_not_active_when_sealed``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from asn1crypto.keys import PublicKeyInfo
from sqlalchemy import select
from sqlalchemy.orm import Session

from chain.contracts import unpad
from registry.audit._context import OPEN, Anchor, CompareContext
from registry.audit.state import SealState
from registry.crypto.hashing import canonical_digest, hex0x, sha256_key
from registry.errors import SignatureError, ValidationError
from registry.seals.structures import SES_SIGNATURE, ParsedSeal, parse_seseal, read_sealed_signature
from registry.seals.verification import registration_problem
from registry.store.db import Batch, Certificate
from registry.store.ledger_models import EvidenceRecord
from registry.store.seal_models import SealChainEvent, SealedSignature, SealMakerKey, SealRow, SealStep

LEDGER = "seals"
_EVENT = {"maker_key": "MakerKeyPublished", "create": "SealCreated", "suspend": "SealSuspended",
          "reinstate": "SealReinstated", "revoke": "SealRevoked"}
_PARAMS = {"maker_key": {"key_digest"}, "create": set(), "reinstate": set(), "suspend": {"reason", "reason_digest"},
           "revoke": {"reason", "reason_digest"}}
_CURVES = {"1.2.156.10197.1.301": "sm2", "1.3.132.0.10": "secp256k1"}  # GB/T 32918 SM2; SEC 2 secp256k1


def compare_seals(ctx: CompareContext) -> int:
    """Returns how many seal rows (seals, maker keys, steps, index rows, sealed signatures) were compared."""
    with ctx.node.db.session() as s:
        busy = {i for i in s.scalars(select(SealStep.seal_id).where(SealStep.state.in_(OPEN))) if i}
        n = _compare_seal_rows(ctx, s, busy)
        n += _compare_maker_keys(ctx, s)
        n += _compare_steps(ctx, s)
        n += _compare_index(ctx, s)
        n += _compare_sealed_signatures(ctx, s)
    return n


def _epoch(value: dt.datetime) -> int:
    return int(value.replace(tzinfo=dt.UTC).timestamp())


def _sha(data: bytes | None) -> str:
    return hex0x(hashlib.sha256(data or b"").digest())


def key_algorithm(spki: bytes | None) -> str:
    """``sm2`` or ``secp256k1`` by the named curve of a DER SubjectPublicKeyInfo ("" if it is neither)."""
    try:
        params = PublicKeyInfo.load(bytes(spki or b""))["algorithm"]["parameters"]
        return _CURVES.get(params.chosen.dotted, "")
    except (ValueError, TypeError, KeyError, AttributeError):
        return ""


def _image_owner(ctx: CompareContext, digest: str, key: str) -> str:
    other = next((f"{k} of {v.agency}" for k, v in ctx.state.seals.items() if v.image_digest == digest and k != key),
                 None)
    return f": it is the image of another registered seal, {other}" if other else " (replaced or altered)"


def _compare_seal_rows(ctx: CompareContext, s: Session, busy: set[str]) -> int:
    rows = list(s.scalars(select(SealRow).order_by(SealRow.id)))
    known = set()
    for row in rows:
        ref, key = row.id, row.key.lower()
        known.add(key)
        if key != hex0x(sha256_key(row.id)):
            ctx.add("seal_mismatch", LEDGER, ref, f"the seal's key {row.key} is not SHA-256 of its id")
        chain = ctx.state.seals.get(key)
        if chain is None:
            if row.status not in ("pending", "failed") and row.id not in busy and ctx.window_start is None:
                ctx.add("db_record_not_on_chain", LEDGER, ref, f"the database says seal {row.id} is {row.status}; the "
                                                               f"chain never registered {key}")
            continue
        pairs: list[tuple[str, object, object]] = [
            ("agency", row.agency_uscc, chain.agency), ("image digest", row.image_digest.lower(), chain.image_digest),
            ("key digest", row.key_digest.lower(), chain.key_digest),
            ("public key (its SHA-256)", _sha(row.public_key), chain.key_digest),
            ("key algorithm (of the public key)", row.key_algorithm, key_algorithm(row.public_key)),
            ("SES_SealInfo digest", row.seal_info_digest.lower(), chain.seal_info_digest),
            ("valid from", _epoch(row.valid_from), chain.valid_from),
            ("valid until", _epoch(row.valid_until), chain.valid_until)]
        if row.id not in busy:
            pairs.append(("status", row.status, chain.status))
        ctx.differs("seal_mismatch", LEDGER, ref, f"seal {row.id}", pairs)
        try:
            parsed: ParsedSeal | None = parse_seseal(row.seseal)
        except ValidationError as exc:
            ctx.add("seal_mismatch", LEDGER, ref, f"the stored SESeal of {row.id} cannot be read: {exc.message}")
            parsed = None
        if parsed is not None:
            ctx.differs("seal_mismatch", LEDGER, ref, f"SESeal of {row.id}", [
                ("SES_SealInfo (its SHA-256)", hex0x(parsed.seal_info_digest), chain.seal_info_digest),
                ("esID", row.id, parsed.es_id), ("name", row.name, parsed.name),
                ("category", row.category, parsed.category), ("image type", row.image_type, parsed.image_type),
                ("image (its SHA-256)", hex0x(parsed.image_digest), chain.image_digest),
                ("public key listed in certList", True, bytes(row.public_key) in parsed.signer_keys)])
        image = _sha(row.image)
        if image != chain.image_digest:
            ctx.add("seal_image_mismatch", LEDGER, ref, f"the image file of seal {row.id} (SHA-256 {image}) is not "
                                                        f"the image registered on chain ({chain.image_digest})"
                                                        f"{_image_owner(ctx, image, key)}")
    # seals are made where the seal maker (the platform operator) is hosted: only that node keeps their rows
    if ctx.window_start is None and ctx.hosts(ctx.node.seeds.genesis.uscc):
        for key, chain in ctx.state.seals.items():
            if key not in known and ctx.hosts(chain.agency):
                ctx.add("chain_record_not_in_db", LEDGER, key, f"seal {key} of {chain.agency}, registered in block "
                                                               f"{chain.block}, is not in the database")
    return len(rows)


def _compare_maker_keys(ctx: CompareContext, s: Session) -> int:
    """A maker key is made before its first seal is: one not published (yet, or ever: the seal was refused)
    is no finding; its step is compared with the chain like every step."""
    rows = list(s.scalars(select(SealMakerKey)))
    makers = {e.key: unpad(bytes.fromhex(str(e.args["makerUscc"])[2:])) for e in ctx.state.seal_events.values()
              if e.name == "MakerKeyPublished"}
    for row in rows:
        digest, ref = row.key_digest.lower(), f"maker key {row.key_digest}"
        ctx.differs("seal_mismatch", LEDGER, ref, "seal maker's key", [
            ("key digest (of the public key)", digest, _sha(row.public_key)),
            ("algorithm (of the public key)", row.algorithm, key_algorithm(row.public_key)),
            ("maker", row.uscc, makers.get(digest, row.uscc))])
    return len(rows)


def _compare_steps(ctx: CompareContext, s: Session) -> int:
    rows = list(s.scalars(select(SealStep).order_by(SealStep.id)))
    ctx.receipts([r.tx_hash for r in rows if r.account])
    for step in rows:
        ref = f"{step.kind} step {step.id}" + (f" of {step.seal_id}" if step.seal_id else "")
        params: dict[str, Any] = dict(step.params or {})
        key = (str(params.get("key_digest", "?")).lower() if step.kind == "maker_key"
               else hex0x(sha256_key(step.seal_id or "")))
        anchor = Anchor(step.state, step.tx_hash, step.block_number, step.block_hash, step.block_timestamp,
                        step.account, step.raw_tx)
        event = ctx.check_step(LEDGER, ref, f"the seal's {step.kind}", anchor, {_EVENT.get(step.kind, step.kind)}, key)
        if event is None:
            continue
        a = event.args
        actor = a.get("makerUscc") if step.kind == "maker_key" else a.get("agencyUscc")
        expected: list[tuple[str, object, object]] = [
            ("actor", step.actor_uscc, actor), ("parameters", sorted(params), sorted(_PARAMS.get(step.kind, set())))]
        if step.kind in ("suspend", "revoke"):
            recomputed = hex0x(canonical_digest({"seal": step.seal_id, "reason": params.get("reason")}))
            expected += [("reason digest", str(params.get("reason_digest", "")).lower(), a.get("reasonDigest")),
                         ("reason (its digest)", recomputed, a.get("reasonDigest"))]
        ctx.differs("step_mismatch", LEDGER, ref, "seal step", expected)
    return len(rows)


def _compare_index(ctx: CompareContext, s: Session) -> int:
    rows = list(s.scalars(select(SealChainEvent).order_by(SealChainEvent.id)))
    seen: set[str] = set()
    for row in rows:
        at, ref = f"{row.tx_hash.lower()}:{row.log_index}", f"index row {row.id} ({row.name})"
        chain = ctx.state.seal_events.get(at)
        if chain is None:
            if (ctx.head is not None and row.block_number > ctx.head) or ctx.before_window(row.block_number):
                continue  # indexed after this replay's head, or before a window audit's first block
            ctx.add("seal_index_mismatch", LEDGER, ref, f"the seal index holds {row.name} at tx {row.tx_hash} log "
                                                        f"{row.log_index}; the chain has no such SealRegistry event")
            continue
        seen.add(at)
        uscc = chain.args.get("makerUscc") if chain.name == "MakerKeyPublished" else chain.args.get("agencyUscc")
        ctx.differs("seal_index_mismatch", LEDGER, ref, "seal index row", [
            ("event", row.name, chain.name), ("seal", row.seal_key.lower(), chain.key),
            ("agency", row.agency_uscc, unpad(bytes.fromhex(str(uscc)[2:]))), ("arguments", row.args, chain.args),
            ("block", row.block_number, chain.block), ("block hash", row.block_hash.lower(), chain.block_hash),
            ("block time", row.block_timestamp, ctx.state.block_time(chain.block))])
    newest = max((r.block_number for r in rows), default=-1)
    for at, chain in ctx.state.seal_events.items():
        if at not in seen and chain.block < newest:
            ctx.add("seal_index_mismatch", LEDGER, at, f"the seal index lacks {chain.name} of {chain.key} (block "
                                                       f"{chain.block}) although it holds later events")
    return len(rows)


_CHUNK = 900  # SQLite's bound on host parameters in one IN (...)


def _records(s: Session, rows: list[SealedSignature]) -> tuple[dict[str, Any], dict[str, str]]:
    """The sealed certificates' (SHA-256, SM3, batch root) and the sealed evidence records' keys, by identifier,
    read in chunks rather than row by row."""
    certs: dict[str, Any] = {}
    evidence: dict[str, str] = {}
    cert_ids = sorted({r.record_id for r in rows if r.record_kind == "certificate"})
    ev_ids = sorted({r.record_id for r in rows if r.record_kind == "evidence"})
    for i in range(0, len(cert_ids), _CHUNK):
        for ident, sha, sm3, root in s.execute(
                select(Certificate.identifier, Certificate.digest_sha256, Certificate.digest_sm3, Batch.root)
                .outerjoin(Batch, Batch.id == Certificate.batch_id)
                .where(Certificate.identifier.in_(cert_ids[i:i + _CHUNK]))):
            certs[ident] = (sha, sm3, root)
    for i in range(0, len(ev_ids), _CHUNK):
        for rid, key in s.execute(select(EvidenceRecord.id, EvidenceRecord.key)
                                  .where(EvidenceRecord.id.in_(ev_ids[i:i + _CHUNK]))):
            evidence[rid] = key
    return certs, evidence


def _target(ctx: CompareContext, row: SealedSignature, certs: dict[str, Any],
            evidence: dict[str, str]) -> tuple[str, str, str, int] | str | None:
    """The sealed record as the chain has it: (SHA-256, SM3, anchoring agency, anchoring block); None while it
    is not anchored; a string saying why there is no such record."""
    if row.record_kind == "certificate":
        found = certs.get(row.record_id)
        if found is None:
            return f"names certificate {row.record_id}, which this node does not have"
        sha, sm3, root = found
        batch = ctx.state.batches.get(str(root or ""))
        if batch is None:
            return None
        return "0x" + sha, "0x" + (sm3 or ""), batch.issuer_uscc, batch.block
    if row.record_kind == "evidence":
        rec_key = evidence.get(row.record_id)
        if rec_key is None:
            return f"names evidence record {row.record_id}, which this node does not have"
        ev = ctx.state.evidence.get(rec_key)
        return None if ev is None else (ev.sha256, ev.sm3, ev.collector, ev.block)
    return f"names a record of unknown kind {row.record_kind!r}"


def _compare_sealed_signatures(ctx: CompareContext, s: Session) -> int:
    rows = list(s.scalars(select(SealedSignature).order_by(SealedSignature.id)))
    certs, evidence = _records(s, rows)
    for row in rows:
        ref = f"{row.record_kind} {row.record_id}"
        target = _target(ctx, row, certs, evidence)
        if isinstance(target, str):
            ctx.add("sealed_signature_invalid", LEDGER, ref, f"a sealed signature (seal {row.seal_id}) {target}")
            continue
        if target is None or ctx.before_window(target[3]):
            continue  # not anchored yet (the ledger's own comparison reports one that never is)
        problem = _signature_problem(ctx, row, *target)
        if problem is not None:
            ctx.add(problem[0], LEDGER, ref, problem[1])
    return len(rows)


def _signature_problem(ctx: CompareContext, row: SealedSignature, sha256: str, sm3: str, agency: str,
                       block: int) -> tuple[str, str] | None:
    bad = "sealed_signature_invalid"
    if ("0x" + row.digest_sha256.lower(), "0x" + (row.digest_sm3 or "").lower()) != (sha256, sm3):
        return bad, (f"the row's digests ({row.digest_sha256}, {row.digest_sm3}) are not the record's anchored "
                     f"digests ({sha256}, {sm3})")
    try:
        proof = read_sealed_signature(row.format, row.signature)
    except (ValidationError, SignatureError) as exc:
        return bad, f"the sealed signature cannot be read: {exc.message}"
    signed = proof.data_hash.hex()
    if proof.document != row.record_id or "0x" + signed != (sm3 if proof.format == SES_SIGNATURE else sha256):
        return bad, f"the signature is over {proof.document} with digest {signed}, not over this record"
    if proof.seal.es_id != row.seal_id:
        return bad, f"the row names seal {row.seal_id}; the signature was made with {proof.seal.es_id}"
    key = hex0x(sha256_key(proof.seal.es_id))
    seal: SealState | None = ctx.state.seals.get(key)
    if seal is None:
        if ctx.window_start is not None:
            return None
        return "seal_not_active_when_sealed", f"seal {proof.seal.es_id} was never registered on chain"
    if seal.agency != agency:
        return bad, f"seal {proof.seal.es_id} belongs to {seal.agency}, not to {agency}, which anchored the record"
    problem = registration_problem(proof, image_digest=seal.image_digest, seal_info_digest=seal.seal_info_digest,
                                   key_digest=seal.key_digest,
                                   maker_key_published=hex0x(proof.seal.maker_key_digest) in ctx.state.maker_keys)
    if problem is not None:
        return bad, problem[2]
    status = seal.status_at(block)
    if status != "active":
        return ("seal_not_active_when_sealed", f"seal {proof.seal.es_id} was {status or 'not registered yet'} in "
                                               f"block {block}, which anchored the record")
    when = int(proof.time.timestamp())
    if not seal.valid_from <= when < seal.valid_until:
        return ("seal_not_active_when_sealed", f"seal {proof.seal.es_id} was outside its validity at the signing "
                                               f"time {proof.time.isoformat()}")
    return None


__all__ = ["compare_seals", "key_algorithm"]
