"""The verdict on a file against its evidence record: its digests are compared with what the chain
holds (the chain is authoritative, not the database), and the registry's row with the chain's metaDigest
and digests (an edited row is `tampered`). Never `unaltered` without the chain: an unreachable node gives
`cannot_verify`.

    >>> verdict(ledger, view, metadata, sha256_hex, None, None).verdict   # doctest: +SKIP
    'unaltered'
"""

from __future__ import annotations

from typing import Any, Protocol

from chain.errors import ChainError
from chain.ledgers import EvidenceLedgerClient
from registry.clock import iso_time
from registry.crypto.hashing import hex0x
from registry.evidence.views import EvidenceView, VerifyResult, check, metadata_digest

__all__ = ["SealCheck", "verdict"]


class SealCheck(Protocol):
    """The `seal` check (registry/seals/verification.py `SealVerifier`): None for a record never sealed, else
    (a check with `status`, `reason_zh`, `reason_en`, `details`; the verdict it forces or None)."""

    def __call__(self, identifier: str, digest: bytes, issuer_uscc: str, block: int, *, kind: str = ...,
                 sm3: bytes | None = ...) -> tuple[Any, str | None] | None: ...


def verdict(ledger: EvidenceLedgerClient, view: EvidenceView, metadata: dict[str, Any], sha: str, sm: str | None,
            size: int | None, *, seal_check: SealCheck | None = None) -> VerifyResult:
    """Compare a file's digests (`sha`, optional `sm` and `size`) with `view`'s record on chain; a sealed
    record's `seal` check is judged against the chain's digests, collector and registration block."""
    record = view.public()
    checks: list[dict[str, Any]] = []
    try:
        on_chain = ledger.get_record(bytes.fromhex(view.key[2:]))
    except (ChainError, OSError) as exc:
        return VerifyResult("cannot_verify", f"the chain is unreachable ({exc}); nothing can be concluded",
                            "区块链节点不可用，无法核验", [check("anchoring", "SKIPPED", f"chain unreachable: {exc}")],
                            record=record)
    if on_chain is None:
        return VerifyResult("not_anchored", f"{view.id} is {view.status} and not on chain",
                            f"存证 {view.id} 尚未上链", [check("anchoring", "INVALID", "no such record on chain")],
                            record=record)
    checks.append(check("anchoring", "VALID", f"registered in block {on_chain.registered_block} by "
                                               f"{on_chain.collector_uscc}"))
    log_proof = f"/api/v1/proofs/inclusion?ledger=evidence&key={view.key}"
    expected_meta = metadata_digest(metadata)
    registry_ok = (hex0x(on_chain.meta_digest) == expected_meta and on_chain.sha256.hex() == view.content["sha256"]
                   and on_chain.sm3.hex() == view.content["sm3"] and on_chain.size == view.content["size"])
    checks.append(check("registry", "VALID" if registry_ok else "INVALID",
                         "the registry's row matches the on-chain digests" if registry_ok else
                         "the registry's row no longer matches what was anchored (metaDigest or digests differ)"))
    # the file is compared with the chain's digests: the chain is authoritative, not the database
    differences: list[str] = []
    details = []
    if on_chain.sha256.hex() != sha:
        differences.append("sha256")
        details.append(f"SHA-256 differs: registered {on_chain.sha256.hex()}, file {sha}")
    if sm is not None and on_chain.sm3.hex() != sm:
        differences.append("sm3")
        details.append(f"SM3 differs: registered {on_chain.sm3.hex()}, file {sm}")
    if size is not None and on_chain.size != size:
        differences.append("size")
        details.append(f"size differs: registered {on_chain.size} bytes, file {size} bytes")
    for name, given in (("sha256", sha), ("sm3", sm), ("size", size)):
        status = "SKIPPED" if given is None else ("INVALID" if name in differences else "VALID")
        checks.append(check(name, status, "not supplied" if given is None else
                             ("differs from the registered value" if status == "INVALID" else "matches")))
    sealed = None if seal_check is None or view.mirrored else seal_check(
        view.id, on_chain.sha256, on_chain.collector_uscc, on_chain.registered_block, kind="evidence", sm3=on_chain.sm3)
    if sealed is not None:
        c, seal_verdict = sealed
        checks.append({**check("seal", c.status, c.reason_en), "detail_zh": c.reason_zh, "details": c.details})
        if seal_verdict == "cannot_verify" and not differences:
            return VerifyResult("cannot_verify", f"the seal of {view.id} cannot be verified: {c.reason_en}",
                                f"无法验章：{c.reason_zh}", checks, record=record, log_proof=log_proof)
        if seal_verdict is not None and not differences:
            return VerifyResult("tampered", f"the file matches the chain, but the seal of {view.id} does not "
                                            f"verify: {c.reason_en}", f"文件与链上一致，但电子印章验证不通过：{c.reason_zh}",
                                checks, record=record, log_proof=log_proof)
    collector = view.collector.get("short_name") or view.collector["uscc"]
    collected_at = iso_time(on_chain.timestamp)
    custody = " -> ".join(c.get("short_name") or c["uscc"] for c in view.custody_chain) or collector
    custody_zh = " → ".join(c.get("short_name") or c["uscc"] for c in view.custody_chain) or collector
    sealed_case = f"; sealed at {view.case_sealed_at}" if view.case_sealed else "; case not sealed"
    sealed_zh = f"；已于 {view.case_sealed_at} 封存" if view.case_sealed else "；案件未封存"
    correction = f"; superseded by {view.superseded_by}" if view.superseded_by else ""
    if differences:
        return VerifyResult("altered", f"exhibit {view.id} does NOT match the file: " + "; ".join(details),
                            f"证据 {view.id} 与该文件不一致（{'、'.join(differences)} 不同），文件已被改动", checks,
                            record=record, differences=differences, log_proof=log_proof)
    if not registry_ok:
        return VerifyResult("tampered", f"the file matches the chain, but the registry's copy of {view.id} was "
                                        f"edited after anchoring", f"文件与链上一致，但登记库中的 {view.id} 记录已被改动",
                            checks, record=record, log_proof=log_proof)
    seal_en = seal_zh = ""
    if sealed is not None:
        seal_en, seal_zh = f"; e-seal {sealed[0].details.get('seal')} verified", "；电子印章有效"
    return VerifyResult(
        "unaltered",
        f"exhibit {view.id}, unaltered since collection at {collected_at} by {collector}; custody {custody}"
        f"{sealed_case}{correction}{seal_en}",
        f"证据 {view.id} 自 {collected_at} 由 {collector} 采集以来未被篡改；保管链：{custody_zh}{sealed_zh}"
        + (f"；已被 {view.superseded_by} 更正" if view.superseded_by else "") + seal_zh,
        checks, record=record, log_proof=log_proof)

