"""Offline (by-value) QR payloads and the classifier for anything a verifier scans.

An offline payload carries a certificate's disclosed fields, the leaf hashes of its hidden fields, the
Merkle inclusion proof of the document in its anchored batch, where that batch was anchored, and the
issuing agency's secp256k1 signature, so a verifier with a cached trust list needs no network.

Wire format ``LZ2`` (the ``2`` is the format version; everything after ``LZ2:`` is Base45)::

    text      = "LZ2:" || Base45(zlib(envelope, level 9))          Base45: RFC 9285, zlib: RFC 1950
    envelope  = CBOR [body: bstr, signature: bstr]                  CBOR: RFC 8949
    signature = secp256k1 recoverable, r || s || recid (0..3), over SHA-256(body)   (65 bytes, or empty)
    body      = CBOR [ 2 (format version, also under the signature),
                       identifier: tstr, type_code: tstr,
                       salt_seed: bstr .size 16, or empty,
                       disclosed: {field: value}                  with a salt seed (salts derive from it),
                                  {field: [salt: bstr .size 16, value]}  without,
                       hidden: {field: leaf_hash: bstr .size 32},
                       index: uint, size: uint,
                       proof: bstr (the audit path hashes concatenated, 32 bytes each),
                       chain_id: uint, ledger: bstr .size 20, block_number: uint, block_timestamp: uint ]

What is *not* on the wire, and how the decoder restores it (LZ1, the first format, carried all of these; it
is no longer read -- it never left development -- and decodes as ``unsupported_version``):

- ``batch_root``: recomputed from the body. The document digest is the RFC 6962 root over the disclosed
  fields' leaves (`registry.documents.leaf_entry`) and the hidden fields' leaf hashes in the documents'
  path order; the batch root follows from that digest, ``index``, ``size`` and ``proof`` (RFC 9162
  §2.1.3.2). Dropping it loses nothing: the signature covers every input of that computation, so the
  root is exactly as bound by the signature as if it were sent, and a forged proof (or field) only yields
  a root that the trust list / chain does not know -- a verifier must compare the root with the anchored
  one in any case, sent or not. A proof whose length does not fit ``index`` and ``size`` is refused.
- ``issuer_account``: it is the signer. After decoding it is set to the address recovered from the
  signature (empty when the payload is unsigned or no key recovers); whether that account may sign for
  the identifier's agency is the verifier's trust decision, as before.
- ``tx_hash``: it is ``b""`` after decoding. Offline results cite the block (``block_number``,
  ``block_timestamp``) the batch was anchored in, not the transaction.
- per-field salts, when the document's salts derive from one seed (``Document.create`` does that,
  `registry.documents.derive_salt`): the 16-byte seed travels instead and the decoder re-derives each
  disclosed field's salt. A payload with hidden fields never carries the seed, which would reveal their
  salts and so let anyone test guesses of a hidden value against its leaf hash: it sends per-field salts.

Compactness (a version-25 QR at level M holds 964 compressed bytes): positional arrays instead of named keys, raw bytes
instead of hex, a frozen table ``FIELD_CODES`` turning the standard field names into 1-2 byte integers, and
text values made only of ASCII and common CJK characters stored as GB 18030 bytes (2 bytes per Hanzi
instead of 3 in UTF-8) -- a value that is a CBOR byte string is always such text, since values are never
bytes. The bytes that do not compress are the seed (16), the proof (32 per hash), the ledger address (20)
and the signature (65): 421 for a batch of 1,000 documents, down from 793 in LZ1. Encoding is
deterministic (RFC 8949 §4.2.3 length-first map key order) and decoding refuses any body that does not
re-encode to the same bytes, so one payload has exactly one encoding and ``recover_signer`` can re-derive
the signed bytes.

>>> from registry.certificates.documents import derive_salt
>>> seed = bytes(range(16))
>>> shown = {"证照标识": "1.2.156.3005.2.X.Y.1.001.A", "证照名称": "营业执照"}
>>> p = OfflinePayload(identifier="1.2.156.3005.2.X.Y.1.001.A", type_code="X",
...     disclosed={k: (derive_salt(seed, k), v) for k, v in shown.items()}, hidden={},
...     batch_root=bytes(32), index=0, size=1, proof=[], chain_id=31337, ledger=bytes(20),
...     block_number=7, block_timestamp=1_700_000_000, tx_hash=bytes(32), issuer_account=b"", salt_seed=seed)
>>> p = dataclasses.replace(p, batch_root=p.computed_batch_root())  # a batch of one: the document's leaf
>>> signed = sign_payload(p, bytes(31) + b"\\x01")
>>> text = encode_payload(signed)
>>> text[:4]
'LZ2:'
>>> decoded = decode_payload(text)
>>> decoded == dataclasses.replace(signed, tx_hash=b"")  # the transaction hash does not travel
True
>>> recover_signer(decoded), decoded.issuer_account == signed.issuer_account
('0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf', True)
>>> classify_scan(text).kind
'offline'
"""

