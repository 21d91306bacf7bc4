from __future__ import annotations

import pytest

from registry.formats.envelope import build_ref_url
from registry.formats.qr import OfflinePayload, encode_payload, sign_payload
from tests.unit.qr.factories import IDENTIFIER, ISSUER_KEY, make_payload

PUBLIC_BASE = "https://lz.hlj.gov.cn"
KEY = bytes(range(32))


@pytest.fixture(scope="session")
def signed_payload() -> OfflinePayload:
    """The realistic, fully disclosed 营业执照 payload, signed by the issuer."""
    return sign_payload(make_payload(), ISSUER_KEY)


@pytest.fixture(scope="session")
def offline_text(signed_payload: OfflinePayload) -> str:
    return encode_payload(signed_payload)


@pytest.fixture(scope="session")
def ref_url() -> str:
    return build_ref_url(PUBLIC_BASE, IDENTIFIER, KEY)
