"""What a verifier scans: the classifier of QR text (an offline payload or a by-reference link), and the
one import point of the offline QR format.

The format lives in three modules: registry.formats.offline_payload (the payload as a value),
registry.formats.lz2 (the ``LZ2`` wire format: CBOR, zlib, Base45, the issuer's signature) and
registry.formats.base45 (RFC 9285). Their public names are re-exported here.

>>> import dataclasses
>>> from registry.certificates.fields import derive_salt
>>> seed = bytes(range(16))
>>> shown = {"证照标识": "1.2.156.3005.2.X.Y.1.001.A", "证照名称": "营业执照"}
>>> p = OfflinePayload(identifier="1.2.156.3005.2.X.Y.1.001.A", type_code="X",
...     disclosed={k: (derive_salt(seed, k), v) for k, v in shown.items()}, hidden={},
...     batch_root=bytes(32), index=0, size=1, proof=[], chain_id=31337, ledger=bytes(20),
...     block_number=7, block_timestamp=1_700_000_000, tx_hash=bytes(32), issuer_account=b"", salt_seed=seed)
>>> p = dataclasses.replace(p, batch_root=p.computed_batch_root())
>>> classify_scan(encode_payload(sign_payload(p, bytes(31) + b"\\x01"))).kind
'offline'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from registry.errors import PayloadFormatError
from registry.formats._qr_errors import NOT_OURS as _NOT_OURS
from registry.formats.base45 import BASE45_ALPHABET, b45decode, b45encode
from registry.formats.envelope import parse_ref_url
from registry.formats.lz2 import (
    FORMAT_VERSION,
    PREFIX,
    PREFIX_RE,
    body_bytes,
    decode_payload,
    encode_payload,
    recover_signer,
    sign_payload,
)
from registry.formats.offline_payload import FIELD_CODES, FieldValue, OfflinePayload

__all__ = [
    "BASE45_ALPHABET",
    "FIELD_CODES",
    "FORMAT_VERSION",
    "PREFIX",
    "FieldValue",
    "OfflinePayload",
    "ScanResult",
    "b45decode",
    "b45encode",
    "body_bytes",
    "classify_scan",
    "decode_payload",
    "encode_payload",
    "recover_signer",
    "sign_payload",
]


@dataclass(frozen=True)
class ScanResult:
    """What a scanned text is: an offline payload (``payload`` set) or a by-reference link (``key`` set)."""

    kind: Literal["offline", "reference"]
    identifier: str
    payload: OfflinePayload | None = None
    key: bytes | None = field(default=None, repr=False)  # the document key: keep it out of logs


def classify_scan(text: str, *, public_base: str | None = None) -> ScanResult:
    """Classify what a QR scanner returned. ``public_base`` (e.g. ``https://lz.example.gov.cn``), when
    given, is the only origin whose ``/v/<identifier>#<key>`` links count as ours."""
    text = text.rstrip("\r\n")  # never strip spaces: ' ' is a Base45 character
    if PREFIX_RE.match(text):
        payload = decode_payload(text)
        return ScanResult(kind="offline", identifier=payload.identifier, payload=payload)
    if re.match(r"(?i)https?://", text.strip()):
        identifier, key = parse_ref_url(text.strip(), public_base=public_base)
        return ScanResult(kind="reference", identifier=identifier, key=key)
    shown = text[:40] + ("…" if len(text) > 40 else "")
    raise PayloadFormatError(f"{_NOT_OURS}: {shown!r}", code="not_lianzheng_qr")