from __future__ import annotations

import dataclasses
import functools
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

import cbor2
import coincurve
import numpy as np
from eth_hash.auto import keccak

from registry.certificates.fields import derive_salt, leaf_entry, path_key  # path_key: the documents' leaf order
from registry.crypto import merkle
from registry.errors import PayloadFormatError, ProofError, ValidationError
from registry.formats.envelope import parse_ref_url

__all__ = [
    "BASE45_ALPHABET",
    "FIELD_CODES",
    "FORMAT_VERSION",
    "PREFIX",
    "FieldValue",
    "OfflinePayload",
    "ScanResult",
    "b45decode",
    "b45encode",
    "body_bytes",
    "classify_scan",
    "decode_payload",
    "encode_payload",
    "recover_signer",
    "sign_payload",
]

FORMAT_VERSION = 2
PREFIX = f"LZ{FORMAT_VERSION}:"
_PREFIX_RE = re.compile(r"LZ(\d{1,3}):")
_NOT_OURS = "这不是链证电子证照二维码 / Not a Lianzheng certificate QR code"

# Frozen since format LZ1 (LZ2 uses the same table): a code's meaning may never change, and a new entry needs
# a new format version (an old decoder could not read it); names not listed still work, as text. Codes 0..23
# cost one CBOR byte, 24..255 two (RFC 8949 §3.1). 0..12: the GB/T 36905 common metadata
# (registry.documents.COMMON_FIELDS); then the type-specific fields of seeds/certificate_types.yaml (营业执照
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


# --- Base45 (RFC 9285) -----------------------------------------------------------------------------------

# RFC 9285 §4: the 45 characters of QR alphanumeric mode, in this order.
BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_OUT = np.frombuffer(BASE45_ALPHABET.encode("ascii"), dtype=np.uint8)
_B45_IN = np.full(256, 255, dtype=np.uint8)
_B45_IN[_B45_OUT] = np.arange(45, dtype=np.uint8)


