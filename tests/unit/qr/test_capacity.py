"""How big a realistic offline payload is, and which QR version it needs.

Measured for the realistic 营业执照 of ``factories.REALISTIC_FIELDS`` (13 GB/T 36905 fields + 6 type-specific
Chinese fields, all disclosed with 16-byte salts, a 10-hash batch proof): CBOR body 1,418 bytes, signed
envelope 1,489, zlib ~1,330, text 1,989..2,008 characters over 30 random draws of the salts and hashes ->
version 31 at level M (30 for a sixth of the draws), 27 at L, 37 at Q.

Version 25-M (1,451 alphanumeric characters, ~965 bytes once Base45 is undone) is out of reach for this
data model whatever the encoding: the random parts alone -- 19 salts (304 bytes), 10 proof hashes (320),
batch root and transaction hash (64), two addresses (40), signature (65): 793 bytes -- take 1,190
characters, and the identifier plus the Chinese values do not compress into the ~170 bytes left.
``test_version_25_m_has_no_room_for_the_realistic_text`` keeps that argument checked.
"""

from __future__ import annotations

import zlib

import segno

from registry.images import qr_version
from registry.qr import OfflinePayload, encode_payload, sign_payload
from tests.unit.qr.factories import IDENTIFIER, ISSUER_KEY, REALISTIC_FIELDS, make_payload


def _alnum_capacity(version: int, error: str) -> int:
    lo, hi = 1, 7089
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            segno.make("A" * mid, error=error, mode="alphanumeric", version=version, boost_error=False)
            lo = mid
        except segno.DataOverflowError:
            hi = mid - 1
    return lo


def test_realistic_payload_needs_version_31_at_m(offline_text: str) -> None:
    assert len(offline_text) <= 2010
    version = segno.make(offline_text, error="m", mode="alphanumeric", version=None, boost_error=False).version
    assert version == qr_version(offline_text, error="m") <= 31
    assert qr_version(offline_text, error="l") <= 27


def test_a_7_hash_proof_saves_one_version() -> None:
    text = encode_payload(sign_payload(make_payload(proof_len=7), ISSUER_KEY))  # batches of <= 128 documents
    assert qr_version(text, error="m") <= 30
    assert qr_version(text, error="l") <= 26


def test_compaction_beats_a_naive_utf8_cbor_map(signed_payload: OfflinePayload, offline_text: str) -> None:
    import cbor2

    p = signed_payload
    naive = cbor2.dumps({
        "identifier": p.identifier, "type_code": p.type_code,
        "disclosed": {k: [s, v] for k, (s, v) in p.disclosed.items()}, "hidden": p.hidden,
        "batch_root": p.batch_root, "index": p.index, "size": p.size, "proof": p.proof, "chain_id": p.chain_id,
        "ledger": p.ledger, "block_number": p.block_number, "block_timestamp": p.block_timestamp,
        "tx_hash": p.tx_hash, "issuer_account": p.issuer_account, "signature": p.signature,
    })
    naive_chars = 4 + len(zlib.compress(naive, 9)) * 3 // 2
    assert len(offline_text) < naive_chars - 250  # field codes + GB 18030 + positional body save > 1 version


def test_version_25_m_has_no_room_for_the_realistic_text() -> None:
    room_bytes = (_alnum_capacity(25, "m") - len("LZ1:")) * 2 // 3
    random_bytes = 19 * 16 + 10 * 32 + 32 + 32 + 20 + 20 + 65
    text = "".join([IDENTIFIER, *REALISTIC_FIELDS.values()]).encode("gb18030")
    assert _alnum_capacity(25, "m") == 1451
    assert random_bytes == 793
    assert len(zlib.compress(text, 9)) > room_bytes - random_bytes
