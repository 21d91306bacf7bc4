"""Factories for QR tests: a realistic 营业执照 offline payload and signing keys."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from registry.certificates.documents import derive_salt, leaf_entry
from registry.crypto import merkle
from registry.errors import ProofError
from registry.formats.qr import OfflinePayload, recover_signer

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


def proof_shape(proof_len: int) -> tuple[int, int]:
    """(index, size) of a batch leaf whose RFC 6962 audit path has ``proof_len`` hashes: leaf 517 of 1,000
    for the realistic 10, else a leaf in the upper half of a full tree of 2**proof_len."""
    if proof_len == 10:
        return 517, 1000
    size = 2**proof_len
    return size // 2 + size // 5, size


def make_payload(*, seed: int = 0, proof_len: int = 10, hide: tuple[str, ...] = (), **overrides: Any) -> OfflinePayload:
    """A realistic unsigned payload, as issued: the salts derive from a random per-document seed (as
    ``Document.create`` does), the seed travels when nothing is hidden, hidden fields carry their real leaf
    hashes, and ``batch_root`` is the root the fields and the random proof lead to (recomputed after the
    overrides unless ``batch_root`` is overridden; overriding the fields drops the seed unless one is given)."""
    rnd = random.Random(seed)

    def rb(n: int) -> bytes:
        return rnd.randbytes(n)

    salt_seed = rb(16)
    salts = {k: derive_salt(salt_seed, k) for k in REALISTIC_FIELDS}
    index, size = proof_shape(proof_len)
    fields: dict[str, Any] = dict(
        identifier=IDENTIFIER,
        type_code=TYPE_CODE,
        disclosed={k: (salts[k], v) for k, v in REALISTIC_FIELDS.items() if k not in hide},
        hidden={k: merkle.leaf_hash(leaf_entry(k, salts[k], v)) for k, v in REALISTIC_FIELDS.items() if k in hide},
        batch_root=bytes(32),
        index=index,
        size=size,
        proof=[rb(32) for _ in range(proof_len)],
        chain_id=20250601,
        ledger=rb(20),
        block_number=1_234_567,
        block_timestamp=1_718_000_000,
        tx_hash=rb(32),
        issuer_account=bytes.fromhex(ISSUER_ADDRESS[2:]),
        salt_seed=b"" if hide else salt_seed,  # the seed would reveal the hidden fields' salts
    )
    if {"disclosed", "hidden"} & set(overrides):
        fields["salt_seed"] = b""
    fields.update(overrides)
    payload = OfflinePayload(**fields)
    if "batch_root" in overrides:
        return payload
    return dataclasses.replace(payload, batch_root=payload.computed_batch_root())


def as_decoded(payload: OfflinePayload) -> OfflinePayload:
    """What ``decode_payload(encode_payload(payload))`` gives: no transaction hash, and the issuer account is
    the signer (empty when unsigned or when no key recovers from the signature)."""
    try:
        signer = bytes.fromhex(recover_signer(payload)[2:]) if payload.signature else b""
    except ProofError:
        signer = b""
    return dataclasses.replace(payload, tx_hash=b"", issuer_account=signer)