def b45encode(data: bytes) -> str:
    """RFC 9285 §4.2: each 2 bytes n = a*256 + b become c, d, e with n = c + 45*d + 2025*e; a final odd
    byte becomes two characters. Vectorised with numpy (a 1.3 KB payload takes ~10 µs).

    >>> b45encode(b"AB"), b45encode(b"Hello!!"), b45encode(b"base-45")
    ('BB8', '%69 VD92EX0', 'UJCLQE7W581')
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    even = len(raw) & ~1
    n = raw[:even].astype(np.uint32).reshape(-1, 2)
    n = n[:, 0] * 256 + n[:, 1]
    digits = np.empty((len(n), 3), dtype=np.uint32)
    digits[:, 0], rest = n % 45, n // 45
    digits[:, 1], digits[:, 2] = rest % 45, rest // 45
    out = _B45_OUT[digits.ravel()].tobytes()
    if even != len(raw):
        out += bytes((_B45_OUT[raw[-1] % 45], _B45_OUT[raw[-1] // 45]))
    return out.decode("ascii")


def b45decode(text: str) -> bytes:
    """Inverse of :func:`b45encode`, strict (RFC 9285 §4.3: reject characters outside the alphabet and
    groups whose value exceeds 65535, or 255 for a final pair). A dangling single character means the text
    was cut short: ``PayloadFormatError(code="truncated_payload")``; other faults are ``invalid_payload``.

    >>> b45decode("QED8WEX0")
    b'ietf!'
    """
    try:
        raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError as exc:
        raise _invalid(f"Base45 text has a non-ASCII character at position {exc.start}") from exc
    values = _B45_IN[raw]
    if (bad := np.flatnonzero(values == 255)).size:
        pos = int(bad[0])
        raise _invalid(f"character {text[pos]!r} at position {pos} is not in the Base45 alphabet (RFC 9285)")
    if len(values) % 3 == 1:
        raise _truncated(f"Base45 length {len(values)} leaves a single character after the last group of three")
    full = len(values) - len(values) % 3
    groups = values[:full].astype(np.uint32).reshape(-1, 3)
    n = groups[:, 0] + groups[:, 1] * 45 + groups[:, 2] * 2025
    if (over := np.flatnonzero(n > 0xFFFF)).size:
        raise _invalid(f"Base45 group at position {int(over[0]) * 3} encodes {int(n[over[0]])} > 65535")
    out = n.astype(">u2").tobytes()
    if full != len(values):
        last = int(values[-2]) + int(values[-1]) * 45
        if last > 0xFF:
            raise _invalid(f"final Base45 pair encodes {last} > 255")
        out += bytes((last,))
    return out


# --- the payload -----------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class OfflinePayload:
    """Everything an offline verifier needs; independent of the document model (it only sees field names,
    salts, values and leaf hashes). Construction validates sizes and types (``ValidationError``).

    ``tx_hash`` and ``issuer_account`` may be empty (``b""``): a decoded payload has no transaction hash and
    takes its issuer account from the signature (see the module docstring). ``salt_seed`` is the seed every
    disclosed salt derives from (`registry.documents.derive_salt`), or empty: with a seed the payload may
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

    def __post_init__(self) -> None:
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
        for i, step in enumerate(self.proof):
            _check_bytes(f"proof[{i}]", step, HASH_LEN)
        for name, pair in self.disclosed.items():
            if not isinstance(name, str) or not name:
                raise _bad_field("disclosed field name", "a non-empty string", name)
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise _bad_field(f"disclosed[{name!r}]", "a (salt, value) tuple", pair)
            _check_bytes(f"disclosed[{name!r}] salt", pair[0], SALT_LEN)
            value = pair[1]
            # The document model's values (registry.documents): integers stay within RFC 8785's ±(2**53 - 1).
            if not (value is None or isinstance(value, str) or (type(value) in (int, bool) and abs(value) < 2**53)):
                raise _bad_field(f"disclosed[{name!r}] value", "str, int (±(2**53-1)), bool or None", value)
        for name, leaf in self.hidden.items():
            if not isinstance(name, str) or not name:
                raise _bad_field("hidden field name", "a non-empty string", name)
            if name in self.disclosed:
                raise ValidationError(f"field {name!r} is both disclosed and hidden", code="invalid_payload_field")
            _check_bytes(f"hidden[{name!r}]", leaf, HASH_LEN)
        if self.salt_seed:
            if self.hidden:  # the seed would give away the hidden fields' salts (see the module docstring)
                raise ValidationError("offline payload with hidden fields must not carry a salt_seed: it would "
                                      "reveal their salts; leave salt_seed empty (the per-field salts travel)",
                                      code="invalid_payload_field")
            for name, (salt, _) in self.disclosed.items():
                if salt != _derive_salt(self.salt_seed, name):
                    raise ValidationError(f"offline payload disclosed[{name!r}] salt does not derive from salt_seed",
                                          code="invalid_payload_field")

    def __repr__(self) -> str:  # never print holder data into logs
        return (f"OfflinePayload(identifier={self.identifier!r}, disclosed={len(self.disclosed)} fields, "
                f"hidden={len(self.hidden)}, index={self.index}/{self.size}, signed={bool(self.signature)})")

    def document_digest(self) -> bytes:
        """The SHA-256 document digest the fields rebuild (``Document.digest_sha256``): the RFC 6962 root over
        the disclosed fields' leaves and the hidden fields' leaf hashes, in the documents' path order."""
        leaves = []
        for path in sorted({*self.disclosed, *self.hidden}, key=path_key):
            if path in self.hidden:
                leaves.append(self.hidden[path])
                continue
            salt, value = self.disclosed[path]
            try:
                entry = leaf_entry(path, salt, value)
            except (ValueError, UnicodeError) as exc:  # e.g. a lone surrogate (rfc8785 errors are ValueErrors)
                raise ValidationError(f"offline payload field {path!r} has no canonical leaf: {exc}",
                                      code="invalid_payload_field") from exc
            leaves.append(merkle.leaf_hash(entry))
        return merkle.root_from_leaf_hashes(leaves)

    def computed_batch_root(self) -> bytes:
        """The batch root that the document digest, ``index``, ``size`` and ``proof`` lead to (RFC 9162
        §2.1.3.2; the batch tree's entries are document digests). ``ValidationError`` when the proof's length
        does not fit ``index`` in a tree of ``size`` (no root then)."""
        root = _root_from_audit_path(merkle.leaf_hash(self.document_digest()), self.index, self.size, self.proof)
        if root is None:
            raise ValidationError(f"offline payload proof of {len(self.proof)} hashes does not fit leaf {self.index} "
                                  f"of a batch of {self.size} (RFC 9162 §2.1.3.2)", code="invalid_payload_field")
        return root


