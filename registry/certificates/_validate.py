"""Validation of the values an agency submits for one certificate (`Document.create`).

Each field is checked against its spec (registry.seeds.FieldSpec.normalise: type, length, pattern), then
the rules that span fields (issuer allowed for the type, holder code valid for its code type, validity
window). Every refusal is a ValidationError naming the field in ``details["field"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stdnum import exceptions as stdnum_exc
from stdnum.cn import ric

from registry.certificates.fields import (
    COMMON_FIELDS,
    FROM_FIELD,
    HOLDER_CODE_FIELD,
    HOLDER_TYPE_FIELD,
    ID_FIELD,
    ISSUER_FIELD,
    SALT_SIZE,
    TYPE_FIELD,
    UNTIL_FIELD,
    path_key,
)
from registry.errors import ValidationError
from registry.identifiers import CertificateId, validate_uscc
from registry.seeds import CertificateType, FieldSpec, JsonValue

__all__ = ["field_specs", "invalid", "salt_bytes", "validated_values"]


def invalid(message: str, field_name: str, code: str = "invalid_field") -> ValidationError:
    return ValidationError(message, code=code, details={"field": field_name})


def field_specs(cert_type: CertificateType) -> dict[str, FieldSpec]:
    """The common and type-specific fields of ``cert_type`` by name."""
    return {s.name: s for s in (*COMMON_FIELDS, *cert_type.fields)}


def validated_values(cert_type: CertificateType, values: Mapping[str, Any],
                     identifier: str | CertificateId) -> tuple[CertificateId, dict[str, JsonValue]]:
    """The parsed identifier and the normalised value of every field of ``cert_type`` (None when absent).
    ``identifier`` is the text to parse, or the CertificateId the issuing service has just built (checked when
    it was built: not parsed again from its own text).

    ``证照标识``, ``证照名称``, ``证照类型代码``, ``颁发机构代码`` and ``持证主体代码类型`` default from the
    identifier and type; when given they must agree.
    """
    if isinstance(identifier, CertificateId):
        cid = identifier
    else:
        try:
            cid = CertificateId.parse(identifier)
        except ValidationError as exc:
            raise invalid(exc.message, ID_FIELD, code="invalid_identifier") from None
    if cid.type_code != cert_type.code:
        raise invalid(f"identifier {cid} is for type {cid.type_code}, expected {cert_type.code} "
                      f"({cert_type.name})", ID_FIELD, code="invalid_identifier")
    if not isinstance(values, Mapping):
        raise ValidationError(f"certificate values must be an object, got {type(values).__name__}",
                              code="invalid_document")
    specs = field_specs(cert_type)
    unknown = sorted((str(k) for k in set(values) - set(specs)), key=path_key)
    if unknown:
        raise invalid(f"{cert_type.name} has no field {unknown[0]!r} (unknown: {', '.join(unknown)})",
                      unknown[0], code="unknown_field")
    given = dict(values)
    for name, implied in ((ID_FIELD, str(cid)), ("证照名称", cert_type.name), (TYPE_FIELD, cert_type.code),
                          (ISSUER_FIELD, cid.issuer_uscc), (HOLDER_TYPE_FIELD, cert_type.holder_code_type)):
        if given.get(name) is None:
            given[name] = implied
        elif given[name] != implied:
            raise invalid(f"field {name} is {given[name]!r}, expected {implied!r} for {cid}", name)
    norm = {name: spec.normalise(given.get(name)) for name, spec in specs.items()}
    check_cross_fields(cert_type, norm)
    return cid, norm


def salt_bytes(salt: bytes | str, name: str) -> bytes:
    if isinstance(salt, str):
        try:
            salt = bytes.fromhex(salt)
        except ValueError:
            raise invalid(f"salt for {name} is not hex", name, code="invalid_salt") from None
    if not isinstance(salt, (bytes, bytearray)) or len(salt) != SALT_SIZE:
        found = len(salt) if isinstance(salt, (bytes, bytearray)) else type(salt).__name__
        raise invalid(f"salt for {name} must be {SALT_SIZE} bytes, got {found}", name, code="invalid_salt")
    return bytes(salt)


def check_cross_fields(cert_type: CertificateType, norm: dict[str, JsonValue]) -> None:
    """Rules spanning fields; writes the holder code back in its compact form (capitals, no separators)."""
    issuer = norm[ISSUER_FIELD]
    if issuer not in cert_type.issuers:
        raise invalid(f"{issuer} may not issue {cert_type.name}: allowed issuers are "
                      f"{', '.join(cert_type.issuers)}", ISSUER_FIELD)
    code = norm[HOLDER_CODE_FIELD]
    assert isinstance(code, str)
    if cert_type.holder_code_type == "001":
        try:
            norm[HOLDER_CODE_FIELD] = validate_uscc(code)
        except ValidationError as exc:
            raise invalid(f"持证主体代码 must be a USCC for {cert_type.name}: {exc.message}", HOLDER_CODE_FIELD) from None
    else:
        try:
            norm[HOLDER_CODE_FIELD] = ric.validate(code)  # GB 11643: length, check digit, birth date and place
        except stdnum_exc.ValidationError as exc:
            raise invalid(f"持证主体代码 {code!r} is not a valid resident identity number (GB 11643): "
                          f"{exc}", HOLDER_CODE_FIELD) from None
    start, until = norm[FROM_FIELD], norm[UNTIL_FIELD]
    if until is None and cert_type.validity_years is not None:
        raise ValidationError(f"{cert_type.name} is valid for {cert_type.validity_years} years: "
                              f"{UNTIL_FIELD} is required", code="missing_field", details={"field": UNTIL_FIELD})
    if isinstance(start, str) and isinstance(until, str) and until < start:
        raise invalid(f"{UNTIL_FIELD} {until} is before {FROM_FIELD} {start}", UNTIL_FIELD)
