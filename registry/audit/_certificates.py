"""The certificate ledger's tables against the chain, both ways.

Batches: each anchored batch's root must be on chain with the same issuer (``issuer_mismatch``), count, SM3 root,
anchor and receipt (``anchor_mismatch``); its rows must rebuild both roots in leaf order -- the SHA-256 root from
their SHA-256 digests, the SM3 root anchored beside it from their SM3 digests (``digest_mismatch``, so a row whose
SM3 digest alone was edited is found), ``db_row_missing``, ``db_row_extra`` -- and each stored audit path, in
either tree, must lead to its root (``proof_mismatch``); a root the
database does not hold as anchored is ``chain_record_not_in_db`` (or ``status_mismatch`` when the row exists).
Certificates: status and revocation reason (``status_mismatch``, ``revoked_but_valid_in_db``), supersession links
(``supersession_mismatch``), issuer. Status changes: each done row against the event in its transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from eth_utils.crypto import keccak
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chain.contracts import DocStatus
from registry.audit._context import DONE, OPEN, Anchor, CompareContext
from registry.audit.state import BatchState
from registry.crypto.merkle import leaf_hash, root_from_leaf_hashes, verify_inclusion_leaf_hash
from registry.store.db import Batch, Certificate, StatusChange

LEDGER = "certificates"
ANCHORED = "anchored"
_STATUS = {s.name.lower(): s for s in DocStatus}  # issued / suspended / revoked / superseded
_EVENT = {"suspend": "DocumentSuspended", "reinstate": "DocumentReinstated", "revoke": "DocumentRevoked",
          "supersede": "DocumentSuperseded"}
_CHUNK = 900  # SQLite's bound on host parameters in one IN (...)


def compare_certificates(ctx: CompareContext) -> int:
    """Returns how many certificate rows were compared."""
    chain_batches, chain_docs = ctx.state.batches, ctx.state.docs
    seen_roots: set[str] = set()
    rows_seen = 0
    links: list[tuple[str, str, str | None, str]] = []  # (ref, column, database identifier, chain digest)
    with ctx.node.db.session() as s:
        inflight = set(s.scalars(select(StatusChange.identifier).where(StatusChange.state.in_(OPEN))))
        _never_anchored(ctx, s)
        supersedes_of = {d.superseded_by: key for key, d in chain_docs.items() if d.superseded_by}  # new -> old doc
        batches = list(s.scalars(select(Batch).where(Batch.ledger == LEDGER, Batch.state == ANCHORED)))
        receipts = ctx.receipts([b.tx_hash for b in batches if not ctx.before_window(b.block_number)])
        for batch in batches:
            if ctx.before_window(batch.block_number):
                continue
            seen_roots.add(batch.root)
            rows = s.execute(select(Certificate.identifier, Certificate.digest_sha256, Certificate.leaf_index,
                                    Certificate.status, Certificate.reason, Certificate.issuer_uscc,
                                    Certificate.superseded_by, Certificate.supersedes, Certificate.proof,
                                    Certificate.digest_sm3, Certificate.proof_sm3)
                             .where(Certificate.batch_id == batch.id).order_by(Certificate.leaf_index)).all()
            rows_seen += len(rows)
            chain = chain_batches.get(batch.root)
            if chain is None:
                ctx.add("db_record_not_on_chain", LEDGER, batch.root,
                        f"the database says this batch of {len(rows)} certificates was anchored in block "
                        f"{batch.block_number} (tx {batch.tx_hash}); the chain has no such anchor")
                continue
            _check_anchor(ctx, batch, chain, receipts)
            _check_batch(ctx, batch.root, chain, rows)
            _check_rows(ctx, chain, rows, inflight, supersedes_of, links)
        _unseen_roots(ctx, s, seen_roots)
        _check_links(ctx, s, links)
        _check_unknown_docs(ctx, s)
        rows_seen += _check_status_changes(ctx, s)
    return rows_seen


def _never_anchored(ctx: CompareContext, s: Session) -> None:
    stuck = s.execute(
        select(Certificate.issuer_uscc, Certificate.status, func.count(), func.min(Certificate.created_at))
        .where((Certificate.status == "failed")
               | ((Certificate.status == "pending") & (Certificate.created_at < ctx.deadline_at)))
        .group_by(Certificate.issuer_uscc, Certificate.status)).all()
    for issuer, status, n, oldest in stuck:
        ctx.add("db_record_never_anchored", LEDGER, issuer, f"{n} certificates of {issuer} are {status} since "
                                                            f"{oldest.isoformat()}Z (deadline {ctx.deadline:.0f} s)")


def _check_anchor(ctx: CompareContext, batch: Batch, chain: BatchState, receipts: Any) -> None:
    if batch.issuer_uscc != chain.issuer_uscc:
        ctx.add("issuer_mismatch", LEDGER, batch.root,
                f"the database says issuer {batch.issuer_uscc}; the chain says {chain.issuer_uscc}")
    receipt = receipts.get((batch.tx_hash or "").lower())
    ctx.differs("anchor_mismatch", LEDGER, batch.root, "anchor of this batch", [
        ("size", batch.size, chain.count), ("tx", (batch.tx_hash or "").lower(), chain.tx_hash),
        ("block", batch.block_number, chain.block), ("block hash", (batch.block_hash or "").lower(), chain.block_hash),
        ("block time", batch.block_timestamp, chain.timestamp),
        ("SM3 root", (batch.root_sm3 or "").lower(), chain.sm3_root),
        ("account", (batch.issuer_account or "").lower(), chain.issuer_account.lower()),
        # the signed bytes the worker kept must hash to the anchoring transaction
        ("signed tx hash", "0x" + keccak(batch.raw_tx).hex() if batch.raw_tx is not None else chain.tx_hash,
         chain.tx_hash),
        # gas is recorded when the worker saw the receipt (a bulk import may leave it empty)
        ("gas used", batch.gas_used, receipt.gas_used if receipt is not None and batch.gas_used is not None
         else batch.gas_used)])


def _check_batch(ctx: CompareContext, root: str, chain: BatchState, rows: Sequence[Any]) -> None:
    count = chain.count
    if len(rows) < count:
        missing = sorted(set(range(count)) - {r.leaf_index for r in rows if r.leaf_index is not None})
        ctx.add("db_row_missing", LEDGER, root,
                f"the chain anchored {count} documents under this root; the database has {len(rows)} "
                f"(missing leaf indexes {missing[:20]}{' ...' if len(missing) > 20 else ''})")
        return
    if len(rows) > count:
        ctx.add("db_row_extra", LEDGER, root, f"the chain anchored {count} documents under this root; the database "
                                              f"has {len(rows)}")
        return
    # RFC 6962 leaf hashes of the SHA-256 tree (hashlib directly: this is the audit's hot loop)
    leaves = [hashlib.sha256(b"\x00" + bytes.fromhex(r.digest_sha256)).digest() for r in rows]
    _check_tree(ctx, root, root, chain, rows, leaves, [r.proof for r in rows], "sha256")
    if chain.sm3_root:  # a batch anchored with its SM3 root (every batch of this contract version)
        sm3_leaves = [leaf_hash(_hex_or_empty(r.digest_sm3), algorithm="sm3") for r in rows]
        _check_tree(ctx, root, chain.sm3_root, chain, rows, sm3_leaves, [r.proof_sm3 for r in rows], "sm3")


def _check_tree(ctx: CompareContext, root: str, tree_root: str, chain: BatchState, rows: Sequence[Any],
                leaves: Sequence[bytes], proofs: Sequence[bytes | None], algorithm: str) -> None:
    """The rows' leaves must rebuild the anchored ``tree_root`` of one algorithm, and each stored audit path
    (when the row has one) must lead from its leaf to it."""
    count, what = chain.count, "SHA-256" if algorithm == "sha256" else "SM3"
    root_bytes = _hex_or_empty(tree_root)
    indexes = [r.leaf_index for r in rows]
    if indexes == list(range(count)) and root_from_leaf_hashes(leaves, algorithm=algorithm) == root_bytes:
        for r, leaf, proof in zip(rows, leaves, proofs, strict=True):
            if proof is not None and not _proves(leaf, r.leaf_index, count, proof, root_bytes, algorithm):
                ctx.add("proof_mismatch", LEDGER, r.identifier,
                        f"the row's stored {what} audit path does not lead from its digest to the batch's {what} "
                        f"root {tree_root} anchored in block {chain.block}")
        return
    # localise: each row's stored audit path must lead from its digest to the anchored root
    bad = [r.identifier for r, leaf, proof in zip(rows, leaves, proofs, strict=True)
           if r.leaf_index is None or not _proves(leaf, r.leaf_index, count, proof or b"", root_bytes, algorithm)]
    for ident in bad or [root]:
        ctx.add("digest_mismatch", LEDGER, ident,
                f"the database row no longer matches the {what} root {tree_root} of batch {root} anchored in block "
                f"{chain.block} (its {what} digest or leaf position was changed)")


def _hex_or_empty(text: str | None) -> bytes:
    """Bytes of a (0x-)hex column; b"" for a value that is not hex (it then matches no anchored hash)."""
    try:
        return bytes.fromhex((text or "").removeprefix("0x"))
    except ValueError:
        return b""


def _proves(leaf: bytes, index: int, count: int, proof: bytes, root: bytes, algorithm: str = "sha256") -> bool:
    path = [proof[i:i + 32] for i in range(0, len(proof), 32)]
    return verify_inclusion_leaf_hash(leaf, index, count, path, root, algorithm=algorithm)


def _check_rows(ctx: CompareContext, chain: BatchState, rows: Sequence[Any], inflight: set[str],
                supersedes_of: Mapping[str, str], links: list[tuple[str, str, str | None, str]]) -> None:
    docs, issuer = ctx.state.docs, chain.issuer_uscc
    for ident, digest, _index, status, reason, row_issuer, superseded_by, supersedes, *_proofs_and_sm3 in rows:
        if row_issuer != issuer:
            ctx.add("issuer_mismatch", LEDGER, ident,
                    f"the database says issuer {row_issuer}; its batch was anchored by {issuer}")
        key = "0x" + digest
        on_chain = docs.get(key)
        if (on_chain is None and status == "issued" and reason is None and superseded_by is None
                and supersedes is None and key not in supersedes_of):
            continue  # the common case, kept cheap: never changed on chain and issued in the database
        if supersedes not in inflight:  # a supersession still being sent links nothing on chain yet
            links.append((ident, "supersedes", supersedes, supersedes_of.get(key, "")))
        if ident in inflight or status not in _STATUS:
            continue
        chain_status = on_chain.status if on_chain else DocStatus.ISSUED
        links.append((ident, "superseded_by", superseded_by, on_chain.superseded_by if on_chain else ""))
        expected_reason = on_chain.reason if on_chain is not None and chain_status == DocStatus.REVOKED else None
        if _STATUS[status] == chain_status:
            if reason != expected_reason:
                ctx.add("status_mismatch", LEDGER, ident, f"the chain says {chain_status.name.lower()} with reason "
                                                          f"{expected_reason}; the database says reason {reason}")
            continue
        if on_chain is not None and chain_status == DocStatus.REVOKED and status == "issued":
            ctx.add("revoked_but_valid_in_db", LEDGER, ident,
                    f"revoked on chain in block {on_chain.block} (reason {on_chain.reason}); the database says issued")
        else:
            ctx.add("status_mismatch", LEDGER, ident, f"the chain says {chain_status.name.lower()}, the database "
                                                      f"says {status}")


def _check_links(ctx: CompareContext, s: Session, links: Sequence[tuple[str, str, str | None, str]]) -> None:
    """supersedes / superseded_by name identifiers; the chain names document digests."""
    wanted = sorted({ident for _, _, ident, _ in links if ident})
    digests: dict[str, str] = {}
    for i in range(0, len(wanted), _CHUNK):
        digests.update((ident, digest) for ident, digest in s.execute(
            select(Certificate.identifier, Certificate.digest_sha256).where(Certificate.identifier.in_(wanted[i:i + _CHUNK]))))
    for ref, column, ident, chain_digest in links:
        mine = "0x" + digests[ident] if ident and ident in digests else ("?" + ident if ident else "")
        if mine != chain_digest:
            ctx.add("supersession_mismatch", LEDGER, ref, f"the database's {column} is {ident or 'empty'}; the chain "
                                                          f"links document {chain_digest or 'none'}")


def _unseen_roots(ctx: CompareContext, s: Session, seen: set[str]) -> None:
    unseen = [root for root, b in ctx.state.batches.items() if root not in seen and not ctx.before_window(b.block)]
    known = {b.root: b for i in range(0, len(unseen), _CHUNK)
             for b in s.scalars(select(Batch).where(Batch.root.in_(unseen[i:i + _CHUNK])))}
    for root in unseen:
        chain = ctx.state.batches[root]
        row = known.get(root)
        if row is not None:
            ctx.add("status_mismatch", LEDGER, root, f"the chain anchored this batch in block {chain.block}; the "
                                                     f"database holds it as {row.ledger} batch in state {row.state}")
        elif ctx.hosts(chain.issuer_uscc):  # another node's batch is in that node's database
            ctx.add("chain_record_not_in_db", LEDGER, root, f"batch of {chain.count} anchored by {chain.issuer_uscc} in "
                                                            f"block {chain.block} (tx {chain.tx_hash}) is not in the database")


def _check_unknown_docs(ctx: CompareContext, s: Session) -> None:
    keys = list(ctx.state.docs)
    known: set[str] = set()
    for i in range(0, len(keys), _CHUNK):
        chunk = [k[2:] for k in keys[i:i + _CHUNK]]
        known.update(s.scalars(select(Certificate.digest_sha256).where(Certificate.digest_sha256.in_(chunk))))
    for key in keys:
        if key[2:] not in known:
            d = ctx.state.docs[key]
            batch = ctx.state.batches.get(d.root)
            if batch is not None and not ctx.hosts(batch.issuer_uscc):
                continue  # a document of another node's agency
            ctx.add("chain_record_not_in_db", LEDGER, key, f"a document of batch {d.root} changed to "
                                                           f"{d.status.name.lower()} in block {d.block}; the database "
                                                           f"does not know it")


def _check_status_changes(ctx: CompareContext, s: Session) -> int:
    """Each status change against the Document* event of its transaction."""
    rows = s.execute(select(StatusChange, Certificate.digest_sha256)
                     .outerjoin(Certificate, Certificate.identifier == StatusChange.identifier)
                     .order_by(StatusChange.id)).all()
    new_digests = {ident: digest for ident, digest in s.execute(select(Certificate.identifier, Certificate.digest_sha256)
                   .where(Certificate.identifier.in_([ch.new_identifier for ch, _ in rows if ch.new_identifier])))}
    for ch, digest in rows:
        ref = f"status change {ch.id} of {ch.identifier}"
        event = ctx.check_step(LEDGER, ref, f"the {ch.action}", Anchor(ch.state, ch.tx_hash, ch.block_number, ch.block_hash,
                                                                      ch.block_timestamp, ch.account, ch.raw_tx),
                               {_EVENT.get(ch.action, ch.action)}, "0x" + (digest or "?"), tx_optional=True)
        if event is None:
            continue
        a = event.args
        new_doc = "0x" + new_digests[ch.new_identifier] if ch.new_identifier in new_digests else ch.new_identifier
        by = ctx.state.account_member.get(str(a.get("by", "")).lower())
        ctx.differs("step_mismatch", LEDGER, ref, "status change", [
            ("reason", ch.reason, a["reason"] if ch.action == "revoke" else None),
            ("new document", new_doc, a.get("newDoc")),
            ("actor", ch.actor_uscc, by if by is not None else ch.actor_uscc)])
    return len(rows)


__all__ = ["DONE", "compare_certificates"]
