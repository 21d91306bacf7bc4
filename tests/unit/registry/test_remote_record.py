"""The public record's sealed signature (registry/certificates/remote.py): it survives the trip through JSON
byte for byte, and a malformed `seal` member is refused with a clear reason before any check runs."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest

from registry.certificates.remote import MAX_SEALED_BYTES, PublicRecord, SealedCopy
from registry.errors import PayloadFormatError
from registry.identifiers import CertificateId

CID = CertificateId.build("11230000MB1A00028M001", "11230000MB1A00028M", 7)
SM3 = bytes(range(32))


def _record(seal: SealedCopy | None) -> PublicRecord:
    return PublicRecord(str(CID), CID.type_code, CID.issuer_uscc, b"\x11" * 32, SM3, dt.date(2026, 1, 1), None,
                        b"\x22" * 32, 0, 1, (), seal=seal)


def _with_seal(seal: Any) -> dict[str, Any]:
    obj = _record(None).to_json()
    obj["seal"] = seal
    return obj


def test_a_sealed_signature_travels_in_the_record_byte_for_byte() -> None:
    der = bytes(range(256)) * 40
    rec = _record(SealedCopy("ES11230000MB1A00028M0001", "ses-signature", der, SM3))
    back = PublicRecord.from_json(rec.to_json(), identifier=CID)
    assert back.seal == rec.seal  # the SM3 digest it must be over is the record's own
    assert back.seal is not None and back.seal.signature == der and back.seal.digest_sm3 == SM3
    assert PublicRecord.from_json(_record(None).to_json(), identifier=CID).seal is None


@pytest.mark.parametrize("seal,reason", [
    ("ES1", "seal must be"),
    ({"id": "ES1", "format": "ses-signature"}, "seal must be"),
    ({"id": "ES1", "format": "ses-signature", "signature": "AA==", "extra": 1}, "seal must be"),
    ({"id": "es-1/../x", "format": "ses-signature", "signature": "AA=="}, "seal.id"),
    ({"id": "", "format": "ses-signature", "signature": "AA=="}, "seal.id"),
    ({"id": "ES1", "format": "pdf", "signature": "AA=="}, "seal.format"),
    ({"id": "ES1", "format": "json-proof", "signature": "not base64!"}, "seal.signature must be base64"),
    ({"id": "ES1", "format": "json-proof", "signature": 5}, "seal.signature"),
    ({"id": "ES1", "format": "json-proof",
      "signature": base64.b64encode(bytes(MAX_SEALED_BYTES + 10)).decode()}, "at most"),
])
def test_a_malformed_seal_member_is_refused_with_its_reason(seal: Any, reason: str) -> None:
    with pytest.raises(PayloadFormatError, match=reason) as caught:
        PublicRecord.from_json(_with_seal(seal), identifier=CID)
    assert caught.value.code == "invalid_remote_record"


def test_a_node_that_did_not_answer_is_not_asked_again_for_a_while() -> None:
    import socket
    import time

    from registry.certificates.remote import RemoteCertificates, RemoteUnavailableError

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    remote = RemoteCertificates(None, timeout=2, retry_after=30)  # type: ignore[arg-type]  # the node is not used here
    url = f"http://127.0.0.1:{port}/api/v1/certificates/x/record"
    with pytest.raises(RemoteUnavailableError, match="unreachable"):
        remote._get(url, 100)
    start = time.monotonic()
    with pytest.raises(RemoteUnavailableError, match="did not answer; retrying in 30 s"):
        remote._get(url, 100)
    assert time.monotonic() - start < 0.1
    remote._down.clear()
    with pytest.raises(RemoteUnavailableError, match="unreachable"):  # asked again once the time is up
        remote._get(url, 100)
