"""The certificate document (format ``lianzheng/cert/1``): salted field leaves, a Merkle digest over them in
SHA-256 and SM3, selective disclosure, and the anchor proof that ties the digest to a batch root on chain.

Every field — the 13 GB/T 36905 common metadata fields and the type-specific ones — is a leaf whose entry
is the RFC 8785 canonical JSON of ``{"path", "salt", "value"}`` with a 16-byte salt, so a hidden field
cannot be guessed from its hash. Leaves are ordered by path in RFC 8785 key order (UTF-16 code units) and
hashed into an RFC 6962 tree; the SHA-256 root is the document digest that goes into a batch.

Salts: `Document.create` draws one random 16-byte ``salt_seed`` per document and derives each field's salt
from it with `derive_salt` (HMAC-SHA256, truncated to 16 bytes), so the whole document's salts travel as
16 bytes in an offline QR (registry.qr) instead of 16 per field. The salts are still per field and the
leaves and digests are computed from them exactly as before: a verifier never needs the seed. A disclosed
copy (`Document.disclose`) drops the seed, because it would reveal the salts of the hidden fields.

>>> from pathlib import Path
>>> from registry.seeds import load_seeds
>>> seeds = load_seeds(Path("seeds"))
>>> licence = seeds.certificate_types[0]
>>> issuer = seeds.member(licence.issuers[0])
>>> values = {"证照名称": "营业执照", "证照类型代码": licence.code, "证照编号": "230000202603415285",
...           "颁发机构": issuer.name, "颁发机构代码": issuer.uscc, "颁发日期": "2026-03-25",
...           "持证主体": "哈尔滨新运商贸有限公司", "持证主体代码": "91230104436FUCJP77", "持证主体代码类型": "001",
...           "有效期起始": "2026-03-25", "有效期截止": None, "属地编码": "230000",
...           "类型": "有限责任公司（自然人投资或控股）", "法定代表人": "邵鹏立", "注册资本": "200.00",
...           "成立日期": "2008-04-06", "营业期限": "长期", "住所": "黑龙江省哈尔滨市道外区靖宇街131号",
...           "经营范围": "日用百货、五金产品、电子产品销售。"}
>>> cid = CertificateId.build(licence.code, issuer.uscc, 1)
>>> doc = Document.create(licence, values, identifier=str(cid))
>>> doc.integrity_errors()
[]
>>> shown = doc.disclose(["持证主体代码", "住所"])
>>> shown.compute_digests() == doc.compute_digests()
True
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import rfc8785
from eth_utils.address import is_address, to_checksum_address
from stdnum import exceptions as stdnum_exc
from stdnum.cn import ric

from registry.crypto import merkle
from registry.crypto.hashing import to_hex
from registry.errors import NotFoundError, PayloadFormatError, ProofError, RegistryError, ValidationError
from registry.identifiers import CertificateId, validate_uscc
from registry.seeds import CertificateType, FieldSpec, JsonValue

__all__ = [
    "COMMON_FIELDS",
    "COMMON_FIELD_NAMES",
    "FORMAT_ID",
    "AnchorProof",
    "DisclosedField",
    "Document",
    "HiddenField",
    "derive_salt",
    "leaf_entry",
]

FORMAT_ID = "lianzheng/cert/1"
SALT_SIZE = 16
SALT_SEED_SIZE = 16
_SALT_LABEL = b"lianzheng/salt/1"  # domain separation: these HMAC outputs are field salts, version 1
_HEX32_0X = re.compile(r"0x[0-9a-fA-F]{64}")
_SALT_HEX = re.compile(r"[0-9a-f]{32}")
_DIGEST_HEX = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MAX_SAFE_INT = 2**53 - 1

# GB/T 36905 common metadata (as used by provincial e-certificate integrations); every certificate has them.
COMMON_FIELDS: tuple[FieldSpec, ...] = tuple(
    FieldSpec(name=n, name_en=e, type=t, required=r, max_length=m, pattern=p)
    for n, e, t, r, m, p in (
        ("证照名称", "certificate_name", "string", True, 100, None),
        ("证照类型代码", "certificate_type_code", "string", True, None, r"[0-9A-Z]{18}[0-9]{3}"),
        ("证照编号", "certificate_number", "string", True, 64, None),
        ("证照标识", "certificate_identifier", "string", True, 128, None),
        ("颁发机构", "issuing_authority", "string", True, 100, None),
        ("颁发机构代码", "issuing_authority_code", "string", True, None, r"[0-9A-Z]{18}"),
        ("颁发日期", "issue_date", "date", True, None, None),
        ("持证主体", "holder", "string", True, 200, None),
        ("持证主体代码", "holder_code", "string", True, 32, None),
        ("持证主体代码类型", "holder_code_type", "string", True, None, r"001|111"),
        ("有效期起始", "valid_from", "date", True, None, None),
        ("有效期截止", "valid_until", "date", False, None, None),
        ("属地编码", "region_code", "string", True, None, r"[1-8][0-9]{5}"),
    )
)
COMMON_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in COMMON_FIELDS)
_ID, _TYPE, _ISSUER = "证照标识", "证照类型代码", "颁发机构代码"
_HOLDER_CODE, _HOLDER_TYPE = "持证主体代码", "持证主体代码类型"
_FROM, _UNTIL = "有效期起始", "有效期截止"


def _bytes32(value: Any, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        found = f"{len(value)} bytes" if isinstance(value, (bytes, bytearray)) else type(value).__name__
        raise ValidationError(f"anchor {what} must be 32 bytes, got {found}", code="invalid_anchor")
    return bytes(value)


def _count(value: Any, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(f"anchor {what} must be an integer >= {minimum}, got {value!r}", code="invalid_anchor")
    return value


def _address(value: Any, what: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise ValidationError(f"anchor {what} must be a 0x-prefixed 20-byte address, got {value!r}",
                              code="invalid_anchor")
    return to_checksum_address(value)


@dataclass(frozen=True, slots=True)
class AnchorProof:
    """Where a document digest sits on chain: its RFC 6962 audit path in the batch tree whose root was
    anchored by ``tx_hash`` in ``block_number`` on ``ledger`` (the CertificateLedger contract address).

    The batch tree's entries are the documents' 32-byte SHA-256 digests (leaf = H(0x00 || digest)).
    """

    batch_root: bytes
    index: int
    size: int
    path: tuple[bytes, ...]
    chain_id: int
    ledger: str
    tx_hash: bytes
    block_number: int
    block_timestamp: int
    issuer_account: str

    def __post_init__(self) -> None:
        _bytes32(self.batch_root, "batch_root")
        _bytes32(self.tx_hash, "tx_hash")
        if not isinstance(self.path, (list, tuple)):
            raise ValidationError(f"anchor path must be a list of hashes, got {type(self.path).__name__}",
                                  code="invalid_anchor")
        object.__setattr__(self, "path", tuple(_bytes32(p, f"path[{i}]") for i, p in enumerate(self.path)))
        object.__setattr__(self, "batch_root", bytes(self.batch_root))
        object.__setattr__(self, "tx_hash", bytes(self.tx_hash))
        _count(self.size, "size", 1)
        if _count(self.index, "index") >= self.size:
            raise ValidationError(f"anchor index must be below size {self.size}, got {self.index}",
                                  code="invalid_anchor")
        _count(self.chain_id, "chain_id", 1)
        _count(self.block_number, "block_number")
        _count(self.block_timestamp, "block_timestamp")
        object.__setattr__(self, "ledger", _address(self.ledger, "ledger"))
        object.__setattr__(self, "issuer_account", _address(self.issuer_account, "issuer_account"))

    def includes(self, document_digest: bytes) -> bool:
        """RFC 9162 §2.1.3.2: does the audit path lead from ``document_digest`` to ``batch_root``?"""
        return merkle.verify_inclusion(document_digest, self.index, self.size, list(self.path), self.batch_root)

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_root": "0x" + self.batch_root.hex(),
            "index": self.index,
            "size": self.size,
            "path": ["0x" + p.hex() for p in self.path],
            "chain_id": self.chain_id,
            "ledger": self.ledger,
            "tx_hash": "0x" + self.tx_hash.hex(),
            "block_number": self.block_number,
            "block_timestamp": self.block_timestamp,
            "issuer_account": self.issuer_account,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> AnchorProof:
        """Parse `to_json` output; PayloadFormatError(code="invalid_anchor") on any problem."""
        try:
            if not isinstance(obj, Mapping):
                raise ValidationError(f"anchor must be an object, got {type(obj).__name__}")
            names = [f.name for f in dataclasses.fields(cls)]
            if set(obj) != set(names):
                raise ValidationError(f"anchor keys must be {sorted(names)}, got {sorted(map(str, obj))}")
            hexes = {k: _hex32(obj[k], k) for k in ("batch_root", "tx_hash")}
            path = obj["path"]
            if not isinstance(path, list):
                raise ValidationError(f"anchor path must be a list, got {type(path).__name__}")
            return cls(**{**obj, **hexes, "path": tuple(_hex32(p, "path") for p in path)})
        except ValidationError as exc:
            raise PayloadFormatError(f"invalid anchor proof: {exc.message}", code="invalid_anchor") from None


def _hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX32_0X.fullmatch(value):
        raise ValidationError(f"anchor {what} must be 0x + 64 hex digits, got {str(value)[:80]!r}")
    return bytes.fromhex(value[2:])


@dataclass(frozen=True, slots=True)
class DisclosedField:
    salt: bytes
    value: JsonValue


@dataclass(frozen=True, slots=True)
class HiddenField:
    """A withheld field: only its leaf hashes (H(0x00 || entry)) in both algorithms remain."""

    sha256: bytes
    sm3: bytes


def _path_key(path: str) -> bytes:
    # RFC 8785 §3.2.3 sorts keys by UTF-16 code units; big-endian UTF-16 bytes compare the same way.
    return path.encode("utf-16-be", "surrogatepass")


_json_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_SCALARS = (str, int, bool, type(None))


def leaf_entry(path: str, salt: bytes, value: JsonValue) -> bytes:
    """The raw Merkle entry of one field: RFC 8785 canonical JSON of {"path", "salt", "value"}.

    Field values are strings, integers within ±2^53, booleans or null (FieldSpec.normalise), and the
    keys are already in RFC 8785 order; for those, Python's compact JSON with ensure_ascii=False is
    byte-for-byte the RFC 8785 form (same escapes, ECMAScript integer rendering), at a tenth of the
    cost. Anything else goes through `rfc8785`. tests/unit/registry/test_documents.py checks the two
    agree on arbitrary strings and integers.
    """
    if type(path) is str and type(value) in _SCALARS and (type(value) is not int or -(2**53) < value < 2**53):
        try:
            return f'{{"path":{_json_text(path)},"salt":"{salt.hex()}","value":{_json_text(value)}}}'.encode()
        except UnicodeEncodeError:  # a lone surrogate: let rfc8785 refuse it with its own error
            pass
    return rfc8785.dumps({"path": path, "salt": salt.hex(), "value": value})


def derive_salt(seed: bytes, path: str) -> bytes:
    """The salt of field ``path`` in a document whose salts derive from ``seed``:
    ``HMAC-SHA256(seed, b"lianzheng/salt/1" || UTF-8(path))[:16]``.

    HMAC is a PRF keyed by the 16 random bytes of the seed, so each salt is as unpredictable as a random
    one to anyone without the seed, distinct paths give independent salts, and one salt reveals neither
    the seed nor any other field's salt. registry.qr re-derives the salts of an offline payload with this
    function (the one implementation).

    >>> derive_salt(bytes(16), "住所").hex()
    '62050facdfa1bc73f1b9daaa112d18d0'
    """
    return hmac.digest(seed, _SALT_LABEL + path.encode("utf-8"), "sha256")[:SALT_SIZE]


def _invalid(message: str, field_name: str, code: str = "invalid_field") -> ValidationError:
    return ValidationError(message, code=code, details={"field": field_name})


@dataclass(frozen=True)
class Document:
    """A certificate document; build with `create` or `from_json`, never by hand-assembling fields."""

    identifier: str
    type_code: str
    fields: Mapping[str, DisclosedField]
    hidden: Mapping[str, HiddenField]
    digest_sha256: bytes
    digest_sm3: bytes
    anchor: AnchorProof | None = None
    # The seed every field's salt derives from (`derive_salt`); None when the salts were given explicitly or
    # in a disclosed copy. `create` derives the salts from it; `integrity_errors` reports any that do not.
    salt_seed: bytes | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.salt_seed is not None and (not isinstance(self.salt_seed, bytes) or len(self.salt_seed) != SALT_SEED_SIZE):
            raise ValidationError(f"salt_seed must be {SALT_SEED_SIZE} bytes or None", code="invalid_document")
        # Stored in tree order so that to_json() is deterministic; read-only views keep the value frozen.
        for name in ("fields", "hidden"):
            mapping = getattr(self, name)
            object.__setattr__(self, name, MappingProxyType({p: mapping[p] for p in sorted(mapping, key=_path_key)}))

    def __hash__(self) -> int:
        return hash((self.identifier, self.digest_sha256))

    # --- construction --------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        cert_type: CertificateType,
        values: Mapping[str, Any],
        *,
        identifier: str,
        salts: Mapping[str, bytes | str] | None = None,
        rng: Any = secrets,
    ) -> Document:
        """Validate ``values`` against the common and type-specific fields and build a salted document.

        ``证照标识``, ``证照名称``, ``证照类型代码``, ``颁发机构代码`` and ``持证主体代码类型`` default from the
        identifier and type; when given they must agree. ``rng`` needs ``token_bytes(n)`` (``secrets``) or
        ``randbytes(n)`` (``random.Random``, for reproducible tests).

        Without ``salts``, one 16-byte ``salt_seed`` is drawn from ``rng`` and every salt derives from it
        (`derive_salt`). With ``salts``, those fields use them, the others random salts, and there is no seed.
        """
        try:
            cid = CertificateId.parse(identifier)
        except ValidationError as exc:
            raise _invalid(exc.message, _ID, code="invalid_identifier") from None
        if cid.type_code != cert_type.code:
            raise _invalid(f"identifier {cid} is for type {cid.type_code}, expected {cert_type.code} "
                           f"({cert_type.name})", _ID, code="invalid_identifier")
        if not isinstance(values, Mapping):
            raise ValidationError(f"certificate values must be an object, got {type(values).__name__}",
                                  code="invalid_document")
        specs = {s.name: s for s in (*COMMON_FIELDS, *cert_type.fields)}
        unknown = sorted((str(k) for k in set(values) - set(specs)), key=_path_key)
        if unknown:
            raise _invalid(f"{cert_type.name} has no field {unknown[0]!r} (unknown: {', '.join(unknown)})",
                           unknown[0], code="unknown_field")
        given = dict(values)
        for name, implied in ((_ID, str(cid)), ("证照名称", cert_type.name), (_TYPE, cert_type.code),
                              (_ISSUER, cid.issuer_uscc), (_HOLDER_TYPE, cert_type.holder_code_type)):
            if given.get(name) is None:
                given[name] = implied
            elif given[name] != implied:
                raise _invalid(f"field {name} is {given[name]!r}, expected {implied!r} for {cid}", name)
        norm = {name: spec.normalise(given.get(name)) for name, spec in specs.items()}
        _check_cross_fields(cert_type, norm)

        salts = dict(salts or {})
        extra = sorted(set(salts) - set(specs), key=_path_key)
        if extra:
            raise _invalid(f"salt given for unknown field {extra[0]!r}", extra[0], code="unknown_field")
        draw = getattr(rng, "token_bytes", None) or rng.randbytes
        seed = None if salts else draw(SALT_SEED_SIZE)
        fields: dict[str, DisclosedField] = {}
        for name in sorted(specs, key=_path_key):
            salt = salts.get(name)
            if salt is not None:
                salt_bytes = _salt_bytes(salt, name)
            else:
                salt_bytes = derive_salt(seed, name) if seed is not None else draw(SALT_SIZE)
            fields[name] = DisclosedField(salt=salt_bytes, value=norm[name])
        doc = cls(identifier=str(cid), type_code=cert_type.code, fields=fields, hidden={},
                  digest_sha256=b"", digest_sm3=b"", salt_seed=seed)
        d256, dsm3 = doc.compute_digests()
        return dataclasses.replace(doc, digest_sha256=d256, digest_sm3=dsm3)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | str | bytes) -> Document:
        """Parse a ``lianzheng/cert/1`` document; PayloadFormatError(code="invalid_document") on any problem."""
        return _parse_document(obj)

    # --- serialisation -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        obj = {
            "format": FORMAT_ID,
            "identifier": self.identifier,
            "type": self.type_code,
            "fields": {p: {"salt": f.salt.hex(), "value": f.value} for p, f in self.fields.items()},
            "hidden": {p: {"sha256": to_hex(h.sha256), "sm3": to_hex(h.sm3)} for p, h in self.hidden.items()},
            "digest": {"sha256": to_hex(self.digest_sha256), "sm3": to_hex(self.digest_sm3)},
            "anchor": None if self.anchor is None else self.anchor.to_json(),
        }
        if self.salt_seed is not None:  # only when present: documents without a seed keep their old JSON
            obj["salt_seed"] = self.salt_seed.hex()
        return obj

    def canonical_bytes(self) -> bytes:
        """RFC 8785 form of `to_json()` (for storage digests and signatures over the whole document)."""
        return rfc8785.dumps(self.to_json())

    # --- leaves and digests ----------------------------------------------------------------------------

    @property
    def paths(self) -> list[str]:
        """Every field path (shown or hidden) in tree order."""
        return sorted({*self.fields, *self.hidden}, key=_path_key)

    def leaf_entries(self) -> list[tuple[str, bytes]]:
        """(path, raw entry) of every shown field, in tree order; hidden fields have no entry."""
        return [(p, leaf_entry(p, self.fields[p].salt, self.fields[p].value)) for p in self.paths if p in self.fields]

    def leaf_hashes(self, algorithm: str = "sha256") -> list[bytes]:
        """Leaf hashes of all fields in tree order; hidden fields contribute their stored hashes."""
        if algorithm not in ("sha256", "sm3"):
            raise ValidationError(f"algorithm must be sha256 or sm3, got {algorithm!r}", code="unsupported_algorithm")
        which = 0 if algorithm == "sha256" else 1
        return [pair[which] for pair in self._leaf_hash_pairs()]

    def _leaf_hash_pairs(self) -> list[tuple[bytes, bytes]]:
        pairs = []
        for p in self.paths:
            h = self.hidden.get(p)
            pairs.append((h.sha256, h.sm3) if h is not None else self._visible_leaf(p))
        return pairs

    def _visible_leaf(self, path: str) -> tuple[bytes, bytes]:
        f = self.fields[path]
        entry = leaf_entry(path, f.salt, f.value)
        return merkle.leaf_hash(entry), merkle.leaf_hash(entry, algorithm="sm3")

    def compute_digests(self) -> tuple[bytes, bytes]:
        """(SHA-256 root, SM3 root) recomputed from the fields."""
        pairs = self._leaf_hash_pairs()
        return (merkle.root_from_leaf_hashes([p[0] for p in pairs]),
                merkle.root_from_leaf_hashes([p[1] for p in pairs], algorithm="sm3"))

    @property
    def document_digest_bytes(self) -> bytes:
        """The stored 32-byte SHA-256 root: the entry this document contributes to its batch tree."""
        return self.digest_sha256

    def integrity_errors(self) -> list[str]:
        """Empty when the stored digests match the fields, the header matches the bound fields and, when the
        document carries a ``salt_seed``, every salt derives from it."""
        errors: list[str] = []
        d256, dsm3 = self.compute_digests()
        if d256 != self.digest_sha256:
            errors.append(f"digest.sha256 differs: stored {to_hex(self.digest_sha256)}, recomputed {to_hex(d256)}")
        if dsm3 != self.digest_sm3:
            errors.append(f"digest.sm3 differs: stored {to_hex(self.digest_sm3)}, recomputed {to_hex(dsm3)}")
        errors.extend(self.salt_seed_errors())
        try:
            cid = CertificateId.parse(self.identifier)
        except ValidationError as exc:
            return [*errors, f"identifier is malformed: {exc.message}"]
        if self.type_code != cid.type_code:
            errors.append(f"type {self.type_code} differs from the identifier's type {cid.type_code}")
        for name, expected in ((_ID, self.identifier), (_TYPE, cid.type_code), (_ISSUER, cid.issuer_uscc)):
            if name in self.fields and self.fields[name].value != expected:
                errors.append(f"field {name} is {self.fields[name].value!r}, the header says {expected!r}")
        if _ID not in self.fields:
            errors.append(f"field {_ID} must be shown, it is {'hidden' if _ID in self.hidden else 'missing'}")
        return errors

    def salt_seed_errors(self) -> list[str]:
        """One message per field whose salt does not derive from ``salt_seed`` (empty without a seed)."""
        if self.salt_seed is None:
            return []
        return [f"field {p}: salt does not derive from salt_seed" for p, f in self.fields.items()
                if f.salt != derive_salt(self.salt_seed, p)]

    # --- disclosure and anchoring ---------------------------------------------------------------------

    def disclose(self, hide: Iterable[str]) -> Document:
        """A copy with the ``hide`` fields replaced by their leaf hashes; the digests stay the same.

        The copy never carries the ``salt_seed``: every salt derives from it, so whoever had the seed could
        recompute a hidden field's salt and test guesses of its value (性别, 出生日期, a holder code with a
        check digit are only a few thousand guesses) against the hidden leaf hash. Shown fields keep their
        salts, which verify the digest without the seed.
        """
        hide = set(hide)
        if _ID in hide:
            raise ValidationError(f"field {_ID} cannot be hidden: it binds the document to its identifier",
                                  code="invalid_disclosure", details={"field": _ID})
        unknown = sorted(hide - set(self.paths), key=_path_key)
        if unknown:
            raise _invalid(f"cannot hide {unknown[0]!r}: the document has no such field", unknown[0],
                           code="unknown_field")
        fields = {p: f for p, f in self.fields.items() if p not in hide}
        hidden = dict(self.hidden)
        for p in sorted(hide & set(self.fields), key=_path_key):
            h256, hsm3 = self._visible_leaf(p)
            hidden[p] = HiddenField(sha256=h256, sm3=hsm3)
        return dataclasses.replace(self, fields=fields, hidden=hidden, salt_seed=None)

    def with_anchor(self, proof: AnchorProof | None) -> Document:
        """Attach (or with None, remove) the batch anchor; the proof must include this document's digest."""
        if proof is not None and not proof.includes(self.digest_sha256):
            raise ProofError(
                f"anchor proof does not place document digest {to_hex(self.digest_sha256)} at index "
                f"{proof.index} of batch root {to_hex(proof.batch_root)} (size {proof.size})",
                code="invalid_anchor_proof",
            )
        return dataclasses.replace(self, anchor=proof)

    # --- field access -----------------------------------------------------------------------------------

    def value(self, path: str) -> JsonValue:
        """The shown value of ``path``; NotFoundError if the document has no such field or hides it."""
        if path in self.fields:
            return self.fields[path].value
        state = "hidden" if path in self.hidden else "absent"
        raise NotFoundError(f"field {path!r} is {state} in {self.identifier}", code="field_not_shown",
                            details={"field": path})

    def _shown(self, path: str) -> JsonValue:
        f = self.fields.get(path)
        return None if f is None else f.value

    def _shown_date(self, path: str) -> dt.date | None:
        v = self._shown(path)
        if v is None:
            return None
        if not isinstance(v, str) or not _DATE.fullmatch(v):
            raise PayloadFormatError(f"field {path} of {self.identifier} is not a date: {v!r}", code="invalid_document")
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            raise PayloadFormatError(f"field {path} of {self.identifier} is not a calendar date: {v!r}",
                                     code="invalid_document") from None

    @property
    def certificate_id(self) -> CertificateId:
        return CertificateId.parse(self.identifier)

    @property
    def issuer_uscc(self) -> str:
        return self.certificate_id.issuer_uscc

    @property
    def valid_from(self) -> dt.date | None:
        return self._shown_date(_FROM)

    @property
    def valid_until(self) -> dt.date | None:
        """None when the certificate never expires or the field is hidden."""
        return self._shown_date(_UNTIL)

    @property
    def issue_date(self) -> dt.date | None:
        return self._shown_date("颁发日期")

    @property
    def holder_name(self) -> str | None:
        v = self._shown("持证主体")
        return v if isinstance(v, str) else None

    @property
    def holder_code(self) -> str | None:
        v = self._shown(_HOLDER_CODE)
        return v if isinstance(v, str) else None

    @property
    def holder_code_type(self) -> str | None:
        v = self._shown(_HOLDER_TYPE)
        return v if isinstance(v, str) else None


