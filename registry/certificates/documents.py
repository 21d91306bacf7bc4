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
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, cast

import rfc8785

from registry.certificates._parse import FORMAT_ID, parse_document
from registry.certificates._validate import field_specs, invalid, salt_bytes, validated_values
from registry.certificates.anchor_proof import AnchorProof
from registry.certificates.fields import (
    COMMON_FIELD_NAMES,
    COMMON_FIELDS,
    FROM_FIELD,
    HOLDER_CODE_FIELD,
    HOLDER_KEY_FIELD,
    HOLDER_TYPE_FIELD,
    ID_FIELD,
    ISSUER_FIELD,
    SALT_SEED_SIZE,
    SALT_SIZE,
    TYPE_FIELD,
    UNTIL_FIELD,
    DisclosedField,
    HiddenField,
    derive_salt,
    derive_salts,
    document_roots,
    leaf_entry,
    path_key,
)
from registry.crypto import merkle
from registry.crypto.hashing import to_hex
from registry.errors import NotFoundError, PayloadFormatError, ProofError, ValidationError
from registry.identifiers import CertificateId
from registry.seeds import CertificateType, JsonValue

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

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_KEY_ID = re.compile(r"[0-9a-f]{64}")
_NO_HIDDEN: Mapping[str, HiddenField] = MappingProxyType({})
_json_str = json.encoder.encode_basestring  # a str's JSON text (the C function json.dumps uses)
_ORDER: dict[int, tuple[CertificateType, tuple[str, ...]]] = {}


def _tree_order(cert_type: CertificateType) -> tuple[str, ...]:
    """The field names of ``cert_type`` in tree order (remembered per type object)."""
    known = _ORDER.get(id(cert_type))
    if known is None or known[0] is not cert_type:
        known = _ORDER[id(cert_type)] = (cert_type, tuple(sorted(field_specs(cert_type), key=path_key)))
    return known[1]


