"""How big a realistic offline payload is, and which QR version it needs (issue 4: version 25 at level M).

Measured for the realistic 营业执照 of ``factories.REALISTIC_FIELDS`` (13 GB/T 36905 fields + 6 type-specific
Chinese fields, all disclosed, salts derived from one 16-byte seed as ``Document.create`` makes them, a
10-hash batch proof): CBOR body 1,004 bytes, signed envelope 1,075, zlib ~905, text 1,357..1,365 characters
over 30 random draws of the seed and hashes -> version 25 at level M (capacity 1,451: 86+ characters to
spare), 22 at L, 30 at Q.

The first format, LZ1, sent a salt per field, the batch root, the transaction hash and the issuer account:
body 1,418 bytes, text 1,989..2,008 characters -> version 30-31 at M. The seed alone (LZ1 otherwise) gave
1,498..1,506 characters, version 26; leaving the root, the transaction hash and the issuer account off the
wire (the decoder recomputes or recovers the first and last) brought it to version 25.

A payload with hidden fields cannot send the seed (it would reveal their salts), so each shown field
carries its own 16-byte salt and each hidden one its 32-byte leaf hash: hiding 持证主体代码 and 住所 gives
1,858..1,869 characters, version 30 at M.
"""

from __future__ import annotations

import zlib

import segno

from registry.formats.images import qr_version
from registry.formats.qr import OfflinePayload, decode_payload, encode_payload, sign_payload
from tests.unit.qr.factories import IDENTIFIER, ISSUER_KEY, REALISTIC_FIELDS, as_decoded, make_payload

V25_M = 1451  # alphanumeric characters in a version-25 QR at level M (ISO/IEC 18004 Table 7)


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


def test_realistic_payload_fits_version_25_at_m(offline_text: str) -> None:
    version = segno.make(offline_text, error="m", mode="alphanumeric", version=None, boost_error=False).version
    assert version == qr_version(offline_text, error="m") <= 25
    assert qr_version(offline_text, error="l") <= 22
    assert qr_version(offline_text, error="q") <= 30


def test_it_fits_with_margin_whatever_the_random_bytes() -> None:
    lengths = [len(encode_payload(sign_payload(make_payload(seed=s), ISSUER_KEY))) for s in range(10)]
    assert max(lengths) <= 1380 < V25_M - 70  # measured 1,357..1,365: a regression shows here first


def test_a_7_hash_proof_saves_two_versions() -> None:
    text = encode_payload(sign_payload(make_payload(proof_len=7), ISSUER_KEY))  # batches of <= 128 documents
    assert qr_version(text, error="m") <= 23
    assert qr_version(text, error="q") <= 28


def test_a_payload_with_hidden_fields_sends_per_field_salts_and_needs_version_30() -> None:
    signed = sign_payload(make_payload(hide=("持证主体代码", "住所")), ISSUER_KEY)
    assert signed.salt_seed == b""
    text = encode_payload(signed)
    assert decode_payload(text) == as_decoded(signed)
    assert 1850 <= len(text) <= 1880
    assert qr_version(text, error="m") == 30
    assert qr_version(text, error="l") == 26


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
    assert len(offline_text) < naive_chars - 800  # seed, no root/tx/issuer, codes, GB 18030, positional body


def test_byte_budget_of_version_25_m() -> None:
    """Base45 turns 2 bytes into 3 characters, so version 25-M holds 964 compressed bytes. What does not
    compress in LZ2 -- the seed (16), 10 proof hashes (320), the ledger address (20), the signature (65) --
    is 421 bytes and the identifier plus the Chinese values compress to ~350, so the realistic payload fits.
    LZ1's incompressible part was 793 bytes (19 salts 304, the proof 320, batch root and transaction hash 64,
    ledger and issuer addresses 40, signature 65), which left no room for the text."""
    room_bytes = (_alnum_capacity(25, "m") - len("LZ2:")) * 2 // 3
    random_lz2 = 16 + 10 * 32 + 20 + 65
    random_lz1 = 19 * 16 + 10 * 32 + 32 + 32 + 20 + 20 + 65
    text = len(zlib.compress("".join([IDENTIFIER, *REALISTIC_FIELDS.values()]).encode("gb18030"), 9))
    assert _alnum_capacity(25, "m") == V25_M and room_bytes == 964
    assert (random_lz2, random_lz1) == (421, 793)
    assert random_lz2 + text < room_bytes - 150 < room_bytes < random_lz1 + text
