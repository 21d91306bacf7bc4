"""MacKey (registry/consortium/mac_key.py) is HMAC-SHA256 with its key's pads absorbed once: the same MACs as
OpenSSL's HMAC through the standard library, for keys of any length, and the same after pickling (the build
processes get it pickled)."""

from __future__ import annotations

import hmac
import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.consortium.mac_key import MacKey


@settings(max_examples=200, deadline=None)
@given(key=st.binary(max_size=150), purpose=st.text(max_size=40), data=st.binary(max_size=400))
def test_the_same_macs_as_hmac(key: bytes, purpose: str, data: bytes) -> None:
    expected = hmac.digest(key, purpose.encode() + b"\x00" + data, "sha256").hex()
    mac_key = MacKey(key)
    assert mac_key.mac(purpose, data) == expected
    assert mac_key.mac(purpose, data) == expected  # the pads are copied, never consumed
    copy = pickle.loads(pickle.dumps(mac_key))  # noqa: S301 (our own bytes)
    assert copy == mac_key and copy.mac(purpose, data) == expected


def test_the_key_is_not_shown() -> None:
    assert "secret" not in repr(MacKey(b"secret"))
