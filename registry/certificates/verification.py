"""Verification: every check it ran (VALID / INVALID / SKIPPED, with a reason in Chinese and English)
and one overall verdict — valid, revoked, suspended, expired, superseded, tampered, unknown_issuer,
not_anchored, not_yet_valid (有效期起始 is still ahead), or cannot_verify when the chain cannot be read (never
reported as valid or invalid). An identifier nobody registered is not_anchored with ``registered: False`` in
the anchoring check's details (the verifier page calls that "no such certificate").

    >>> verifier = Verifier(node, index)                       # doctest: +SKIP
    >>> result = verifier.verify_document(document_json)       # doctest: +SKIP
    >>> result.verdict, [c.name for c in result.checks]        # doctest: +SKIP
    ('valid', ['integrity', 'anchoring', 'sm3', 'issuer', 'status', 'validity'])

Both batch roots are recomputed: ``anchoring`` follows the SHA-256 audit path to the root the chain anchored,
``sm3`` the SM3 audit path from the document's SM3 digest to the SM3 root anchored beside it (GB/T 32905). A
digest, path or stored root that does not lead to the anchored SM3 root is ``tampered``; a record anchored
before SM3 roots went on chain has no SM3 path, and its ``sm3`` check is SKIPPED (not available), never VALID.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import select

from chain.contracts import DocStatus, MemberStatus, Role
from registry.certificates.documents import Document
from registry.certificates.fields import batch_includes
from registry.certificates.index import ChainIndex
from registry.certificates.records import AnchoredRecords, CertificateRecord
from registry.certificates.remote import PublicRecord, RemoteCertificates, SealedCopy
from registry.certificates.service import REVOCATION_REASONS
from registry.errors import ChainUnavailableError, NotFoundError, ValidationError
from registry.identifiers import CertificateId
from registry.node import Node
from registry.store.db import Certificate

VALID, INVALID, SKIPPED = "VALID", "INVALID", "SKIPPED"

VERDICT_TEXT: dict[str, tuple[str, str]] = {
    "valid": ("有效", "valid"),
    "revoked": ("已撤销", "revoked"),
    "suspended": ("已暂停", "suspended"),
    "expired": ("已过期", "expired"),
    "not_yet_valid": ("尚未生效", "not yet valid"),
    "superseded": ("已被更正证照替代", "superseded by a corrected certificate"),
    "tampered": ("内容被篡改", "tampered"),
    "unknown_issuer": ("颁发机构未知", "unknown issuer"),
    "not_anchored": ("未上链", "not anchored"),
    "cannot_verify": ("暂时无法验证", "cannot verify now"),
}

# the first verdict in this order that applies wins
_PRECEDENCE = ("tampered", "unknown_issuer", "not_anchored", "cannot_verify", "revoked", "superseded",
               "suspended", "not_yet_valid", "expired", "valid")
_PLAIN = frozenset({str, int, float, bool, bytes, type(None)})  # what `_copy` takes as it is


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    reason_zh: str
    reason_en: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "reason_zh": self.reason_zh, "reason_en": self.reason_en,
                "details": _copy(self.details)}


def _copy(value: Any) -> Any:
    """`value` copied as `dataclasses.asdict` copies it (dicts and lists here; tuples, dataclasses by its rules)."""
    if type(value) is dict:  # a dict's plain values are taken as they are, without a call each
        return {k: v if type(v) in _PLAIN else _copy(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool, bytes)) or value is None:
        return value
    return [_copy(v) for v in value] if type(value) is list else asdict(_Boxed(value))["value"]


@dataclass(frozen=True, slots=True)
class _Boxed:
    value: Any


@dataclass(frozen=True)
class VerificationResult:
    verdict: str
    verdict_zh: str
    verdict_en: str
    identifier: str | None
    checks: list[Check]
    issuer: dict[str, Any] | None = None
    anchor: dict[str, Any] | None = None
    disclosed_fields: list[str] = field(default_factory=list)
    hidden_fields: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    superseded_by: str | None = None
    as_of: dict[str, Any] | None = None
    # the batch's entry in the certificates ledger log: GET it for an RFC 6962 inclusion proof and the
    # Backbone checkpoint covering it (api/routes/proofs.py)
    log_proof: str | None = None
    # a bound certificate (holderKeyDigest, issue 15), and how it was presented (registry/holders/presentation.py:
    # presented_by_holder, or status_only with the reason); None when no presentation was checked
    bound: bool = False
    presentation: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """`dataclasses.asdict(self)` by hand: the same dict at a fraction of the cost (the verify route's answer)."""
        return {"verdict": self.verdict, "verdict_zh": self.verdict_zh, "verdict_en": self.verdict_en,
                "identifier": self.identifier, "checks": [c.to_json() for c in self.checks],
                "issuer": _copy(self.issuer), "anchor": _copy(self.anchor),
                "disclosed_fields": list(self.disclosed_fields), "hidden_fields": list(self.hidden_fields),
                "fields": _copy(self.fields), "superseded_by": self.superseded_by, "as_of": _copy(self.as_of),
                "log_proof": self.log_proof, "bound": self.bound, "presentation": _copy(self.presentation)}


class _Run:
    """Collects checks and the verdicts they imply."""

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.verdicts: set[str] = set()

    def add(self, name: str, status: str, zh: str, en: str, verdict: str | None = None, **details: Any) -> None:
        self.checks.append(Check(name, status, zh, en, details))
        if verdict:
            self.verdicts.add(verdict)

    def verdict(self) -> str:
        for v in _PRECEDENCE:
            if v in self.verdicts:
                return v
        return "valid"


# the `seal` check of a sealed document (registry/seals/verification.py): given the identifier, its SHA-256
# digest, the issuing agency the chain shows, the anchoring block and the sealed signature when it came from the
# issuing node's public record (None: the one this node stored), the check and the verdict it implies (None: the
# document was not sealed)
SealCheck = Callable[[str, bytes, str, int, SealedCopy | None], tuple[Check, str | None] | None]


class Verifier:
    def __init__(self, node: Node, index: ChainIndex, *, today: Callable[[], dt.date] = dt.date.today,
                 remote: RemoteCertificates | None = None, seal_check: SealCheck | None = None) -> None:
        self.node = node
        self.index = index
        self.today = today
        self.remote = remote  # certificates issued on other nodes (registry.certificates.remote)
        self.seal_check = seal_check
        self.records = AnchoredRecords(node.db)  # this registry's certificates, anchored ones kept in memory
        self._generation = index.generation

    def _record(self, identifier: str) -> CertificateRecord | None:
        if self._generation != self.index.generation:  # the index rebuilt from genesis: so may the anchors
            self.records.clear()
            self._generation = self.index.generation
        return self.records.get(identifier)

    def _remote_record(self, run: _Run, cid: CertificateId) -> PublicRecord | None:
        """The public record of a certificate issued on another node, from that node (found on chain); None
        (with the reason recorded) when it cannot be had. Only for agencies this node does not host."""
        if self.remote is None or self.node.keys.has_signing_key(cid.issuer_uscc):
            return None
        try:
            rec = self.remote.record(cid)
        except NotFoundError:
            return None
        except (ChainUnavailableError, ValidationError) as exc:
            run.add("source", SKIPPED, f"无法从颁发机构的节点取得该证照的摘要：{exc.message}",
                    f"cannot get this certificate's digest from its issuing agency's node: {exc.message}",
                    "cannot_verify")
            return None
        run.add("source", VALID, "证照摘要与默克尔证明由颁发机构的节点提供，已与本节点所见链上记录核对",
                "digest and Merkle proof from the issuing agency's node (found on chain), checked against this "
                "node's view of the chain; only the identifier-to-digest link rests on that node",
                endpoint=self.remote.endpoint(cid.issuer_uscc))
        return rec

    # -- entry points ------------------------------------------------------------------------------
    def verify_document(self, document: Document | Mapping[str, Any] | str) -> VerificationResult:
        doc = document if isinstance(document, Document) else Document.from_json(document)
        run = _Run()
        errors = doc.integrity_errors()
        if errors:
            run.add("integrity", INVALID, "字段内容与摘要不符：" + "; ".join(errors),
                    "field contents do not match the digest: " + "; ".join(errors), "tampered")
        else:
            run.add("integrity", VALID, f"{len(doc.fields)} 个字段已核验，{len(doc.hidden)} 个字段隐藏（摘要一致）",
                    f"{len(doc.fields)} fields checked, {len(doc.hidden)} hidden (digest matches)",
                    sha256=doc.digest_sha256.hex(), sm3=doc.digest_sm3.hex())
        anchor = self._anchor_of(doc)
        if anchor is not None:
            anchor["sm3_digest"] = doc.digest_sm3  # checked against the fields by `integrity`
        result = self._chain_checks(run, doc.identifier, doc.digest_sha256, doc.issuer_uscc, doc.type_code, anchor,
                                    doc.valid_from, doc.valid_until, claimed_name=_shown(doc, "颁发机构"),
                                    sealed=self._remote_seal(doc))
        return _result(run, doc.identifier, result, doc)

    def _remote_seal(self, doc: Document) -> SealedCopy | None:
        """The sealed signature of a document issued on another node, from its public record, to be checked
        over this document's own digests. None when not sealed, or when that node cannot be reached: a
        presented document verifies without its issuing node (its seal then goes unmentioned)."""
        if self.remote is None or self.seal_check is None:
            return None
        try:
            cid = CertificateId.parse(doc.identifier)
            if self._record(str(cid)) is not None or self.node.keys.has_signing_key(cid.issuer_uscc):
                return None
            seal = self.remote.record(cid).seal
        except (NotFoundError, ChainUnavailableError, ValidationError):
            return None
        return None if seal is None else replace(seal, digest_sm3=doc.digest_sm3)

    def verify_identifier(self, identifier: str) -> VerificationResult:
        """Status by identifier alone (no document presented: holder fields are not checked)."""
        cid = CertificateId.parse(identifier)
        run = _Run()
        run.add("integrity", SKIPPED, "未提供证照内容，仅核验状态", "no document presented: status only")
        row = self._record(str(cid))
        if row is None:
            rec = self._remote_record(run, cid)
            if rec is not None:
                result = self._chain_checks(run, str(cid), rec.digest_sha256, rec.issuer_uscc, rec.type_code,
                                            rec.anchor(), rec.valid_from, rec.valid_until, sealed=rec.seal)
                return _result(run, str(cid), result, None)
            if run.verdict() != "cannot_verify":
                run.add("anchoring", INVALID, "未找到该证照标识", "no certificate has this identifier",
                        "not_anchored", registered=False)
            return _result(run, str(cid), {}, None)
        result = self._chain_checks(run, str(cid), row.digest_sha256, row.issuer_uscc, row.type_code, row.anchor(),
                                    row.valid_from, row.valid_until)
        return _result(run, str(cid), result, None)

    def verify_digest(self, identifier: str, digest: str | bytes, sm3: str | bytes | None = None) -> VerificationResult:
        """Chain checks for a document whose fields the caller checked itself (the verifier page decrypts
        a by-reference document in the browser and recomputes its SHA-256 and SM3 roots there), so the server
        learns the identifier and the digests, never a field value. The digests must be the ones registered for
        the identifier; then anchoring (both roots), issuer, status and validity are checked as for a full
        document. Without ``sm3`` the registered SM3 digest is checked against the chain. A digest that is not the
        registered one makes ``integrity`` INVALID with ``differs`` ("sha256" or "sm3") naming which.

        >>> verifier.verify_digest(identifier, "9f2c...").verdict     # doctest: +SKIP
        'valid'
        """
        cid = CertificateId.parse(identifier)
        digest = _digest32(digest, "digest", "SHA-256")
        sm3_given = None if sm3 is None else _digest32(sm3, "sm3", "SM3")
        run = _Run()
        row = self._record(str(cid))
        rec = self._remote_record(run, cid) if row is None else None
        if rec is not None:
            if rec.digest_sha256 != digest or (sm3_given is not None and rec.digest_sm3 != sm3_given):
                which = "sha256" if rec.digest_sha256 != digest else "sm3"
                run.add("integrity", INVALID, "证照摘要与颁发机构登记的摘要不符",
                        f"the digest {digest.hex()} differs from the one registered for {cid}", "tampered",
                        sha256=digest.hex(), differs=which)
                return _result(run, str(cid), {}, None)
            run.add("integrity", SKIPPED, "仅提交摘要（与登记一致），字段由用证方本地核验",
                    "digest only (it matches the registered one): the fields were checked by the verifier's "
                    "own device", sha256=digest.hex())
            result = self._chain_checks(run, str(cid), digest, rec.issuer_uscc, rec.type_code, rec.anchor(),
                                        rec.valid_from, rec.valid_until, sealed=rec.seal)
            return _result(run, str(cid), result, None)
        if row is None:
            run.add("integrity", SKIPPED, "仅提交摘要，字段由用证方本地核验",
                    "digest only: the fields were checked by the verifier's own device", sha256=digest.hex())
            run.add("anchoring", INVALID, "未找到该证照标识", "no certificate has this identifier", "not_anchored",
                    registered=False)
            return _result(run, str(cid), {}, None)
        if row.digest_sha256 != digest or (sm3_given is not None and row.digest_sm3 != sm3_given):
            which = "SHA-256" if row.digest_sha256 != digest else "SM3"
            run.add("integrity", INVALID, f"证照摘要（{which}）与该标识登记的摘要不符",
                    f"the {which} digest differs from the one registered for {cid}", "tampered",
                    sha256=digest.hex(), sm3=sm3_given.hex() if sm3_given else None,
                    differs="sha256" if which == "SHA-256" else "sm3")
            return _result(run, str(cid), {}, None)
        run.add("integrity", SKIPPED, "仅提交摘要（与登记一致），字段由用证方本地核验",
                "digest only (it matches the registered one): the fields were checked by the verifier's own device",
                sha256=digest.hex(), sm3=sm3_given.hex() if sm3_given else None)
        result = self._chain_checks(run, str(cid), digest, row.issuer_uscc, row.type_code, row.anchor(),
                                    row.valid_from, row.valid_until)
        return _result(run, str(cid), result, None)

    # -- anchoring ---------------------------------------------------------------------------------
    def _anchor_of(self, doc: Document) -> dict[str, Any] | None:
        if doc.anchor is not None:
            a = doc.anchor
            sm3 = {} if a.sm3_root is None else {"sm3_root": a.sm3_root, "sm3_path": list(a.sm3_path or ())}
            return {"batch_root": bytes(a.batch_root), "index": a.index, "size": a.size,
                    "path": [bytes(p) for p in a.path], "source": "document", **sm3}
        with self.node.db.session() as s:
            identifier = s.scalar(select(Certificate.identifier)
                                  .where(Certificate.digest_sha256 == doc.digest_sha256.hex()))
        row = None if identifier is None else self._record(identifier)
        return None if row is None else row.anchor()

    def _chain_checks(self, run: _Run, identifier: str, digest: bytes, issuer_uscc: str | None, type_code: str,
                      anchor: dict[str, Any] | None, valid_from: dt.date | None, valid_until: dt.date | None,
                      claimed_name: Any = None, sealed: SealedCopy | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            self.index.refresh()
        except ChainUnavailableError as exc:
            for name in ("anchoring", "issuer", "status"):
                run.add(name, SKIPPED, "区块链节点不可达，无法核验", f"chain unreachable: {exc.message}", "cannot_verify")
            self._validity(run, valid_from, valid_until)
            return out
        out["as_of"] = {"block": self.index.synced_block}
        if anchor is None or anchor.get("pending"):
            member = self.index.members.get(issuer_uscc or "")
            if member is None:
                run.add("anchoring", INVALID, "未上链，且颁发机构不是联盟成员",
                        "not anchored, and the issuer is not a consortium member", "unknown_issuer")
            elif anchor is not None:
                run.add("anchoring", INVALID, "已受理，等待上链（通常数秒内完成）",
                        "accepted, waiting to be anchored (usually within seconds)", "not_anchored")
            else:
                run.add("anchoring", INVALID, "链上没有该证照的摘要", "the document digest is not anchored on chain",
                        "not_anchored")
            run.add("issuer", SKIPPED, "未上链，无法核验颁发机构", "not anchored: issuer not checked")
            run.add("status", SKIPPED, "未上链，无状态", "not anchored: no status")
            self._validity(run, valid_from, valid_until)
            return out
        root = anchor["batch_root"]
        if not batch_includes(root, digest, anchor["index"], anchor["size"], anchor["path"]):
            run.add("anchoring", INVALID, "默克尔包含证明与批次根不符",
                    "the Merkle inclusion proof does not lead to the batch root",
                    "tampered")
            return out
        batch = self.index.batch(root)  # catches up once when the root is newer than the last refresh
        if batch is None:
            run.add("anchoring", INVALID, "批次根不在链上", f"batch root {root.hex()} is not on chain", "not_anchored")
            run.add("issuer", SKIPPED, "未上链，无法核验颁发机构", "not anchored: issuer not checked")
            run.add("status", SKIPPED, "未上链，无状态", "not anchored: no status")
            self._validity(run, valid_from, valid_until)
            return out
        if batch.count != anchor["size"]:
            run.add("anchoring", INVALID, "批次大小与链上记录不符",
                    f"proof is for a batch of {anchor['size']}, the chain says {batch.count}", "tampered")
            return out
        when = _iso(self.index.block_timestamp(batch.block_number))
        deployment = self.node.require_deployment()
        out["anchor"] = {"batch_root": root.hex(), "index": anchor["index"], "size": anchor["size"],
                         "tx_hash": batch.tx_hash, "block_number": batch.block_number, "block_hash": batch.block_hash,
                         "block_time": when, "issuer_account": batch.issuer, "chain_id": deployment.chain_id,
                         "ledger": deployment.address("CertificateLedger")}
        out["log_proof"] = f"/api/v1/proofs/inclusion?ledger=certificates&key=0x{root.hex()}"
        run.add("anchoring", VALID, f"已于区块 {batch.block_number}（{when}）上链",
                f"anchored in block {batch.block_number} at {when}", tx_hash=batch.tx_hash, block=batch.block_number)
        if not self._sm3(run, anchor, batch.sm3_root):
            return out
        out["anchor"]["sm3_root"] = batch.sm3_root.hex()
        self._issuer(run, out, batch, issuer_uscc, type_code, claimed_name)
        self._status(run, out, digest)
        self._validity(run, valid_from, valid_until)
        seal = self.seal_check(identifier, digest, batch.issuer_uscc, batch.block_number, sealed) \
            if self.seal_check else None
        if seal is not None:
            run.checks.append(seal[0])
            run.verdicts.update([seal[1]] if seal[1] else [])
        return out

    @staticmethod
    def _sm3(run: _Run, anchor: Mapping[str, Any], chain_root: bytes) -> bool:
        """The SM3 tree: the document's SM3 digest, with its SM3 audit path, must lead to the SM3 root the chain
        anchored beside the SHA-256 one. False (after recording ``tampered``) when it does not."""
        path, root, digest = anchor.get("sm3_path"), anchor.get("sm3_root"), anchor.get("sm3_digest")
        if path is None or root is None or digest is None or not any(chain_root):
            run.add("sm3", SKIPPED, "该记录没有 SM3 默克尔证明（早于 SM3 批次根上链），无法核验 SM3",
                    "no SM3 audit path for this record (anchored before SM3 roots went on chain): SM3 not checked")
            return True
        if root != chain_root or not batch_includes(root, digest, anchor["index"], anchor["size"], path,
                                                    algorithm="sm3"):
            run.add("sm3", INVALID, "SM3 摘要及其默克尔证明与链上 SM3 批次根不符",
                    "the SM3 digest and its audit path do not lead to the SM3 batch root anchored on chain", "tampered",
                    sm3=digest.hex(), sm3_root=chain_root.hex())
            return False
        run.add("sm3", VALID, "SM3 摘要经默克尔证明得出链上的 SM3 批次根（GB/T 32905）",
                "the SM3 digest and its audit path lead to the SM3 batch root anchored on chain (GB/T 32905)",
                sm3=digest.hex(), sm3_root=chain_root.hex())
        return True

    def _issuer(self, run: _Run, out: dict[str, Any], batch: Any, issuer_uscc: str | None, type_code: str,
                claimed_name: Any) -> None:
        member = self.index.members.get(batch.issuer_uscc)
        if member is None:
            run.add("issuer", INVALID, "上链账户不属于任何联盟成员", f"account {batch.issuer} belongs to no member",
                    "unknown_issuer")
            return
        out["issuer"] = {"uscc": member.uscc, "name": member.name, "bid": member.bid, "account": batch.issuer,
                         "status": MemberStatus(member.status).name.lower()}
        if issuer_uscc is not None and issuer_uscc != batch.issuer_uscc:
            run.add("issuer", INVALID, f"证照声称由 {issuer_uscc} 颁发，实际由 {member.name} 上链",
                    f"claims issuer {issuer_uscc} but was anchored by {member.uscc} ({member.name})", "unknown_issuer")
            return
        if claimed_name is not None and claimed_name != member.name:
            run.add("issuer", INVALID, f"颁发机构名称“{claimed_name}”与联盟登记名称“{member.name}”不符",
                    f"issuer name {claimed_name!r} differs from the registered {member.name!r}", "unknown_issuer")
            return
        try:
            allowed = self.node.seeds.certificate_type(type_code).issuers
        except Exception:
            allowed = ()
        if member.uscc not in allowed:
            run.add("issuer", INVALID, f"{member.name} 无权颁发此类证照", f"{member.name} may not issue type {type_code}",
                    "unknown_issuer")
            return
        note_zh = "" if member.status == MemberStatus.ACTIVE else "（该机构现已非活跃，颁发时有效）"
        note_en = "" if member.status == MemberStatus.ACTIVE else " (no longer active; it was when it issued)"
        run.add("issuer", VALID, f"{member.name}（{member.bid}）颁发时为具备颁证权限的联盟成员{note_zh}",
                f"{member.name} ({member.bid}) held the issuer role when anchoring (enforced by the contract){note_en}",
                uscc=member.uscc, bid=member.bid, roles=Role(member.roles).names())

    def _status(self, run: _Run, out: dict[str, Any], digest: bytes) -> None:
        state = self.index.docs.get(digest)
        if state is None or state.status == DocStatus.ISSUED:
            run.add("status", VALID, "未被撤销或暂停", "not revoked or suspended")
            return
        # when it happened, for the verifier page's banner (block and its time)
        when = {"block": state.since_block, "time": _iso(self.index.block_timestamp(state.since_block))}
        if state.status == DocStatus.REVOKED:
            zh, en = REVOCATION_REASONS.get(state.reason, ("其他", "other"))
            run.add("status", INVALID, f"已于区块 {state.since_block} 撤销，原因：{zh}",
                    f"revoked in block {state.since_block}: {en}", "revoked", reason=state.reason, tx_hash=state.tx_hash,
                    **when)
        elif state.status == DocStatus.SUSPENDED:
            run.add("status", INVALID, f"已于区块 {state.since_block} 暂停", f"suspended in block {state.since_block}",
                    "suspended", tx_hash=state.tx_hash, **when)
        else:
            new = self._identifier_of(state.superseded_by)
            out["superseded_by"] = new
            run.add("status", INVALID, f"已被更正证照 {new or state.superseded_by.hex()} 替代",
                    f"superseded by {new or state.superseded_by.hex()}", "superseded", tx_hash=state.tx_hash, **when)

    def _identifier_of(self, digest: bytes) -> str | None:
        with self.node.db.session() as s:
            return s.scalar(select(Certificate.identifier).where(Certificate.digest_sha256 == digest.hex()))

    def _validity(self, run: _Run, valid_from: dt.date | None, valid_until: dt.date | None) -> None:
        today = self.today()
        if valid_from is not None and today < valid_from:
            run.add("validity", INVALID, f"尚未生效（{valid_from.isoformat()} 起）", f"not valid before {valid_from.isoformat()}",
                    "not_yet_valid")
        elif valid_until is not None and today > valid_until:
            run.add("validity", INVALID, f"已于 {valid_until.isoformat()} 过期", f"expired on {valid_until.isoformat()}",
                    "expired")
        elif valid_until is None:
            run.add("validity", VALID, "长期有效", "no expiry date")
        else:
            run.add("validity", VALID, f"有效期至 {valid_until.isoformat()}", f"valid until {valid_until.isoformat()}")


def _digest32(value: str | bytes, what: str, algorithm: str) -> bytes:
    if isinstance(value, str):
        text = value.removeprefix("0x").lower()
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
            raise ValidationError(f"{what} must be 64 hex digits ({algorithm}), got {value[:80]!r}",
                                  code="invalid_digest")
        value = bytes.fromhex(text)
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValidationError(f"{what} must be 32 bytes ({algorithm})", code="invalid_digest")
    return value


def _iso(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat().replace("+00:00", "Z")


def _shown(doc: Document, path: str) -> Any:
    f = doc.fields.get(path)
    return None if f is None else f.value


def _result(run: _Run, identifier: str | None, out: dict[str, Any], doc: Document | None) -> VerificationResult:
    verdict = run.verdict()
    zh, en = VERDICT_TEXT[verdict]
    return VerificationResult(
        verdict=verdict, verdict_zh=zh, verdict_en=en, identifier=identifier, checks=run.checks,
        issuer=out.get("issuer"), anchor=out.get("anchor"),
        disclosed_fields=list(doc.fields) if doc else [], hidden_fields=list(doc.hidden) if doc else [],
        fields={p: f.value for p, f in doc.fields.items()} if doc else {},
        superseded_by=out.get("superseded_by"), as_of=out.get("as_of"), log_proof=out.get("log_proof"),
        bound=doc.bound if doc else False,
    )


def parse_verify_body(body: Any) -> tuple[str, Any]:
    """A verify request is a document, or {"identifier": ...}."""
    if isinstance(body, Mapping) and set(body) == {"identifier"}:
        return "identifier", body["identifier"]
    if isinstance(body, Mapping) and "fields" in body:
        return "document", body
    if isinstance(body, Mapping) and "document" in body and isinstance(body["document"], Mapping):
        return "document", body["document"]
    raise ValidationError("expected a certificate document (format lianzheng/cert/1) or {\"identifier\": ...}",
                          code="invalid_document")