def _salt_bytes(salt: bytes | str, name: str) -> bytes:
    if isinstance(salt, str):
        try:
            salt = bytes.fromhex(salt)
        except ValueError:
            raise _invalid(f"salt for {name} is not hex", name, code="invalid_salt") from None
    if not isinstance(salt, (bytes, bytearray)) or len(salt) != SALT_SIZE:
        found = len(salt) if isinstance(salt, (bytes, bytearray)) else type(salt).__name__
        raise _invalid(f"salt for {name} must be {SALT_SIZE} bytes, got {found}", name, code="invalid_salt")
    return bytes(salt)


def _check_cross_fields(cert_type: CertificateType, norm: dict[str, JsonValue]) -> None:
    """Rules spanning fields; writes the holder code back in its compact form (capitals, no separators)."""
    issuer = norm[_ISSUER]
    if issuer not in cert_type.issuers:
        raise _invalid(f"{issuer} may not issue {cert_type.name}: allowed issuers are "
                       f"{', '.join(cert_type.issuers)}", _ISSUER)
    code = norm[_HOLDER_CODE]
    assert isinstance(code, str)
    if cert_type.holder_code_type == "001":
        try:
            norm[_HOLDER_CODE] = validate_uscc(code)
        except ValidationError as exc:
            raise _invalid(f"持证主体代码 must be a USCC for {cert_type.name}: {exc.message}", _HOLDER_CODE) from None
    else:
        try:
            norm[_HOLDER_CODE] = ric.validate(code)  # GB 11643: length, check digit, birth date and place
        except stdnum_exc.ValidationError as exc:
            raise _invalid(f"持证主体代码 {code!r} is not a valid resident identity number (GB 11643): "
                           f"{exc}", _HOLDER_CODE) from None
    start, until = norm[_FROM], norm[_UNTIL]
    if until is None and cert_type.validity_years is not None:
        raise ValidationError(f"{cert_type.name} is valid for {cert_type.validity_years} years: "
                              f"{_UNTIL} is required", code="missing_field", details={"field": _UNTIL})
    if isinstance(start, str) and isinstance(until, str) and until < start:
        raise _invalid(f"{_UNTIL} {until} is before {_FROM} {start}", _UNTIL)


