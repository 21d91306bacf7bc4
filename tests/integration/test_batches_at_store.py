"""A request's whole batches are prepared in the transaction that stores its documents
(`BatchAnchoring.form_at_store`); what is left over waits for the worker's passes. Real anvil, real database."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from api.devtools.samples import sample_values
from chain.artifacts import load_artifact
from chain.logs import LogReader
from registry.certificates.anchoring import BatchAnchoring
from registry.certificates.service import CertificateService
from registry.crypto.merkle import leaf_hash, root_from_leaf_hashes, verify_inclusion_leaf_hash
from registry.outbox.worker import OutboxWorker
from registry.store.db import Batch, Certificate

pytestmark = pytest.mark.anvil

SIZE = 10


def _rows(node: Any) -> tuple[list[Batch], list[Certificate]]:
    with node.db.session() as s:
        return list(s.scalars(select(Batch).order_by(Batch.id))), list(s.scalars(select(Certificate)))


def _check_batch(batch: Batch, leaves: list[Certificate]) -> None:
    """The batch's roots are the RFC 6962 roots of its leaves in leaf order, and each stored path leads there."""
    leaves = sorted(leaves, key=lambda c: c.leaf_index)
    assert [c.leaf_index for c in leaves] == list(range(batch.size))
    for algorithm, root, digest, path in (("sha256", batch.root, "digest_sha256", "proof"),
                                          ("sm3", batch.root_sm3, "digest_sm3", "proof_sm3")):
        hashes = [leaf_hash(bytes.fromhex(getattr(c, digest)), algorithm=algorithm) for c in leaves]
        assert root_from_leaf_hashes(hashes, algorithm=algorithm).hex() == root[2:]
        for c, h in zip(leaves, hashes, strict=True):
            proof = getattr(c, path)
            audit = [proof[k:k + 32] for k in range(0, len(proof), 32)]
            assert verify_inclusion_leaf_hash(h, c.leaf_index, batch.size, audit, bytes.fromhex(root[2:]),
                                              algorithm=algorithm)


def test_whole_batches_are_prepared_with_the_request_and_the_rest_by_the_worker(anvil_node: Any) -> None:
    ct = anvil_node.seeds.certificate_types[0]
    issuer = anvil_node.seeds.member(ct.issuers[0])
    worker = OutboxWorker([BatchAnchoring(anvil_node, batch_size=SIZE)])  # not started: nothing runs meanwhile
    service = CertificateService(anvil_node, public_base="http://x", worker=worker)
    docs = sample_values(ct, 2 * SIZE + 5, issuer=issuer, seed=41)
    issued = service.issue(issuer.uscc, ct.code, docs)

    batches, certs = _rows(anvil_node)
    assert [(b.state, b.size, b.tx_hash) for b in batches] == [("prepared", SIZE, None)] * 2
    in_batch = {b.id: [c for c in certs if c.batch_id == b.id] for b in batches}
    for b in batches:
        _check_batch(b, in_batch[b.id])
    by_id = {c.identifier: c for c in certs}
    # the first two whole batches in the request's order; the last five left for later documents
    assert [by_id[i.identifier].batch_id for i in issued] == [batches[0].id] * SIZE + [batches[1].id] * SIZE + [None] * 5
    assert all(by_id[i.identifier].proof is None for i in issued[2 * SIZE:])

    # the same documents again are replays: nothing new is stored, no batch is made
    again = service.issue(issuer.uscc, ct.code, docs[:SIZE + 3] + sample_values(ct, SIZE, issuer=issuer, seed=42))
    assert [i.replayed for i in again] == [True] * (SIZE + 3) + [False] * SIZE
    batches, certs = _rows(anvil_node)
    assert len(batches) == 3 and batches[2].size == SIZE  # the ten fresh ones alone
    _check_batch(batches[2], [c for c in certs if c.batch_id == batches[2].id])

    worker.flush(timeout=60)  # the worker sends the three and batches the five left over
    batches, certs = _rows(anvil_node)
    assert [(b.state, b.size) for b in batches] == [("anchored", SIZE)] * 3 + [("anchored", 5)]
    assert {c.status for c in certs} == {"issued"}
    _check_batch(batches[3], [c for c in certs if c.batch_id == batches[3].id])
    ledger = anvil_node.certificate_ledger
    reader = LogReader(anvil_node.backend, {ledger.address: load_artifact("CertificateLedger").abi})
    anchored = sorted("0x" + e.args["root"].hex() for e in reader.events(from_block=0) if e.name == "BatchAnchored")
    assert anchored == sorted(b.root for b in batches)  # each root once


def test_without_a_worker_nothing_is_batched_at_store(anvil_node: Any) -> None:
    """A service without the outbox (the CLI's offline paths, tests) leaves every document to a later pass."""
    ct = anvil_node.seeds.certificate_types[0]
    issuer = anvil_node.seeds.member(ct.issuers[0])
    service = CertificateService(anvil_node, public_base="http://x", worker=None)
    service.issue(issuer.uscc, ct.code, sample_values(ct, 2 * SIZE, issuer=issuer, seed=43))
    batches, certs = _rows(anvil_node)
    assert batches == [] and {c.batch_id for c in certs} == {None}