def _bound_key(bound: Any) -> str:
    if not isinstance(bound, str) or not _KEY_ID.fullmatch(bound):
        raise invalid(f"{HOLDER_KEY_FIELD} must be a holder key id (64 lower-case hex digits)",
                      HOLDER_KEY_FIELD, code="invalid_holder_key")
    return bound


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
            object.__setattr__(self, name, MappingProxyType({p: mapping[p] for p in sorted(mapping, key=path_key)}))

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

        A bound certificate (issue 15) has one more field, ``holderKeyDigest`` (`HOLDER_KEY_FIELD`): the holder
        key id, 64 lower-case hex digits (registry/holders/keys.py); it is a leaf like the others, so the
        anchored digest covers it.
        """
        values = dict(values) if isinstance(values, Mapping) else values
        bound = values.pop(HOLDER_KEY_FIELD, None) if isinstance(values, dict) else None
        cid, norm = validated_values(cert_type, values, identifier)
        return cls.from_validated(cert_type, cid, norm, salts=salts, rng=rng, bound=bound)

    @classmethod
    def from_validated(
        cls,
        cert_type: CertificateType,
        cid: CertificateId,
        norm: Mapping[str, JsonValue],
        *,
        salts: Mapping[str, bytes | str] | None = None,
        rng: Any = secrets,
        bound: Any = None,
    ) -> Document:
        """The document of values `validated_values` returned (``create`` is both steps; the issuing
        service times them apart), bound to the holder key id ``bound`` when given."""
        if not salts:
            return cls.issued(cert_type, cid, norm, rng=rng, bound=bound, encode=False)[0]
        specs = dict(field_specs(cert_type))
        if bound is not None:
            norm = {**norm, HOLDER_KEY_FIELD: _bound_key(bound)}
            specs[HOLDER_KEY_FIELD] = specs[ID_FIELD]  # only its presence matters below
        salts = dict(salts)
        extra = sorted(set(salts) - set(specs), key=path_key)
        if extra:
            raise invalid(f"salt given for unknown field {extra[0]!r}", extra[0], code="unknown_field")
        draw = getattr(rng, "token_bytes", None) or rng.randbytes
        fields: dict[str, DisclosedField] = {}
        entries: list[bytes] = []
        for name in sorted(specs, key=path_key):
            salt = salts.get(name)
            salt_raw = salt_bytes(salt, name) if salt is not None else draw(SALT_SIZE)
            value = norm[name]
            fields[name] = DisclosedField(salt=salt_raw, value=value)
            entries.append(leaf_entry(name, salt_raw, value))
        return cls(identifier=str(cid), type_code=cert_type.code, fields=fields, hidden={},
                   digest_sha256=merkle.merkle_root(entries),
                   digest_sm3=merkle.merkle_root(entries, algorithm="sm3"), salt_seed=None)

    @classmethod
    def issued(
        cls,
        cert_type: CertificateType,
        cid: CertificateId,
        norm: Mapping[str, JsonValue],
        *,
        rng: Any = secrets,
        bound: Any = None,
        encode: bool = True,
    ) -> tuple[Document, bytes | None]:
        """A new document of validated values (one ``salt_seed`` drawn from ``rng``, every salt derived from
        it) and, with ``encode``, its compact JSON in UTF-8: byte for byte ``json.dumps(doc.to_json(),
        ensure_ascii=False, separators=(",", ":")).encode()``, made from the texts the leaf entries are made
        of (the hot path of issuing: thousands of documents per request; tests/unit/test_hot_path.py)."""
        names = _tree_order(cert_type)
        if bound is not None:
            norm = {**norm, HOLDER_KEY_FIELD: _bound_key(bound)}
            names = tuple(sorted((*names, HOLDER_KEY_FIELD), key=path_key))
        draw = getattr(rng, "token_bytes", None) or rng.randbytes
        seed = draw(SALT_SEED_SIZE)
        # One pass in tree order (in C when built: registry.certificates.fields.document_roots): each leaf entry
        # is made once and hashed once per algorithm, and the document's JSON shares each field's text with its
        # entry; the document is built once with its digests.
        salts = derive_salts(seed, names)
        values = [norm[name] for name in names]
        roots = document_roots(names, salts, values, fields_json=encode)
        d256, dsm3, fields_text = cast(bytes, roots[0]), cast(bytes, roots[1]), roots[2]
        fields = dict(zip(names, map(DisclosedField, salts, values), strict=True))
        doc = cls._in_tree_order(str(cid), cert_type.code, fields, d256, dsm3, seed)
        if not encode:
            return doc, None
        if fields_text is None:  # a value that is no plain JSON text (never from FieldSpec.normalise)
            return doc, json.dumps(doc.to_json(), ensure_ascii=False, separators=(",", ":")).encode()
        return doc, b"".join((
            f'{{"format":"{FORMAT_ID}","identifier":{_json_str(doc.identifier)},"type":{_json_str(doc.type_code)},'
            '"fields":{'.encode(), fields_text,
            f'}},"hidden":{{}},"digest":{{"sha256":"{d256.hex()}","sm3":"{dsm3.hex()}"}},"anchor":null,'
            f'"salt_seed":"{seed.hex()}"}}'.encode()))

    @classmethod
    def _in_tree_order(cls, identifier: str, type_code: str, fields: dict[str, DisclosedField], d256: bytes,
                       dsm3: bytes, seed: bytes) -> Document:
        # what __init__ makes of fields already in tree order, without sorting them again
        doc = object.__new__(cls)
        for name, value in (("identifier", identifier), ("type_code", type_code), ("fields", MappingProxyType(fields)),
                            ("hidden", _NO_HIDDEN), ("digest_sha256", d256), ("digest_sm3", dsm3), ("anchor", None),
                            ("salt_seed", seed)):
            object.__setattr__(doc, name, value)
        return doc

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | str | bytes) -> Document:
        """Parse a ``lianzheng/cert/1`` document; PayloadFormatError(code="invalid_document") on any problem."""
        return parse_document(obj, cls)

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
        return sorted({*self.fields, *self.hidden}, key=path_key)

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
        """(SHA-256 root, SM3 root) recomputed from the fields (`document_roots`: one call, in C when built)."""
        paths, fields, hidden = self.paths, self.fields, self.hidden
        shown = [fields.get(p) for p in paths]
        hid = [hidden.get(p) for p in paths]
        d256, dsm3, _ = document_roots(
            paths, [f.salt if f is not None else None for f in shown],
            [f.value if f is not None else None for f in shown],
            [h.sha256 if h is not None else None for h in hid], [h.sm3 if h is not None else None for h in hid])
        return cast(bytes, d256), cast(bytes, dsm3)

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
        for name, expected in ((ID_FIELD, self.identifier), (TYPE_FIELD, cid.type_code), (ISSUER_FIELD, cid.issuer_uscc)):
            if name in self.fields and self.fields[name].value != expected:
                errors.append(f"field {name} is {self.fields[name].value!r}, the header says {expected!r}")
        if ID_FIELD not in self.fields:
            errors.append(f"field {ID_FIELD} must be shown, it is {'hidden' if ID_FIELD in self.hidden else 'missing'}")
        return errors

    def salt_seed_errors(self) -> list[str]:
        """One message per field whose salt does not derive from ``salt_seed`` (empty without a seed)."""
        if self.salt_seed is None:
            return []
        paths = list(self.fields)
        return [f"field {p}: salt does not derive from salt_seed"
                for p, salt in zip(paths, derive_salts(self.salt_seed, paths), strict=True) if self.fields[p].salt != salt]

    # --- disclosure and anchoring ---------------------------------------------------------------------

    def disclose(self, hide: Iterable[str]) -> Document:
        """A copy with the ``hide`` fields replaced by their leaf hashes; the digests stay the same.

        The copy never carries the ``salt_seed``: every salt derives from it, so whoever had the seed could
        recompute a hidden field's salt and test guesses of its value (性别, 出生日期, a holder code with a
        check digit are only a few thousand guesses) against the hidden leaf hash. Shown fields keep their
        salts, which verify the digest without the seed.
        """
        hide = set(hide)
        if ID_FIELD in hide:
            raise ValidationError(f"field {ID_FIELD} cannot be hidden: it binds the document to its identifier",
                                  code="invalid_disclosure", details={"field": ID_FIELD})
        if HOLDER_KEY_FIELD in hide:
            raise ValidationError(f"field {HOLDER_KEY_FIELD} cannot be hidden: verifiers need it to check that the "
                                  "holder presents the certificate", code="invalid_disclosure",
                                  details={"field": HOLDER_KEY_FIELD})
        unknown = sorted(hide - set(self.paths), key=path_key)
        if unknown:
            raise invalid(f"cannot hide {unknown[0]!r}: the document has no such field", unknown[0],
                          code="unknown_field")
        fields = {p: f for p, f in self.fields.items() if p not in hide}
        hidden = dict(self.hidden)
        for p in sorted(hide & set(self.fields), key=path_key):
            h256, hsm3 = self._visible_leaf(p)
            hidden[p] = HiddenField(sha256=h256, sm3=hsm3)
        return dataclasses.replace(self, fields=fields, hidden=hidden, salt_seed=None)

    def with_anchor(self, proof: AnchorProof | None) -> Document:
        """Attach (or with None, remove) the batch anchor; the proof must include this document's digest (and,
        when it has an SM3 path, its SM3 digest in the SM3 tree)."""
        if proof is not None and not proof.includes(self.digest_sha256):
            raise ProofError(
                f"anchor proof does not place document digest {to_hex(self.digest_sha256)} at index "
                f"{proof.index} of batch root {to_hex(proof.batch_root)} (size {proof.size})",
                code="invalid_anchor_proof",
            )
        if proof is not None and proof.sm3_root is not None and not proof.includes_sm3(self.digest_sm3):
            raise ProofError(
                f"anchor proof does not place the SM3 digest {to_hex(self.digest_sm3)} at index {proof.index} of "
                f"the SM3 batch root {to_hex(proof.sm3_root)} (size {proof.size})",
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
        return self._shown_date(FROM_FIELD)

    @property
    def valid_until(self) -> dt.date | None:
        """None when the certificate never expires or the field is hidden."""
        return self._shown_date(UNTIL_FIELD)

    @property
    def issue_date(self) -> dt.date | None:
        return self._shown_date("颁发日期")

    @property
    def holder_name(self) -> str | None:
        v = self._shown("持证主体")
        return v if isinstance(v, str) else None

    @property
    def holder_code(self) -> str | None:
        v = self._shown(HOLDER_CODE_FIELD)
        return v if isinstance(v, str) else None

    @property
    def holder_key_digest(self) -> str | None:
        """The holder key id of a bound certificate (None: not bound, or the field is hidden)."""
        v = self._shown(HOLDER_KEY_FIELD)
        return v if isinstance(v, str) else None

    @property
    def bound(self) -> bool:
        return HOLDER_KEY_FIELD in self.fields or HOLDER_KEY_FIELD in self.hidden

    @property
    def holder_code_type(self) -> str | None:
        v = self._shown(HOLDER_TYPE_FIELD)
        return v if isinstance(v, str) else None
