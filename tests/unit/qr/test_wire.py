"""What LZ2 leaves off the wire and how the decoder restores it: the salt seed instead of per-field salts,
the batch root recomputed from the fields and the audit path, the issuer account recovered from the
signature, no transaction hash. Checked against real documents (registry.documents) and real batch trees
(registry.merkle)."""

from __future__ import annotations

import contextlib
import dataclasses
import random
import zlib
from pathlib import Path

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.devtools.samples import sample_values
from registry.certificates import fields
from registry.certificates.documents import AnchorProof, Document, derive_salt
from registry.crypto import merkle
from registry.errors import ValidationError
from registry.formats.qr import (
    OfflinePayload,
    b45decode,
    body_bytes,
    decode_payload,
    encode_payload,
    recover_signer,
    sign_payload,
)
from registry.identifiers import CertificateId
from registry.seeds import load_seeds
from tests.unit.qr.factories import ISSUER_ADDRESS, ISSUER_KEY, as_decoded, make_payload

SEEDS = load_seeds(Path(__file__).resolve().parents[3] / "seeds")
LICENCE = SEEDS.certificate_type("11230000MB1A00028M001")  # 营业执照
SIGNER = bytes.fromhex(ISSUER_ADDRESS[2:])


def _document(serial: int = 1) -> Document:
    [values] = sample_values(LICENCE, 1, issuer=SEEDS.member(LICENCE.issuers[0]), seed=serial)
    identifier = str(CertificateId.build(LICENCE.code, LICENCE.issuers[0], serial))
    return Document.create(LICENCE, values, identifier=identifier, rng=random.Random(serial))


def _anchored(doc: Document, *, index: int = 5, size: int = 13) -> AnchorProof:
    """``doc`` at ``index`` of a batch of ``size`` documents (the others random digests), as anchored."""
    rnd = random.Random(size)
    digests = [rnd.randbytes(32) for _ in range(size)]
    digests[index] = doc.digest_sha256
    tree = merkle.MerkleTree([merkle.leaf_hash(d) for d in digests])
    return AnchorProof(batch_root=tree.root, index=index, size=size, path=tuple(tree.inclusion_proof(index)),
                       chain_id=31337, ledger="0x5fbdb2315678afecb367f032d93f642f64180aa3", tx_hash=bytes(range(32)),
                       block_number=12, block_timestamp=1_700_000_000, issuer_account=ISSUER_ADDRESS)


def _payload(doc: Document, anchor: AnchorProof) -> OfflinePayload:
    return OfflinePayload(
        identifier=doc.identifier, type_code=doc.type_code,
        disclosed={p: (f.salt, f.value) for p, f in doc.fields.items()},  # type: ignore[misc]
        hidden={p: h.sha256 for p, h in doc.hidden.items()},
        batch_root=anchor.batch_root, index=anchor.index, size=anchor.size, proof=list(anchor.path),
        chain_id=anchor.chain_id, ledger=bytes.fromhex(anchor.ledger[2:]), block_number=anchor.block_number,
        block_timestamp=anchor.block_timestamp, tx_hash=anchor.tx_hash,
        issuer_account=bytes.fromhex(anchor.issuer_account[2:]), salt_seed=doc.salt_seed or b"",
    )


def _envelope(text: str) -> tuple[bytes, bytes]:
    body, signature = cbor2.loads(zlib.decompress(b45decode(text[4:])))
    return body, signature


# --- real documents in real batches -----------------------------------------------------------------------


def test_an_issued_document_travels_with_its_seed_and_decodes_to_the_same_fields_and_root() -> None:
    doc = _document()
    anchor = _anchored(doc)
    signed = sign_payload(_payload(doc, anchor), ISSUER_KEY)
    assert signed.document_digest() == doc.digest_sha256
    assert signed.computed_batch_root() == anchor.batch_root
    text = encode_payload(signed)
    decoded = decode_payload(text)
    assert decoded == as_decoded(signed)
    assert decoded.disclosed == {p: (f.salt, f.value) for p, f in doc.fields.items()}
    assert decoded.batch_root == anchor.batch_root and decoded.salt_seed == doc.salt_seed
    assert anchor.includes(decoded.document_digest())
    assert recover_signer(decoded) == ISSUER_ADDRESS and decoded.issuer_account == SIGNER
    body = cbor2.loads(_envelope(text)[0])
    assert body[3] == doc.salt_seed and all(not isinstance(v, list) for v in body[4].values())


def test_a_disclosed_copy_travels_with_per_field_salts_and_the_hidden_leaves() -> None:
    doc = _document(2)
    anchor = _anchored(doc, index=12, size=13)
    shown = doc.disclose(["持证主体代码", "住所"])
    assert shown.salt_seed is None
    signed = sign_payload(_payload(shown, anchor), ISSUER_KEY)
    decoded = decode_payload(encode_payload(signed))
    assert decoded == as_decoded(signed) and decoded.salt_seed == b""
    assert decoded.document_digest() == doc.digest_sha256 and decoded.batch_root == anchor.batch_root
    assert set(decoded.hidden) == {"持证主体代码", "住所"}
    assert all(isinstance(v, list) and len(v[0]) == 16 for v in cbor2.loads(body_bytes(decoded))[4].values())


