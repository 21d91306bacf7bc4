"""A chain-free offline-verification workload: distinct signed ``LZ2`` payloads of realistic certificates and
the signed trust list that knows their batches, for micro-benchmarks and equality tests of the verifier's
hot path (`lianzheng bench verify` builds its payloads from a real devnet instead).

The documents are what the issuing service makes (`Document.create` over `sample_values` of a seeded type,
salts from a per-document seed), anchored in batches of ``batch_size`` (RFC 6962 trees over their SHA-256 and
SM3 digests, as the anchoring worker builds them), each batch in its own block; the payloads carry the
batch's statement, signed with the issuer's secp256k1 account key (``intl``) or its SM2 key (``gm``), or, in
the first intl form (``intl-body``, still read, no longer written), the issuer's signature over each body.
The trust list is format 2, signed by the operator's SM2 key, and lists the issuer's account and SM2 key.

>>> from registry.consortium.trust_list import TrustList
>>> w = offline_workload(3, batch_size=2)
>>> [OfflineVerifier(TrustList.from_json(w.trust_list)).verify_text(t).verdict for t in w.texts]
['valid', 'valid', 'valid']
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import coincurve

from api.devtools.samples import sample_values
from registry.certificates.documents import AnchorProof, Document
from registry.certificates.offline import OfflineVerifier, make_offline_qr
from registry.consortium.trust_list import FORMAT_V2, sign_trust_list_v2
from registry.crypto import merkle, sm2
from registry.crypto.signing import Signer
from registry.formats.qr import encode_payload, sign_payload
from registry.identifiers import CertificateId
from registry.seeds import Seeds, load_seeds

__all__ = ["PROFILES", "OfflineWorkload", "cpu_rate", "offline_workload"]

_SEEDS_DIR = Path(__file__).resolve().parents[2] / "seeds"
_CHAIN_ID, _LEDGER = 31337, "0x" + "5f" * 20
_FIRST_BLOCK, _T0 = 1_000, 1_718_000_000
Profile = Literal["intl", "gm", "intl-body"]
PROFILES: tuple[Profile, ...] = ("intl", "gm", "intl-body")


@dataclass(frozen=True)
class OfflineWorkload:
    texts: list[str]  # one distinct payload per document
    trust_list: dict[str, Any]  # signed (format 2)
    profile: str


def offline_workload(count: int, *, profile: Profile = "intl", batch_size: int = 1000,
                     type_index: int = 0, seed: int = 11, seeds: Seeds | None = None,
                     sm3: bool | None = None, hide: tuple[str, ...] = ()) -> OfflineWorkload:
    """``count`` distinct payloads (see the module docstring); deterministic for a given ``seed``. ``sm3`` as
    `make_offline_qr` takes it: None (the issuing service's default) carries the SM3 part only when it costs no
    disclosed field -- with 1,000-document batches it does not fit version 25 beside a fully disclosed 营业执照,
    so the SM3 check reports not available -- and True always carries it (hiding fields to fit). ``hide``: fields
every payload carries as leaf hashes only."""
    seeds = seeds or load_seeds(_SEEDS_DIR)
    ct = seeds.certificate_types[type_index]
    issuer = seeds.member(ct.issuers[0])
    operator = seeds.genesis
    rng = random.Random(seed)
    account_key = coincurve.PrivateKey(rng.randbytes(32)).secret
    sm2_issuer, sm2_operator = sm2.SM2Signer.generate(), sm2.SM2Signer.generate()
    account = Signer.from_private_key(account_key).address
    values = sample_values(ct, count, issuer=issuer, seed=seed, today=dt.date.today())
    docs = [Document.create(ct, v, identifier=str(CertificateId.build(ct.code, issuer.uscc, i + 1)), rng=rng)
            for i, v in enumerate(values)]
    texts: list[str] = []
    batches: dict[str, list[Any]] = {}
    for b, start in enumerate(range(0, count, batch_size)):
        chunk = docs[start:start + batch_size]
        sha = merkle.MerkleTree([merkle.leaf_hash(d.digest_sha256) for d in chunk])
        gm = merkle.MerkleTree([merkle.leaf_hash(d.digest_sm3, algorithm="sm3") for d in chunk], algorithm="sm3")
        paths, sm3_paths = sha.all_inclusion_proofs(), gm.all_inclusion_proofs()
        block, tx = _FIRST_BLOCK + b, rng.randbytes(32)
        batches[sha.root.hex()] = [block, issuer.uscc, "0x" + tx.hex(), gm.root.hex()]
        for i, doc in enumerate(chunk):
            anchor = AnchorProof(batch_root=sha.root, index=i, size=len(chunk), path=tuple(paths[i]),
                                 chain_id=_CHAIN_ID, ledger=_LEDGER, tx_hash=tx, block_number=block,
                                 block_timestamp=_T0 + 12 * b, issuer_account=account, sm3_root=gm.root,
                                 sm3_path=tuple(sm3_paths[i]))
            key: bytes | sm2.SM2Signer = sm2_issuer if profile == "gm" else account_key
            qr = make_offline_qr(doc, anchor, key, sm3=sm3, hide=hide)  # one statement per batch (cached)
            if profile == "intl-body":  # the same payload, signed over its body instead
                qr = dataclasses.replace(qr, text=encode_payload(
                    sign_payload(dataclasses.replace(qr.payload, statement=None), account_key)))
            texts.append(qr.text)
    last = _FIRST_BLOCK + len(batches)
    members = [
        {"uscc": m.uscc, "name": m.name, "bid": f"did:bid:ef{i:024x}", "roles": list(m.roles), "status": "active",
         "accounts": [account] if m.uscc == issuer.uscc else [], "sm2_keys": [
             {"key": sm2.raw_public_key(s.public_key).hex(), "since": 0, "until": 0}
             for s in ([sm2_issuer] if m.uscc == issuer.uscc else [sm2_operator] if m.uscc == operator.uscc else [])]}
        for i, m in enumerate(seeds.members)]
    body = {
        "format": FORMAT_V2, "chain_id": _CHAIN_ID,
        "contracts": {"ConsortiumRegistry": "0x" + "4e" * 20, "CertificateLedger": _LEDGER},
        "as_of": {"block": last, "block_hash": "0x" + "ab" * 32, "timestamp": _T0 + 12 * len(batches),
                  "time": dt.datetime.fromtimestamp(_T0 + 12 * len(batches), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
        "generated_at": "2024-06-10T06:30:01Z",
        "operator": {"uscc": operator.uscc, "name": operator.name, "account": "0x" + "00" * 20},
        "members": members,
        "certificate_types": [{"code": t.code, "name": t.name, "issuers": list(t.issuers)}
                              for t in seeds.certificate_types],
        "batches": batches, "documents": {},
    }
    return OfflineWorkload(texts=texts, trust_list=sign_trust_list_v2(body, sm2_operator), profile=profile)


def cpu_rate(verifier: OfflineVerifier, texts: list[str]) -> dict[str, float]:
    """Verify every text once (each must be valid) and report CPU time (``time.process_time``: the machine
    may be loaded; CPU is what one process spends) and wall time per verification."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    invalid = sum(verifier.verify_text(t).verdict != "valid" for t in texts)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if invalid:
        raise RuntimeError(f"{invalid} of {len(texts)} offline payloads did not verify as valid")
    return {"count": len(texts), "cpu_us": 1e6 * cpu / len(texts), "wall_us": 1e6 * wall / len(texts),
            "cpu_per_s": len(texts) / cpu if cpu else float("inf")}
