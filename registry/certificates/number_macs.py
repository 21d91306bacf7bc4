"""The keyed MACs by which issuing finds a certificate already issued (registry/certificates/idempotency.py):
one of its 证照编号 (per type and issuer), one of the values its issuer gave. Pure functions, no database: the
processes that build documents in parallel (registry/certificates/parallel.py) compute them too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from registry.certificates.documents import Document

__all__ = ["NUMBER_FIELD", "document_macs", "stable_json"]

NUMBER_FIELD = "证照编号"


def stable_json(obj: Any) -> bytes:
    """Request bodies are JSON already; sorted keys and ASCII escapes make equal bodies equal bytes."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=str).encode()


def _given_values(doc: Document, given: Mapping[str, Any]) -> bytes:
    # The normalised form of what the caller gave (holder codes in capitals, dates as text): "the same
    # values" is judged on them, not on defaults such as 颁发日期 = today.
    fields = doc.fields
    return stable_json({k: fields[k].value for k, v in given.items() if v is not None and k in fields})  # keys sorted


def document_macs(mac: Callable[[str, bytes], str], agency: str, type_code: str, doc: Document,
                  given: Mapping[str, Any]) -> tuple[str, str]:
    """The MACs of a document's 证照编号 and of the values its issuer gave (`KeyStore.mac` or `MacKey.mac`)."""
    number = str(doc.fields[NUMBER_FIELD].value)
    return (mac("certificate-number", f"{type_code}\x00{agency}\x00{number}".encode()),
            mac("certificate-values", _given_values(doc, given)))
