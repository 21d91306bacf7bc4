"""Offline (by-value) QR codes: build a signed payload for an anchored document, and verify one with a cached
trust list (registry.trust_list) and no network at all.

Building (format LZ2, registry.qr): shown fields travel with their values -- and, when nothing is hidden,
with the document's 16-byte salt seed instead of a salt per field; hidden fields travel as their SHA-256 leaf
hashes; the document's RFC 6962 audit path in its batch goes along with where the batch was anchored; the
issuing agency signs the body. A QR must stay scannable from paper, so the builder keeps to a version budget
(default: version 25 at level M, 1,451 alphanumeric characters). A fully disclosed certificate of every seeded
type fits it with a 1,000-document batch (versions 20..24). When a payload does not fit, the builder hides,
one at a time, the long non-core fields whose hiding shortens it most (a hidden field costs a 32-byte hash,
a shown one its value and, without a seed, its 16-byte salt), never the identifying core (identifier,
holder, issuer, validity), and refuses with ``qr_too_large`` when even that is not enough.

Verifying runs these checks, each VALID / INVALID / SKIPPED with a reason in Chinese and English:

- integrity: the identifier is bound (证照标识 shown and equal, type and issuer codes agree), and the leaves
  recomputed from the shown fields and hidden leaf hashes, with the audit path (RFC 6962, RFC 9162
  §2.1.3.2), lead to a batch root the trust list knows -- LZ2 does not carry the root, so any altered
  field, hash or proof step leads to a root nobody anchored;
- anchoring: that batch was anchored on this consortium's chain and ledger, in the block the payload names;
- sm3: with the payload's SM3 part, the SM3 document digest recomputed from the shown fields and hidden SM3 leaf
  hashes, with the SM3 audit path, leads to the SM3 root the trust list says was anchored beside that batch
  root (SKIPPED when the payload or the trust list has no SM3 part: not available, never VALID);
- signature: the batch statement (registry.formats.batch_statement) is signed by a member: intl statements by
  one of its accounts (the secp256k1 signer recovered from the statement), gm statements by an SM2 key the
  trust list (format 2) registers for it, valid at the statement's signing time. The outcome is kept by the
  statement and batch, so a batch costs one signature check. Payloads of the first intl form carry a
  signature over their own body instead, and its signer (recovered by registry.qr) must be a member's
  account;
- issuer: that member is the identifier's issuer and anchored the batch, holds the issuer role, may issue
  the type, and its registered name is the 颁发机构 shown;
- status: not revoked, suspended or superseded as of the trust list's block;
- validity: today within 有效期起始..有效期截止 (when shown).

>>> verifier = OfflineVerifier(TrustList.from_json(cached), today=dt.date.today)     # doctest: +SKIP
>>> result = verifier.verify_text("LZ2:6BF...")                                      # doctest: +SKIP
>>> result.verdict, result.as_of                                                      # doctest: +SKIP
('valid', {'block': 812, 'time': '2024-06-10T06:13:20Z', 'source': 'trust_list'})
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar

from eth_utils.address import to_checksum_address

from registry.certificates.offline_building import ALNUM_CAPACITY, CORE_FIELDS, OfflineQr, build_payload, make_offline_qr
from registry.certificates.offline_statements import Sm2Cache
from registry.certificates.service import REVOCATION_REASONS
from registry.certificates.verification import (
    INVALID,
    SKIPPED,
    VALID,
    VERDICT_TEXT,
    Check,
    VerificationResult,
    _Run,
)
from registry.consortium.trust_list import DocumentState, TrustedMember, TrustList
from registry.errors import ProofError, ValidationError
from registry.formats.batch_statement import BatchStatement, statement_bytes, statement_signer
from registry.formats.qr import FieldValue, OfflinePayload, decode_payload, recover_signer

__all__ = ["ALNUM_CAPACITY", "CORE_FIELDS", "OfflineQr", "OfflineVerifier", "build_payload", "make_offline_qr"]

_T = TypeVar("_T")
_MEMO_SIZE = 4096  # the verifier's memo of checks (OfflineVerifier._memo)
_ID, _ISSUER_NAME, _ISSUER_CODE, _FROM, _UNTIL = "证照标识", "颁发机构", "颁发机构代码", "有效期起始", "有效期截止"
# The structure of registry.identifiers.CertificateId: 1.2.156.3005.2.<type code>.<issuer USCC>.<serial>.<version>.<check>.
# Offline verification only needs the type code and issuer; their check characters add nothing here (the
# identifier sits in the signed, anchored 证照标识 leaf, and both parts must equal registered values), and
# checking them would cost a seventh of a verification.
_ID_PARTS = re.compile(r"1\.2\.156\.3005\.2\.([0-9A-Z]{18}[0-9]{3})\.([0-9A-Z]{18})\.[0-9A-Z]{1,20}\.[0-9]{3}\.[0-9A-Z*]")


# --- verifying -------------------------------------------------------------------------------------------


class OfflineVerifier:
    """Verifies offline payloads against one trust list; thread-safe and cheap to call (~0.08 ms)."""

    def __init__(self, trust_list: TrustList, *, today: Callable[[], dt.date] = dt.date.today) -> None:
        self.trust = trust_list
        self.today = today
        self._ledger = bytes.fromhex(str(trust_list.body["contracts"].get("CertificateLedger", "0x"))[2:])
        # member accounts by their raw 20 bytes, already in EIP-55 form: the decoder hands us raw bytes
        self._accounts = {bytes.fromhex(a[2:]): a for m in trust_list.members.values() for a in m.accounts}
        self._sm2 = Sm2Cache()  # keys parsed once, statements verified once
        self._memos: dict[tuple[Any, ...], tuple[tuple[Check, ...], tuple[str, ...], Any]] = {}

    def _address(self, raw: bytes) -> str:
        return self._accounts.get(raw) or to_checksum_address(raw)

    def verify_text(self, text: str) -> VerificationResult:
        """Decode (``PayloadFormatError`` for text that is not a well-formed payload) and verify. The decoder
        has already recomputed the batch root and recovered the signer (registry.qr, LZ2)."""
        p = decode_payload(text)
        return self._verify(p, p.batch_root, self._address(p.issuer_account) if p.issuer_account else None)

    def verify_payload(self, p: OfflinePayload) -> VerificationResult:
        """Verify a payload object (its batch root and signer are recomputed here, whatever it says)."""
        try:
            root = p.computed_batch_root()
        except ValidationError:
            root = None
        signer: str | None = None
        if p.statement is None:
            try:
                signer = recover_signer(p)
            except ProofError:
                signer = None
        return self._verify(p, root, signer)

    def _verify(self, p: OfflinePayload, root: bytes | None, signer: str | None) -> VerificationResult:
        run = _Run()
        memo, trust = self._memo, self.trust
        match = _ID_PARTS.fullmatch(p.identifier)
        cid = (match.group(1), match.group(2)) if match else None  # (type code, issuer USCC)
        ours = p.chain_id == trust.chain_id and not (self._ledger and p.ledger != self._ledger)
        found = trust.batches.get(root) if ours and root is not None else None
        anchor = None
        if ours:
            anchor = {"batch_root": root.hex() if root else None, "index": p.index, "size": p.size,
                      "tx_hash": found[2] if found else None, "block_number": p.block_number,
                      "block_time": _iso(p.block_timestamp), "chain_id": p.chain_id, "ledger": "0x" + p.ledger.hex()}
        batch = memo(run, self._integrity_and_anchoring, ours, p.chain_id, p.ledger, found, p.block_number,
                     p.block_timestamp, len(p.disclosed), len(p.hidden), tuple(self._binding_problems(p, cid)))
        if batch is not None and root is not None:
            sm3_root = trust.sm3_roots.get(root)
            sm3_ok = p.sm3_proof is not None and sm3_root is not None and _sm3_root(p) == sm3_root
            memo(run, self._sm3, p.sm3_proof is not None, sm3_root, sm3_ok)
        if p.statement is not None:
            member, account = memo(run, self._statement, p.statement, p.chain_id, p.ledger, root)
        else:
            member, account = memo(run, self._signature, signer), signer
        shown_name = _shown(p, _ISSUER_NAME)
        # 1 == True as keys: a name that is no text (never one we issue) is checked without the memo
        (memo if shown_name is None or type(shown_name) is str else _direct)(
            run, self._issuer, cid[1] if cid is not None else None, shown_name, p.type_code, member, batch)
        # Only a batch holding a revoked, suspended or superseded document needs the document digest (the
        # status list's key): a digest is anchored in one batch only (digests are unique in the registry), so
        # a batch with no change has no changed document.
        state = None
        if root is None or root in trust.changed_roots:
            state = trust.documents.get(p.document_digest())
        memo(run, self._status, state)
        memo(run, self._validity, _UNTIL in p.hidden or _FROM in p.hidden, _shown(p, _FROM), _shown(p, _UNTIL),
             self.today())
        issuer = None
        if member is not None:
            issuer = {"uscc": member.uscc, "name": member.name, "bid": member.bid, "account": account,
                      "status": member.status}
            if p.statement is not None and p.statement.key_id:
                issuer["sm2_key_id"] = p.statement.key_id.hex()
        verdict = run.verdict()
        zh, en = VERDICT_TEXT[verdict]
        return _result(
            verdict=verdict, verdict_zh=zh, verdict_en=en, identifier=p.identifier, checks=run.checks,
            issuer=issuer, anchor=anchor, disclosed_fields=list(p.disclosed), hidden_fields=list(p.hidden),
            fields={k: v for k, (_, v) in p.disclosed.items()},
            as_of={"block": trust.as_of_block, "time": trust.as_of_time, "source": "trust_list"},
        )

    def _memo(self, run: _Run, check: Callable[..., _T], *args: Any) -> _T:
        """``check(run, *args)``, each check of the verifier a function of its arguments and the trust list
        alone: the checks it adds (immutable) and its value are kept by those arguments, so a batch's payloads
        share their texts (a tampered payload's distinct root only adds an entry). Bounded; thread-safe (a
        lost race recomputes)."""
        key = (check.__name__, *args)
        hit = self._memos.get(key)
        if hit is None:
            sub = _Run()
            value = check(sub, *args)
            hit = (tuple(sub.checks), tuple(sub.verdicts), value)
            if len(self._memos) >= _MEMO_SIZE:
                self._memos.clear()
            self._memos[key] = hit
        run.checks.extend(hit[0])
        run.verdicts.update(hit[1])
        return hit[2]

    # -- checks ------------------------------------------------------------------------------------
    def _binding_problems(self, p: OfflinePayload, cid: tuple[str, str] | None) -> list[str]:
        problems = [] if cid is not None else [f"identifier {p.identifier[:80]!r} is malformed"]
        shown_id = p.disclosed.get(_ID)
        if shown_id is None or shown_id[1] != p.identifier:
            problems.append(f"field {_ID} must be shown and equal the identifier")
        if cid is not None:
            if p.type_code != cid[0]:
                problems.append(f"type {p.type_code} differs from the identifier's type {cid[0]}")
            code = p.disclosed.get(_ISSUER_CODE)
            if code is not None and code[1] != cid[1]:
                problems.append(f"{_ISSUER_CODE} {code[1]!r} differs from the identifier's issuer {cid[1]}")
        return problems

    def _integrity_and_anchoring(self, run: _Run, ours: bool, chain_id: int, ledger: bytes,
                                 batch: tuple[int, str, str] | None, block_number: int, block_timestamp: int,
                                 n_shown: int, n_hidden: int, problems: tuple[str, ...]) -> tuple[int, str, str] | None:
        """The fields, hidden leaf hashes and audit path must lead to a batch root anchored (per the trust
        list: ``batch``, the trust list's (block, issuer USCC, tx) of the root they lead to) in the block the
        payload names. LZ2 does not carry the root: a changed field, hash or proof step yields a root nobody
        anchored. Returns ``batch`` when it was anchored where the payload says."""
        as_of = self.trust.as_of_block
        when = _iso(block_timestamp)
        if not ours:
            run.add("integrity", SKIPPED, "该证照属于另一条链，无法用本信任列表核验",
                    "the certificate belongs to another chain: this trust list cannot check it")
            run.add("anchoring", INVALID, "该证照锚定在另一条链或另一个合约上",
                    f"anchored on chain {chain_id} / ledger 0x{ledger.hex()}, not this consortium's chain "
                    f"{self.trust.chain_id}", "not_anchored")
            return None
        if problems:
            run.add("integrity", INVALID, "二维码内容被改动：" + "; ".join(problems),
                    "the QR contents were altered: " + "; ".join(problems), "tampered")
        elif batch is None and block_number <= as_of:
            run.add("integrity", INVALID,
                    f"字段、隐藏字段摘要或默克尔证明被改动：得出的批次根未上链（截至区块 {as_of}）",
                    f"a field, hidden leaf hash or proof step was altered: they lead to a batch root that was not "
                    f"anchored (as of block {as_of})", "tampered")
        elif batch is None:
            run.add("integrity", SKIPPED, f"批次声明于区块 {block_number} 上链，晚于信任列表（区块 {as_of}）：请更新信任列表",
                    f"the batch claims block {block_number}, after the trust list (block {as_of}): pull it again")
        else:
            run.add("integrity", VALID, f"{n_shown} 个字段已核验，{n_hidden} 个字段隐藏；字段与证明得出已上链的批次根（SHA-256）",
                    f"{n_shown} fields checked, {n_hidden} hidden; with the proof they lead to an anchored batch root "
                    "(SHA-256)")
        if batch is None:
            run.add("anchoring", SKIPPED if block_number > as_of else INVALID,
                    f"批次根不在信任列表中（截至区块 {as_of}）", f"the batch root is not in the trust list (as of block {as_of})")
            return None
        block, _, tx = batch
        if block != block_number:
            run.add("anchoring", INVALID, f"声明的区块 {block_number} 与实际上链区块 {block} 不符",
                    f"claims block {block_number}, the batch was anchored in block {block}", "tampered")
            return None
        run.add("anchoring", VALID, f"已于区块 {block}（{when}）上链（据信任列表，截至区块 {as_of}）",
                f"anchored in block {block} at {when} (per the trust list as of block {as_of})", tx_hash=tx,
                block=block)
        return batch

    def _sm3(self, run: _Run, carried: bool, anchored: bytes | None, leads_there: bool) -> None:
        """The SM3 tree (only once the SHA-256 one led to an anchored batch): the payload carries an SM3 part
        (``carried``), the trust list has the batch's SM3 root (``anchored``), the part leads to it."""
        if not carried or anchored is None:
            missing = ("二维码", "the payload") if not carried else ("信任列表", "the trust list")
            run.add("sm3", SKIPPED, f"{missing[0]}没有 SM3 批次证明，无法核验 SM3",
                    f"{missing[1]} has no SM3 part for this batch: SM3 not checked")
            return
        if not leads_there:
            run.add("sm3", INVALID, "SM3 摘要及其默克尔证明与已上链的 SM3 批次根不符",
                    "the SM3 digest and its audit path do not lead to the SM3 batch root anchored on chain",
                    "tampered")
        else:
            run.add("sm3", VALID, "SM3 摘要经默克尔证明得出已上链的 SM3 批次根（GB/T 32905）",
                    "the SM3 digest and its audit path lead to the SM3 batch root anchored on chain (GB/T 32905)",
                    sm3_root=anchored.hex())

    def _signature(self, run: _Run, signer: str | None) -> TrustedMember | None:
        if signer is None:
            run.add("signature", INVALID, "签名无效：无法恢复签名者", "bad signature: no signer recovers from it", "tampered")
            return None
        member = self.trust.member_of_account(signer)
        if member is None:
            run.add("signature", INVALID, f"签名者 {signer} 不是联盟成员账户（截至区块 {self.trust.as_of_block}）",
                    f"signed by {signer}, which is not a consortium member account (as of block "
                    f"{self.trust.as_of_block})", "unknown_issuer", signer=signer)
            return None
        run.add("signature", VALID, f"由联盟成员 {member.name} 的账户 {signer} 签名",
                f"signed by {member.name}'s account {signer}", signer=signer)
        return member

    def _statement(self, run: _Run, st: BatchStatement, chain_id: int, ledger: bytes,
                   root: bytes | None) -> tuple[TrustedMember | None, str | None]:
        """The batch statement, signed by a member: its account (intl) or its SM2 key valid when it signed (gm).
        Returns the member (None: not one) and, for intl, the account that signed."""
        if root is None:  # the audit path does not fit the batch's size: nothing for a statement to sign
            run.add("signature", INVALID, "批次声明无法核验：默克尔证明与批次大小不符",
                    "the batch statement cannot be checked: the audit path does not fit the batch size", "tampered")
            return None, None
        message = statement_bytes(chain_id, ledger, root, self.trust.sm3_roots.get(root), st.signed_at)
        if not st.key_id:
            account = statement_signer(st, message)
            if account is None:
                run.add("signature", INVALID, "批次声明的签名无效：无法恢复签名者",
                        "bad signature on the batch statement: no signer recovers from it", "tampered")
                return None, None
            member = self.trust.member_of_account(account)
            if member is None:
                run.add("signature", INVALID, f"批次声明的签名恢复出账户 {account}，不是联盟成员账户（截至区块 "
                        f"{self.trust.as_of_block}）：声明被改动，或由非成员签署", f"the batch statement's signature "
                        f"recovers {account}, which is not a consortium member account (as of block "
                        f"{self.trust.as_of_block}): the statement was altered or signed by a non-member",
                        "unknown_issuer", signer=account)
                return None, account
            when = _iso(st.signed_at)
            run.add("signature", VALID, f"由联盟成员 {member.name} 的账户 {account} 签署批次声明（{when}）",
                    f"the batch statement is signed by {member.name}'s account {account} at {when}",
                    signer=account, signed_at=when)
            return member, account
        return self._sm2_statement(run, st, message), None

    def _sm2_statement(self, run: _Run, st: BatchStatement, message: bytes) -> TrustedMember | None:
        """A gm statement: its SM2 signature under a member's key valid when it was signed."""
        when = _iso(st.signed_at)
        keys = self.trust.sm2_keys.get(st.key_id, ())
        if not keys:
            run.add("signature", INVALID, f"批次声明的 SM2 密钥 {st.key_id.hex()} 未在信任列表中登记（截至区块 "
                    f"{self.trust.as_of_block}）", f"the batch statement's SM2 key {st.key_id.hex()} is not registered "
                    f"in the trust list (as of block {self.trust.as_of_block})", "unknown_issuer",
                    key_id=st.key_id.hex())
            return None
        entry = next((e for e in keys if self._sm2.verified(e.key, message, st.signature)), None)
        if entry is None:
            run.add("signature", INVALID, "批次声明的 SM2 签名无效（GB/T 32918.2）",
                    "bad SM2 signature on the batch statement (GB/T 32918.2)", "tampered", key_id=st.key_id.hex())
            return None
        member = self.trust.members.get(entry.uscc)
        if member is None or not entry.valid_at(st.signed_at):
            until = _iso(entry.until) if entry.until else "now"
            run.add("signature", INVALID, f"签名时（{when}）该 SM2 密钥已不属于 {entry.uscc}（有效期 {_iso(entry.since)} 至 "
                    f"{until}，密钥已轮换）", f"the SM2 key of {entry.uscc} was valid from {_iso(entry.since)} to {until}, "
                    f"not at {when} when the statement says it was signed (rotated key)", "unknown_issuer",
                    code="key_not_valid_at_time", key_id=st.key_id.hex())
            return None
        run.add("signature", VALID, f"由联盟成员 {member.name} 的 SM2 密钥 {st.key_id.hex()} 签署批次声明（{when}）",
                f"the batch statement is signed by {member.name}'s SM2 key {st.key_id.hex()} at {when}",
                key_id=st.key_id.hex(), signed_at=when)
        return member

    def _issuer(self, run: _Run, claimed_uscc: str | None, claimed_name: FieldValue, type_code: str,
                member: TrustedMember | None, batch: tuple[int, str, str] | None) -> None:
        if member is None:
            run.add("issuer", SKIPPED, "签名者不是联盟成员，无法核验颁发机构", "the signer is no member: issuer not checked")
            return
        allowed = self.trust.type_issuers.get(type_code, ("", ()))[1]
        problem = None
        if claimed_uscc != member.uscc:
            problem = (f"证照声称由 {claimed_uscc} 颁发，实际由 {member.name} 签名",
                       f"claims issuer {claimed_uscc} but was signed by {member.uscc} ({member.name})")
        elif batch is not None and batch[1] != member.uscc:
            problem = (f"批次由 {batch[1]} 上链，与签名机构不符", f"the batch was anchored by {batch[1]}, not the signer")
        elif claimed_name is not None and claimed_name != member.name:
            problem = (f"颁发机构名称“{claimed_name}”与联盟登记名称“{member.name}”不符",
                       f"issuer name {claimed_name!r} differs from the registered {member.name!r}")
        elif "issuer" not in member.roles or member.uscc not in allowed:
            problem = (f"{member.name} 无权颁发此类证照", f"{member.name} may not issue type {type_code}")
        if problem:
            run.add("issuer", INVALID, problem[0], problem[1], "unknown_issuer")
            return
        note_zh = "" if member.status == "active" else f"（该机构现状态：{member.status}）"
        note_en = "" if member.status == "active" else f" (member is now {member.status})"
        run.add("issuer", VALID, f"{member.name}（{member.bid}）为具备颁证权限的联盟成员{note_zh}",
                f"{member.name} ({member.bid}) is a consortium member allowed to issue this type{note_en}",
                uscc=member.uscc, bid=member.bid, roles=list(member.roles))

    def _status(self, run: _Run, state: DocumentState | None) -> None:
        as_of = f"截至区块 {self.trust.as_of_block}（{self.trust.as_of_time}）"
        as_of_en = f"as of block {self.trust.as_of_block} ({self.trust.as_of_time})"
        if state is None:
            run.add("status", VALID, f"未被撤销或暂停（{as_of}）", f"not revoked or suspended ({as_of_en})")
        elif state.status == "revoked":
            zh, en = REVOCATION_REASONS.get(state.reason, ("其他", "other"))
            run.add("status", INVALID, f"已于区块 {state.block} 撤销，原因：{zh}（{as_of}）",
                    f"revoked in block {state.block}: {en} ({as_of_en})", "revoked", reason=state.reason)
        elif state.status == "suspended":
            run.add("status", INVALID, f"已于区块 {state.block} 暂停（{as_of}）",
                    f"suspended in block {state.block} ({as_of_en})", "suspended")
        else:
            run.add("status", INVALID, f"已于区块 {state.block} 被更正证照替代（{as_of}）",
                    f"superseded in block {state.block} ({as_of_en})", "superseded")

    def _validity(self, run: _Run, hidden: bool, start_value: FieldValue, until_value: FieldValue,
                  today: dt.date) -> None:
        start, until = _date(start_value), _date(until_value)
        if hidden:
            run.add("validity", SKIPPED, "有效期字段未披露", "the validity dates are hidden")
        elif isinstance(start, dt.date) and today < start:
            run.add("validity", INVALID, f"尚未生效（{start.isoformat()} 起）", f"not valid before {start.isoformat()}",
                    "not_yet_valid")
        elif isinstance(until, dt.date) and today > until:
            run.add("validity", INVALID, f"已于 {until.isoformat()} 过期", f"expired on {until.isoformat()}", "expired")
        elif isinstance(until, dt.date):
            run.add("validity", VALID, f"有效期至 {until.isoformat()}", f"valid until {until.isoformat()}")
        else:
            run.add("validity", VALID, "长期有效", "no expiry date")


_RESULT_DEFAULTS = {f.name: f.default for f in dataclasses.fields(VerificationResult)
                    if f.default is not dataclasses.MISSING}
_RESULT_FIELDS = frozenset(f.name for f in dataclasses.fields(VerificationResult))


def _result(**values: Any) -> VerificationResult:
    """``VerificationResult(**values)`` by one update of the instance dict: the frozen dataclass's __init__ sets
    its 16 fields one ``object.__setattr__`` at a time, a twentieth of a verification. The fields it leaves out
    take their defaults (all immutable: None, False); tests compare the two."""
    if not values.keys() <= _RESULT_FIELDS or not values.keys() | _RESULT_DEFAULTS.keys() >= _RESULT_FIELDS:
        return VerificationResult(**values)  # a name it does not have, or a field without a default: its error
    result = VerificationResult.__new__(VerificationResult)
    result.__dict__.update(_RESULT_DEFAULTS)
    result.__dict__.update(values)
    return result


def _direct(run: _Run, check: Callable[..., _T], *args: Any) -> _T:
    """A check run as it is (`OfflineVerifier._memo` without the memo)."""
    return check(run, *args)


def _shown(p: OfflinePayload, name: str) -> FieldValue:
    return p.disclosed.get(name, (b"", None))[1]


def _date(value: FieldValue) -> dt.date | None:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None  # "长期" (long-term) and the like
    return None


def _sm3_root(p: OfflinePayload) -> bytes | None:
    try:
        return p.computed_sm3_batch_root()
    except ValidationError:  # a disclosed value with no canonical leaf (the SHA-256 tree refused it first)
        return None


@functools.lru_cache(maxsize=1024)  # a batch's block time, on every payload of the batch
def _iso(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat().replace("+00:00", "Z")
