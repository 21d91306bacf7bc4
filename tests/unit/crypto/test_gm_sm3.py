"""SM3 (GB/T 32905) as the registry computes it equals `openssl dgst -sm3`, and the standard's examples."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.crypto.hashing import sm3
from tests.unit.crypto._openssl import needs_openssl, openssl, write


def test_standard_examples() -> None:  # GB/T 32905-2016 appendix A.1 and A.2
    assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


@needs_openssl
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000))
def test_sm3_equals_openssl(tmp_path: Path, data: bytes) -> None:
    out = openssl("dgst", "-sm3", "-r", write(tmp_path / "in.bin", data)).stdout
    assert out.split()[0].decode() == sm3(data).hex()