@pytest.mark.parametrize(("index", "size"), [(0, 1), (0, 2), (1, 2), (6, 7), (4, 7), (517, 1000), (999, 1000)])
def test_the_recomputed_root_is_the_batch_trees_root(index: int, size: int) -> None:
    doc = _document(3)
    anchor = _anchored(doc, index=index, size=size)
    payload = _payload(doc, anchor)
    assert payload.computed_batch_root() == anchor.batch_root
    assert decode_payload(encode_payload(payload)).batch_root == anchor.batch_root


@given(st.integers(1, 70), st.data(), st.sampled_from(["sha256", "sm3"]), st.booleans())
def test_batch_root_is_the_root_of_the_batch_tree(size: int, data: st.DataObject, algorithm: str, compiled: bool) -> None:
    # fields.batch_root (in C when built, and in Python) against the tree registry.crypto.merkle builds level by
    # level from all the leaves, and registry.crypto.merkle's own verifier
    index = data.draw(st.integers(0, size - 1))
    digests = [bytes([i % 256, i // 256]) * 16 for i in range(size)]
    leaves = [merkle.leaf_hash(d, algorithm=algorithm) for d in digests]
    tree = merkle.MerkleTree(leaves, algorithm=algorithm)
    proof = tree.inclusion_proof(index)
    with contextlib.nullcontext() if compiled else fields.python_only():
        root = fields.batch_root(digests[index], index, size, proof, algorithm=algorithm)
        assert root == tree.root
        assert merkle.verify_inclusion_leaf_hash(leaves[index], index, size, proof, root, algorithm=algorithm)
        # A path one hash too long or too short fits no tree of this size: no root, and merkle agrees.
        for wrong in (proof + [bytes(32)], proof[:-1]) if proof else ([bytes(32)],):
            assert fields.batch_root(digests[index], index, size, wrong, algorithm=algorithm) is None
            assert not merkle.verify_inclusion_leaf_hash(leaves[index], index, size, wrong, tree.root,
                                                         algorithm=algorithm)
        # another index of the same size leads elsewhere (or nowhere)
        other = (index + 1) % size
        if other != index:
            assert fields.batch_root(digests[index], other, size, proof, algorithm=algorithm) != tree.root


# --- what is not on the wire --------------------------------------------------------------------------------


def test_root_tx_hash_issuer_account_and_per_field_salts_are_not_on_the_wire(
        signed_payload: OfflinePayload, offline_text: str) -> None:
    body, signature = _envelope(offline_text)
    assert signature == signed_payload.signature and body == body_bytes(signed_payload)
    for absent in (signed_payload.batch_root, signed_payload.tx_hash, signed_payload.issuer_account,
                   *(salt for salt, _ in signed_payload.disclosed.values())):
        assert absent not in body
    assert signed_payload.salt_seed in body


def test_decoded_salts_are_rederived_from_the_seed(signed_payload: OfflinePayload) -> None:
    decoded = decode_payload(encode_payload(signed_payload))
    assert {k: s for k, (s, _) in decoded.disclosed.items()} == {
        k: derive_salt(signed_payload.salt_seed, k) for k in signed_payload.disclosed}


def test_the_issuer_account_is_the_signer_after_decoding() -> None:
    signed = sign_payload(make_payload(issuer_account=b""), ISSUER_KEY)
    assert signed.issuer_account == SIGNER  # sign_payload fills in an empty issuer account
    assert decode_payload(encode_payload(signed)).issuer_account == SIGNER
    # a signature from which no key recovers: the payload still decodes, with no issuer account
    broken = dataclasses.replace(make_payload(issuer_account=b""), signature=bytes(65))
    assert decode_payload(encode_payload(broken)).issuer_account == b""


def test_encoding_refuses_a_batch_root_the_fields_and_proof_do_not_lead_to() -> None:
    payload = make_payload()
    with pytest.raises(ValidationError, match="batch_root is not the root its fields, index, size and proof") as err:
        encode_payload(dataclasses.replace(payload, batch_root=bytes(32)))
    assert err.value.code == "invalid_payload_field"
    changed = dataclasses.replace(payload, disclosed={**payload.disclosed, "持证主体": (
        payload.disclosed["持证主体"][0], "别的公司")})
    with pytest.raises(ValidationError, match="batch_root is not the root"):
        encode_payload(changed)


def test_encoding_refuses_an_issuer_account_that_is_not_the_signer() -> None:
    other = bytes.fromhex("7e5f4552091a69125d5dfcb7b8c2659029395bdf")
    signed = sign_payload(make_payload(issuer_account=other), ISSUER_KEY)
    with pytest.raises(ValidationError, match="issuer_account 0x7e5f.* is not the signer 0x2c75") as err:
        encode_payload(signed)
    assert err.value.code == "invalid_payload_field"


def test_an_unsigned_payload_loses_its_issuer_account_and_every_payload_its_tx_hash() -> None:
    payload = make_payload()
    assert payload.issuer_account == SIGNER and len(payload.tx_hash) == 32
    decoded = decode_payload(encode_payload(payload))
    assert decoded.issuer_account == b"" and decoded.tx_hash == b""


def test_a_proof_that_does_not_fit_the_batch_size_cannot_give_a_root() -> None:
    payload = make_payload()
    with pytest.raises(ValidationError, match="proof of 10 hashes does not fit leaf 517 of a batch of 3000"):
        dataclasses.replace(payload, size=3000).computed_batch_root()