def body_bytes(payload: OfflinePayload) -> bytes:
    """The deterministic CBOR body: exactly the bytes whose SHA-256 the issuer signs."""
    if payload.salt_seed:  # every salt derives from the seed (checked on construction): send values only
        disclosed: dict[Any, Any] = {_CODE_OF.get(k, k): _pack_value(v) for k, (_, v) in payload.disclosed.items()}
    else:
        disclosed = {_CODE_OF.get(k, k): [salt, _pack_value(v)] for k, (salt, v) in payload.disclosed.items()}
    hidden = {_CODE_OF.get(k, k): leaf for k, leaf in payload.hidden.items()}
    body = [FORMAT_VERSION, payload.identifier, payload.type_code, payload.salt_seed, disclosed, hidden,
            payload.index, payload.size, b"".join(payload.proof), payload.chain_id, payload.ledger,
            payload.block_number, payload.block_timestamp]
    try:
        return cbor2.dumps(body, canonical=True)
    except (cbor2.CBOREncodeError, UnicodeError, ValueError) as exc:  # e.g. a lone surrogate in a string
        raise ValidationError(f"offline payload cannot be encoded as CBOR: {exc}",
                              code="invalid_payload_field") from exc


def encode_payload(payload: OfflinePayload) -> str:
    """``LZ2:`` + Base45(zlib(CBOR [body, signature])): all characters are QR alphanumeric.

    The wire has no batch root, issuer account or transaction hash (module docstring), so a payload whose
    ``batch_root`` is not `OfflinePayload.computed_batch_root`, or whose ``issuer_account`` is neither empty
    nor the signer, is refused (``ValidationError``): it would decode as something else. The ``tx_hash`` is
    dropped; an unsigned payload's ``issuer_account`` too (it decodes empty)."""
    body = body_bytes(payload)
    if payload.computed_batch_root() != payload.batch_root:
        raise ValidationError("offline payload batch_root is not the root its fields, index, size and proof lead "
                              "to; LZ2 does not carry the root, the decoder recomputes it",
                              code="invalid_payload_field")
    if payload.signature and payload.issuer_account:
        signer = _signer_or_empty(body, payload.signature)
        if signer != payload.issuer_account:
            raise ValidationError(f"offline payload issuer_account 0x{payload.issuer_account.hex()} is not the "
                                  f"signer {'0x' + signer.hex() if signer else '(none recovers)'}; LZ2 carries no "
                                  f"issuer account, the decoder takes the signer", code="invalid_payload_field")
    envelope = cbor2.dumps([body, payload.signature])
    return PREFIX + b45encode(zlib.compress(envelope, 9))


