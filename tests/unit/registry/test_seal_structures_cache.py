"""The SESeal parse and maker-signature check are remembered per seal (one seal signs thousands of documents,
and the audit checks every sealed signature): what is remembered is only a success over the exact bytes, so a
seal whose signature or contents differ by one byte is still refused after its genuine twin verified."""

from __future__ import annotations

import datetime as dt

import pytest

from registry.errors import SignatureError
from registry.seals.asn1 import SESeal
from registry.seals.images import _TINY_PNG, check_image
from registry.seals.keys import new_key
from registry.seals.structures import SealSpec, make_seseal, parse_seseal


@pytest.mark.parametrize("algorithm", ["sm2", "secp256k1"])
def test_a_remembered_seal_check_never_accepts_a_seal_altered_after_it(algorithm: str) -> None:
    seal_key, _ = new_key(algorithm)
    maker, _ = new_key(algorithm)
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    spec = SealSpec("ES11230000MB1A00028M0001", "行政许可专用章", "permit", check_image(_TINY_PNG), 40, 40, now, now,
                    now + dt.timedelta(days=30))
    der = make_seseal(spec, seal_key, maker)
    genuine = parse_seseal(der)
    genuine.verify()
    assert parse_seseal(bytearray(der)) is genuine  # remembered by its bytes
    genuine.verify()  # and again, from memory

    forged = SESeal.load(der)
    forged["eSealInfo"]["property"]["name"] = "伪造的印章"  # signed contents changed, signature kept
    altered = parse_seseal(forged.dump(force=True))
    assert altered.name == "伪造的印章"
    with pytest.raises(SignatureError):
        altered.verify()
    with pytest.raises(SignatureError):
        altered.verify()  # a failure is not remembered as anything
