"""Nothing submitted is lost and nothing is anchored twice, even when the chain node dies mid-batch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from api.devtools.samples import sample_values
from api.stack import LocalStack
from chain.artifacts import load_artifact
from chain.logs import LogReader
from registry.crypto.merkle import leaf_hash, verify_inclusion_leaf_hash
from registry.store.db import Certificate
from tests.support import postgres
from tests.support.anvil import make_devnet

pytestmark = pytest.mark.anvil


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_killing_anvil_mid_issue_loses_nothing_and_anchors_each_document_once(tmp_path: Path) -> None:
    devnet = make_devnet(tmp_path)
    try:
        _kill_mid_issue(devnet, tmp_path)
    finally:
        devnet.stop()  # LocalStack does not stop a devnet it was handed


def _kill_mid_issue(devnet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with LocalStack(tmp_path / "data", devnet=devnet, batch_size=500, batch_max_age=0.1,
                    database_url=postgres.database_url(tmp_path / "data")) as stack:
        node = stack.node
        ct = node.seeds.certificate_types[0]
        issuer = node.seeds.member(ct.issuers[0])
        docs = sample_values(ct, 5000, issuer=issuer, seed=11)
        identifiers: list[str] = []
        with httpx.Client(base_url=stack.url, headers=stack.auth(issuer.uscc), timeout=60) as http:
            for i in range(0, 5000, 500):
                r = http.post("/api/v1/certificates/batch", json={"type": ct.code, "documents": docs[i:i + 500]})
                assert r.status_code == 201, r.text
                identifiers += [c["identifier"] for c in r.json()["certificates"]]
                if i == 1500:
                    # some batches are anchored by now; more are prepared or in flight
                    _wait(lambda: stack.services.anchoring.anchored_batches >= 1, 30, "a first anchored batch")
                    devnet.kill()
            time.sleep(1.0)  # the API keeps accepting while the chain is down
            assert devnet.start()

        def all_issued() -> bool:
            with node.db.session() as s:
                return not s.scalar(select(func.count()).select_from(Certificate).where(Certificate.status != "issued"))

        _wait(all_issued, 180, "every document to be issued after the restart")
        with node.db.session() as s:
            rows = s.execute(select(Certificate.digest_sha256, Certificate.batch_id)).all()
        assert len(rows) == 5000 == len(set(identifiers))

        # every document's digest sits in exactly one root anchored exactly once. The restarted devnet may have
        # lost a block the worker saw mined without any request failing: the worker's periodic reconcile
        # (every 30 s) finds that batch and anchors it again, so wait on the chain, not on the database
        ledger = node.certificate_ledger
        reader = LogReader(node.backend, {ledger.address: load_artifact("CertificateLedger").abi})

        def anchored_events() -> list[Any]:
            return [e for e in reader.events(from_block=0) if e.name == "BatchAnchored"]

        _wait(lambda: sum(e.args["count"] for e in anchored_events()) >= 5000, 120, "every document anchored")
        anchored = anchored_events()
        roots = [e.args["root"] for e in anchored]
        assert len(roots) == len(set(roots))
        assert sum(e.args["count"] for e in anchored) == 5000
        for ident in identifiers[::97]:
            view = stack.services.certificates.get(None, ident)
            a = view.anchor
            assert a is not None and bytes.fromhex(a["batch_root"][2:]) in roots
            assert verify_inclusion_leaf_hash(leaf_hash(bytes.fromhex(view.digest_sha256)), a["index"], a["size"],
                                              [bytes.fromhex(p[2:]) for p in a["path"]], bytes.fromhex(a["batch_root"][2:]))


def test_a_crash_between_preparing_and_sending_a_batch_resumes_without_duplicates(anvil_node) -> None:  # type: ignore[no-untyped-def]
    from registry.certificates.anchoring import BatchAnchoring
    from registry.certificates.service import CertificateService
    from registry.outbox.worker import OutboxWorker

    ct = anvil_node.seeds.certificate_types[0]
    issuer = anvil_node.seeds.member(ct.issuers[0])
    crashed = BatchAnchoring(anvil_node, batch_size=10)
    service = CertificateService(anvil_node, public_base="http://x", worker=None)
    issued = service.issue(issuer.uscc, ct.code, sample_values(ct, 25, issuer=issuer, seed=3))
    crashed.prepare_batches(flush=True)  # roots fixed and committed ... then the process dies
    with anvil_node.db.session() as s:
        from registry.store.db import Batch

        assert {b.state for b in s.scalars(select(Batch))} == {"prepared"}
    OutboxWorker([BatchAnchoring(anvil_node, batch_size=10)]).flush(timeout=30)  # a new process
    with anvil_node.db.session() as s:
        assert {c.status for c in s.scalars(select(Certificate))} == {"issued"}
        assert s.scalar(select(func.count()).select_from(Batch)) == 3
    assert {service.get(None, i.identifier).status for i in issued} == {"issued"}


def test_the_reconciler_reanchors_batches_a_reset_chain_lost(anvil_node) -> None:  # type: ignore[no-untyped-def]
    from registry.certificates.anchoring import BatchAnchoring
    from registry.certificates.changes import StatusChanges
    from registry.certificates.index import ChainIndex
    from registry.certificates.service import CertificateService
    from registry.certificates.verification import Verifier
    from registry.outbox.worker import OutboxWorker

    ct = anvil_node.seeds.certificate_types[0]
    issuer = anvil_node.seeds.member(ct.issuers[0])
    worker = OutboxWorker([BatchAnchoring(anvil_node, batch_size=100), StatusChanges(anvil_node)])
    service = CertificateService(anvil_node, public_base="http://x", worker=None)
    verifier = Verifier(anvil_node, ChainIndex(anvil_node, refresh_interval=0))
    snapshot = anvil_node.backend.raw("evm_snapshot", [])
    [cert] = service.issue(issuer.uscc, ct.code, sample_values(ct, 1, issuer=issuer, seed=9))
    worker.flush(timeout=30)
    assert verifier.verify_identifier(cert.identifier).verdict == "valid"
    anvil_node.backend.raw("evm_revert", [snapshot])  # the devnet restarted from an older state
    anvil_node.reset_senders()
    assert verifier.verify_identifier(cert.identifier).verdict == "not_anchored"
    report = worker.reconcile()
    assert report.lost == {"batches": 1, "status changes": 0}  # the batch goes back to be re-anchored
    worker.flush(timeout=30)
    assert verifier.verify_identifier(cert.identifier).verdict == "valid"
    assert worker.reconcile().total == 0


def test_an_idle_outbox_pass_asks_the_database_once_and_finds_work_in_any_lane(anvil_node, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The worker of an idle API process passes every 0.4 s: it asks every lane at once whether anything is open
    (registry/outbox/worker.py `_has_work`), and a pass with something to do still does it."""
    from sqlalchemy import event

    from api.services import build_services
    from api.settings import Settings
    from registry.certificates.service import CertificateService

    worker = build_services(anvil_node, Settings(data_dir=tmp_path, env="test")).worker
    worker.flush(timeout=30)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(anvil_node.db.engine, "before_cursor_execute", seen)
    try:
        assert worker.run_once() == 0
        assert len(statements) == 1 and statements[0].lstrip().upper().startswith("SELECT")
        ct = anvil_node.seeds.certificate_types[0]
        issuer = anvil_node.seeds.member(ct.issuers[0])
        service = CertificateService(anvil_node, public_base="http://x", worker=None)
        [cert] = service.issue(issuer.uscc, ct.code, sample_values(ct, 1, issuer=issuer, seed=11))
        statements.clear()
        assert worker.run_once(flush=True) >= 1  # an unbatched certificate: batched and anchored in this pass
        assert len(statements) > 1
        assert service.get(None, cert.identifier).status == "issued"
        statements.clear()
        assert worker.run_once() == 0 and len(statements) == 1
    finally:
        event.remove(anvil_node.db.engine, "before_cursor_execute", seen)


def test_every_lane_that_acts_before_its_open_steps_says_so_to_the_idle_check() -> None:
    """`_has_work` skips a pass when no lane's `work_exists` holds. The base `process_pending` acts on open steps
    only; a lane that also acts in `_before_pass` or its own `process_pending` must add what it acts on."""
    import api.services  # noqa: F401 (imports every lane)
    from registry.outbox.steps import StepLedger

    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    lanes = subclasses(StepLedger)
    assert len(lanes) >= 7
    acting = [c for c in lanes if any(name in vars(c) for name in ("_before_pass", "process_pending"))]
    assert acting and all("work_exists" in vars(c) for c in acting), [c.__name__ for c in acting]
