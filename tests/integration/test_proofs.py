"""The proof API: RFC 6962 inclusion and consistency proofs of the ledger logs with the Backbone checkpoints
that cover them, checked with registry/crypto/merkle.py and with a second, minimal verifier written here from the
RFC's recursive definitions (not from RFC 9162's iterative algorithm that registry/crypto/merkle.py implements)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from registry.crypto.merkle import verify_consistency, verify_inclusion
from registry.logs.checkpoints import connect_backbone
from registry.logs.log import LEDGERS
from tests.conftest import Api, make_api
from tests.support.audit import MAIN_CHAIN_ID, TwoChains, build_two_chains, checkpoint_all, issue, populate

pytestmark = pytest.mark.anvil


# -- the second verifier: RFC 6962 §2.1 read literally ---------------------------------------------------------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (RFC 6962 §2.1: k < n <= 2k)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root_from_path(leaf: bytes, m: int, n: int, path: Sequence[bytes]) -> bytes:
    """Recompute MTH(D[n]) from leaf m and PATH(m, D[n]); PATH puts the top-level sibling last (§2.1.1)."""
    if n == 1:
        assert not path and m == 0
        return leaf
    k = _split(n)
    *rest, sibling = path
    if m < k:
        return _h(b"\x01" + root_from_path(leaf, m, k, rest) + sibling)
    return _h(b"\x01" + sibling + root_from_path(leaf, m - k, n - k, rest))


def roots_from_consistency(m: int, n: int, proof: Sequence[bytes], old_root: bytes, whole: bool = True) -> tuple[bytes, bytes]:
    """Recompute (MTH(D[m]), MTH(D[n])) from SUBPROOF(m, D[n], whole) (§2.1.2), consuming it from the end."""
    if m == n:
        if whole:  # the old tree is this very subtree: the proof holds nothing for it
            assert not proof
            return old_root, old_root
        [node] = proof
        return node, node
    k = _split(n)
    *rest, last = proof
    if m <= k:
        old, new = roots_from_consistency(m, k, rest, old_root, whole)
        return old, _h(b"\x01" + new + last)
    old, new = roots_from_consistency(m - k, n - k, rest, old_root, False)
    return _h(b"\x01" + last + old), _h(b"\x01" + last + new)


def independent_inclusion(entry: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    return root_from_path(_h(b"\x00" + entry), index, size, list(path)) == root


def independent_consistency(m: int, n: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    if m == n:
        return not proof and old_root == new_root
    return (old_root, new_root) == roots_from_consistency(m, n, list(proof), old_root)


# -- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoChains]:
    built = build_two_chains(tmp_path_factory.mktemp("two-chains"))
    try:
        yield built
    finally:
        built.stop()


@pytest.fixture
def api(chains: TwoChains, tmp_path: Path) -> Iterator[Api]:
    with chains.node(tmp_path / "node") as (node, _):
        yield from make_api(node, tmp_path / "api", main_rpc_urls=chains.main.url, checkpoint_interval=0)


def _b(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def _get(api: Api, path: str, **params: Any) -> dict[str, Any]:
    r = api.client.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _link(api: Api, chains: TwoChains) -> Any:
    return connect_backbone(api.node, chains.main_backend, setup=False)


# -- tests ----------------------------------------------------------------------------------------------------


def test_every_inclusion_proof_from_the_api_verifies_against_its_checkpoint(api: Api, chains: TwoChains) -> None:
    populate(api.node)
    api.services.worker.flush()  # the app's own worker sends part of it in the background: all on chain first
    checkpoint_all(api.node, _link(api, chains))
    for ledger in LEDGERS:
        summary = _get(api, "/api/v1/proofs/ledgers")["ledgers"][ledger]
        checkpoint = summary["latest_checkpoint"]
        assert checkpoint["tree_size"] == summary["size"] > 0 and checkpoint["root"] == summary["root"]
        for index in range(summary["size"]):
            body = _get(api, "/api/v1/proofs/inclusion", ledger=ledger, index=index)
            entry, path, root = _b(body["entry_hex"]), [_b(p) for p in body["proof"]], _b(body["root"])
            assert body["size"] == checkpoint["tree_size"] and body["checkpoint"]["hash"] == checkpoint["hash"]
            assert root == _b(checkpoint["root"])
            assert verify_inclusion(entry, index, body["size"], path, root)
            assert independent_inclusion(entry, index, body["size"], path, root)
            assert body["entry"]["ledger"] == ledger and body["entry"]["block"] == body["block"]
            # a proof for another position, or of another entry, does not verify
            assert not independent_inclusion(entry + b" ", index, body["size"], path, root)
            assert not verify_inclusion(entry, (index + 1) % body["size"], body["size"], path, root) or body["size"] == 1
        assert checkpoint["cosignatures"] == 3 and checkpoint["main_chain_id"] == MAIN_CHAIN_ID
        assert checkpoint["gateway_signature"]["value"].startswith("0x")


def test_consistency_proofs_from_the_api_verify_between_checkpoints(api: Api, chains: TwoChains) -> None:
    link = _link(api, chains)
    sizes = []
    for i in range(4):
        issue(api.node, 1 + i, type_index=i % 2, seed=60 + i)
        [cp] = checkpoint_all(api.node, link)
        sizes.append((cp.fields.tree_size, cp.fields.root))
    body = _get(api, "/api/v1/proofs/checkpoints", ledger="certificates")
    assert [c["tree_size"] for c in body["checkpoints"]] == [s for s, _ in sizes] == [1, 2, 3, 4]
    for m, old_root in sizes:
        for n, new_root in sizes:
            if m > n:
                continue
            proof = _get(api, "/api/v1/proofs/consistency", ledger="certificates", first=m, second=n)
            path = [_b(p) for p in proof["proof"]]
            assert (_b(proof["first_root"]), _b(proof["second_root"])) == (old_root, new_root)
            assert proof["first_checkpoint"]["tree_size"] == m and proof["second_checkpoint"]["tree_size"] == n
            assert verify_consistency(m, n, old_root, new_root, path)
            assert independent_consistency(m, n, old_root, new_root, path)
            if m < n:
                assert not independent_consistency(m, n, b"\x00" * 32, new_root, path)
                assert not verify_consistency(m, n, old_root, b"\x00" * 32, path)
    # the second size defaults to the latest checkpoint; consistency from the empty tree is the empty proof
    latest = _get(api, "/api/v1/proofs/consistency", ledger="certificates", first=0)
    assert latest["second"] == 4 and latest["proof"] == []


def test_an_entry_can_be_found_by_its_key_and_a_verification_links_to_it(api: Api, chains: TwoChains) -> None:
    [ident, *_] = issue(api.node, 3, seed=70)
    checkpoint_all(api.node, _link(api, chains))
    api.services.index.refresh(force=True)
    result = api.client.post("/api/v1/verify", json={"identifier": ident}).json()
    assert result["verdict"] == "valid"
    assert result["log_proof"] == ("/api/v1/proofs/inclusion?ledger=certificates&key=0x"
                                   + result["anchor"]["batch_root"])
    body = api.client.get(result["log_proof"]).json()
    assert body["entry"]["event"] == "BatchAnchored"
    assert body["entry"]["args"]["root"] == "0x" + result["anchor"]["batch_root"]
    assert body["entry"]["tx"] == result["anchor"]["tx_hash"]
    assert independent_inclusion(_b(body["entry_hex"]), body["index"], body["size"], [_b(p) for p in body["proof"]],
                                 _b(body["checkpoint"]["root"]))


def test_evidence_records_an_exchange_and_usages_are_found_in_their_logs_by_key(api: Api, chains: TwoChains) -> None:
    from registry.evidence.service import audit_records as evidence_records
    from registry.exchanges.service import audit_records as exchange_records
    from registry.usage.service import audit_records as usage_records

    populate(api.node)
    api.services.worker.flush()  # the app's own worker sends part of it in the background: all on chain first
    checkpoint_all(api.node, _link(api, chains))
    with api.node.db.session() as s:
        keys = [("evidence", r.key, "EvidenceRegistered") for r in evidence_records(s)]
        keys += [("exchanges", r.key, "ExchangeRequested") for r in exchange_records(s)]
        keys += [("usage", r.key, "UsageRecorded") for r in usage_records(s)]
    assert len(keys) == 5
    for ledger, key, event in keys:
        body = _get(api, "/api/v1/proofs/inclusion", ledger=ledger, key=key)
        assert body["entry"]["event"] == event and body["entry"]["args"]["id"] == key.lower()
        assert independent_inclusion(_b(body["entry_hex"]), body["index"], body["size"], [_b(p) for p in body["proof"]],
                                     _b(body["checkpoint"]["root"]))


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"ledger": "passports", "index": 0}, 422, "unknown_ledger"),
    ({"ledger": "consortium"}, 422, "missing_index"),
    ({"ledger": "consortium", "index": 10_000}, 422, "invalid_leaf_index"),
    ({"ledger": "consortium", "index": 0, "size": 10_000}, 422, "invalid_tree_size"),
    ({"ledger": "consortium", "index": 5, "size": 5}, 422, "invalid_leaf_index"),
    ({"ledger": "consortium", "index": -1}, 422, "invalid_request"),
    ({"ledger": "consortium", "index": "one"}, 422, "invalid_request"),
    ({"ledger": "consortium", "key": "0x" + "ab" * 32}, 404, "unknown_log_key"),
    ({"ledger": "consortium", "key": "not-hex"}, 422, "invalid_request"),
])
def test_bad_inclusion_parameters_are_refused_with_a_code(api: Api, params: dict[str, Any], status: int,
                                                          code: str) -> None:
    r = api.client.get("/api/v1/proofs/inclusion", params=params)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


@pytest.mark.parametrize(("params", "code"), [
    ({"ledger": "consortium", "first": 5, "second": 3}, "invalid_tree_size"),
    ({"ledger": "consortium", "first": 1, "second": 10_000}, "invalid_tree_size"),
    ({"ledger": "consortium"}, "invalid_request"),
    ({"ledger": "nope", "first": 1}, "unknown_ledger"),
])
def test_bad_consistency_parameters_are_refused_with_a_code(api: Api, params: dict[str, Any], code: str) -> None:
    r = api.client.get("/api/v1/proofs/consistency", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
