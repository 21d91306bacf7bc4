"""Issuing certificates and changing their status.

Issuing commits every document to the database first (the outbox) and returns at once with status
`pending`; the anchoring worker batches and anchors them. A batch of up to `max_batch` documents is
validated completely before anything is stored: all or nothing.

Holder data is not kept in plaintext: each document is sealed (AES-256-GCM) under a fresh key that is
returned once, inside the by-reference QR URL, and never stored.

    >>> service = CertificateService(node, public_base="http://127.0.0.1:8000")          # doctest: +SKIP
    >>> [issued] = service.issue("11230000MB...", type_code, [values], wait=True)         # doctest: +SKIP
    >>> issued.status                                                                      # doctest: +SKIP
    'issued'
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from chain.errors import ChainUnavailableError as ChainDown
from chain.errors import TransactionError
from registry.certificates import building, idempotency
from registry.certificates.anchoring import BatchAnchoring
from registry.certificates.building import bind_holder_keys, plain_values
from registry.certificates.changes import StatusChanges
from registry.certificates.documents import AnchorProof, Document
from registry.certificates.fields import HOLDER_KEY_FIELD
from registry.certificates.idempotency import IdempotencyKey
from registry.certificates.index import ChainIndex
from registry.certificates.issued import IssuedCertificate, IssueResult
from registry.certificates.parallel import BuildContext, BuiltDocument, ChunkJob, DocumentBuilder
from registry.certificates.stored import insert_certificates
from registry.certificates.timing import StageTimer
from registry.errors import (
    ChainUnavailableError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ValidationError,
)
from registry.formats import envelope
from registry.identifiers import CertificateId
from registry.node import Node
from registry.outbox.worker import OutboxWorker
from registry.store.db import Batch, Certificate, CertificateBlob, Serial, StatusChange
from registry.store.rows import bump
from registry.store.states import BatchState, CertificateStatus, ChangeAction

REVOCATION_REASONS: dict[int, tuple[str, str]] = {
    1: ("信息错误", "information incorrect"),
    2: ("依法撤销", "withdrawn by law"),
    3: ("主体注销", "holder dissolved or deceased"),
    4: ("证照遗失", "certificate lost"),
    5: ("违法违规", "violation"),
    6: ("被更正证照替代", "replaced by a corrected certificate"),
    9: ("其他", "other"),
}

SERVICE_FIELDS = ("证照名称", "证照类型代码", "证照标识", "颁发机构", "颁发机构代码", "持证主体代码类型")


@dataclass(frozen=True)
class CertificateView:
    """What the issuing agency sees of a stored certificate (no holder data: the server has none)."""

    identifier: str
    type_code: str
    issuer_uscc: str
    status: str
    reason: int | None
    digest_sha256: str
    digest_sm3: str
    valid_from: str | None
    valid_until: str | None
    supersedes: str | None
    superseded_by: str | None
    created_at: str
    issued_at: str | None
    anchor: dict[str, Any] | None
    history: list[dict[str, Any]] = field(default_factory=list)


class DocumentSealer(Protocol):
    """Sealing (用章) at issue time (registry/seals/sealing.py): `prepare` refuses an unusable seal before
    anything is stored; `store` writes the documents' sealed signatures in the issuing unit of work."""

    def prepare(self, agency: str, seal_id: str) -> Any: ...

    def store(self, s: Session, ready: Any, docs: Sequence[tuple[str, bytes, bytes]]) -> None: ...


