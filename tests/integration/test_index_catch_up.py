"""Read your writes: a certificate this node just reported anchored verifies as anchored at once, on a verifier
whose chain index would not refresh on its own for an hour (registry/certificates/index.py `batch`: a batch root
not seen yet gets one early refresh). A root that is not on chain does not make every lookup a chain read."""

from __future__ import annotations

import pytest

from api.devtools.samples import sample_values
from registry.certificates.anchor_lookup import anchor_proof_for
from registry.certificates.index import ChainIndex
from registry.certificates.verification import Verifier
from tests.conftest import Api

pytestmark = pytest.mark.anvil


def _issue(api: Api, seed: int) -> dict[str, object]:
    ct = api.node.seeds.certificate_types[0]
    issuer = api.node.seeds.member(ct.issuers[0])
    docs = sample_values(ct, 1, issuer=issuer, seed=seed)
    r = api.client.post("/api/v1/certificates/batch?wait=true", json={"type": ct.code, "documents": docs},
                        headers=api.auth(issuer.uscc))
    assert r.status_code == 201 and r.json()["status"] == "issued", r.text
    cert: dict[str, object] = r.json()["certificates"][0]
    return cert


def test_a_certificate_reported_anchored_verifies_before_the_index_refreshes(api: Api) -> None:
    index = ChainIndex(api.node, refresh_interval=3600)
    index.refresh()  # synced now; left alone it would not read the chain again for an hour
    cert = _issue(api, 77)  # anchored, the receipt recorded by this node, in a block the index has not read
    synced = index.synced_block
    result = Verifier(api.node, index).verify_document(cert["document"])  # type: ignore[arg-type]
    assert result.verdict == "valid", result.to_json()
    assert index.synced_block > synced
    stale = ChainIndex(api.node, refresh_interval=3600)
    stale.refresh()
    cert = _issue(api, 78)
    proof = anchor_proof_for(Verifier(api.node, stale), str(cert["identifier"]))  # checks the path to the root too
    assert proof.block_number > synced and stale.batches[proof.batch_root].block_number == proof.block_number


def test_an_unknown_root_refreshes_at_most_once_per_catch_up_interval(api: Api) -> None:
    index = ChainIndex(api.node, refresh_interval=3600, catch_up=3600)
    index.refresh()
    at = index.synced_at
    for _ in range(3):
        assert index.batch(b"\x01" * 32) is None
    assert index.synced_at == at  # no chain read: the last refresh is younger than catch_up
    index.catch_up = 0.0
    assert index.batch(b"\x01" * 32) is None
    assert index.synced_at > at  # one early refresh for a root it has not seen


def test_a_revocation_this_node_made_shows_at_once(api: Api) -> None:
    cert = _issue(api, 79)
    index = api.services.index
    index.refresh_interval = 3600  # left alone, the node's verifier would answer from this view for an hour
    index.refresh(force=True)
    assert api.client.post("/api/v1/verify", json={"identifier": cert["identifier"]}).json()["verdict"] == "valid"
    issuer = str(cert["identifier"]).split(".")[6]
    r = api.client.post(f"/api/v1/certificates/{cert['identifier']}/revoke", json={"reason": 1},
                        headers=api.auth(issuer))
    assert r.status_code == 200, r.text
    verdict = api.client.post("/api/v1/verify", json={"identifier": cert["identifier"]}).json()["verdict"]
    assert verdict == "revoked"
