"""Building offline (by-value) QR codes: the LZ2 payload of an anchored document with its batch's statement,
kept to a QR version budget (registry.certificates.offline describes the format's choices and the verifier;
this module is its building half).

>>> qr = make_offline_qr(document, anchor, issuer_key)                       # doctest: +SKIP
>>> qr.version <= 25, qr.text[:4]                                           # doctest: +SKIP
(True, 'LZ2:')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from registry.certificates.documents import AnchorProof, Document
from registry.certificates.offline_statements import batch_statement
from registry.crypto import sm2
from registry.crypto.signing import Signer
from registry.errors import PayloadTooLargeError, ProofError, ValidationError
from registry.formats.qr import OfflinePayload, encode_payload

__all__ = ["ALNUM_CAPACITY", "CORE_FIELDS", "OfflineQr", "build_payload", "make_offline_qr"]

# ISO/IEC 18004:2015 Table 7, alphanumeric-mode capacity of versions 1..40 (checked against segno).
ALNUM_CAPACITY: dict[str, tuple[int, ...]] = {
    "m": (20, 38, 61, 90, 122, 154, 178, 221, 262, 311, 366, 419, 483, 528, 600, 656, 734, 816, 909, 970, 1035,
          1134, 1248, 1326, 1451, 1542, 1637, 1732, 1839, 1994, 2113, 2238, 2369, 2506, 2632, 2780, 2894, 3054,
          3220, 3391),
    "q": (16, 29, 47, 67, 87, 108, 125, 157, 189, 221, 259, 296, 352, 376, 426, 470, 531, 574, 644, 702, 742, 823,
          890, 963, 1041, 1094, 1172, 1263, 1322, 1429, 1499, 1618, 1700, 1787, 1867, 1966, 2071, 2181, 2298, 2420),
}
# Never hidden automatically: what a verifier at a counter must see to match the paper to the person.
CORE_FIELDS = frozenset({"证照标识", "证照名称", "证照类型代码", "颁发机构", "颁发机构代码", "颁发日期", "持证主体",
                         "持证主体代码", "持证主体代码类型", "有效期起始", "有效期截止"})


@dataclass(frozen=True)
class OfflineQr:
    text: str
    payload: OfflinePayload
    version: int  # the smallest QR version holding ``text`` at the requested level
    hidden: tuple[str, ...]  # every hidden field (asked for, hidden to fit, or already hidden in the document)


def build_payload(document: Document, anchor: AnchorProof, *, hide: Iterable[str] = (),
                  sm3: bool = True) -> OfflinePayload:
    """The unsigned payload of ``document`` with the ``hide`` fields replaced by their leaf hashes. With
    ``sm3`` and an anchor that has an SM3 path, the SM3 part travels too (hidden fields' SM3 leaf hashes and
    the SM3 audit path).

    With nothing hidden and salts derived from one seed (documents made by ``Document.create``), the 16-byte
    seed travels instead of a salt per field; with hidden fields it must not (it would reveal their salts),
    and ``Document.disclose`` drops it.
    """
    shown = document.disclose(hide) if hide else document
    if not anchor.includes(document.digest_sha256):
        raise ProofError(f"the anchor proof does not include document {document.identifier}", code="invalid_anchor_proof")
    seed = shown.salt_seed if shown.salt_seed is not None and not shown.hidden else b""
    with_sm3 = sm3 and anchor.sm3_path is not None
    return OfflinePayload(
        identifier=shown.identifier, type_code=shown.type_code,
        disclosed={p: (f.salt, f.value) for p, f in shown.fields.items()},
        hidden={p: h.sha256 for p, h in shown.hidden.items()},
        batch_root=anchor.batch_root, index=anchor.index, size=anchor.size, proof=list(anchor.path),
        chain_id=anchor.chain_id, ledger=bytes.fromhex(anchor.ledger[2:]), block_number=anchor.block_number,
        block_timestamp=anchor.block_timestamp, tx_hash=anchor.tx_hash,
        issuer_account=b"",  # a statement names no account on the wire: the verifier recovers or looks it up
        salt_seed=seed,
        sm3_hidden={p: h.sm3 for p, h in shown.hidden.items()} if with_sm3 else {},
        sm3_proof=list(anchor.sm3_path) if with_sm3 and anchor.sm3_path is not None else None,
    )


def make_offline_qr(document: Document, anchor: AnchorProof, private_key: bytes | Signer | sm2.SM2Signer, *,
                    hide: Iterable[str] = (), max_version: int = 25, error: str = "m", sm3: bool | None = None,
                    signed_at: int | None = None) -> OfflineQr:
    """Sign and encode ``document`` so that it fits ``max_version`` at ``error`` (see the module docstring).

    ``private_key``: the issuer's secp256k1 account key (a `Signer`, whose key may stay in an HSM, or the 32
    private bytes: an intl payload) or its SM2 key (a gm payload). Either way the payload carries the batch's
    statement (`batch_statement`, signed at ``signed_at``, default now; once per batch and key in a process).

    The SM3 part (``sm3``): True always carries it (hiding fields to fit if need be), False never, None (the
    default) carries it when the payload with it needs no more hidden fields than the payload without: the SM3
    check never costs the holder a disclosed field.

    Raises ``PayloadTooLargeError(code="qr_too_large")`` when hiding every long non-core field is not enough.
    """
    if sm3 is None and anchor.sm3_path is not None:
        plain = make_offline_qr(document, anchor, private_key, hide=hide, max_version=max_version, error=error,
                                sm3=False, signed_at=signed_at)
        try:
            with_sm3 = make_offline_qr(document, anchor, private_key, hide=plain.hidden, max_version=max_version,
                                       error=error, sm3=True, signed_at=signed_at)
        except PayloadTooLargeError:
            return plain
        return with_sm3 if with_sm3.hidden == plain.hidden else plain
    error = error.lower()
    if error not in ALNUM_CAPACITY or not 1 <= max_version <= 40:
        raise ValidationError(f"offline QR needs error level M or Q and a version 1..40, got {error.upper()} "
                              f"and {max_version}", code="invalid_qr_options")
    if errors := document.integrity_errors():
        raise ProofError(f"refusing to sign a document that fails its own integrity check: {errors[0]}",
                         code="integrity_failed")
    capacity = ALNUM_CAPACITY[error][max_version - 1]
    hidden = set(hide)
    statement = batch_statement(private_key, anchor, signed_at=signed_at)

    def encode(names: set[str]) -> tuple[str, OfflinePayload]:
        payload = dataclasses.replace(build_payload(document, anchor, hide=names, sm3=bool(sm3)), statement=statement)
        return encode_payload(payload), payload

    text, payload = encode(hidden)
    while len(text) > capacity:
        # Greedy: hide the field whose hash is cheaper than its salt + value by the widest margin.
        best: tuple[int, str, str, OfflinePayload] | None = None
        for name in sorted(set(document.fields) - hidden - CORE_FIELDS):
            candidate, signed = encode(hidden | {name})
            if len(candidate) < len(text) and (best is None or len(candidate) < best[0]):
                best = (len(candidate), name, candidate, signed)
        if best is None:
            need = next((v for v, c in enumerate(ALNUM_CAPACITY[error], 1) if c >= len(text)), None)
            raise PayloadTooLargeError(
                f"离线二维码过大 / offline QR too large: {len(text)} characters need version {need or '>40'} at level "
                f"{error.upper()}, the limit is version {max_version} ({capacity} characters) even with "
                f"{len(hidden)} fields hidden; use the by-reference QR, hide more fields, or allow a larger version",
                code="qr_too_large", details={"characters": len(text), "needed_version": need,
                                              "max_version": max_version, "hidden": sorted(hidden)})
        _, name, text, payload = best
        hidden.add(name)
    version = next(v for v, c in enumerate(ALNUM_CAPACITY[error], 1) if c >= len(text))
    return OfflineQr(text=text, payload=payload, version=version, hidden=tuple(sorted({*hidden, *document.hidden})))
