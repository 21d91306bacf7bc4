"""Factories for QR tests: a realistic 营业执照 offline payload and signing keys."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from registry.qr import OfflinePayload

ISSUER_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
ISSUER_ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
IDENTIFIER = "1.2.156.3005.2.11100000MB0143028R001.11230103MB1921544F.000000202403.001.K"
TYPE_CODE = "11100000MB0143028R001"

# 13 GB/T 36905 common metadata fields + 6 type-specific fields of a 营业执照, as printed on real licences.
REALISTIC_FIELDS: dict[str, str] = {
    "证照名称": "营业执照",
    "证照类型代码": TYPE_CODE,
    "证照编号": "91230103MA1C4Q8J5T",
    "证照标识": IDENTIFIER,
    "颁发机构": "哈尔滨市南岗区市场监督管理局",
    "颁发机构代码": "11230103MB1921544F",
    "颁发日期": "2024-03-15",
    "持证主体": "黑龙江省冰城数字科技有限公司",
    "持证主体代码": "91230103MA1C4Q8J5T",
    "持证主体代码类型": "001",
    "有效期起始": "2024-03-15",
    "有效期截止": "长期",
    "属地编码": "230103",
    "法定代表人": "王建国",
    "注册资本": "伍佰万元整",
    "成立日期": "2019-06-18",
    "类型": "有限责任公司（自然人投资或控股）",
    "住所": "黑龙江省哈尔滨市南岗区学府路52号科技大厦15层1502室",
    "经营范围": "一般项目：技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广；软件开发；"
    "信息系统集成服务；数据处理和存储支持服务。",
}


def make_payload(*, seed: int = 0, proof_len: int = 10, hide: tuple[str, ...] = (), **overrides: Any) -> OfflinePayload:
    """A realistic unsigned payload; salts and hashes are random bytes (they are on the wire too)."""
    rnd = random.Random(seed)

    def rb(n: int) -> bytes:
        return rnd.randbytes(n)

    payload = OfflinePayload(
        identifier=IDENTIFIER,
        type_code=TYPE_CODE,
        disclosed={k: (rb(16), v) for k, v in REALISTIC_FIELDS.items() if k not in hide},
        hidden={k: rb(32) for k in REALISTIC_FIELDS if k in hide},
        batch_root=rb(32),
        index=517,
        size=1000,
        proof=[rb(32) for _ in range(proof_len)],
        chain_id=20250601,
        ledger=rb(20),
        block_number=1_234_567,
        block_timestamp=1_718_000_000,
        tx_hash=rb(32),
        issuer_account=bytes.fromhex(ISSUER_ADDRESS[2:]),
    )
    return dataclasses.replace(payload, **overrides) if overrides else payload
