"""The GB/T 36905 common metadata fields every certificate has, as plain rows: (name, English name, type,
required, max length, pattern). registry.certificates.fields turns them into FieldSpecs; registry.seeds reads
the names to refuse a certificate type whose own fields repeat one. This module imports nothing of the
registry, so neither of those imports the other.
"""

from __future__ import annotations

__all__ = ["COMMON_FIELD_NAMES", "COMMON_FIELD_ROWS"]

# As used by provincial e-certificate integrations.
COMMON_FIELD_ROWS: tuple[tuple[str, str, str, bool, int | None, str | None], ...] = (
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
COMMON_FIELD_NAMES: tuple[str, ...] = tuple(row[0] for row in COMMON_FIELD_ROWS)
