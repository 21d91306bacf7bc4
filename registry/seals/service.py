"""The seal registry (制章): an agency registers its seals, and suspends, reinstates or revokes them. Every
change is a SealRegistry transaction by the agency's own key, sent through the outbox (registry/outbox/
steps.py: the row first, then the transaction); the seal's SESeal is signed by the seal maker (制章方), the
consortium's platform operator, whose key digest goes on chain once (`publishMakerKey`). A seal can be made
only on the node hosting the platform operator (the 制章系统); every node sees every seal through the index.

    >>> svc = SealService(node, profile=CryptoProfile.GM)                                   # doctest: +SKIP
    >>> seal = svc.create("11230000MB1A0001XX", SealRequest(name="…行政许可专用章", category="permit",
    ...                   image=png_bytes, valid_from=start, valid_until=end))              # doctest: +SKIP
    >>> svc.change("11230000MB1A0001XX", seal.id, "suspend", reason="印章遗失").status      # doctest: +SKIP
    'suspended'
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chain.contracts import Role
from chain.seals import SealRegistryClient
from registry.consortium.roles import agency_json, require_role
from registry.crypto.hashing import canonical_digest, hex0x, sha256_key
from registry.crypto.profiles import CryptoProfile
from registry.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from registry.node import Node
from registry.outbox.steps import StepCall, StepLedger
from registry.seals.asn1 import SESeal
from registry.seals.ca import ensure_root, issue_for_seal
from registry.seals.categories import CATEGORIES
from registry.seals.images import check_image
from registry.seals.index import SealIndex
from registry.seals.keys import maker_key, new_key
from registry.seals.structures import SealSpec, make_seseal
from registry.store.rows import lock_row, next_serial
from registry.store.seal_models import SealPdfCert, SealRow, SealStep
from registry.store.states import StepState
from registry.validation import optional_text, required_text

__all__ = ["CATEGORIES", "SealRequest", "SealService", "SealView"]

_EVENTS = {"maker_key": "MakerKeyPublished", "create": "SealCreated", "suspend": "SealSuspended",
           "reinstate": "SealReinstated", "revoke": "SealRevoked"}
_OPEN = (StepState.PENDING.value, StepState.SENT.value)
_MAX_YEARS = 30


@dataclass(frozen=True)
class SealRequest:
    name: str | None
    category: str | None
    image: bytes
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    width_mm: int = 40
    height_mm: int = 40


@dataclass(frozen=True)
class SealView:
    id: str
    key: str
    agency: dict[str, Any]
    name: str
    category: str
    category_name: str
    image_type: str
    image_sha256: str
    key_algorithm: str
    key_sha256: str
    seal_info_sha256: str
    valid_from: str
    valid_until: str
    status: str
    steps: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


class SealService(StepLedger):
    step_model = SealStep
    ledger_name = "seals"
    contract_name = "SealRegistry"

    def __init__(self, node: Node, *, profile: CryptoProfile = CryptoProfile.GM, index: SealIndex | None = None,
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        super().__init__(node)
        self.algorithm = "sm2" if profile is CryptoProfile.GM else "secp256k1"
        self.index = index or SealIndex(node)
        self.now = now

    # -- outbox hooks --------------------------------------------------------------------------------
    def _client(self) -> SealRegistryClient:
        return self.node.client(SealRegistryClient)

    def _scopes(self, step: SealStep) -> tuple[set[str], set[str]]:
        if step.kind == "maker_key":
            return {"maker"}, {"maker"}
        scope = {f"seal:{step.seal_id}"}
        return (scope | {"maker"}, scope) if step.kind == "create" else (scope, scope)

    def _call_for(self, s: Session, step: SealStep) -> StepCall | None:
        c, p = self._client(), step.params or {}
        event = _EVENTS[step.kind]
        if step.kind == "maker_key":
            digest = bytes.fromhex(p["key_digest"][2:])
            return StepCall(step.id, step.actor_uscc, digest, c.publish_maker_key_fn(digest), c.GAS["maker_key"],
                            event, {}, step.tx_hash)
        row = s.get(SealRow, step.seal_id)
        assert row is not None
        key = bytes.fromhex(row.key[2:])
        if step.kind == "create":
            if s.scalar(select(SealStep.id).where(SealStep.kind == "maker_key", SealStep.state.in_(_OPEN))):
                return None  # the maker's key goes on chain first
            fn = c.create_fn(key, bytes.fromhex(row.image_digest[2:]), bytes.fromhex(row.key_digest[2:]),
                             bytes.fromhex(row.seal_info_digest[2:]), _epoch(row.valid_from), _epoch(row.valid_until))
        elif step.kind == "reinstate":
            fn = c.reinstate_fn(key)
        else:
            reason = bytes.fromhex(p["reason_digest"][2:])
            fn = c.suspend_fn(key, reason) if step.kind == "suspend" else c.revoke_fn(key, reason)
        return StepCall(step.id, step.actor_uscc, key, fn, c.GAS[step.kind], event, {}, step.tx_hash)

    def _apply_mirror(self, s: Session, step: SealStep) -> None:
        if step.seal_id is None:
            return
        row = s.get(SealRow, step.seal_id)
        if row is not None:
            row.status = {"create": "active", "suspend": "suspended", "reinstate": "active",
                          "revoke": "revoked"}[step.kind]

    def _discard(self, s: Session, step: SealStep) -> None:
        kind, seal_id = step.kind, step.seal_id
        s.delete(step)
        s.flush()
        if kind == "create" and seal_id is not None:
            for stored in (s.get(SealPdfCert, seal_id), s.get(SealRow, seal_id)):
                if stored is not None:
                    s.delete(stored)

    def _created_row(self, s: Session, step: SealStep) -> SealRow | None:
        return s.get(SealRow, step.seal_id) if step.kind == "create" and step.seal_id else None

    # -- writes --------------------------------------------------------------------------------------
    def _new(self, s: Session, seal_id: str | None, kind: str, actor: str, params: dict[str, Any]) -> int:
        step = SealStep(seal_id=seal_id, kind=kind, actor_uscc=actor, params=params)
        s.add(step)
        s.flush()
        self._claim([step.id])  # before the commit: the worker never races the request's own attempt
        return int(step.id)

    def _send(self, step_ids: list[int]) -> None:
        for step_id in step_ids:
            if not self.try_now(step_id):
                for rest in step_ids[step_ids.index(step_id) + 1:]:
                    self._release([rest])  # left to the worker, in order
                return

    def create(self, agency: str, req: SealRequest) -> SealView:
        """Register a new seal of ``agency``: the SESeal is made and signed here, the seal goes on chain."""
        name = required_text(req.name, "name", "missing_seal_name", max_length=100)
        category = required_text(req.category, "category", "invalid_seal_category", max_length=20)
        if category not in CATEGORIES:
            raise ValidationError(f"unknown seal category {category!r}: expected one of {', '.join(CATEGORIES)}",
                                  code="invalid_seal_category")
        image = check_image(req.image)
        for label, mm in (("width_mm", req.width_mm), ("height_mm", req.height_mm)):
            if isinstance(mm, bool) or not isinstance(mm, int) or not 10 <= mm <= 100:
                raise ValidationError(f"{label} must be an integer 10..100 (millimetres)", code="invalid_seal_size")
        now = _utc(self.now()).replace(microsecond=0)
        start = _utc(req.valid_from).replace(microsecond=0) if req.valid_from else now
        end = _utc(req.valid_until).replace(microsecond=0) if req.valid_until else None
        if end is None or end <= start or end <= now or end > start + dt.timedelta(days=366 * _MAX_YEARS):
            raise ValidationError(f"valid_until must lie after valid_from and after now, within {_MAX_YEARS} years",
                                  code="invalid_seal_validity")
        maker = self.node.seeds.genesis.uscc
        if not self.node.keys.has_signing_key(maker):
            raise ConflictError(f"seals are made by the seal maker ({maker}, the platform operator), which this node "
                                "does not host: create the seal on the platform node", code="seal_maker_not_hosted")
        maker_signer, _ = maker_key(self.node, maker, self.algorithm)
        ca = ensure_root(self.node)  # the seal's PAdES certificate is issued with the seal (registry/seals/ca.py)
        maker_digest = hex0x(maker_signer.digest)
        seal_key, secret = new_key(self.algorithm)
        steps: list[int] = []
        try:
            with self.node.db.session() as s:
                require_role(s, agency, Role.ISSUER, "missing_issuer_role")
                prefix = f"ES{agency}"
                seal_id = f"{prefix}{next_serial(s, prefix):04d}"
                if not self._maker_key_known(s, maker_digest):
                    steps.append(self._new(s, None, "maker_key", maker, {"key_digest": maker_digest}))
                spec = SealSpec(seal_id, name, category, image, req.width_mm, req.height_mm, now, start, end)
                seseal = make_seseal(spec, seal_key, maker_signer)
                info_digest = hashlib.sha256(_seal_info(seseal)).digest()
                row = SealRow(id=seal_id, key=hex0x(sha256_key(seal_id)), agency_uscc=agency, name=name,
                              category=category, image_type=image.kind, image=image.data,
                              image_digest=hex0x(hashlib.sha256(image.data).digest()), key_algorithm=self.algorithm,
                              public_key=seal_key.spki, key_digest=hex0x(seal_key.digest),
                              key_blob=self.node.keys.seal_secret(secret, f"seal:{seal_id}".encode()),
                              seseal=seseal, seal_info_digest=hex0x(info_digest), valid_from=start, valid_until=end,
                              status="pending")
                s.add(row)
                s.flush()
                issue_for_seal(self.node, s, row, ca)
                steps.append(self._new(s, seal_id, "create", agency, {}))
        except BaseException:
            self._release(steps)
            raise
        self._send(steps)
        return self.get(seal_id)

    def _maker_key_known(self, s: Session, digest: str) -> bool:
        if s.scalar(select(SealStep.id).where(SealStep.kind == "maker_key", SealStep.state != StepState.FAILED.value)
                    .where(SealStep.params["key_digest"].as_string() == digest)) is not None:
            return True
        self.index.refresh()
        return self.index.maker_key_block(digest) is not None

    def change(self, agency: str, seal_id: str, action: str, *, reason: str | None = None) -> SealView:
        """Suspend (reversible), reinstate or revoke (final) one of the agency's seals."""
        allowed = {"suspend": ("active",), "reinstate": ("suspended",), "revoke": ("active", "suspended")}
        if action not in allowed:
            raise ValidationError(f"unknown seal action {action!r}", code="invalid_seal_action")
        note = optional_text(reason, "reason", max_length=500)
        step: list[int] = []
        try:
            with self.node.db.session() as s:
                lock_row(s, SealRow.status, SealRow.id, seal_id)
                row = self._own(s, agency, seal_id)
                require_role(s, agency, Role.ISSUER, "missing_issuer_role")
                if s.scalar(select(SealStep.id).where(SealStep.seal_id == row.id, SealStep.state.in_(_OPEN))):
                    raise ConflictError(f"a change of seal {row.id} is still being anchored; retry shortly",
                                        code="step_in_progress")
                if row.status not in allowed[action]:
                    raise ConflictError(f"seal {row.id} is {row.status}: cannot {action} it",
                                        code=f"seal_{row.status}", details={"status": row.status})
                params = {} if action == "reinstate" else {
                    "reason": note, "reason_digest": hex0x(canonical_digest({"seal": row.id, "reason": note}))}
                step.append(self._new(s, row.id, action, agency, params))
        except BaseException:
            self._release(step)
            raise
        self._send(step)
        return self.get(seal_id)

    def _own(self, s: Session, agency: str, seal_id: str) -> SealRow:
        row = s.get(SealRow, seal_id) if isinstance(seal_id, str) and len(seal_id) <= 64 else None
        if row is None:
            raise NotFoundError(f"no seal {str(seal_id)[:80]} on this node", code="unknown_seal")
        if row.agency_uscc != agency:
            raise PermissionDeniedError(f"seal {row.id} belongs to {row.agency_uscc}, not {agency}",
                                        code="not_your_seal")
        return row

    # -- reads ---------------------------------------------------------------------------------------
    def get(self, seal_id: str) -> SealView:
        with self.node.db.session() as s:
            row = s.get(SealRow, seal_id) if isinstance(seal_id, str) and len(seal_id) <= 64 else None
            if row is None:
                raise NotFoundError(f"no seal {str(seal_id)[:80]} on this node", code="unknown_seal")
            return self._view(s, row)

    def image(self, seal_id: str) -> tuple[str, bytes]:
        """(media type, bytes) of a seal's image (public: it is printed on every sealed document)."""
        with self.node.db.session() as s:
            row = s.get(SealRow, seal_id) if isinstance(seal_id, str) and len(seal_id) <= 64 else None
            if row is None:
                raise NotFoundError(f"no seal {str(seal_id)[:80]} on this node", code="unknown_seal")
            return ("image/png" if row.image_type == "PNG" else "image/svg+xml"), row.image

    def list(self, agency: str) -> list[SealView]:
        with self.node.db.session() as s:
            rows = s.scalars(select(SealRow).where(SealRow.agency_uscc == agency).order_by(SealRow.id)).all()
            return [self._view(s, r) for r in rows]

    def _view(self, s: Session, row: SealRow) -> SealView:
        steps = s.scalars(select(SealStep).where(SealStep.seal_id == row.id).order_by(SealStep.id)).all()
        return SealView(
            id=row.id, key=row.key, agency=agency_json(s, row.agency_uscc) or {}, name=row.name,
            category=row.category, category_name=CATEGORIES.get(row.category, row.category),
            image_type=row.image_type, image_sha256=row.image_digest[2:], key_algorithm=row.key_algorithm,
            key_sha256=row.key_digest[2:], seal_info_sha256=row.seal_info_digest[2:],
            valid_from=row.valid_from.isoformat() + "Z", valid_until=row.valid_until.isoformat() + "Z",
            status=row.status,
            steps=[{"step": st.kind, "state": st.state, "tx_hash": st.tx_hash, "block_number": st.block_number,
                    "reason": (st.params or {}).get("reason"), "error": st.error} for st in steps])


def _epoch(value: dt.datetime) -> int:
    return int(value.replace(tzinfo=dt.UTC).timestamp())


def _seal_info(seseal: bytes) -> bytes:
    return bytes(SESeal.load(seseal)["eSealInfo"].dump())
