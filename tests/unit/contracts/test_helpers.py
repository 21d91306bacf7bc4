"""The conftest helpers must be able to fail: a revert assertion that always passes hides defects."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from web3 import Web3

from tests.unit.contracts.conftest import (
    SM3_ROOT,
    assert_reverts,
    b32,
    decode_custom_error,
)
from tests.unit.contracts.rfc6962 import inclusion_proof, leaf_hash, merkle_root, node_hash


def test_assert_reverts_fails_on_a_different_error(make_world):
    world = make_world()
    call = world.certificates.functions.anchorBatch(b32("r"), SM3_ROOT, 0)
    with pytest.raises(AssertionError, match="expected CertificateLedgerNotIssuer, got CertificateLedgerInvalidBatch"):
        assert_reverts(call, world.b, "CertificateLedgerNotIssuer")


def test_assert_reverts_fails_on_different_arguments(make_world):
    world = make_world()
    call = world.certificates.functions.anchorBatch(b32("r"), SM3_ROOT, 0)
    with pytest.raises(AssertionError, match="count: expected 1, got 0"):
        assert_reverts(call, world.b, "CertificateLedgerInvalidBatch", count=1)
    with pytest.raises(AssertionError, match="has no argument 'root'"):
        assert_reverts(call, world.b, "CertificateLedgerInvalidBatch", root=b32("r"))


def test_assert_reverts_fails_when_the_call_succeeds(make_world):
    world = make_world()
    call = world.certificates.functions.anchorBatch(b32("r"), SM3_ROOT, 1)
    with pytest.raises(AssertionError, match="succeeded"):
        assert_reverts(call, world.b, "CertificateLedgerInvalidBatch")


def test_decode_custom_error_handles_builtins_and_unknown_selectors():
    selector = Web3.keccak(text="ConsortiumLastAdmin(bytes32)")[:4]
    assert decode_custom_error(bytes(selector) + b32("x")) == ("ConsortiumLastAdmin", {"uscc": b32("x")})
    error_string = bytes(Web3.keccak(text="Error(string)")[:4]) + abi_encode(["string"], ["boom"])
    assert decode_custom_error(error_string) == ("Error", {"message": "boom"})
    panic = bytes(Web3.keccak(text="Panic(uint256)")[:4]) + abi_encode(["uint256"], [0x11])
    assert decode_custom_error(panic) == ("Panic", {"code": 0x11})
    assert decode_custom_error(b"") == ("Revert", {})
    assert decode_custom_error(b"\xde\xad\xbe\xef")[0] == "Unknown"


def test_reference_tree_of_five_matches_the_rfc_shape():
    d = [b32(str(i)) for i in range(5)]
    h = [leaf_hash(x) for x in d]
    left = node_hash(node_hash(h[0], h[1]), node_hash(h[2], h[3]))
    assert merkle_root(d) == node_hash(left, h[4])
    assert inclusion_proof(d, 4) == [left]
    assert inclusion_proof(d, 2) == [h[3], node_hash(h[0], h[1]), h[4]]