class CertificateService:
    def __init__(self, node: Node, *, public_base: str, max_batch: int = 10_000, worker: OutboxWorker | None = None,
                 changes: StatusChanges | None = None,
                 envelope_algorithm: envelope.EnvelopeAlgorithm = envelope.EnvelopeAlgorithm.AES_256_GCM,
                 sealer: DocumentSealer | None = None, build_processes: int = 0,
                 index: ChainIndex | None = None) -> None:
        self.node = node
        self.index = index  # the verifier's view of the chain: brought forward after a change this node made
        # validate + build + seal: large requests in worker processes (registry/certificates/parallel.py)
        self.builder = DocumentBuilder(BuildContext(node.seeds, node.keys.mac_key), processes=build_processes)
        self.sealer = sealer
        self.envelope_algorithm = envelope_algorithm  # new blobs only: open_ reads either kind
        self.public_base = public_base.rstrip("/")
        self.max_batch = max_batch
        self.worker = worker
        # the request's own attempt and the worker's resends must share one lane: its claims keep them apart
        self.changes = changes or (worker.lane(StatusChanges) if worker is not None else None) or StatusChanges(node)

    # -- issuing -----------------------------------------------------------------------------------
    def _check_issuer(self, agency: str, type_code: str) -> Any:
        cert_type = self.node.seeds.certificate_type(type_code)
        if agency not in cert_type.issuers:
            raise PermissionDeniedError(
                f"agency {agency} may not issue {cert_type.name} ({type_code}); allowed: {', '.join(cert_type.issuers)}",
                code="not_an_issuer_of_type",
            )
        return cert_type

    def build_documents(self, agency: str, type_code: str, values_list: Sequence[Mapping[str, Any]],
                        *, first_serial: int, version: int = 1, serials: Sequence[str] | None = None,
                        timer: StageTimer | None = None) -> list[Document]:
        """Validate and build every document (registry/certificates/building.py), in this process."""
        return building.build_documents(self.node.seeds, agency, self._check_issuer(agency, type_code), values_list,
                                        first_serial=first_serial, version=version, serials=serials, timer=timer)

    def build_sealed(self, agency: str, type_code: str, values_list: Sequence[Mapping[str, Any]], *,
                     first_serial: int, version: int = 1, serials: Sequence[str] | None = None,
                     timer: StageTimer | None = None, seed: bytes | None = None) -> list[BuiltDocument]:
        """Validate, build and seal every document, ready to insert (in worker processes for a large request;
        ``seed``: reproducible random draws, for tests)."""
        self._check_issuer(agency, type_code)
        return self.builder.build(ChunkJob(
            agency, type_code, values_list, first_serial=first_serial, today=dt.date.today(),
            public_base=self.public_base, algorithm=self.envelope_algorithm, version=version, serials=serials,
            seed=seed), timer=timer)

    def close(self) -> None:
        """Stop the build worker processes (the server's shutdown)."""
        self.builder.close()

    def issue(self, agency: str, type_code: str, values_list: Sequence[Mapping[str, Any]], *,
              wait: bool = False, timeout: float = 60.0, seal: str | None = None) -> list[IssuedCertificate]:
        return self.issue_request(agency, type_code, values_list, wait=wait, timeout=timeout, seal=seal).certificates

    def issue_request(self, agency: str, type_code: str, values_list: Sequence[Mapping[str, Any]], *,
                      wait: bool = False, timeout: float = 60.0, idempotency_key: IdempotencyKey | None = None,
                      route: str = "batch", seal: str | None = None,
                      holder_keys: Sequence[str | None] | None = None) -> IssueResult:
        """Issue, idempotently (registry/certificates/idempotency.py): a 证照编号 issued before with the same
        values is returned as it is (`replayed`), with other values refused; a repeated Idempotency-Key
        replays the first answer.

        ``holder_keys`` (one per document, None for an unbound one): the holder's P-256 public key (DER SPKI,
        base64url) each certificate is bound to; its key id becomes the document's ``holderKeyDigest`` field
        (and so part of "the same values")."""
        if not values_list:
            raise ValidationError("no documents to issue", code="empty_batch")
        values_list = bind_holder_keys(values_list, holder_keys)
        if len(values_list) > self.max_batch:
            raise PayloadTooLargeError(
                f"batch has {len(values_list)} documents; the limit is {self.max_batch}", code="batch_too_large",
                details={"limit": self.max_batch, "count": len(values_list)})
        self._check_issuer(agency, type_code)
        if seal is not None and self.sealer is None:
            raise ValidationError("sealing is not available on this node", code="sealing_unavailable")
        sealing = self.sealer.prepare(agency, seal) if seal is not None and self.sealer is not None else None
        n = len(values_list)
        timer = StageTimer()
        started = time.perf_counter()
        mac = idempotency.request_mac(self.node, agency, route, type_code, values_list) if idempotency_key else ""
        if idempotency_key is not None:  # a replay needs no serials (checked again under the lock below)
            with self.node.db.session() as s:
                answer = idempotency.replay_answer(s, agency, idempotency_key, mac)
            if answer is not None:
                return IssueResult([self._current(IssuedCertificate(**a)) for a in answer], key_replayed=True)
        # The serial range is reserved and committed in a short transaction of its own, so that validating,
        # building and sealing thousands of documents hold no write lock: concurrent requests build at the same
        # time and wait only for each other's inserts. A refused batch leaves a gap in the 流水号.
        last = self._reserve_serials(agency, type_code, n)
        storing = time.perf_counter() - started
        built = self.build_sealed(agency, type_code, values_list, first_serial=last - n + 1, timer=timer)
        stored = time.perf_counter()
        with self.node.db.session() as s:
            self._lock_serials(s, agency, type_code)  # the write lock first: the checks below are under it
            if idempotency_key is not None:
                answer = idempotency.replay_answer(s, agency, idempotency_key, mac)
                if answer is not None:
                    replayed = [IssuedCertificate(**a) for a in answer]
                    return IssueResult([self._current(i) for i in replayed], key_replayed=True)
            numbers = idempotency.check_numbers(s, agency, type_code, [(b.number_mac, b.values_mac) for b in built])
            fresh = [b for i, b in enumerate(built) if i not in numbers.replay_of]
            if sealing is not None and fresh and self.sealer is not None:
                sealing_started = time.perf_counter()
                self.sealer.store(s, sealing, [(b.identifier, *b.raw_digests) for b in fresh])
                timer.add("seal", time.perf_counter() - sealing_started)
                stored += time.perf_counter() - sealing_started  # e-seal signatures: seal, not store
            if fresh:
                lane = self.worker.lane(BatchAnchoring) if self.worker is not None else None
                leaves = lane.form_at_store(s, agency, [(b.identifier, b.digest_sha256, b.digest_sm3) for b in fresh]
                                            ) if lane is not None else []
                insert_certificates(s, agency, type_code, fresh, leaves=leaves)
            by_index = iter(self._issued(b) for b in fresh)
            issued = [self._replayed(s, numbers.replay_of[i]) if i in numbers.replay_of else next(by_index)
                      for i in range(len(built))]
            idempotency.record_numbers(s, agency, type_code, numbers, {
                i: c.identifier for i, c in enumerate(issued) if not c.replayed})
            if idempotency_key is not None:
                idempotency.store_answer(s, agency, idempotency_key, mac, [i.answer() for i in issued])
        # storing: the serials, the numbers' lookup, the insert and the commit (the MACs are computed with
        # the documents)
        timer.add("store", storing + time.perf_counter() - stored)
        issued_fresh = [i for i in issued if not i.replayed]
        self._after_insert(issued_fresh, wait=wait, timeout=timeout)
        return IssueResult([self._current(i) for i in issued] if wait else issued, key_replayed=False, timer=timer)

    def _reserve_serials(self, agency: str, type_code: str, n: int) -> int:
        """Reserve ``n`` serials of (agency, type) and commit; returns the last one reserved."""
        with self.node.db.session() as s:  # two first requests of a type at once both count (store/rows.py)
            return bump(s, Serial.last, {"issuer_uscc": agency, "type_code": type_code}, n)

    @staticmethod
    def _lock_serials(s: Session, agency: str, type_code: str) -> None:
        """Take the write lock before checking numbers and keys: two concurrent issues of one 证照编号 or one
        Idempotency-Key must not both pass the checks (SQLite reads outside a transaction until the first
        write; PostgreSQL locks the row)."""
        s.execute(update(Serial).where(Serial.issuer_uscc == agency, Serial.type_code == type_code)
                  .values(last=Serial.last))

    def _replayed(self, s: Any, identifier: str) -> IssuedCertificate:
        status = s.scalar(select(Certificate.status).where(Certificate.identifier == identifier))
        return IssuedCertificate(identifier, str(status), None, None, None, replayed=True)

    def _current(self, issued: IssuedCertificate) -> IssuedCertificate:
        """With today's status (and anchor, for a document returned in full)."""
        if issued.replayed or (issued.document is None and issued.document_json is None):
            view = self.get(None, issued.identifier)
            return dataclasses.replace(issued, status=view.status)
        return self._refresh_status(issued)

    @staticmethod
    def _issued(b: BuiltDocument) -> IssuedCertificate:
        return IssuedCertificate(b.identifier, CertificateStatus.PENDING, None, b.key, b.qr_url,
                                 document_json=b.document_json)

    def _after_insert(self, issued: Sequence[IssuedCertificate], *, wait: bool, timeout: float) -> None:
        if self.worker is None or not issued:
            return
        if wait:
            self.wait_for([i.identifier for i in issued], timeout=timeout)
        else:
            self.worker.wake()

    def wait_for(self, identifiers: Sequence[str], *, timeout: float = 60.0) -> None:
        """Block until every identifier is anchored (or failed)."""
        deadline = time.monotonic() + timeout
        pending = set(identifiers)
        while pending:
            if self.worker is not None:
                self.worker.request_flush()
            with self.node.db.session() as s:
                rows = s.execute(select(Certificate.identifier).where(
                    Certificate.identifier.in_(list(pending)[:5000]),
                    Certificate.status == CertificateStatus.PENDING)).all()
            still = {r[0] for r in rows}
            if len(pending) > 5000:
                still |= set(list(pending)[5000:])
            pending = still
            if not pending:
                return
            if time.monotonic() > deadline:
                raise ChainUnavailableError(
                    f"{len(pending)} certificates are stored and will be anchored, but not within {timeout:.0f} s "
                    f"(is the chain reachable? last error: {getattr(self.worker, 'last_error', None)})",
                    code="anchoring_delayed")
            time.sleep(0.05)

    def _refresh_status(self, issued: IssuedCertificate) -> IssuedCertificate:
        view = self.get(None, issued.identifier)
        document = dict(issued.body() or {})
        document["anchor"] = view.anchor
        return dataclasses.replace(issued, status=view.status, document=document, document_json=None)

    # -- reading -----------------------------------------------------------------------------------
    def _row(self, s: Session, identifier: str) -> Certificate:
        CertificateId.parse(identifier)  # malformed identifiers are a 422, not a 404
        row = s.get(Certificate, identifier)
        if row is None:
            raise NotFoundError(f"no certificate {identifier}", code="unknown_certificate")
        return row

    def get(self, agency: str | None, identifier: str) -> CertificateView:
        """The issuer view. `agency=None` is internal use; an agency may only read its own certificates."""
        with self.node.db.session() as s:
            row = self._row(s, identifier)
            if agency is not None and row.issuer_uscc != agency:
                raise PermissionDeniedError(f"certificate {identifier} was issued by {row.issuer_uscc}, not {agency}",
                                            code="not_your_certificate")
            batch = s.get(Batch, row.batch_id) if row.batch_id else None
            history = [
                {"action": c.action, "reason": c.reason, "state": c.state, "tx_hash": c.tx_hash,
                 "block_number": c.block_number, "at": c.created_at.isoformat() + "Z", "by": c.actor_uscc}
                for c in s.scalars(select(StatusChange).where(StatusChange.identifier == identifier)
                                   .order_by(StatusChange.id))
            ]
            return CertificateView(
                identifier=row.identifier, type_code=row.type_code, issuer_uscc=row.issuer_uscc, status=row.status,
                reason=row.reason, digest_sha256=row.digest_sha256, digest_sm3=row.digest_sm3,
                valid_from=row.valid_from.isoformat() if row.valid_from else None,
                valid_until=row.valid_until.isoformat() if row.valid_until else None,
                supersedes=row.supersedes, superseded_by=row.superseded_by,
                created_at=row.created_at.isoformat() + "Z",
                issued_at=row.issued_at.isoformat() + "Z" if row.issued_at else None,
                anchor=self.anchor_json(row, batch), history=history,
            )

    def anchor_json(self, row: Certificate, batch: Batch | None) -> dict[str, Any] | None:
        """The document's anchor proof in the document format (registry.documents.AnchorProof)."""
        if batch is None or batch.state != BatchState.ANCHORED or row.proof is None or row.leaf_index is None:
            return None
        deployment = self.node.require_deployment()
        return AnchorProof(
            batch_root=bytes.fromhex(batch.root[2:]),
            index=row.leaf_index,
            size=batch.size,
            path=tuple(row.proof[i:i + 32] for i in range(0, len(row.proof), 32)),
            chain_id=deployment.chain_id,
            ledger=deployment.address("CertificateLedger"),
            tx_hash=bytes.fromhex((batch.tx_hash or "0x" + "00" * 32)[2:]),
            block_number=batch.block_number or 0,
            block_timestamp=batch.block_timestamp or 0,
            issuer_account=batch.issuer_account or "0x" + "00" * 20,
            **_sm3_anchor(row, batch),
        ).to_json()

    def statuses(self, agency: str, identifiers: Sequence[str]) -> dict[str, str]:
        """Status of many of the agency's certificates at once (unknown or foreign ones are omitted)."""
        if len(identifiers) > self.max_batch:
            raise PayloadTooLargeError(f"at most {self.max_batch} identifiers per request", code="batch_too_large")
        out: dict[str, str] = {}
        with self.node.db.session() as s:
            for i in range(0, len(identifiers), 900):
                chunk = list(identifiers[i:i + 900])
                for ident, status in s.execute(select(Certificate.identifier, Certificate.status).where(
                        Certificate.identifier.in_(chunk), Certificate.issuer_uscc == agency)):
                    out[ident] = status
        return out

    def blob(self, identifier: str) -> bytes:
        """The encrypted by-reference document (public: useless without the key in the QR)."""
        with self.node.db.session() as s:
            blob = s.scalar(select(CertificateBlob.blob).where(CertificateBlob.identifier == identifier))
            if blob is None:
                self._row(s, identifier)  # a malformed identifier (422) or none (404)
                raise NotFoundError(f"certificate {identifier} has no stored document", code="unknown_certificate")
            return bytes(blob)

    # -- lifecycle ---------------------------------------------------------------------------------
    def _authorise_change(self, agency: str, row: Certificate) -> None:
        if row.issuer_uscc == agency:
            return
        # a revoker the issuer delegated to (ConsortiumRegistry.setRevokerDelegate; the contract checks it too)
        delegated = self.node.consortium.contract.functions.isRevokerDelegate(
            row.issuer_uscc.encode().ljust(32, b"\0"), agency.encode().ljust(32, b"\0")).call()
        if not delegated:
            raise PermissionDeniedError(
                f"certificate {row.identifier} was issued by {row.issuer_uscc}; agency {agency} may not change it",
                code="not_your_certificate")

    _ALLOWED: dict[ChangeAction, frozenset[CertificateStatus]] = {
        ChangeAction.SUSPEND: frozenset({CertificateStatus.ISSUED}),
        ChangeAction.REINSTATE: frozenset({CertificateStatus.SUSPENDED}),
        ChangeAction.REVOKE: frozenset({CertificateStatus.ISSUED, CertificateStatus.SUSPENDED}),
        ChangeAction.SUPERSEDE: frozenset({CertificateStatus.ISSUED, CertificateStatus.SUSPENDED}),
    }

    def change_status(self, agency: str, identifier: str, action: str, *, reason: int | None = None,
                      wait: bool = True, timeout: float = 30.0) -> CertificateView:
        if action not in ChangeAction.__members__.values():
            raise ValidationError(f"unknown action {action!r}", code="invalid_action")
        if action == ChangeAction.REVOKE and reason not in REVOCATION_REASONS:
            raise ValidationError(f"revocation reason must be one of {sorted(REVOCATION_REASONS)}, got {reason!r}",
                                  code="invalid_reason", details={"reasons": {k: v[0] for k, v in REVOCATION_REASONS.items()}})
        with self.changes.new_steps() as (s, claimed):
            self._lock_row(s, identifier)
            row = self._row(s, identifier)
            self._authorise_change(agency, row)
            self._check_transition(s, row, ChangeAction(action))
            change = StatusChange(identifier=identifier, action=ChangeAction(action), reason=reason, actor_uscc=agency)
            s.add(change)
            s.flush()
            claimed.append(change.id)
        return self._apply_now(claimed[0], identifier, wait=wait)

    @staticmethod
    def _lock_row(s: Any, identifier: str) -> None:
        """Take the write lock before the checks: two concurrent changes of one certificate must not both
        pass them (SQLite reads outside a transaction until the first write; PostgreSQL locks the row)."""
        s.execute(update(Certificate).where(Certificate.identifier == identifier).values(status=Certificate.status))

    def _check_transition(self, s: Any, row: Certificate, action: ChangeAction) -> None:
        if row.status == CertificateStatus.PENDING:
            raise ConflictError(f"certificate {row.identifier} is not anchored yet; retry in a few seconds",
                                code="not_anchored_yet")
        inflight = s.scalars(select(StatusChange).where(StatusChange.identifier == row.identifier,
                                                        StatusChange.state.in_(self.changes.open_states()))).first()
        if inflight is not None:
            raise ConflictError(f"a {inflight.action} of {row.identifier} is still in progress", code="change_in_progress")
        if row.status not in self._ALLOWED[action]:
            raise ConflictError(f"cannot {action} certificate {row.identifier}: it is {row.status}",
                                code="invalid_transition", details={"status": row.status, "action": action.value})

    def supersede(self, agency: str, identifier: str, values: Mapping[str, Any], *,
                  timeout: float = 60.0) -> tuple[CertificateView, IssuedCertificate]:
        """Issue a corrected version (same serial, version + 1) and mark the old one superseded on chain."""
        with self.changes.new_steps() as (s, claimed):
            self._lock_row(s, identifier)
            old = self._row(s, identifier)
            self._authorise_change(agency, old)
            self._check_transition(s, old, ChangeAction.SUPERSEDE)
            cid = CertificateId.parse(identifier)
            newer = s.scalars(select(Certificate.identifier).where(
                Certificate.type_code == old.type_code, Certificate.issuer_uscc == old.issuer_uscc,
                Certificate.serial == old.serial, Certificate.version > old.version)).first()
            if newer is not None:
                raise ConflictError(f"{identifier} already has a newer version {newer}", code="already_superseded")
            if old.holder_key_digest is not None:  # the corrected version stays bound to the same holder key
                values = {**plain_values(values), HOLDER_KEY_FIELD: old.holder_key_digest}
            built = self.build_sealed(old.issuer_uscc, old.type_code, [values], first_serial=0,
                                      version=int(cid.version) + 1, serials=[cid.serial])
            insert_certificates(s, old.issuer_uscc, old.type_code, built, supersedes=identifier)
            issued = self._issued(built[0])
            change = StatusChange(identifier=identifier, action=ChangeAction.SUPERSEDE, new_identifier=issued.identifier,
                                  actor_uscc=agency)
            s.add(change)
            s.flush()
            claimed.append(change.id)
        try:
            if self.worker is not None:
                self.wait_for([issued.identifier], timeout=timeout)
        except BaseException:
            self.changes._release(claimed)  # the worker sends it once the replacement is anchored
            raise
        view = self._apply_now(claimed[0], identifier, wait=True)
        return view, self._refresh_status(issued)

    def _apply_now(self, change_id: int, identifier: str, *, wait: bool) -> CertificateView:
        """The request's own attempt at a change it has claimed. A contract refusal removes the change and
        raises; a chain outage leaves it pending for the worker (an error if the caller waits)."""
        try:
            self.changes.run_step(change_id, immediate=True, claimed=True)
        except (ChainDown, TransactionError) as exc:
            self.changes.last_error = str(exc)
            if wait:
                raise ChainUnavailableError(
                    f"the change is recorded and will be sent when the chain is back: {exc}", code="change_pending"
                ) from exc
        else:
            self._see_own_change()
        finally:
            if self.worker is not None:
                self.worker.wake()
        return self.get(None, identifier)

    def _see_own_change(self) -> None:
        """Read your writes: the verifier answers from a chain index refreshed every 0.5 s; after a change this
        request mined, bring it forward now, so that a `verify` sent right after `revoke` answers 'revoked'
        (other nodes and processes see the change at their next refresh)."""
        if self.index is None:
            return
        try:
            self.index.refresh(force=True)
        except ChainUnavailableError:  # the change is on chain; the index catches up at its next refresh
            pass


def _sm3_anchor(row: Certificate, batch: Batch) -> dict[str, Any]:
    """The SM3 root and audit path of an anchor, when the batch was anchored with one (0007s and later)."""
    if batch.root_sm3 is None or row.proof_sm3 is None:
        return {}
    return {"sm3_root": bytes.fromhex(batch.root_sm3[2:]),
            "sm3_path": tuple(row.proof_sm3[i:i + 32] for i in range(0, len(row.proof_sm3), 32))}
