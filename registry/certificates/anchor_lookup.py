"""The anchor proof of a certificate by identifier, for a holder whose copy has none yet.

A document leaves its issuer before its batch is anchored (the by-reference blob and the issuing response carry
no ``anchor``), so a wallet that wants a self-contained copy — the 电子卡包 export (registry/formats/vc.py), an
offline verifier — asks any node for the anchor proof: the audit path from the certificate's public record (this
node's own record, or the issuing agency's node's, found on chain: registry.certificates.remote) and where the
batch was anchored from this node's view of the chain (transaction, block and its time, the issuing account,
chain id and CertificateLedger address). Nothing here is secret: the same numbers are in every public record and
on chain. The caller attaches the proof with ``Document.with_anchor``, which refuses a proof that does not place
its own document digest, so a node that answers wrongly cannot make a document verify.

    >>> proof = anchor_proof_for(verifier, "1.2.156.3005.2....")     # doctest: +SKIP
    >>> doc = doc.with_anchor(proof)                                 # doctest: +SKIP
"""

from __future__ import annotations

from registry.certificates.anchor_proof import AnchorProof
from registry.certificates.remote import PublicRecord, public_record
from registry.certificates.verification import Verifier
from registry.errors import ConflictError, NotFoundError, ProofError
from registry.identifiers import CertificateId

__all__ = ["anchor_proof_for"]


def _record(verifier: Verifier, cid: CertificateId) -> PublicRecord:
    try:
        return public_record(verifier.node, str(cid))
    except NotFoundError:
        if verifier.remote is None or verifier.node.keys.has_signing_key(cid.issuer_uscc):
            raise
        return verifier.remote.record(cid)


def anchor_proof_for(verifier: Verifier, identifier: str) -> AnchorProof:
    """The anchor proof of ``identifier``. NotFoundError (unknown), ConflictError ``not_anchored_yet`` (its
    batch waits), ProofError ``invalid_anchor_proof`` (the record's root is not on this node's chain),
    ChainUnavailableError (the chain or the issuing node cannot be read)."""
    cid = CertificateId.parse(identifier)
    rec = _record(verifier, cid)
    if rec.batch_root is None:
        raise ConflictError(f"certificate {cid} is not anchored yet; ask again in a few seconds",
                            code="not_anchored_yet")
    batch = verifier.index.batch(rec.batch_root)  # catches up once when the receipt is newer than the last refresh
    if batch is None or batch.count != rec.size:
        raise ProofError(f"the batch root {rec.batch_root.hex()} of {cid} (size {rec.size}) is not anchored on this "
                         "node's chain", code="invalid_anchor_proof")
    deployment = verifier.node.require_deployment()
    with_sm3 = rec.sm3_root is not None and rec.sm3_root == batch.sm3_root
    proof = AnchorProof(
        batch_root=rec.batch_root, index=rec.index, size=rec.size, path=rec.path, chain_id=deployment.chain_id,
        ledger=deployment.address("CertificateLedger"), tx_hash=bytes.fromhex(batch.tx_hash.removeprefix("0x")),
        block_number=batch.block_number, block_timestamp=verifier.index.block_timestamp(batch.block_number),
        issuer_account=batch.issuer, sm3_root=rec.sm3_root if with_sm3 else None,
        sm3_path=rec.sm3_path if with_sm3 else None)
    if not proof.includes(rec.digest_sha256):
        raise ProofError(f"the audit path of {cid} does not lead from its digest to its batch root",
                         code="invalid_anchor_proof")
    return proof
