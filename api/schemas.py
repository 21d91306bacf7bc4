"""What the OpenAPI document says about every operation, shared by the routers: the error body, the error
responses each kind of operation can give, and strict value types (no coercion: `"4"` is not 4, `true`
is not 1), so the schema accepts exactly what the server accepts wherever a schema can say it.

Every error is `{"error": {"code", "message", "details"}}` (api/errors.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from registry.certificates.idempotency import KEY_PATTERN

__all__ = ["AGENCY_ERRORS", "PUBLIC_ERRORS", "ErrorBody", "Identifier", "Limit", "Offset", "Strict", "Text"]


class Strict(BaseModel):
    """Request bodies: unknown keys refused, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable (snake_case)")
    message: str = Field(description="what was expected and what was found")
    details: dict[str, Any] = Field(description="e.g. the field, the index of the document, every invalid document")


class ErrorBody(BaseModel):
    error: ErrorDetail


_DESCRIPTIONS = {
    400: "bad request", 401: "no or unknown agency API key", 403: "the agency may not do this",
    404: "not found", 409: "conflicts with the current state", 413: "request body too large",
    422: "invalid input", 502: "the chain refused or failed", 503: "the chain is unreachable (the answer is unknown)",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ErrorBody, "description": _DESCRIPTIONS[c]} for c in codes}


PUBLIC_ERRORS = _errors(400, 404, 409, 413, 422, 502, 503)
AGENCY_ERRORS = _errors(400, 401, 403, 404, 409, 413, 422, 502, 503)

# -- value types -----------------------------------------------------------------------------------------

# Text that people write (purposes, reasons, descriptions): no control or bidirectional-formatting characters
# (registry/text.py says why). The pattern is what the OpenAPI shows; pydantic enforces the same.
# Tabs and line breaks stay allowed in these multi-line notes (certificate fields refuse them: registry/text.py).
_SAFE_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]*$"


def Text(max_length: int, *, min_length: int = 0, description: str | None = None) -> Any:  # noqa: N802 - a type
    return Annotated[StrictStr, Field(min_length=min_length, max_length=max_length, pattern=_SAFE_TEXT,
                                      description=description)]


# Where the registry checks a value itself and answers with a precise code (`invalid_digest`,
# `invalid_identifier`, `unknown_member` ...), the constraint is only *documented* here (json_schema_extra):
# pydantic would refuse first with the generic `invalid_request`. The OpenAPI still says what is accepted.
IDENTIFIER_PATTERN = r"^1\.2\.156\.3005\.2\.[0-9A-Z]{18}[0-9]{3}\.[0-9A-Z]{18}\.[0-9A-Z]{1,20}\.[0-9]{3}\.[0-9A-Z*]$"
_IDENTIFIER_SCHEMA = {"pattern": IDENTIFIER_PATTERN, "minLength": 1, "maxLength": 128}
Identifier = Annotated[StrictStr, Field(max_length=128, description="电子证照标识 (GB/T 36904)",
                                        json_schema_extra=_IDENTIFIER_SCHEMA)]
# In a list the pattern is enforced here: a malformed identifier there has no error code of its own
StrictIdentifier = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=IDENTIFIER_PATTERN,
                                              description="电子证照标识 (GB/T 36904)")]
IdentifierPath = Annotated[str, Path(max_length=128, description="电子证照标识 (GB/T 36904)",
                                     json_schema_extra=_IDENTIFIER_SCHEMA)]
USCC_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{18}$"
Uscc = Annotated[StrictStr, Field(max_length=40, description="统一社会信用代码 (GB 32100)",
                                  json_schema_extra={"pattern": USCC_PATTERN, "minLength": 18, "maxLength": 18})]
Digest = Annotated[StrictStr, Field(max_length=66, description="64 hex digits (an optional 0x prefix)",
                                    json_schema_extra={"pattern": r"^(0x)?[0-9a-fA-F]{64}$", "minLength": 64})]
TypeCode = Annotated[StrictStr, Field(min_length=21, max_length=21, pattern=r"^[0-9A-Z]{18}[0-9]{3}$",
                                      description="证照类型代码 (GET /api/v1/certificate-types)")]
FieldName = Annotated[StrictStr, Field(min_length=1, max_length=64)]
FieldValue = StrictStr | StrictInt | StrictBool | None
Fields = Annotated[dict[FieldName, FieldValue], Field(max_length=200, description="field values by Chinese field name")]
MAX_BATCH = 10_000  # the service refuses more with 413 batch_too_large (documented as maxItems)

# Every list endpoint: bounded so that no value can overflow a database integer.
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="entries to skip")]
Limit = Annotated[int, Query(ge=1, le=1000, description="entries to return")]

IdempotencyKeyHeader = Annotated[str | None, Field(min_length=16, max_length=128, pattern=KEY_PATTERN)]


def links(source: str, **targets: str) -> dict[str, dict[str, Any]]:
    """OpenAPI links (3.0 §4.7.20) from a created resource to the operations that take it: `targets` maps
    each operationId to its path parameter, filled from the response body's `source` field. They document
    the workflow, and a stateful fuzzer follows them (tests/e2e/test_fuzz_api.py)."""
    return {f"to_{op}": {"operationId": op, "parameters": {param: f"$response.body#/{source}"}}
            for op, param in targets.items()}