def decode_payload(text: str) -> OfflinePayload:
    """Parse and structurally validate an ``LZ<n>:`` text. The batch root is recomputed, ``issuer_account``
    is the address that recovers from the signature (empty if none does: the signature is not *checked*
    here, see :func:`recover_signer`) and ``tx_hash`` is empty: offline results cite the block, not the tx.

    Raises ``PayloadFormatError`` with code ``not_lianzheng_qr``, ``unsupported_version``,
    ``truncated_payload`` or ``invalid_payload``.
    """
    match = _PREFIX_RE.match(text)
    if match is None:
        raise PayloadFormatError(f"{_NOT_OURS}: text does not start with {PREFIX!r}", code="not_lianzheng_qr")
    version = int(match.group(1))
    if match.group(1) != str(FORMAT_VERSION):  # also refuses "LZ02:", another spelling of version 2
        raise PayloadFormatError(
            f"二维码格式版本不受支持 / unsupported QR payload version: expected LZ{FORMAT_VERSION}, "
            f"got LZ{match.group(1)}",
            code="unsupported_version", details={"version": version},
        )
    b45 = text[match.end():]
    try:
        compressed = b45decode(b45)
    except PayloadFormatError as exc:
        if exc.code == "invalid_payload" and _cut_mid_group(b45):
            raise _truncated("the text ends in the middle of a Base45 group") from exc
        raise
    inflater = zlib.decompressobj()
    try:
        envelope = inflater.decompress(compressed, _MAX_INFLATED)
    except zlib.error as exc:
        if _cut_mid_group(b45):
            raise _truncated("the text ends in the middle of a Base45 group") from exc
        raise _invalid(f"zlib data is corrupt ({exc})") from exc
    if inflater.unconsumed_tail:
        raise _invalid(f"payload inflates to more than {_MAX_INFLATED} bytes")
    if not inflater.eof:
        raise _truncated("the compressed stream ends early")
    if inflater.unused_data:
        raise _invalid(f"{len(inflater.unused_data)} unexpected bytes after the compressed stream")
    outer = _loads(envelope, "envelope")
    if not (isinstance(outer, list) and len(outer) == 2 and all(isinstance(x, bytes) for x in outer)):
        raise _invalid("envelope must be a CBOR array [body: bytes, signature: bytes]")
    if cbor2.dumps(outer) != envelope:
        raise _invalid("envelope is not in deterministic CBOR encoding")
    body, signature = outer
    payload = _payload_from_body(_loads(body, "body"), signature)
    if body_bytes(payload) != body:
        raise _invalid(f"body is not in the deterministic LZ{FORMAT_VERSION} encoding (RFC 8949 §4.2)")
    # The instance has not escaped yet: set the two values the wire does not carry without re-running the
    # validation (an address of 20 bytes or b""; the root is 32 bytes). Offline verification is a hot path.
    object.__setattr__(payload, "issuer_account", _signer_or_empty(body, signature))
    return payload


def sign_payload(payload: OfflinePayload, private_key: bytes) -> OfflinePayload:
    """Return a copy signed with the agency's secp256k1 account key (recoverable ECDSA over SHA-256(body)).
    An empty ``issuer_account`` is filled in with the key's address (what the decoder will report)."""
    try:
        if not isinstance(private_key, bytes) or len(private_key) != 32:
            raise ValueError("wrong length")  # coincurve would accept other lengths (b"" even means random)
        key = coincurve.PrivateKey(private_key)
    except (ValueError, TypeError) as exc:
        raise ValidationError("private key must be 32 bytes in 1..n-1 of secp256k1",
                              code="invalid_private_key") from exc
    # coincurve's default hasher is SHA-256: it signs SHA-256(body) and appends the recovery id (0..3).
    signature = key.sign_recoverable(body_bytes(payload))
    account = payload.issuer_account or _address_of(key.public_key)
    return dataclasses.replace(payload, signature=signature, issuer_account=account)


def recover_signer(payload: OfflinePayload) -> str:
    """The EIP-55 checksummed address whose key signed this payload. Any change to the body yields another
    address (or none); whether that address may sign for the issuer is the caller's trust decision."""
    return _checksum_address(_recover(body_bytes(payload), payload.signature))


# --- scanning --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanResult:
    """What a scanned text is: an offline payload (``payload`` set) or a by-reference link (``key`` set)."""

    kind: Literal["offline", "reference"]
    identifier: str
    payload: OfflinePayload | None = None
    key: bytes | None = field(default=None, repr=False)  # the document key: keep it out of logs


def classify_scan(text: str, *, public_base: str | None = None) -> ScanResult:
    """Classify what a QR scanner returned. ``public_base`` (e.g. ``https://lz.example.gov.cn``), when
    given, is the only origin whose ``/v/<identifier>#<key>`` links count as ours."""
    text = text.rstrip("\r\n")  # never strip spaces: ' ' is a Base45 character
    if _PREFIX_RE.match(text):
        payload = decode_payload(text)
        return ScanResult(kind="offline", identifier=payload.identifier, payload=payload)
    if re.match(r"(?i)https?://", text.strip()):
        identifier, key = parse_ref_url(text.strip(), public_base=public_base)
        return ScanResult(kind="reference", identifier=identifier, key=key)
    shown = text[:40] + ("…" if len(text) > 40 else "")
    raise PayloadFormatError(f"{_NOT_OURS}: {shown!r}", code="not_lianzheng_qr")


