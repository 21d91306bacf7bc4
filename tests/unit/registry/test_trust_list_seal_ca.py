"""The trust list publishes the seal CA root (``seal_ca``) under the operator's proof: read back as DER, refused
when altered after signing or when its fingerprint is not its certificate's."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from registry.consortium.trust_list import TrustList, sign_trust_list_v2
from registry.errors import PayloadFormatError, ProofError
from registry.seals.ca import new_root
from tests.unit.qr.test_batch_statements import OPERATOR, _body

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _entry(seed_name: str = "黑龙江省政务服务管理局") -> tuple[dict[str, Any], bytes]:
    root = new_root("11230000MB1A0001XX", seed_name, now=NOW)
    pem = root.certificate.public_bytes(serialization.Encoding.PEM).decode()
    return {"certificate": pem, "sha256": root.fingerprint}, root.der


def test_a_v2_list_carries_the_seal_ca_root_under_the_operators_proof() -> None:
    entry, der = _entry()
    trust = TrustList.from_json(sign_trust_list_v2({**_body(), "seal_ca": entry}, OPERATOR))
    assert trust.seal_ca == der
    assert TrustList.from_json(trust.to_json()).seal_ca == der
    assert TrustList.from_json(sign_trust_list_v2(_body(), OPERATOR)).seal_ca is None  # optional


def test_a_seal_ca_swapped_after_signing_is_refused() -> None:
    entry, _ = _entry()
    signed = sign_trust_list_v2({**_body(), "seal_ca": entry}, OPERATOR)
    other, _ = _entry("另一个根")
    with pytest.raises(ProofError) as info:
        TrustList.from_json({**signed, "seal_ca": other})
    assert info.value.code == "bad_trust_list_signature"


@pytest.mark.parametrize("mangle", [
    lambda e: {**e, "sha256": "00" * 32},
    lambda e: {**e, "certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
    lambda e: {**e, "extra": 1},
    lambda e: e["certificate"],
])
def test_a_malformed_seal_ca_is_an_invalid_list(mangle: Any) -> None:
    entry, _ = _entry()
    with pytest.raises(PayloadFormatError) as info:
        TrustList.from_json(sign_trust_list_v2({**_body(), "seal_ca": mangle(entry)}, OPERATOR))
    assert info.value.code == "invalid_trust_list"
