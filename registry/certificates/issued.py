"""What the issuing agency receives for each certificate of a request (registry/certificates/service.py).

    >>> IssuedCertificate("1.2...", "pending", None, None, None, document_json=b'{"a":1}').body()
    {'a': 1}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

from registry.certificates.timing import StageTimer

__all__ = ["IssueResult", "IssuedCertificate"]


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate as its issuer receives it. `replayed`: issued before with the same 证照编号 and values;
    then the document, its key and QR URL are not known any more (the key was returned once, never stored)."""

    identifier: str
    status: str
    document: dict[str, Any] | None
    key: str | None
    qr_url: str | None
    replayed: bool = False
    # the document as compact JSON, when it was built just now (`document` is then None until `body()`):
    # encoded once, sealed and answered as these bytes (registry/certificates/parallel.py)
    document_json: bytes | None = field(default=None, repr=False, compare=False)

    def body(self) -> dict[str, Any] | None:
        """The document (None for a replayed certificate)."""
        if self.document is None and self.document_json is not None:
            return cast(dict[str, Any], json.loads(self.document_json))
        return self.document

    def answer(self) -> dict[str, Any]:
        """What an Idempotency-Key replays (`IssuedCertificate(**answer)`)."""
        return {"identifier": self.identifier, "status": self.status, "document": self.body(), "key": self.key,
                "qr_url": self.qr_url, "replayed": self.replayed}


@dataclass(frozen=True)
class IssueResult:
    certificates: list[IssuedCertificate]
    key_replayed: bool  # the first answer to this Idempotency-Key, replayed
    timer: StageTimer = field(default_factory=StageTimer)  # seconds per stage (registry/certificates/timing.py)