# --- internals -------------------------------------------------------------------------------------------

# Text whose characters all lie here is stored as GB 18030 bytes. The set is ASCII, the CJK Unified
# Ideographs of GBK (U+4E00..U+9FA5), CJK punctuation and full-width forms: all 1- or 2-byte GB 18030 codes
# whose mapping is identical in GB 18030-2005, -2022 and the WHATWG decoder (TextDecoder("gb18030")).
_GB_SAFE = re.compile("[\x20-\x7e\u00b7\u2014\u2018\u2019\u201c\u201d\u2026\u3000-\u3011\u4e00-\u9fa5\uff01-\uff5e]*")


def _pack_value(value: FieldValue) -> Any:
    if isinstance(value, str) and not value.isascii() and _GB_SAFE.fullmatch(value):
        try:
            packed = value.encode("gb18030")
        except UnicodeEncodeError:  # pragma: no cover - the character set above is all in GBK
            return value
        if packed.decode("gb18030") == value:
            return packed
    return value


def _unpack_value(value: Any, where: str) -> FieldValue:
    if isinstance(value, bytes):
        try:
            return value.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise _invalid(f"{where} is not GB 18030 text") from exc
    if value is None or isinstance(value, str | int):
        return value
    raise _invalid(f"{where} has type {type(value).__name__}; expected text, integer, boolean or null")


def _payload_from_body(body: Any, signature: bytes) -> OfflinePayload:
    if not isinstance(body, list) or len(body) != _BODY_ITEMS:
        raise _invalid(f"body must be a CBOR array of {_BODY_ITEMS} items, got {_describe(body)}")
    if body[0] != FORMAT_VERSION:
        raise PayloadFormatError(
            f"二维码格式版本不受支持 / unsupported QR payload version: body says {body[0]!r}, "
            f"prefix LZ{FORMAT_VERSION}",
            code="unsupported_version",
        )
    (_, identifier, type_code, seed, disclosed, hidden, index, size, proof, chain_id, ledger, block_number,
     block_timestamp) = body
    if not isinstance(disclosed, dict) or not isinstance(hidden, dict):
        raise _invalid("disclosed and hidden fields must be CBOR maps")
    if not isinstance(proof, bytes) or len(proof) % HASH_LEN:
        raise _invalid(f"proof must be a byte string of 32-byte hashes, got {_describe(proof)}")
    if not isinstance(seed, bytes) or len(seed) not in (0, SEED_LEN):
        raise _invalid(f"salt seed must be {SEED_LEN} bytes or empty, got {_describe(seed)}")
    opened: dict[str, tuple[bytes, FieldValue]] = {}
    for key, item in disclosed.items():
        name = _field_name(key)
        if seed:  # the salts derive from the seed: the map holds values only
            salt, value = _derive_salt(seed, name), item
        elif isinstance(item, list) and len(item) == 2:
            salt, value = item
        else:
            raise _invalid(f"disclosed field {name!r} must be [salt, value] (no salt seed), got {_describe(item)}")
        opened[name] = (salt, _unpack_value(value, f"disclosed field {name!r}"))
    try:
        payload = OfflinePayload(
            identifier=identifier, type_code=type_code, disclosed=opened,
            hidden={_field_name(k): v for k, v in hidden.items()}, batch_root=_NO_ROOT, index=index, size=size,
            proof=[proof[i:i + HASH_LEN] for i in range(0, len(proof), HASH_LEN)], chain_id=chain_id,
            ledger=ledger, block_number=block_number, block_timestamp=block_timestamp, tx_hash=b"",
            issuer_account=b"", signature=signature, salt_seed=seed,
        )
        # The root is not on the wire: it is whatever the signed fields, index, size and proof lead to. A forged
        # proof or field gives a root the trust list / chain does not know, and the issuer's signature over this
        # body then recovers another account anyway. Set without re-validating: see decode_payload.
        object.__setattr__(payload, "batch_root", payload.computed_batch_root())
    except ValidationError as exc:
        raise _invalid(exc.message) from exc
    return payload


