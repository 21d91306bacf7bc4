"""Helpers for the evidence and exchange tests: the seed agencies by role, request bodies, and the outage
simulator.

    body = evidence_body(b"photo", case_no="C-1", scenario="行政执法")
    r = api.client.post("/api/v1/evidence", json=body, headers=api.auth(POLICE))
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from registry.crypto.hashing import sm3

# seed agencies (seeds/consortium.yaml) by what the tests need them for
POLICE = "11230000MB1A00044B"  # 省公安厅: evidence, exchange (not an auditor)
JUSTICE = "11230000MB1A00036G"  # 省司法厅: evidence, exchange, auditor
COURT = "11230100MB1B00037B"  # 哈尔滨中院: evidence, auditor; no exchange role
NOTARY = "12230100MB1B00029D"  # 哈尔滨公证处: evidence, auditor
PRISON = "11230000MB1A00095K"  # 省监狱管理局: evidence only
MARKET = "11230000MB1A00028M"  # 省市场监管局: exchange, provider of SCJG-001; no evidence role
HRSS = "11230000MB1A000526"  # 省人社厅: exchange, provider of RSHB-001

LEGAL_BASIS = "《行政处罚法》第四十七条（执法全过程记录）"


def digests(content: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(content).hexdigest(), "sm3": sm3(content).hex(), "size": len(content)}


def evidence_body(content: bytes, *, case_no: str, scenario: str = "行政执法", media_type: str = "image/jpeg",
                  **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "case_no": case_no, "scenario": scenario, **digests(content), "media_type": media_type,
        "authority": "黑龙江省公安厅", "legal_basis": LEGAL_BASIS, "operator_id": "230100-0042",
        "filename": "photo.jpg",
        "acquisition": {"device": "执法记录仪 DSJ-V9 SN 0042", "tool": "执法终端", "tool_version": "3.2",
                        "place": "哈尔滨市道里区中央大街 88 号", "acquired_at": "2026-03-15T09:30:00+08:00"},
    }
    body.update(overrides)
    return body


@contextmanager
def chain_outage(node: Any) -> Iterator[None]:
    """Every JSON-RPC endpoint refuses connections, as if the node were down, until the block exits (the
    failover provider then raises ChainUnavailableError, exactly as with a dead anvil)."""
    inner = node.backend.provider._providers
    originals: list[Callable[..., Any]] = [p.make_request for p in inner]

    def down(method: Any, params: Any) -> Any:
        raise requests.ConnectionError(f"simulated outage ({method})")

    for p in inner:
        p.make_request = down
    try:
        yield
    finally:
        for p, original in zip(inner, originals, strict=True):
            p.make_request = original


def rewrite_zip(src: Path, dst: Path, edit: Callable[[str, bytes], bytes]) -> None:
    """Copy a zip, passing each member's bytes through `edit(name, data)`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, edit(info.filename, zin.read(info)))
