"""The audit report: findings and counts (registry/audit/replay.py makes them), its signature by the auditor member,
its anchoring on the Backbone, and a self-contained HTML rendering for readers who are not engineers (summary
first, then the findings table, then an inline-SVG chart of anchored records per day per agency; no scripts,
no CDN).

Anchoring: audit reports form their own append-only RFC 6962 log, ``audit-reports``, whose entries are the
32-byte report digests. To anchor a report, its digest is appended, the gateway submits that log's next
checkpoint to the Backbone (only the gateway may; its block range is the sub-chain range audited since the
last anchored report) and the auditor, a registered witness, cosigns it from its own account: the chain then
shows who vouched for which report, and the audit replay checks those checkpoints against the stored reports.

The signature is a ``proof`` (registry.crypto.proofs: SM2-SM3 in the gm profile, ES256K in intl, with the
signing public key) by the auditor member over the RFC 8785 canonical JSON of the report without its
``proof`` and ``anchor`` members (the anchor is added after signing); ``signed_by`` names the auditor (USCC,
name, account) and the signing time, so a verifier checks on chain that the key was the auditor's then
(registry.consortium.signers). The report digest that is anchored is the SHA-256 of those same bytes. Anyone
can check the proof with OpenSSL alone (docs/CRYPTO.md). Reports of the first release carry an EIP-191
``signature`` block instead and still verify.

    >>> report = AuditReport({"findings": [], "counts": {"findings": 0}})
    >>> report.ok, report.digest().hex()[:8]
    (True, '333df929')
    >>> "审计通过" in render_html(report)
    True
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import rfc8785
import structlog
from sqlalchemy import select

from chain.backbone import ZERO32, CheckpointFields
from chain.errors import ChainError
from registry.consortium.signers import check_on_chain, identify, signed_at
from registry.crypto.merkle import leaf_hash, root_from_leaf_hashes
from registry.crypto.proofs import PROOF_MEMBER, SignedBy, sign_json, verify_json
from registry.errors import ConflictError, NotFoundError, SignatureError
from registry.logs.checkpoints import BackboneLink, gateway_uscc, recover_signer, sign_hash
from registry.logs.log import AUDIT_LEDGER, ledger_id
from registry.node import Node
from registry.store.audit_models import AuditReportRow, CheckpointRecord

log = structlog.get_logger(__name__)

SIGNATURE_SCHEME = "eip191-personal-sign/sha256-rfc8785"

# what each kind of finding means, for the report's readers (zh, en)
KIND_TEXT: dict[str, tuple[str, str]] = {
    "digest_mismatch": ("数据库记录的摘要与链上锚定不符（记录被修改）", "a database row no longer matches what was anchored"),
    "db_row_missing": ("链上锚定的记录在数据库中缺失（记录被删除）", "an anchored record is missing from the database"),
    "db_row_extra": ("数据库中某批次的记录多于链上锚定数量", "the database holds more rows for a batch than were anchored"),
    "db_record_not_on_chain": ("数据库声称已上链，链上却没有", "the database says anchored, the chain does not have it"),
    "db_record_never_anchored": ("记录超过期限仍未上链", "a record was never anchored within the deadline"),
    "chain_record_not_in_db": ("链上记录在数据库中不存在", "an on-chain record the database does not know"),
    "issuer_mismatch": ("数据库中的颁发机构与链上不符", "the issuer in the database differs from the chain"),
    "revoked_but_valid_in_db": ("链上已撤销，数据库仍显示有效", "revoked on chain but valid in the database"),
    "status_mismatch": ("状态与链上不一致", "status differs from the chain"),
    "member_mismatch": ("成员信息与链上不一致", "a member row differs from the consortium registry"),
    "anchor_without_issuer_role": ("上链账户在该区块不具备颁证权限",
                                   "anchored by an account without the issuer role at that block"),
    "action_without_role": ("操作方在该区块不具备相应权限", "an action by a member without the role at that block"),
    "status_change_unauthorised": ("无权变更证照状态的账户变更了状态", "a status change by an account not allowed to make it"),
    "illegal_transition": ("不合法的状态转换", "a state transition the rules do not allow"),
    "custody_by_non_custodian": ("非保管方发起了证据移交", "custody transferred by someone who was not the custodian"),
    "custody_transfer_illegal": ("不合法的证据移交步骤", "an illegal custody step"),
    "exchange_step_out_of_order": ("数据交换步骤顺序错误", "a data-exchange step out of order"),
    "exchange_by_non_party": ("非交换当事方执行了交换步骤", "an exchange step by someone who is not a party"),
    "block_link_broken": ("区块父哈希链接断裂", "a block does not link to its parent"),
    "event_block_mismatch": ("事件所在区块哈希与区块链不符", "an event's block hash differs from the chain"),
    "subchain_blocks_lost": ("子链丢失了检查点已覆盖的区块", "the sub-chain lost blocks a checkpoint covered"),
    "checkpoint_root_mismatch": ("检查点根哈希与事件日志不符", "a checkpoint root does not match the events"),
    "checkpoint_size_mismatch": ("检查点的日志大小与事件数不符", "a checkpoint's tree size does not match the events"),
    "checkpoint_inconsistent": ("相邻检查点之间的一致性证明不成立", "consecutive checkpoints are not consistent"),
    "checkpoint_chain_broken": ("检查点哈希链断裂", "a checkpoint does not link to the previous one"),
    "checkpoint_signature_invalid": ("检查点签名无效", "a checkpoint's gateway signature does not verify"),
    "checkpoint_missing": ("超过期限仍无检查点", "events not covered by any checkpoint beyond the deadline"),
    "checkpoint_late": ("检查点提交晚于期限", "a checkpoint submitted after its deadline"),
    "checkpoint_unwitnessed": ("检查点未获足够见证方在骨干链上的联署",
                               "a checkpoint lacks its quorum of witness cosignatures on the Backbone"),
    "checkpoint_record_mismatch": ("数据库中的检查点记录与骨干链不符", "a stored checkpoint differs from the Backbone's"),
    "proof_mismatch": ("数据库中的默克尔证明无法推出链上批次根", "a stored audit path does not lead to the anchored root"),
    "supersession_mismatch": ("更正/替代关系与链上不符", "a supersession or correction link differs from the chain"),
    "anchor_mismatch": ("上链信息（交易、区块、账户）与链上不符", "a row's anchor (tx, block, account) differs from the chain"),
    "step_mismatch": ("流程步骤记录与其交易中的链上事件不符", "an outbox step differs from the event in its transaction"),
    "custody_mismatch": ("证据保管信息与链上不符", "custody (collector, custodian, pending transfer) differs from the chain"),
    "case_mismatch": ("案件信息（归属、封存）与链上不符", "a case (owner, seal) differs from the chain"),
    "exchange_mismatch": ("数据交换信息与链上不符", "an exchange's parties, reason or delivery differ from the chain"),
    "seal_action_unauthorised": ("无权账户制作、暂停、恢复或撤销了印章",
                                 "a seal created, suspended, reinstated or revoked by an account without the right"),
    "seal_mismatch": ("印章记录（机构、摘要、有效期、状态、印章结构）与链上登记不符",
                      "a seal's row (agency, digests, validity, status, SESeal) differs from its registration"),
    "seal_image_mismatch": ("印章图像文件与链上登记的图像摘要不符（图像被替换）",
                            "a seal's image file is not the registered image (swapped)"),
    "seal_index_mismatch": ("印章索引（链上印章事件副本）与链上不符", "the seal index differs from SealRegistry's events"),
    "sealed_signature_invalid": ("电子签章无效（无法读取、签名无效、非本记录或非本机构印章）",
                                 "a sealed signature is unreadable, does not verify, or is not over its record by its "
                                 "agency's seal"),
    "seal_not_active_when_sealed": ("盖章时印章未登记、已暂停、已撤销或不在有效期内",
                                    "a document sealed with a seal not active (or not valid) at its sealing block"),
    "usage_mismatch": ("用证记录与链上登记不符（机构、证照、授权、出示或用途摘要）",
                       "a usage row differs from UsageLedger (agency, certificate, grant, presentation or purpose)"),
    "usage_grant_invalid": ("用证记录所凭的授权不成立（签名、被授权方、证照或有效期不符）",
                            "the grant a usage rests on does not hold (signature, grantee, certificate or window)"),
    "usage_presentation_invalid": ("用证记录所凭的持证人出示不成立", "the holder's presentation a usage rests on does not hold"),
    "usage_by_non_member": ("非联盟成员账户登记了用证记录", "a usage was recorded by an account of no active member"),
    "usage_recorded_twice": ("同一用证记录在链上登记了两次", "the same usage was recorded twice on chain"),
    "usage_without_consent": ("用证记录既无授权也无持证人出示", "a usage was recorded with neither a grant nor a presentation"),
    "usage_without_valid_grant": ("用证时授权在链上不存在、已撤销、已过期或不是授予该机构的",
                                  "at the usage's block the grant was unknown, revoked, expired or not for that agency"),
}


@dataclass(frozen=True)
class Finding:
    kind: str
    ledger: str
    ref: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "ledger": self.ledger, "ref": self.ref, "detail": self.detail}


@dataclass(frozen=True)
class AuditReport:
    """The report as a JSON object; `findings` and `counts` are always present (see registry/audit/replay.py)."""

    data: Mapping[str, Any]

    @property
    def findings(self) -> list[dict[str, str]]:
        return list(self.data.get("findings", []))

    @property
    def counts(self) -> dict[str, Any]:
        return dict(self.data.get("counts", {}))

    @property
    def ok(self) -> bool:
        return not self.findings

    def unsigned(self) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k not in ("signature", "anchor", PROOF_MEMBER)}

    @property
    def signer_uscc(self) -> str | None:
        """The auditor that signed (``signed_by`` of a proof, or the first release's ``signature`` block)."""
        by = self.data.get("signed_by") if PROOF_MEMBER in self.data else self.data.get("signature")
        return str(by["uscc"]) if isinstance(by, Mapping) and "uscc" in by else None

    def digest(self) -> bytes:
        """SHA-256 of the RFC 8785 form of the unsigned report: what the auditor signs and anchors."""
        return hashlib.sha256(rfc8785.dumps(self.unsigned())).digest()

    def canonical(self) -> bytes:
        return rfc8785.dumps(dict(self.data))

    def with_fields(self, **fields: Any) -> AuditReport:
        return AuditReport({**self.data, **fields})

    def to_json(self) -> dict[str, Any]:
        return dict(self.data)


def signature_block(*, signer: str, uscc: str, name: str, digest: bytes, signature: str) -> dict[str, str]:
    return {"scheme": SIGNATURE_SCHEME, "signer": signer, "uscc": uscc, "name": name, "digest": "0x" + digest.hex(),
            "value": signature}


def verify_report_proof(report: AuditReport) -> SignedBy:
    """The key whose proof covers this report; SignatureError when there is none or it does not verify. Whether
    that key was the auditor's when it signed is `check_report_signer`'s question."""
    proof = report.data.get(PROOF_MEMBER)
    if proof is None:
        raise SignatureError("the report carries no proof", code="missing_proof")
    return verify_json({**report.unsigned(), PROOF_MEMBER: proof})


def check_report_signer(node: Node, report: AuditReport) -> SignedBy:
    """`verify_report_proof`, then that its key was, on chain, the key of ``signed_by.uscc`` at ``signed_by.at``."""
    signed_by = verify_report_proof(report)
    by = report.data.get("signed_by")
    if not isinstance(by, Mapping):
        raise SignatureError("the report names no signer (signed_by)", code="malformed_proof")
    check_on_chain(node.consortium, signed_by, str(by.get("uscc")), at=signed_at(str(by.get("at"))))
    return signed_by


def verify_report_signature(report: AuditReport, *, account: str | None = None) -> bool:
    """True if the signature covers this report (and was made by `account`, when given): a proof whose key is
    that account's (ES256K) or any proof when ``account`` is None, or a first-release EIP-191 signature."""
    if PROOF_MEMBER in report.data:
        try:
            signed_by = verify_report_proof(report)
        except SignatureError:
            return False
        if account is None:
            return True
        key = identify(signed_by)
        return key.kind == "account" and key.value == account
    sig = report.data.get("signature")
    if not isinstance(sig, Mapping) or sig.get("scheme") != SIGNATURE_SCHEME:
        return False
    digest = report.digest()
    if sig.get("digest") != "0x" + digest.hex():
        return False
    signer = recover_signer(digest, str(sig.get("value", "")))
    return signer is not None and signer == sig.get("signer") and (account is None or signer == account)


# -- HTML ---------------------------------------------------------------------------------------------------

_CSS = """
body{font-family:"WenQuanYi Micro Hei","Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.5;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
.verdict{padding:1em 1.2em;border-radius:6px;font-size:1.15em;margin:1em 0}
.ok{background:#e8f5e9;border:1px solid #66bb6a}.bad{background:#ffebee;border:1px solid #ef5350}
table{border-collapse:collapse;width:100%;font-size:.92em}th,td{border:1px solid #ddd;padding:.35em .5em;text-align:left;
vertical-align:top}th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:.85em;word-break:break-all}.muted{color:#666;font-size:.9em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:.6em}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em .8em}.card b{display:block;font-size:1.4em}
"""

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf", "#393b79", "#637939", "#8c6d31")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def render_html(report: AuditReport) -> str:
    """A complete HTML document (UTF-8, inline CSS and SVG only)."""
    d = report.data
    counts = report.counts
    findings = report.findings
    ok = not findings
    sub = d.get("subchain", {})
    verdict = ("审计通过：未发现任何问题 / No findings: the chain history, the checkpoints and the database agree."
               if ok else f"发现 {len(findings)} 个问题 / {len(findings)} findings: see the table below.")
    parts = [
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">",
        f"<title>链证审计报告 / Lianzheng audit report {_e(d.get('generated_at', ''))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>链证 审计报告 <span class=\"muted\">Lianzheng audit report</span></h1>",
        f"<p class=\"muted\">生成时间 Generated {_e(d.get('generated_at', ''))} · 子链 sub-chain {_e(sub.get('chain_id', ''))}"
        f" 区块 blocks {_e(sub.get('from_block', ''))}–{_e(sub.get('to_block', ''))}"
        f"{' · 增量审计 resumed from block ' + _e(d['resumed_from']) if d.get('resumed_from') is not None else ''}</p>",
        f"<div class=\"verdict {'ok' if ok else 'bad'}\">{_e(verdict)}</div>",
        "<h2>摘要 Summary</h2><div class=\"grid\">",
    ]
    cards = [("事件 events", counts.get("events", 0)), ("区块 blocks", counts.get("blocks", 0)),
             ("证照批次 batches", counts.get("batches", 0)), ("证照 certificates", counts.get("certificates_anchored", 0)),
             ("证据 evidence records", counts.get("evidence_records", 0)), ("数据交换 exchanges", counts.get("exchanges", 0)),
             ("印章 seals", counts.get("seals", 0)),
             ("检查点 checkpoints", counts.get("checkpoints", 0)), ("见证签名 cosignatures", counts.get("cosignatures", 0)),
             ("一致性证明 consistency proofs", counts.get("consistency_proofs", 0)),
             ("数据库记录 database rows", counts.get("db_records", 0)), ("问题 findings", counts.get("findings", 0))]
    parts += [f"<div class=\"card\">{_e(label)}<b>{int(value):,}</b></div>" for label, value in cards]
    parts.append("</div>")
    parts.append(_findings_table(findings))
    parts.append(_ledger_table(d.get("ledgers", {})))
    parts.append("<h2>每日上链记录（按机构） Anchored records per day per agency</h2>")
    parts.append(_chart(d.get("anchored_per_day", {}), d.get("agencies", {})))
    parts.append(_signature_section(d))
    parts.append("</body></html>")
    return "\n".join(parts)


def _findings_table(findings: Sequence[Mapping[str, str]]) -> str:
    if not findings:
        return "<h2>问题 Findings</h2><p>无 / none</p>"
    rows = []
    for f in findings:
        zh, en = KIND_TEXT.get(f["kind"], (f["kind"], f["kind"]))
        rows.append(f"<tr><td>{_e(zh)}<br><span class=\"muted\">{_e(en)} (<code>{_e(f['kind'])}</code>)</span></td>"
                    f"<td>{_e(f['ledger'])}</td><td><code>{_e(f['ref'])}</code></td><td>{_e(f['detail'])}</td></tr>")
    return ("<h2>问题 Findings</h2><table><tr><th>问题 What</th><th>账本 Ledger</th><th>对象 Reference</th>"
            "<th>说明 Detail</th></tr>" + "".join(rows) + "</table>")


def _ledger_table(ledgers: Mapping[str, Mapping[str, Any]]) -> str:
    if not ledgers:
        return ""
    rows = []
    for name, info in ledgers.items():
        latest = info.get("latest_checkpoint") or {}
        rows.append(f"<tr><td>{_e(name)}</td><td class=\"num\">{int(info.get('size', 0)):,}</td>"
                    f"<td><code>{_e(info.get('root', ''))}</code></td><td class=\"num\">{int(info.get('checkpoints', 0))}</td>"
                    f"<td class=\"num\">{_e(latest.get('tree_size', '–'))}</td>"
                    f"<td class=\"num\">{_e(latest.get('cosignatures', '–'))}</td></tr>")
    return ("<h2>账本日志与检查点 Ledger logs and checkpoints</h2><table><tr><th>账本 Ledger</th><th>日志大小 Log size</th>"
            "<th>RFC 6962 根 Root</th><th>检查点 Checkpoints</th><th>最新检查点大小 Latest size</th>"
            "<th>见证签名 Cosignatures</th></tr>" + "".join(rows) + "</table>")


def _chart(per_day: Mapping[str, Mapping[str, int]], agencies: Mapping[str, str]) -> str:
    """Stacked bars: one bar per day, one colour per agency, with a legend (inline SVG)."""
    days = sorted(per_day)
    if not days:
        return "<p>无上链记录 / nothing anchored</p>"
    agency_ids = sorted({a for v in per_day.values() for a in v}, key=lambda a: -sum(per_day[d].get(a, 0) for d in days))
    colours = {a: _PALETTE[i % len(_PALETTE)] for i, a in enumerate(agency_ids)}
    totals = [sum(per_day[day].values()) for day in days]
    peak = max(totals) or 1
    width, height, left, bottom, top = max(420, 60 + 46 * len(days)), 300, 70, 50, 20
    bar = max(8, min(36, (width - left - 20) // len(days) - 10))
    step = (width - left - 20) / len(days)
    scale = (height - bottom - top) / peak
    svg = [f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" "
           f"aria-label=\"anchored records per day per agency\" font-size=\"11\">"]
    for i in range(5):
        value = peak * i / 4
        y = height - bottom - value * scale
        svg.append(f"<line x1=\"{left}\" x2=\"{width - 10}\" y1=\"{y:.1f}\" y2=\"{y:.1f}\" stroke=\"#eee\"/>"
                   f"<text x=\"{left - 6}\" y=\"{y + 4:.1f}\" text-anchor=\"end\">{value:,.0f}</text>")
    for i, day in enumerate(days):
        x = left + i * step + (step - bar) / 2
        y = height - bottom
        for agency in agency_ids:
            n = per_day[day].get(agency, 0)
            if not n:
                continue
            h = n * scale
            y -= h
            svg.append(f"<rect x=\"{x:.1f}\" y=\"{y:.1f}\" width=\"{bar}\" height=\"{h:.1f}\" fill=\"{colours[agency]}\">"
                       f"<title>{_e(day)} {_e(agencies.get(agency, agency))}: {n:,}</title></rect>")
        svg.append(f"<text x=\"{x + bar / 2:.1f}\" y=\"{height - bottom + 14}\" text-anchor=\"middle\">{_e(day[5:])}</text>")
    svg.append(f"<line x1=\"{left}\" x2=\"{width - 10}\" y1=\"{height - bottom}\" y2=\"{height - bottom}\" stroke=\"#999\"/>")
    svg.append("</svg>")
    legend = "".join(f"<span style=\"display:inline-block;margin-right:1em\"><span style=\"display:inline-block;width:.9em;"
                     f"height:.9em;background:{colours[a]}\"></span> {_e(agencies.get(a, a))}</span>" for a in agency_ids)
    return "".join(svg) + f"<p>{legend}</p>"


def _signature_section(d: Mapping[str, Any]) -> str:
    sig = d.get("signature")
    anchor = d.get("anchor")
    proof, by = d.get(PROOF_MEMBER), d.get("signed_by")
    parts = ["<h2>签名与锚定 Signature and anchoring</h2>"]
    if isinstance(proof, Mapping) and isinstance(by, Mapping):
        digest = hashlib.sha256(rfc8785.dumps({k: v for k, v in d.items()
                                               if k not in ("signature", "anchor", PROOF_MEMBER)})).hexdigest()
        parts.append(f"<p>审计方 Auditor: {_e(by.get('name', ''))} ({_e(by.get('uscc', ''))}), 签名时间 signed at "
                     f"{_e(by.get('at', ''))}<br>报告摘要 report digest <code>0x{digest}</code><br>签名 signature "
                     f"({_e(proof.get('alg', ''))}) <code>{_e(proof.get('signature', ''))}</code><br>公钥 public key "
                     f"<code>{_e(str(proof.get('key', '')).replace(chr(10), ' '))}</code></p>")
    elif isinstance(sig, Mapping):
        parts.append(f"<p>审计方 Auditor: {_e(sig.get('name', ''))} ({_e(sig.get('uscc', ''))}), 账户 account "
                     f"<code>{_e(sig.get('signer', ''))}</code><br>报告摘要 report digest "
                     f"<code>{_e(sig.get('digest', ''))}</code>"
                     f"<br>签名 signature ({_e(sig.get('scheme', ''))}) <code>{_e(sig.get('value', ''))}</code></p>")
    else:
        parts.append("<p>未签名 / not signed</p>")
    if isinstance(anchor, Mapping):
        parts.append(f"<p>已锚定至骨干链 Anchored on the backbone: 账本 ledger <code>{_e(anchor.get('ledger', ''))}</code> "
                     f"第 {_e(anchor.get('log_index', ''))} 条, 检查点 checkpoint "
                     f"<code>{_e(anchor.get('checkpoint', ''))}</code>, "
                     f"交易 tx <code>{_e(anchor.get('tx_hash', ''))}</code></p>")
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    parts.append(f"<p class=\"muted\">Rendered {stamp}. 本报告不含个人信息 / this report holds no personal data.</p>")
    return "".join(parts)


# -- signing and anchoring -----------------------------------------------------------------------------------


def default_auditor(node: Node) -> str:
    """The first auditor member that is not the gateway (省司法厅 in the seeds), else any auditor."""
    auditors = [m.uscc for m in node.seeds.members_with_role("auditor")]
    if not auditors:
        raise NotFoundError("no seed member holds the auditor role", code="no_auditor")
    try:
        gw = gateway_uscc(node)
    except NotFoundError:
        gw = ""
    return next((a for a in auditors if a != gw), auditors[0])


def sign_report(node: Node, report: AuditReport, auditor_uscc: str) -> AuditReport:
    """Sign with the auditor member's key and store the signed report; returns it with its `signature`."""
    member = node.seeds.member(auditor_uscc)
    if "auditor" not in member.roles:
        raise ConflictError(f"{member.name} does not hold the auditor role", code="not_an_auditor")
    signer = node.keys.signing_account(auditor_uscc).address
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {**report.unsigned(), "signed_by": {"uscc": auditor_uscc, "name": member.name, "account": signer, "at": now}}
    signed = AuditReport(sign_json(body, node.keys.proof_signer(auditor_uscc)))
    digest, signature = signed.digest(), str(signed.data[PROOF_MEMBER]["signature"])
    sub = report.data.get("subchain", {})
    with node.db.session() as s:
        if s.scalar(select(AuditReportRow.id).where(AuditReportRow.digest == _hex(digest))) is None:
            s.add(AuditReportRow(digest=_hex(digest), auditor_uscc=auditor_uscc, signer=signer, signature=signature,
                                 findings=len(report.findings), from_block=int(sub.get("from_block") or 0),
                                 to_block=int(sub.get("to_block") or 0), to_block_hash=str(sub.get("to_block_hash") or ""),
                                 body=zlib.compress(signed.canonical())))
    return signed


def anchor_report(node: Node, link: BackboneLink, report: AuditReport) -> dict[str, Any]:
    """Append the signed report's digest to the ``audit-reports`` log, submit that log's checkpoint to the
    Backbone from the gateway, and cosign it as the auditor (a witness). Returns the anchor description."""
    auditor = report.signer_uscc
    if auditor is None:
        raise ConflictError("sign the report before anchoring it", code="report_not_signed")
    digest = _hex(report.digest())
    with node.db.session() as s:
        row = s.scalar(select(AuditReportRow).where(AuditReportRow.digest == digest))
        if row is None:
            raise NotFoundError(f"report {digest} is not stored", code="unknown_report")
        if row.log_index is not None:
            return {"ledger": AUDIT_LEDGER, "log_index": row.log_index, "checkpoint": row.checkpoint_hash,
                    "tx_hash": row.anchor_tx, "main_chain_id": link.chain_id}
        anchored = list(s.scalars(select(AuditReportRow.digest).where(AuditReportRow.log_index.is_not(None))
                                  .order_by(AuditReportRow.log_index)))
        to_block, to_hash, from_default = row.to_block, row.to_block_hash, row.from_block
    leaves = [leaf_hash(bytes.fromhex(d[2:])) for d in [*anchored, digest]]
    lid = ledger_id(AUDIT_LEDGER)
    head = link.client.latest_checkpoint(link.subchain_id, lid)
    if head.exists and head.tree_size != len(anchored):
        raise ConflictError(f"the audit-reports log on the Backbone has {head.tree_size} reports; this database "
                            f"knows {len(anchored)}", code="audit_log_diverged")
    from_block = head.to_block + 1 if head.exists else from_default
    if to_block < from_block:
        raise ConflictError(f"no sub-chain block after {head.to_block} has been audited since the last anchored "
                            f"report; audit again when the chain has moved", code="nothing_new_to_anchor")
    fields = CheckpointFields(link.subchain_id, lid, len(leaves), root_from_leaf_hashes(leaves),
                              head.hash if head.exists else ZERO32, from_block, to_block, bytes.fromhex(to_hash[2:]))
    gw = gateway_uscc(node)
    receipt = link.client.submit_checkpoint(link.sender_for(gw), fields)
    signer, signature = sign_hash(node, gw, fields.hash)
    cosigned = False
    if auditor != gw:
        try:
            link.client.cosign(link.sender_for(auditor), fields.hash)
            cosigned = True
        except ChainError as exc:  # not a registered witness: the anchor stands, without the cosignature
            log.warning("auditor could not cosign its report's checkpoint", auditor=auditor, error=str(exc))
    with node.db.session() as s:
        row = s.scalar(select(AuditReportRow).where(AuditReportRow.digest == digest))
        assert row is not None
        row.log_index, row.checkpoint_hash, row.anchor_tx = len(anchored), _hex(fields.hash), receipt.tx_hash
        s.merge(CheckpointRecord(hash=_hex(fields.hash), subchain_id=_hex(fields.subchain_id), ledger=AUDIT_LEDGER,
                                 index=head.index + 1 if head.exists else 0, tree_size=fields.tree_size,
                                 root=_hex(fields.root), prev_hash=_hex(fields.prev_hash), from_block=from_block,
                                 to_block=to_block, to_block_hash=to_hash, signer=signer, signer_uscc=gw,
                                 signature=signature, main_chain_id=link.chain_id, tx_hash=receipt.tx_hash,
                                 main_block=receipt.block_number))
    return {"ledger": AUDIT_LEDGER, "log_index": len(anchored), "checkpoint": _hex(fields.hash), "tx_hash": receipt.tx_hash,
            "main_chain_id": link.chain_id, "main_block": receipt.block_number, "cosigned_by_auditor": cosigned}


def stored_reports(node: Node) -> Iterator[AuditReport]:
    with node.db.session() as s:
        bodies = list(s.scalars(select(AuditReportRow.body).order_by(AuditReportRow.id)))
    for body in bodies:
        yield AuditReport(json.loads(zlib.decompress(body)))


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()
