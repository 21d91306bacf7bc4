"""Bootstrap data: the consortium of Heilongjiang agencies, certificate types, evidence types and the data
catalogue, loaded from ``seeds/*.yaml`` and checked as a whole (valid USCCs, unique codes, issuers and
providers are members, type codes start with the defining authority's USCC).

Keys, accounts and BIDs are not seeds: they are generated when the consortium is seeded.

>>> from pathlib import Path
>>> seeds = load_seeds(Path("seeds"))
>>> seeds.genesis.short_name
'省政务服务局'
>>> seeds.certificate_type(seeds.certificate_types[0].code).name
'营业执照'
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from registry.certificates.common_fields import COMMON_FIELD_NAMES
from registry.errors import NotFoundError, ValidationError
from registry.identifiers import validate_uscc
from registry.validation import UnsafeTextError, plain_text, unsafe_characters

__all__ = [
    "CatalogueItem",
    "CertificateType",
    "FieldSpec",
    "FieldType",
    "JsonValue",
    "Role",
    "SeedMember",
    "Seeds",
    "is_utf8_encodable",
    "load_seeds",
]

Role = Literal["admin", "issuer", "revoker", "evidence", "exchange", "auditor", "gateway"]
FieldType = Literal["string", "integer", "date", "boolean", "decimal"]
JsonValue = str | int | bool | None

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
_REGION = r"^[1-8][0-9]{5}$"  # GB/T 2260 administrative division code
_MAX_SAFE_INT = 2**53 - 1  # RFC 8785 §3.2.2.3: integers beyond I-JSON's range cannot be canonicalised


def _uscc(value: str) -> str:
    return validate_uscc(value)  # raises registry ValidationError, a ValueError pydantic reports


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class FieldSpec(_Frozen):
    """One field of a certificate: its Chinese name (the document path), type and constraints."""

    name: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    type: FieldType
    required: bool = True
    max_length: int | None = Field(default=None, gt=0)
    pattern: str | None = None
    minimum: int | None = None  # integer and decimal fields: the smallest value allowed (注册资本 >= 0)
    maximum: int | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern {value!r} is not a regular expression: {exc}") from None
        return value

    @functools.cached_property
    def regex(self) -> re.Pattern[str] | None:
        """`pattern`, compiled once: ``re.fullmatch(pattern, ...)`` looks it up in re's cache at every call
        (0.33 against 0.15 us, for ~12 fields of every issued document)."""
        return None if self.pattern is None else re.compile(self.pattern)

    def _invalid(self, problem: str) -> ValidationError:
        return ValidationError(f"field {self.name} ({self.name_en}) {problem}", code="invalid_field",
                               details={"field": self.name})

    def normalise(self, value: Any) -> JsonValue:
        """Check ``value`` against this spec and return its JSON form (dates and decimals become strings).

        ``None`` means absent: allowed only when the field is not required.
        """
        if value is None:
            if self.required:
                raise ValidationError(f"field {self.name} ({self.name_en}) is required", code="missing_field",
                                      details={"field": self.name})
            return None
        checker = _CHECKERS[self.type]
        result = checker(self, value)
        if isinstance(result, str):
            if self.max_length is not None and len(result) > self.max_length:
                raise self._invalid(f"is {len(result)} characters long, at most {self.max_length} allowed")
            regex = self.regex
            if regex is not None and not regex.fullmatch(result):
                raise self._invalid(f"value {result[:40]!r} does not match pattern {self.pattern}")
        return result


def _check_string(spec: FieldSpec, value: Any) -> JsonValue:
    if not isinstance(value, str):
        raise spec._invalid(f"must be a string, got {type(value).__name__}")
    if plain_text(value):  # nearly all values: nothing below would find anything
        return value
    if not is_utf8_encodable(value):
        raise spec._invalid("contains a lone surrogate, which RFC 8785 cannot canonicalise")
    found = unsafe_characters(value)
    if found:  # registry/validation.py says why: NUL, ANSI escapes, bidi overrides change what a reader sees
        raise UnsafeTextError(f"field {spec.name} ({spec.name_en}) contains characters that are not allowed "
                              f"(control or bidirectional formatting): {', '.join(found[:5])}",
                              details={"field": spec.name, "characters": found[:20]})
    return value


def _check_range(spec: FieldSpec, number: decimal.Decimal | int, shown: JsonValue) -> JsonValue:
    if spec.minimum is not None and number < spec.minimum:
        raise spec._invalid(f"must be at least {spec.minimum}, got {shown}")
    if spec.maximum is not None and number > spec.maximum:
        raise spec._invalid(f"must be at most {spec.maximum}, got {shown}")
    return shown


def is_utf8_encodable(text: str) -> bool:
    """False for a text with a lone surrogate (no UTF-8 encoding, so no RFC 8785 canonical form)."""
    if text.isascii():  # most texts: no surrogate, nothing to encode
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_integer(spec: FieldSpec, value: Any) -> JsonValue:
    if isinstance(value, bool) or not isinstance(value, int):
        raise spec._invalid(f"must be an integer, got {type(value).__name__}")
    if abs(value) > _MAX_SAFE_INT:
        raise spec._invalid(f"must be within ±(2**53 - 1) (RFC 8785), got {value}")
    return _check_range(spec, value, value)


def _check_boolean(spec: FieldSpec, value: Any) -> JsonValue:
    if not isinstance(value, bool):
        raise spec._invalid(f"must be true or false, got {type(value).__name__}")
    return value


def _check_date(spec: FieldSpec, value: Any) -> JsonValue:
    if isinstance(value, dt.datetime):
        raise spec._invalid("must be a date (yyyy-mm-dd), got a datetime")
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise spec._invalid(f"must be a date yyyy-mm-dd, got {value!r}")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise spec._invalid(f"is not a calendar date: {value!r}") from None
    return value


def _check_decimal(spec: FieldSpec, value: Any) -> JsonValue:
    if isinstance(value, float):
        raise spec._invalid("must be a decimal string such as '12.50', not a float (floats do not round-trip)")
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise spec._invalid(f"must be a finite decimal, got {value}")
        value = format(value, "f")
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        raise spec._invalid(f"must be a decimal string such as '12.50', got {value!r}")
    return _check_range(spec, decimal.Decimal(value), value)


_CHECKERS: dict[str, Callable[[FieldSpec, Any], JsonValue]] = {
    "string": _check_string,
    "integer": _check_integer,
    "boolean": _check_boolean,
    "date": _check_date,
    "decimal": _check_decimal,
}


class SeedMember(_Frozen):
    """A consortium member (an agency); its keys and BID are generated at seed time."""

    uscc: str
    name: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    short_name: str = Field(min_length=1)
    region: str = Field(pattern=_REGION)
    roles: tuple[Role, ...] = Field(min_length=1)
    genesis: bool = False
    revoker_delegates: tuple[str, ...] = ()

    @field_validator("uscc")
    @classmethod
    def _uscc_valid(cls, value: str) -> str:
        return _uscc(value)

    @field_validator("revoker_delegates")
    @classmethod
    def _delegates_valid(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_uscc(v) for v in value)

    @field_validator("roles")
    @classmethod
    def _roles_unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"roles must not repeat, got {list(value)}")
        return value

    def has_role(self, role: Role) -> bool:
        return role in self.roles


class CertificateType(_Frozen):
    """A kind of e-certificate: who defines it, who may issue it, and its type-specific fields."""

    code: str = Field(pattern=r"^[0-9A-Z]{18}[0-9]{3}$")
    name: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    authority: str
    issuers: tuple[str, ...] = Field(min_length=1)
    holder_code_type: Literal["001", "111"]
    validity_years: int | None = Field(default=None, gt=0, le=100)
    fields: tuple[FieldSpec, ...] = Field(min_length=1)

    @field_validator("authority")
    @classmethod
    def _authority_valid(cls, value: str) -> str:
        return _uscc(value)

    @field_validator("issuers")
    @classmethod
    def _issuers_valid(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_uscc(v) for v in value)

    @model_validator(mode="after")
    def _consistent(self) -> CertificateType:
        if not self.code.startswith(self.authority):
            raise ValueError(f"code {self.code} must start with the authority's USCC {self.authority}")
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"field names must be unique, repeated: {', '.join(dupes)}")
        clash = sorted(set(names) & set(COMMON_FIELD_NAMES))
        if clash:
            raise ValueError(f"type-specific fields repeat common metadata fields: {', '.join(clash)}")
        return self

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise NotFoundError(f"certificate type {self.name} has no field {name!r}", code="unknown_field")


class EvidenceType(_Frozen):
    """A kind of evidence (区块链+法治 scenarios: 行政执法, 刑罚执行, 公证)."""

    code: str = Field(pattern=r"^[A-Z]{2,4}-[0-9]{3}$")
    name: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    scenario: Literal["行政执法", "刑罚执行", "公证"]
    scenario_en: str = Field(min_length=1)
    media_types: tuple[str, ...] = Field(min_length=1)
    legal_basis: str = Field(min_length=1)
    description: str | None = None

    @field_validator("media_types")
    @classmethod
    def _media_types_well_formed(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for mt in value:
            if not re.fullmatch(r"[a-z]+/[a-z0-9.+-]+", mt):
                raise ValueError(f"media type must look like type/subtype, got {mt!r}")
        return value


class CatalogueItem(_Frozen):
    """A data catalogue item (数据共享交换目录) a provider shares with other agencies."""

    code: str = Field(pattern=r"^[0-9A-Z]{2,8}-[0-9]{3,6}$")
    name: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    provider: str
    fields: tuple[str, ...] = Field(min_length=1)
    share_condition: Literal["无条件共享", "有条件共享", "不予共享"]
    update_cycle: str | None = None

    @field_validator("provider")
    @classmethod
    def _provider_valid(cls, value: str) -> str:
        return _uscc(value)


_T = TypeVar("_T")


def _lookup(items: tuple[_T, ...], key: Callable[[_T], str], wanted: str, what: str, code: str) -> _T:
    for item in items:
        if key(item) == wanted:
            return item
    raise NotFoundError(f"no {what} {wanted!r} in the seeds", code=code, details={"key": wanted})


class Seeds(_Frozen):
    """Everything in ``seeds/``, cross-checked."""

    threshold: int = Field(ge=1)
    proposal_ttl_seconds: int = Field(gt=0)
    members: tuple[SeedMember, ...]
    certificate_types: tuple[CertificateType, ...]
    evidence_types: tuple[EvidenceType, ...]
    catalogue: tuple[CatalogueItem, ...]

    @property
    def genesis(self) -> SeedMember:
        return next(m for m in self.members if m.genesis)

    def member(self, uscc: str) -> SeedMember:
        return _lookup(self.members, lambda m: m.uscc, uscc, "consortium member", "unknown_member")

    def members_with_role(self, role: Role) -> tuple[SeedMember, ...]:
        return tuple(m for m in self.members if role in m.roles)

    def certificate_type(self, code: str) -> CertificateType:
        return _lookup(self.certificate_types, lambda t: t.code, code, "certificate type", "unknown_certificate_type")

    def evidence_type(self, code: str) -> EvidenceType:
        return _lookup(self.evidence_types, lambda t: t.code, code, "evidence type", "unknown_evidence_type")

    def catalogue_item(self, code: str) -> CatalogueItem:
        return _lookup(self.catalogue, lambda c: c.code, code, "catalogue item", "unknown_catalogue_item")


# --- loading ------------------------------------------------------------------------------------------------


def _seed_error(file: str, entry: str, message: str) -> ValidationError:
    return ValidationError(f"{file} {entry}: {message}", code="invalid_seed", details={"file": file, "entry": entry})


# libyaml's parser under the safe constructor: the same values as yaml.safe_load, ~10x faster (every node, test
# and command reads the seeds when it opens)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(directory: Path, name: str, keys: set[str]) -> dict[str, Any]:
    path = directory / name
    try:
        with path.open(encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=_SAFE_LOADER)
    except FileNotFoundError:
        raise _seed_error(name, "(file)", f"missing: expected {path}") from None
    except yaml.YAMLError as exc:
        raise _seed_error(name, "(file)", f"is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise _seed_error(name, "(file)", f"must hold a mapping at top level, got {type(data).__name__}")
    unknown = sorted(set(data) - keys)
    if unknown:
        raise _seed_error(name, "(file)", f"unknown top-level keys {unknown}, expected {sorted(keys)}")
    return data


def _entries(data: dict[str, Any], file: str, key: str) -> list[Any]:
    items = data.get(key)
    if not isinstance(items, list) or not items:
        raise _seed_error(file, key, "must be a non-empty list")
    return items


def _label(raw: Any, index: int, key: str) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"{key}[{index}]" + (f" ({name})" if isinstance(name, str) else "")


def _parse(model: type[_T], raw: Any, file: str, entry: str) -> _T:
    try:
        return model.model_validate(raw)  # type: ignore[attr-defined, no-any-return]
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(entry)'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise _seed_error(file, entry, problems) from None


def _parse_list(model: type[_T], data: dict[str, Any], file: str, key: str, id_attr: str) -> tuple[_T, ...]:
    parsed: list[_T] = []
    seen: dict[str, str] = {}
    for i, raw in enumerate(_entries(data, file, key)):
        entry = _label(raw, i, key)
        item = _parse(model, raw, file, entry)
        ident = getattr(item, id_attr)
        if ident in seen:
            raise _seed_error(file, entry, f"{id_attr} {ident} repeats {seen[ident]}")
        seen[ident] = entry
        parsed.append(item)
    return tuple(parsed)


def load_seeds(directory: Path) -> Seeds:
    """Read and cross-check ``consortium.yaml``, ``certificate_types.yaml``, ``evidence_types.yaml`` and
    ``catalogue.yaml`` in ``directory``; raise ValidationError(code="invalid_seed") naming file and entry."""
    directory = Path(directory)
    consortium = _read_yaml(directory, "consortium.yaml", {"threshold", "proposal_ttl_seconds", "members"})
    members = _parse_list(SeedMember, consortium, "consortium.yaml", "members", "uscc")
    by_uscc = {m.uscc: m for m in members}
    file = "consortium.yaml"

    genesis = [m for m in members if m.genesis]
    if len(genesis) != 1:
        raise _seed_error(file, "members", f"exactly one member must have genesis: true, found {len(genesis)}")
    admins = [m for m in members if "admin" in m.roles]
    for key in ("threshold", "proposal_ttl_seconds"):
        if isinstance(consortium.get(key), bool) or not isinstance(consortium.get(key), int):
            raise _seed_error(file, key, f"must be an integer, got {consortium.get(key)!r}")
    if not 1 <= consortium["threshold"] <= len(admins):
        raise _seed_error(file, "threshold",
                          f"must be between 1 and the {len(admins)} admins, got {consortium['threshold']}")
    for i, m in enumerate(members):
        for d in m.revoker_delegates:
            delegate = by_uscc.get(d)
            if delegate is None or d == m.uscc or "revoker" not in delegate.roles:
                raise _seed_error(file, f"members[{i}] ({m.name})",
                                  f"revoker delegate {d} must be another member with the revoker role")

    file = "certificate_types.yaml"
    raw = _read_yaml(directory, file, {"certificate_types"})
    types = _parse_list(CertificateType, raw, file, "certificate_types", "code")
    for i, t in enumerate(types):
        if t.authority not in by_uscc:
            raise _seed_error(file, f"certificate_types[{i}] ({t.name})", f"authority {t.authority} is not a member")
        for u in t.issuers:
            if u not in by_uscc or "issuer" not in by_uscc[u].roles:
                raise _seed_error(file, f"certificate_types[{i}] ({t.name})",
                                  f"issuer {u} must be a member with the issuer role")

    file = "evidence_types.yaml"
    raw = _read_yaml(directory, file, {"evidence_types"})
    evidence = _parse_list(EvidenceType, raw, file, "evidence_types", "code")

    file = "catalogue.yaml"
    catalogue = _parse_list(CatalogueItem, _read_yaml(directory, file, {"items"}), file, "items", "code")
    for i, c in enumerate(catalogue):
        if c.provider not in by_uscc:
            raise _seed_error(file, f"items[{i}] ({c.name})", f"provider {c.provider} is not a member")

    return Seeds(
        threshold=consortium["threshold"],
        proposal_ttl_seconds=consortium["proposal_ttl_seconds"],
        members=members,
        certificate_types=types,
        evidence_types=evidence,
        catalogue=catalogue,
    )
