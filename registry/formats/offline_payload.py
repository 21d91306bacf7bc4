"""The offline QR payload as a value: what an offline verifier needs of one certificate, independent of
the document model (field names, salts, values, leaf hashes, the batch proof and where it was anchored).
Its wire format is registry.formats.lz2.

The SM3 part is optional: ``sm3_proof`` (the document's audit path in the batch's SM3 tree, anchored beside the
SHA-256 one) and ``sm3_hidden`` (each hidden field's SM3 leaf hash) let a verifier recompute the SM3 document
digest and the SM3 batch root too. A payload without them (``sm3_proof`` None) still verifies; its SM3 check is
reported as not available.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, cast

from registry.certificates.fields import batch_root, derive_salts, document_roots, leaf_input, path_key  # path_key: leaf order
from registry.crypto.hashing import hash_constructor
from registry.errors import ValidationError
from registry.formats.batch_statement import BatchStatement

__all__ = ["FIELD_CODES", "FieldValue", "OfflinePayload"]

# Frozen since format LZ1 (LZ2 uses the same table): a code's meaning may never change, and a new entry needs
# a new format version (an old decoder could not read it); names not listed still work, as text. Codes 0..23
# cost one CBOR byte, 24..255 two (RFC 8949 §3.1). 0..12: the GB/T 36905 common metadata
# (registry.certificates.fields.COMMON_FIELDS); then the type-specific fields of seeds/certificate_types.yaml (营业执照
# first), then other frequent names.
FIELD_CODES: tuple[str, ...] = (
    "证照名称", "证照类型代码", "证照编号", "证照标识", "颁发机构", "颁发机构代码", "颁发日期",
    "持证主体", "持证主体代码", "持证主体代码类型", "有效期起始", "有效期截止", "属地编码",
    "类型", "法定代表人", "注册资本", "成立日期", "营业期限", "住所", "经营范围", "性别", "出生日期",
    "经营场所", "主体业态", "经营项目", "网络经营", "日常监督管理机构", "投诉举报电话", "从业资格类别",
    "准驾车型", "初次领证日期", "学位授予单位", "学位级别", "学科门类", "专业", "授予日期", "职业名称",
    "职业技能等级", "理论知识考试成绩", "操作技能考核成绩", "评价机构", "共有情况", "坐落", "不动产单元号",
    "权利类型", "权利性质", "用途", "房屋建筑面积", "土地使用期限截止", "执业机构", "执业证类别",
    "法律职业资格证书编号", "首次执业日期", "查询事由", "查询结果", "开具单位",
    "负责人", "经营者", "组成形式", "许可项目", "许可范围", "姓名", "民族", "住址", "公民身份号码", "名称",
    "地址", "备注", "发证日期", "登记机关", "统一社会信用代码", "证书编号",
)  # fmt: skip
_CODE_OF = {name: code for code, name in enumerate(FIELD_CODES)}

SALT_LEN, SEED_LEN, HASH_LEN, ADDRESS_LEN, SIGNATURE_LEN = 16, 16, 32, 20, 65
_U64 = 2**64

FieldValue = str | int | bool | None


@dataclass(frozen=True, repr=False)
class OfflinePayload:
    """Everything an offline verifier needs; independent of the document model (it only sees field names,
    salts, values and leaf hashes). Construction validates sizes and types (``ValidationError``).

    ``tx_hash`` and ``issuer_account`` may be empty (``b""``): a decoded payload has no transaction hash and
    takes its issuer account from the signature (see the module docstring). ``salt_seed`` is the seed every
    disclosed salt derives from (`registry.certificates.fields.derive_salt`), or empty: with a seed the payload may
    have no hidden fields and every disclosed salt must derive from it. ``batch_root`` must be the root the
    fields, index, size and proof lead to (`computed_batch_root`) for the payload to be encoded.
    """

    identifier: str
    type_code: str
    disclosed: dict[str, tuple[bytes, FieldValue]]
    hidden: dict[str, bytes]
    batch_root: bytes
    index: int
    size: int
    proof: list[bytes]
    chain_id: int
    ledger: bytes
    block_number: int
    block_timestamp: int
    tx_hash: bytes
    issuer_account: bytes
    signature: bytes = field(default=b"")
    salt_seed: bytes = field(default=b"")
    sm3_hidden: dict[str, bytes] = field(default_factory=dict)  # hidden field -> its SM3 leaf hash
    sm3_proof: list[bytes] | None = None  # the SM3 audit path (same index and size); None: not carried
    # the issuer's statement over the batch (registry.formats.batch_statement: SM2 in gm, secp256k1 in intl),
    # instead of ``signature`` (the first intl form, the issuer's signature over this payload's body)
    statement: BatchStatement | None = None

    def __post_init__(self) -> None:
        self._validate(salts_checked=False)

    @classmethod
    def _decoded(cls, salts_from_seed: bool, **values: Any) -> OfflinePayload:
        """What the LZ2 decoder constructs: the same validation as the constructor, except that with
        ``salts_from_seed`` the disclosed salts are not derived from the seed a second time (the decoder has
        just derived them from it: they cannot differ). Internal to registry.formats.lz2."""
        payload = cls.__new__(cls)
        if values.keys() != _FIELD_SET:  # the decoder passes every field: one update of the instance dict
            values = {name: values[name] if name in values else _DEFAULTS[name]() for name in _FIELD_NAMES}
        payload.__dict__.update(values)  # the dataclass is frozen (no __setattr__) and not slotted
        payload._validate(salts_checked=salts_from_seed)
        return payload

    def _validate(self, *, salts_checked: bool) -> None:
        for name in ("identifier", "type_code"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise _bad_field(name, "a non-empty string", getattr(self, name))
        for name in ("index", "size", "chain_id", "block_number", "block_timestamp"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value < _U64:
                raise _bad_field(name, "an integer in 0..2**64-1", value)
        if self.index >= self.size:
            raise ValidationError(f"offline payload index must be below size {self.size}, got {self.index}",
                                  code="invalid_payload_field")
        for name, length in (("batch_root", HASH_LEN), ("ledger", ADDRESS_LEN)):
            _check_bytes(name, getattr(self, name), length)
        for name, length in (("tx_hash", HASH_LEN), ("issuer_account", ADDRESS_LEN), ("signature", SIGNATURE_LEN),
                             ("salt_seed", SEED_LEN)):
            value = getattr(self, name)
            if not (isinstance(value, bytes) and value == b""):
                _check_bytes(name, value, length, " or empty")
        # Each check builds its message only when it fails: a decoded payload is validated on the offline
        # verifier's hot path, and 30-odd f-strings with reprs cost more than the checks.
        self._check_items()
        for name, leaf in self.hidden.items():
            if not isinstance(name, str) or not name:
                raise _bad_field("hidden field name", "a non-empty string", name)
            if name in self.disclosed:
                raise ValidationError(f"field {name!r} is both disclosed and hidden", code="invalid_payload_field")
            if not (isinstance(leaf, bytes) and len(leaf) == HASH_LEN):
                _check_bytes(f"hidden[{name!r}]", leaf, HASH_LEN)
        self._check_sm3()
        if self.statement is not None and (self.signature or not isinstance(self.statement, BatchStatement)):
            raise ValidationError("offline payload carries either a signature over its body or a batch statement",
                                  code="invalid_payload_field")
        if self.salt_seed:
            if self.hidden:  # the seed would give away the hidden fields' salts (see the module docstring)
                raise ValidationError("offline payload with hidden fields must not carry a salt_seed: it would "
                                      "reveal their salts; leave salt_seed empty (the per-field salts travel)",
                                      code="invalid_payload_field")
            if not salts_checked:
                names = list(self.disclosed)
                for name, derived in zip(names, derive_salts(self.salt_seed, names), strict=True):
                    if self.disclosed[name][0] != derived:
                        raise ValidationError(f"offline payload disclosed[{name!r}] salt does not derive from "
                                              "salt_seed", code="invalid_payload_field")

    def _check_items(self) -> None:
        """The proof steps and disclosed fields one by one (raises ValidationError saying what was found)."""
        for i, step in enumerate(self.proof):
            if not (isinstance(step, bytes) and len(step) == HASH_LEN):
                _check_bytes(f"proof[{i}]", step, HASH_LEN)
        for name, pair in self.disclosed.items():
            if type(name) is str and name and type(pair) is tuple and len(pair) == 2:  # the common item, at once
                salt, value = pair
                if type(salt) is bytes and len(salt) == SALT_LEN and (type(value) is str or value is None):
                    continue
            if not isinstance(name, str) or not name:
                raise _bad_field("disclosed field name", "a non-empty string", name)
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise _bad_field(f"disclosed[{name!r}]", "a (salt, value) tuple", pair)
            salt, value = pair
            if not (isinstance(salt, bytes) and len(salt) == SALT_LEN):
                _check_bytes(f"disclosed[{name!r}] salt", salt, SALT_LEN)
            # The document model's values (registry.certificates.documents): integers stay within RFC 8785's ±(2**53 - 1).
            if not (value is None or isinstance(value, str) or (type(value) in (int, bool) and abs(value) < 2**53)):
                raise _bad_field(f"disclosed[{name!r}] value", "str, int (±(2**53-1)), bool or None", value)

    def _check_sm3(self) -> None:
        if self.sm3_proof is None:
            if self.sm3_hidden:
                raise ValidationError("offline payload sm3_hidden needs sm3_proof", code="invalid_payload_field")
            return
        if len(self.sm3_proof) != len(self.proof):  # one tree shape: the same index and size
            raise ValidationError(f"offline payload sm3_proof must have as many hashes as proof ({len(self.proof)}), "
                                  f"got {len(self.sm3_proof)}", code="invalid_payload_field")
        for i, step in enumerate(self.sm3_proof):
            if not (isinstance(step, bytes) and len(step) == HASH_LEN):
                _check_bytes(f"sm3_proof[{i}]", step, HASH_LEN)
        if set(self.sm3_hidden) != set(self.hidden):
            raise ValidationError("offline payload sm3_hidden must hold an SM3 leaf hash for every hidden field, "
                                  "and only those", code="invalid_payload_field")
        for name, leaf in self.sm3_hidden.items():
            if not (isinstance(leaf, bytes) and len(leaf) == HASH_LEN):
                _check_bytes(f"sm3_hidden[{name!r}]", leaf, HASH_LEN)

    def __repr__(self) -> str:  # never print holder data into logs
        return (f"OfflinePayload(identifier={self.identifier!r}, disclosed={len(self.disclosed)} fields, "
                f"hidden={len(self.hidden)}, index={self.index}/{self.size}, "
                f"signed={bool(self.signature or self.statement)})")

    def document_digest(self, algorithm: str = "sha256") -> bytes:
        """The document digest the fields rebuild (``Document.digest_sha256``, or with ``algorithm="sm3"``
        ``Document.digest_sm3``): the RFC 6962 root over the disclosed fields' leaves and the hidden fields'
        leaf hashes, in the documents' path order. The SHA-256 one is made once per payload (the batch root
        and the status lookup both need it)."""
        if algorithm == "sha256" and (known := self.__dict__.get("_digest_sha256")) is not None:
            return known  # type: ignore[no-any-return]
        sha = algorithm == "sha256"
        if not sha:
            hash_constructor(algorithm)  # an unsupported algorithm: its error
        hidden = self.hidden if sha else self.sm3_hidden
        disclosed = self.disclosed
        order = _path_order(tuple(disclosed), tuple(self.hidden))
        shown = [disclosed.get(path) for path in order]
        leaves = [hidden.get(path) for path in order]
        try:  # one call (in C when built); hidden leaf hashes were checked to be 32 bytes on construction
            roots = document_roots(order, [f[0] if f is not None else None for f in shown],
                                   [f[1] if f is not None else None for f in shown], leaves if sha else None,
                                   None if sha else leaves, sha256=sha, sm3=not sha)
        except (ValueError, UnicodeError):
            self._name_the_field_without_a_leaf(order)
            raise
        digest = cast(bytes, roots[0] if sha else roots[1])
        if algorithm == "sha256":
            self.__dict__["_digest_sha256"] = digest  # frozen dataclass: eq/hash/repr ignore the instance dict
        return digest

    def _name_the_field_without_a_leaf(self, order: tuple[str, ...]) -> None:
        """Raise ValidationError naming the first shown field that has no canonical leaf entry (e.g. a lone
        surrogate; rfc8785's errors are ValueErrors), when `document_roots` refused the fields."""
        for path in order:
            if path not in self.disclosed:
                continue
            salt, value = self.disclosed[path]
            try:
                leaf_input(path, salt, value)
            except (ValueError, UnicodeError) as exc:
                raise ValidationError(f"offline payload field {path!r} has no canonical leaf: {exc}",
                                      code="invalid_payload_field") from exc

    def computed_sm3_batch_root(self) -> bytes | None:
        """The SM3 batch root that the SM3 document digest, ``index``, ``size`` and ``sm3_proof`` lead to; None
        when the payload carries no SM3 path (or it does not fit ``index`` and ``size``)."""
        if self.sm3_proof is None:
            return None
        return batch_root(self.document_digest("sm3"), self.index, self.size, self.sm3_proof, algorithm="sm3")

    def computed_batch_root(self) -> bytes:
        """The batch root that the document digest, ``index``, ``size`` and ``proof`` lead to (RFC 9162
        §2.1.3.2; the batch tree's entries are document digests). ``ValidationError`` when the proof's length
        does not fit ``index`` in a tree of ``size`` (no root then)."""
        root = batch_root(self.document_digest(), self.index, self.size, self.proof)
        if root is None:
            raise ValidationError(f"offline payload proof of {len(self.proof)} hashes does not fit leaf {self.index} "
                                  f"of a batch of {self.size} (RFC 9162 §2.1.3.2)", code="invalid_payload_field")
        return root


_FIELD_NAMES = tuple(f.name for f in fields(OfflinePayload))
_FIELD_SET = frozenset(_FIELD_NAMES)
_DEFAULTS: dict[str, Callable[[], Any]] = {
    f.name: (f.default_factory if f.default_factory is not MISSING else (lambda d=f.default: d))  # type: ignore[misc]
    for f in fields(OfflinePayload) if f.default is not MISSING or f.default_factory is not MISSING}


@functools.lru_cache(maxsize=1024)  # the field names of a type recur in every payload of that type
def _path_order(disclosed: tuple[str, ...], hidden: tuple[str, ...]) -> tuple[str, ...]:
    """Every field name in the documents' leaf order (RFC 8785 key order, `path_key`)."""
    return tuple(sorted({*disclosed, *hidden}, key=path_key))


def _check_bytes(name: str, value: object, length: int, alternative: str = "") -> None:
    if not isinstance(value, bytes) or len(value) != length:
        raise _bad_field(name, f"{length} bytes{alternative}", value)


def _bad_field(name: str, expected: str, found: object) -> ValidationError:
    return ValidationError(f"offline payload {name} must be {expected}, got {_describe(found)}",
                           code="invalid_payload_field")


def _describe(value: object) -> str:
    if isinstance(value, bytes | list | dict | str):
        return f"{type(value).__name__} of length {len(value)}"
    return f"{type(value).__name__} {value!r}"[:60]