_BODY_ITEMS = 13
# registry.documents.derive_salt, memoised: decoding derives each salt, then construction checks it again,
# and each HMAC costs ~1.3 µs (19 fields: a sixth of an offline verification). Salts are not secret.
_derive_salt = functools.lru_cache(maxsize=4096)(derive_salt)
_NO_ROOT = bytes(HASH_LEN)  # placeholder until the root is computed from the validated payload


def _root_from_audit_path(leaf: bytes, index: int, size: int, proof: list[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2 steps 1-6, returning the computed root ``r`` instead of comparing it (None when the
    path does not fit ``index`` and ``size``). registry.merkle.verify_inclusion_leaf_hash runs the same
    steps; tests/unit/qr check that the two agree."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = merkle.node_hash(p, r)
            while not fn & 1 and fn != 0:  # step ii: skip the levels where this node was promoted
                fn >>= 1
                sn >>= 1
        else:
            r = merkle.node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


@functools.lru_cache(maxsize=256)  # decode_payload recovers the issuer, then the verifier calls recover_signer
def _recover(body: bytes, signature: bytes) -> bytes:
    """The 20-byte account whose key made ``signature`` over SHA-256(``body``); ProofError if none."""
    if len(signature) != SIGNATURE_LEN:
        raise ProofError("离线二维码未签名 / offline payload is not signed", code="bad_signature")
    if signature[64] > 3:
        raise ProofError(f"签名无效 / bad signature: recovery id must be 0..3, got {signature[64]}",
                         code="bad_signature")
    try:
        public = coincurve.PublicKey.from_signature_and_message(signature, body)
    except Exception as exc:  # coincurve raises plain Exception for unrecoverable signatures
        raise ProofError(f"签名无效 / bad signature: no public key recovers from it ({exc})",
                         code="bad_signature") from exc
    return _address_of(public)


def _signer_or_empty(body: bytes, signature: bytes) -> bytes:
    try:
        return _recover(body, signature)
    except ProofError:
        return b""


def _address_of(public: coincurve.PublicKey) -> bytes:
    return keccak(public.format(compressed=False)[1:])[-20:]


def _field_name(key: Any) -> str:
    if isinstance(key, str) and key:
        return key
    if type(key) is int and 0 <= key < len(FIELD_CODES):
        return FIELD_CODES[key]
    raise _invalid(f"unknown field code {key!r} (LZ{FORMAT_VERSION} defines 0..{len(FIELD_CODES) - 1})")


_MAX_INFLATED = 1 << 16  # a version-40 QR holds < 3 KB compressed; bounds a zlib bomb


def _cut_mid_group(b45: str) -> bool:
    """True when ``b45`` looks like a valid payload cut one character into a 3-character group: its last
    two characters are then not a real final pair (RFC 9285 §4.2 pairs encode only an odd last byte), while
    everything before them decodes and inflates to an unfinished but valid zlib stream."""
    if len(b45) % 3 != 2:
        return False
    try:
        inflater = zlib.decompressobj()
        inflater.decompress(b45decode(b45[:-2]), _MAX_INFLATED)
    except (PayloadFormatError, zlib.error):
        return False
    return not inflater.eof


def _truncated(reason: str) -> PayloadFormatError:
    return PayloadFormatError(f"二维码数据不完整（可能未扫全）/ QR payload is truncated: {reason}",
                              code="truncated_payload")


def _loads(data: bytes, what: str) -> Any:
    try:
        return cbor2.loads(data, allow_indefinite=False, allow_duplicate_keys=False, max_depth=8)
    except (cbor2.CBORError, ValueError, TypeError, RecursionError) as exc:
        raise _invalid(f"{what} is not valid CBOR ({exc})") from exc


def _checksum_address(raw: bytes) -> str:
    # EIP-55: upper-case a hex letter when the matching nibble of keccak(lower-case hex) is >= 8.
    hex_addr = raw.hex()
    digest = keccak(hex_addr.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if d >= "8" else c for c, d in zip(hex_addr, digest, strict=False))


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


def _invalid(reason: str) -> PayloadFormatError:
    return PayloadFormatError(f"二维码数据无效或已损坏 / invalid QR payload: {reason}", code="invalid_payload")