# --- parsing (Document.from_json) ---------------------------------------------------------------------------

_TOP_KEYS = {"format", "identifier", "type", "fields", "hidden", "digest", "anchor"}
_OPTIONAL_KEYS = frozenset({"salt_seed"})


def _bad(message: str) -> PayloadFormatError:
    return PayloadFormatError(f"not a {FORMAT_ID} document: {message}", code="invalid_document")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")  # two values for one field would make the document ambiguous
        out[k] = v
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _exact_keys(obj: Any, keys: set[str], where: str, optional: frozenset[str] = frozenset()) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise _bad(f"{where} must be an object, got {type(obj).__name__}")
    if not keys <= set(obj) <= keys | optional:
        also = f" (optionally {sorted(optional)})" if optional else ""
        raise _bad(f"{where} must have keys {sorted(keys)}{also}, got {sorted(map(str, obj))}")
    return obj


def _hex_field(value: Any, pattern: re.Pattern[str], where: str, size: int) -> bytes:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _bad(f"{where} must be {2 * size} lower-case hex digits, got {str(value)[:80]!r}")
    return bytes.fromhex(value)


def _utf8(text: str, where: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(f"{where} contains a lone surrogate (not canonicalisable by RFC 8785)") from None
    return text


def _json_value(value: Any, where: str) -> JsonValue:
    if isinstance(value, str):
        return _utf8(value, where)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise _bad(f"{where} is outside the RFC 8785 integer range: {value}")
        return value
    raise _bad(f"{where} must be a string, integer, boolean or null, got {type(value).__name__}")


def _parse_document(obj: Mapping[str, Any] | str | bytes) -> Document:
    try:
        return _parse_document_unchecked(obj)
    except PayloadFormatError:
        raise
    except (RegistryError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:  # safety net
        raise _bad(getattr(exc, "message", None) or str(exc) or type(exc).__name__) from exc


def _parse_document_unchecked(obj: Mapping[str, Any] | str | bytes) -> Document:
    if isinstance(obj, (str, bytes, bytearray)):
        try:
            obj = json.loads(obj, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise _bad(f"invalid JSON: {exc}") from None
    data = _exact_keys(obj, _TOP_KEYS, "document", _OPTIONAL_KEYS)
    if data["format"] != FORMAT_ID:
        raise _bad(f"format must be {FORMAT_ID!r}, got {data['format']!r}")
    identifier, type_code = data["identifier"], data["type"]
    if not isinstance(identifier, str):
        raise _bad(f"identifier must be a string, got {type(identifier).__name__}")
    try:
        CertificateId.parse(identifier)
    except ValidationError as exc:
        raise _bad(f"identifier: {exc.message}") from None
    if not isinstance(type_code, str):
        raise _bad(f"type must be a string, got {type(type_code).__name__}")

    raw_fields = data["fields"]
    if not isinstance(raw_fields, Mapping):
        raise _bad(f"fields must be an object, got {type(raw_fields).__name__}")
    fields: dict[str, DisclosedField] = {}
    for path, entry in raw_fields.items():
        if not isinstance(path, str) or not path:
            raise _bad(f"field paths must be non-empty strings, got {path!r}")
        _utf8(path, "a field path")
        entry = _exact_keys(entry, {"salt", "value"}, f"fields[{path!r}]")
        salt = _hex_field(entry["salt"], _SALT_HEX, f"fields[{path!r}].salt", SALT_SIZE)
        fields[path] = DisclosedField(salt=salt, value=_json_value(entry["value"], f"fields[{path!r}].value"))

    raw_hidden = data["hidden"]
    if not isinstance(raw_hidden, Mapping):
        raise _bad(f"hidden must be an object, got {type(raw_hidden).__name__}")
    hidden: dict[str, HiddenField] = {}
    for path, entry in raw_hidden.items():
        if not isinstance(path, str) or not path:
            raise _bad(f"hidden paths must be non-empty strings, got {path!r}")
        if path in fields:
            raise _bad(f"field {path!r} is both shown and hidden")
        entry = _exact_keys(entry, {"sha256", "sm3"}, f"hidden[{path!r}]")
        hidden[path] = HiddenField(sha256=_hex_field(entry["sha256"], _DIGEST_HEX, f"hidden[{path!r}].sha256", 32),
                                   sm3=_hex_field(entry["sm3"], _DIGEST_HEX, f"hidden[{path!r}].sm3", 32))
    missing = [n for n in COMMON_FIELD_NAMES if n not in fields and n not in hidden]
    if missing:
        raise _bad(f"common fields missing: {', '.join(missing)}")
    seed = None
    if "salt_seed" in data:
        seed = _hex_field(data["salt_seed"], _SALT_HEX, "salt_seed", SALT_SEED_SIZE)
        if hidden:  # see Document.disclose: the seed would reveal the hidden fields' salts
            raise _bad(f"a document with hidden fields must not carry salt_seed (it reveals their salts): "
                       f"hidden {', '.join(hidden)}")
        # A salt that does not derive from the seed is not refused here but reported by integrity_errors():
        # changing a salt changes the digest too, and the verifier must answer "tampered" for that (as for a
        # changed value), not refuse the document as malformed.

    digest = _exact_keys(data["digest"], {"sha256", "sm3"}, "digest")
    d256 = _hex_field(digest["sha256"], _DIGEST_HEX, "digest.sha256", 32)
    dsm3 = _hex_field(digest["sm3"], _DIGEST_HEX, "digest.sm3", 32)
    anchor = None
    if data["anchor"] is not None:
        try:
            anchor = AnchorProof.from_json(data["anchor"])
        except PayloadFormatError as exc:
            raise _bad(exc.message) from None
    return Document(identifier=identifier, type_code=type_code, fields=fields, hidden=hidden,
                    digest_sha256=d256, digest_sm3=dsm3, anchor=anchor, salt_seed=seed)
