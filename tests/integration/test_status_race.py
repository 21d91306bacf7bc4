"""A certificate's status in the database never diverges from the chain, however its changes race: 10
revokes, 10 suspends and 10 supersedes of one certificate fired at once, over HTTP with the outbox worker
running, 50 times over (one deployment, a fresh certificate per trial)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from api.devtools.samples import sample_values
from chain.contracts import DocStatus
from registry.identifiers import CertificateId
from registry.store.db import Certificate, StatusChange
from tests.conftest import Api

pytestmark = pytest.mark.anvil

# 24 trials of 30 racing changes each. The change submitted first often wins, always on a loaded machine (a run
# beside two other test processes had revoke win all 24 when revoke went first every time), so each kind goes
# first in 8 trials: on a quiet machine the chance that one kind never wins is 3·(2/3)^24 < 0.02 %, on a loaded one
# each kind wins about its 8.
TRIALS = 24
KINDS = ("revoke", "suspend", "supersede")
CHAIN_STATUS = {DocStatus.ISSUED: "issued", DocStatus.SUSPENDED: "suspended", DocStatus.REVOKED: "revoked",
                DocStatus.SUPERSEDED: "superseded"}


def _wait_idle(api: Api, ident: str, timeout: float = 20.0) -> None:
    """Until no change of `ident` is open and no certificate waits for its batch (read from the database,
    so this waits for the worker's resends too)."""
    deadline = time.monotonic() + timeout
    while True:
        with api.node.db.session() as s:
            busy = s.scalar(select(func.count()).select_from(StatusChange).where(
                StatusChange.identifier == ident, StatusChange.state.in_(("pending", "sent"))))
            busy = (busy or 0) + (s.scalar(select(func.count()).select_from(Certificate).where(
                Certificate.status == "pending")) or 0)
        if not busy:
            return
        assert time.monotonic() < deadline, f"{ident}: changes still open"
        time.sleep(0.02)


def test_concurrent_revokes_suspends_and_supersedes_leave_the_database_status_equal_to_the_chain(api: Api) -> None:
    ct = api.node.seeds.certificate_types[0]
    issuer = api.node.seeds.member(ct.issuers[0])
    h = api.auth(issuer.uscc)
    docs = sample_values(ct, TRIALS, issuer=issuer, seed=31)
    r = api.client.post("/api/v1/certificates/batch?wait=true", json={"type": ct.code, "documents": docs}, headers=h)
    assert r.status_code == 201 and r.json()["status"] == "issued", r.text
    certs = r.json()["certificates"]
    ledger = api.node.certificate_ledger
    outcomes: dict[str, int] = {}
    lock = threading.Lock()

    def fire(ident: str, fields: dict[str, Any], kind: str) -> int:
        if kind == "revoke":
            resp = api.client.post(f"/api/v1/certificates/{ident}/revoke", json={"reason": 4}, headers=h)
        elif kind == "suspend":
            resp = api.client.post(f"/api/v1/certificates/{ident}/suspend", json={}, headers=h)
        else:
            resp = api.client.post(f"/api/v1/certificates/{ident}/supersede", json={"fields": fields}, headers=h)
        assert resp.status_code in (200, 409), resp.text  # done, or refused (in progress / invalid transition)
        with lock:
            outcomes[f"{kind} {resp.status_code}"] = outcomes.get(f"{kind} {resp.status_code}", 0) + 1
        return resp.status_code

    with ThreadPoolExecutor(30) as pool:
        for trial, cert in enumerate(certs):
            ident = cert["identifier"]
            fields = {k: v["value"] for k, v in cert["document"]["fields"].items() if k not in ("证照标识", "证照编号")}
            fields["持证主体"] = fields["持证主体"] + "（更正）"
            kinds = [*KINDS[trial % 3:], *KINDS[:trial % 3]] * 10
            codes = list(pool.map(lambda k, i=ident, f=fields: fire(i, f, k), kinds))
            assert 200 in codes
            _wait_idle(api, ident)
            with api.node.db.session() as s:
                row = s.get(Certificate, ident)
                assert row is not None
                status, reason, superseded_by = row.status, row.reason, row.superseded_by
            state = ledger.document_state(bytes.fromhex(row.digest_sha256))
            assert status == CHAIN_STATUS[state.status], (ident, status, state)
            if state.status == DocStatus.REVOKED:
                assert reason == state.reason == 4
            if state.status == DocStatus.SUPERSEDED:
                assert superseded_by is not None and CertificateId.parse(superseded_by).version == 2
            api.services.index.refresh(force=True)
            verdict = api.client.post("/api/v1/verify", json={"identifier": ident}).json()["verdict"]
            assert verdict == CHAIN_STATUS[state.status].replace("issued", "valid"), (ident, verdict, status)
    # every kind of change won some trials, and each trial refused the changes racing the first one
    assert all(outcomes.get(f"{k} 200", 0) > 0 for k in KINDS), outcomes
    assert sum(v for k, v in outcomes.items() if k.endswith("409")) >= TRIALS * 27, outcomes


def test_a_late_finish_of_an_older_change_never_overwrites_the_status_of_a_newer_one(api: Api) -> None:
    ct = api.node.seeds.certificate_types[0]
    issuer = api.node.seeds.member(ct.issuers[0])
    h = api.auth(issuer.uscc)
    [values] = sample_values(ct, 1, issuer=issuer, seed=32)
    ident = api.client.post("/api/v1/certificates?wait=true", json={"type": ct.code, "fields": values},
                            headers=h).json()["identifier"]
    assert api.client.post(f"/api/v1/certificates/{ident}/suspend", json={}, headers=h).json()["status"] == "suspended"
    assert api.client.post(f"/api/v1/certificates/{ident}/revoke", json={"reason": 4}, headers=h).json()["status"] \
        == "revoked"
    with api.node.db.session() as s:  # a retry that read the suspend before it finished, and finishes it now
        suspend = s.scalars(select(StatusChange).where(StatusChange.identifier == ident,
                                                       StatusChange.action == "suspend")).one()
        suspend.state = "sent"
    assert api.services.certificates.changes.run_step(suspend.id)  # its receipt is found: done again
    with api.node.db.session() as s:
        row = s.get(Certificate, ident)
        assert row is not None and (row.status, row.reason) == ("revoked", 4)
        assert s.get(StatusChange, suspend.id).state == "done"  # type: ignore[union-attr]
    state = api.node.certificate_ledger.document_state(bytes.fromhex(row.digest_sha256))
    assert state.status == DocStatus.REVOKED
