"""Sealing (用章): issuing records under one of the issuing agency's seals. `prepare` decides, before anything
is stored, whether the seal may be used now — the agency's own, registered on chain, Active there, inside its
validity — and opens its key; `store` writes one sealed signature per document in the caller's unit of work
(so a refused issue stores nothing, and an issue stores its documents and their seals together).

    >>> sealer = Sealer(node, index)                                              # doctest: +SKIP
    >>> ready = sealer.prepare("11230000MB1A0001XX", "ES11230000MB1A0001XX0001")  # doctest: +SKIP
    >>> sealer.store(session, ready, [(identifier, sha256, sm3)])                  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.orm import Session

from registry.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from registry.node import Node
from registry.seals.index import SealIndex
from registry.seals.keys import SealKey, load_key
from registry.seals.structures import make_sealed_signature
from registry.store.seal_models import SealedSignature, SealRow

__all__ = ["ReadySeal", "Sealer"]


@dataclass(frozen=True)
class ReadySeal:
    seal_id: str
    seseal: bytes
    key: SealKey


class Sealer:
    def __init__(self, node: Node, index: SealIndex, *,
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.node = node
        self.index = index
        self.now = now

    def prepare(self, agency: str, seal_id: str) -> ReadySeal:
        """The seal, ready to seal with; a clear refusal otherwise (unknown, another agency's, not on chain
        yet, suspended, revoked, expired or not yet valid)."""
        if not isinstance(seal_id, str) or not 1 <= len(seal_id) <= 64:
            raise ValidationError("seal must be a seal id (ES...)", code="invalid_seal_id")
        with self.node.db.session() as s:
            row = s.get(SealRow, seal_id)
            if row is None:
                raise NotFoundError(f"no seal {seal_id} on this node", code="unknown_seal")
            if row.agency_uscc != agency:
                raise PermissionDeniedError(f"seal {seal_id} belongs to {row.agency_uscc}: an agency seals only "
                                            f"with its own seals", code="foreign_seal")
            key_blob, algorithm, seseal, key = row.key_blob, row.key_algorithm, row.seseal, row.key
        self.index.refresh()
        history = self.index.seal(key)
        if history is None:
            raise ConflictError(f"seal {seal_id} is not on chain yet; retry shortly", code="seal_not_registered")
        if history.agency_uscc != agency:  # the chain is authoritative
            raise PermissionDeniedError(f"seal {seal_id} is registered to {history.agency_uscc} on chain",
                                        code="foreign_seal")
        if history.status != "active":
            raise ConflictError(f"seal {seal_id} is {history.status}: sealing with it is refused",
                                code=f"seal_{history.status}", details={"status": history.status})
        now = int(self.now().timestamp())
        if now >= history.valid_until:
            raise ConflictError(f"seal {seal_id} expired at {_iso(history.valid_until)}", code="seal_expired",
                                details={"valid_until": _iso(history.valid_until)})
        if now < history.valid_from:
            raise ConflictError(f"seal {seal_id} is valid from {_iso(history.valid_from)}",
                                code="seal_not_yet_valid", details={"valid_from": _iso(history.valid_from)})
        secret = self.node.keys.open_secret(key_blob, f"seal:{seal_id}".encode())
        return ReadySeal(seal_id, seseal, load_key(algorithm, secret))

    def store(self, s: Session, ready: ReadySeal, docs: Sequence[tuple[str, bytes, bytes]],
              *, kind: str = "certificate") -> None:
        """One sealed signature per (identifier, SHA-256 digest, SM3 digest), in the caller's session."""
        when = self.now().astimezone(dt.UTC).replace(microsecond=0)
        rows = []
        for identifier, sha256, sm3 in docs:
            fmt, data = make_sealed_signature(ready.seseal, ready.key, identifier, sha256, sm3, when)
            rows.append({"record_kind": kind, "record_id": identifier, "seal_id": ready.seal_id, "format": fmt,
                         "signature": data, "digest_sha256": sha256.hex(), "digest_sm3": sm3.hex(),
                         "created_at": when.replace(tzinfo=None)})
        if rows:
            s.execute(insert(SealedSignature), rows)


def _iso(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat().replace("+00:00", "Z")
