"""Verifying a seal (验章): the `seal` check of a sealed certificate or evidence record (registry/certificates/
verification.py and registry/evidence/verification.py call it after their own checks). In this order, each
failure said in words:

1. the sealed signature is stored for this identifier, readable, and over this record (its identifier and
   digest: a certificate's document digest, an evidence record's content digest);
2. the seal is registered on chain (the seal index) — to the agency that anchored the document;
3. the seal image's SHA-256 is the one registered (an image of another seal is named: whose it is);
4. the SES_SealInfo's digest is the one registered, and the seal maker's signature over the SESeal verifies
   under a key the maker published on chain;
5. the signer's key is the seal's (its digest registered on chain), and its signature verifies;
6. the seal was Active in the block that anchored the document, and inside its validity at the signing time. What was sealed
   while the seal was active stays valid after a later suspension or revocation, and the check says so.

The sealed signature is the one this node stored when it issued the document, or the one the issuing node
published in the certificate's public record (registry/certificates/remote.py): either way every comparison is
with this node's own seal index. Each failure names its kind in ``details.problem`` (``unreadable``,
``wrong_document``, ``not_registered``, ``foreign_seal``, ``image_mismatch``, ``info_mismatch``,
``maker_unknown``, ``key_mismatch``, ``bad_signature``, ``suspended_at_sealing``, ``revoked_at_sealing``,
``not_active_at_sealing``, ``outside_validity``) so that the verifier page and the printable certificate can say
it in words; a valid check carries the registered image digest (``details.image_sha256``) that a shown image
must have.

    >>> check = SealVerifier(node, index)                                     # doctest: +SKIP
    >>> check(identifier, digest, issuer_uscc, block)[0].status               # doctest: +SKIP
    'VALID'
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from registry.certificates.remote import RemoteCertificates, SealedCopy, stored_seal
from registry.certificates.verification import INVALID, SKIPPED, VALID, Check
from registry.consortium.roles import agency_json
from registry.crypto.hashing import hex0x, sha256_key
from registry.errors import ChainUnavailableError, NotFoundError, SignatureError, ValidationError
from registry.identifiers import CertificateId
from registry.node import Node
from registry.seals.index import SealHistory, SealIndex
from registry.seals.structures import SES_SIGNATURE, SealedProof, read_sealed_signature
from registry.store.db import Certificate
from registry.store.seal_models import SealedSignature

__all__ = ["SealVerifier", "registration_problem"]

_KEPT_SEALS = 100_000
_STATUS_ZH = {"suspended": "暂停", "revoked": "撤销", "active": "恢复"}


def registration_problem(proof: SealedProof, *, image_digest: str, seal_info_digest: str, key_digest: str,
                         maker_key_published: bool) -> tuple[str, str, str] | None:
    """What differs between a sealed signature's SESeal and the seal's registration on chain (steps 3-5 of
    the module docstring), as (what, 中文, English), or None. `what` is ``image``, ``seal_info``,
    ``maker_key``, ``signer_key`` or ``signature``. Used by the `seal` check and by the audit replay
    (registry/audit/_seals.py), each with its own view of the chain."""
    seal = proof.seal
    if hex0x(seal.image_digest) != image_digest.lower():
        return ("image", "印章图像与链上登记的不符（图像被替换或篡改）",
                "the seal image does not match the image registered on chain (replaced or altered)")
    if hex0x(seal.seal_info_digest) != seal_info_digest.lower():
        return "seal_info", "印章信息与链上登记的不符", "the seal's SES_SealInfo differs from the one registered on chain"
    if not maker_key_published:
        return "maker_key", "制章方的密钥未在链上公布", "the seal maker's key was never published on chain"
    if hex0x(proof.signer_key_digest) != key_digest.lower():
        return "signer_key", "签章密钥不是链上登记的印章密钥", "the signing key is not the seal's key registered on chain"
    try:
        seal.verify()
        proof.verify()
    except SignatureError as exc:
        return "signature", f"签名无效：{exc.message}", f"a signature does not verify: {exc.message}"
    return None


class SealVerifier:
    def __init__(self, node: Node, index: SealIndex, *, remote: RemoteCertificates | None = None) -> None:
        self.node = node
        self.index = index
        self.remote = remote  # where the sealed signatures of certificates issued on other nodes come from
        # A certificate's sealed signature is stored in the transaction that stores the certificate: once the
        # certificate row is there without one, it is never sealed, and that is kept (bounded: cleared when full).
        # A sealed one is read again each time: a signature edited at rest must show as tampered at once.
        self._unsealed: set[str] = set()

    def stored(self, identifier: str, kind: str = "certificate") -> SealedCopy | None:
        """The sealed signature this node stored for one of its records of `kind` (certificate, evidence);
        None: not sealed here."""
        if kind == "certificate" and identifier in self._unsealed:
            return None
        with self.node.db.session() as s:
            if kind == "certificate":
                sm3 = s.scalar(select(Certificate.digest_sm3).where(Certificate.identifier == identifier))
                copy = stored_seal(s, identifier, bytes.fromhex(sm3 or ""))
                if sm3 is not None and copy is None:  # stored here, never sealed
                    if len(self._unsealed) >= _KEPT_SEALS:
                        self._unsealed.clear()
                    self._unsealed.add(identifier)
                return copy
            row = s.scalars(select(SealedSignature).where(SealedSignature.record_kind == kind,
                                                          SealedSignature.record_id == identifier)).first()
            return None if row is None else SealedCopy(row.seal_id, row.format, bytes(row.signature),
                                                       bytes.fromhex(row.digest_sm3 or ""))

    def sealed_copy(self, identifier: str) -> SealedCopy:
        """The certificate's sealed signature: stored here, or from the issuing node's public record (for an
        agency this node does not host). NotFoundError ``not_sealed`` when there is none."""
        copy = self.stored(identifier)
        if copy is None and self.remote is not None:
            cid = CertificateId.parse(identifier)
            if not self.node.keys.has_signing_key(cid.issuer_uscc):
                copy = self.remote.record(cid).seal
        if copy is None:
            raise NotFoundError(f"certificate {identifier[:80]} carries no seal", code="not_sealed")
        return copy

    def image(self, identifier: str) -> tuple[str, bytes, str]:
        """(media type, bytes, SHA-256 hex) of the seal image inside the certificate's sealed signature: the
        picture as it was sealed. Whoever shows it compares the digest with the registered one (the seal check's
        ``details.image_sha256``) first."""
        copy = self.sealed_copy(identifier)
        seal = read_sealed_signature(copy.format, copy.signature).seal
        media = "image/png" if seal.image_type.upper() == "PNG" else "image/svg+xml"
        return media, seal.image, seal.image_digest.hex()

    def __call__(self, identifier: str, digest: bytes, issuer_uscc: str, block: int,
                 sealed: SealedCopy | None = None, *, kind: str = "certificate",
                 sm3: bytes | None = None) -> tuple[Check, str | None] | None:
        """The `seal` check of record `identifier` of `kind` (certificate, evidence) whose SHA-256 digest is
        `digest` (and SM3 digest `sm3`, where the caller has it from the chain), anchored by `issuer_uscc` in
        `block`, with the sealed signature stored here or `sealed` (from the issuing node's public record);
        None when the record was not sealed."""
        copy = sealed or self.stored(identifier, kind)
        if copy is None:
            return None
        details: dict[str, Any] = {"seal": copy.seal_id, "format": copy.format,
                                   "source": "registry" if sealed is None else "issuer_node"}
        try:
            proof = read_sealed_signature(copy.format, copy.signature)
        except (ValidationError, SignatureError) as exc:
            return self._bad("unreadable", f"电子签章无法读取或签名无效：{exc.message}",
                             f"the sealed signature cannot be read: {exc.message}", details)
        expected = (sm3 if sm3 is not None else copy.digest_sm3) if copy.format == SES_SIGNATURE else digest
        if proof.document != identifier or proof.data_hash != expected or proof.seal.es_id != copy.seal_id:
            return self._bad("wrong_document", "电子签章不是对本记录的签章（标识、摘要或印章编号不符）",
                             "the sealed signature is not over this record (identifier, digest or seal id differs)",
                             details)
        try:
            self.index.refresh()
        except ChainUnavailableError as exc:
            return Check("seal", SKIPPED, "区块链节点不可达，无法验章", f"chain unreachable: {exc.message}", details), \
                "cannot_verify"
        seal_key = hex0x(sha256_key(proof.seal.es_id))
        history = self.index.seal(seal_key)
        if history is None:
            return self._bad("not_registered", f"印章 {proof.seal.es_id} 未在链上登记",
                             f"seal {proof.seal.es_id} is not registered on chain", details)
        if history.agency_uscc != issuer_uscc:
            owner = self._name(history.agency_uscc)
            return self._bad("foreign_seal", f"印章 {proof.seal.es_id} 属于{owner}，不是本证照的颁发机构的印章",
                             f"seal {proof.seal.es_id} belongs to {owner} ({history.agency_uscc}), not to the issuing "
                             f"agency {issuer_uscc}", {**details, "seal_agency": history.agency_uscc,
                                                       "seal_agency_name": owner})
        problem = self._seal_problem(proof, history, details)
        if problem is not None:
            return self._bad(*problem, details)
        return self._status(proof, history, block, details)

    _PROBLEM_CODES = {"image": "image_mismatch", "seal_info": "info_mismatch", "maker_key": "maker_unknown",
                      "signer_key": "key_mismatch", "signature": "bad_signature"}

    def _seal_problem(self, proof: SealedProof, history: SealHistory,
                      details: dict[str, Any]) -> tuple[str, str, str] | None:
        problem = registration_problem(
            proof, image_digest=history.image_digest, seal_info_digest=history.seal_info_digest,
            key_digest=history.key_digest,
            maker_key_published=self.index.maker_key_block(hex0x(proof.seal.maker_key_digest)) is not None)
        if problem is None:
            return None
        what, zh, en = problem
        if what == "image":
            others = [h for h in self.index.seals_with_image(hex0x(proof.seal.image_digest)) if h.key != history.key]
            if others:
                who = self._name(others[0].agency_uscc)
                details.update(image_of=others[0].agency_uscc, image_of_name=who)
                return ("image_mismatch", f"印章图像与链上登记的不符：该图像是{who}另一枚印章的图像",
                        f"the seal image does not match the registered one: it is the image of another seal, "
                        f"of {who} ({others[0].agency_uscc})")
        return self._PROBLEM_CODES[what], zh, en

    def _status(self, proof: SealedProof, history: SealHistory, block: int,
                details: dict[str, Any]) -> tuple[Check, str | None]:
        es_id = proof.seal.es_id
        info = {**details, "name": proof.seal.name, "agency": history.agency_uscc, "block": block,
                "agency_name": self._name(history.agency_uscc)}
        status = history.status_at(block)
        if status != "active":
            problem = f"{status}_at_sealing" if status in ("suspended", "revoked") else "not_active_at_sealing"
            return self._bad(problem, f"盖章时（区块 {block}）印章 {es_id} 不是有效状态（{status}）",
                             f"seal {es_id} was not active ({status}) in block {block}, when the document was anchored",
                             {**info, "status_at_sealing": status})
        when = int(proof.time.timestamp())  # the signing time, under the seal key's signature (GB/T 38540 timeInfo)
        if not history.valid_from <= when < history.valid_until:
            return self._bad("outside_validity", f"盖章时印章 {es_id} 不在有效期内", f"seal {es_id} was outside its "
                             f"validity at the signing time {proof.time.isoformat()}", info)
        later = history.changes_after(block)
        note_zh = note_en = ""
        if later and later[-1].status != "active":
            last = later[-1]
            note_zh = f"；该印章其后于区块 {last.block_number} {_STATUS_ZH[last.status]}，盖章时有效的签章仍然有效"
            note_en = (f"; the seal was {last.status} later, in block {last.block_number}: what it sealed while "
                       "active stays valid")
            info.update(later=last.status, later_block=last.block_number)
        info["image_sha256"] = history.image_digest.lower().removeprefix("0x")
        return Check("seal", VALID, f"印章有效：{proof.seal.name}（{es_id}）签章有效，盖章时印章有效{note_zh}",
                     f"seal verified: {es_id} ({proof.seal.name}) signed this document while active{note_en}",
                     info), None

    def _name(self, uscc: str) -> str:
        with self.node.db.session() as s:
            found = agency_json(s, uscc) or {}
        return str(found.get("name") or uscc)

    @staticmethod
    def _bad(problem: str, zh: str, en: str, details: dict[str, Any]) -> tuple[Check, str | None]:
        return Check("seal", INVALID, zh, en, {**details, "problem": problem}), "tampered"
