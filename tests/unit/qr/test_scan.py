"""classify_scan: what a verifier's scanner returned."""

from __future__ import annotations

import pytest

from registry.errors import PayloadFormatError
from registry.formats.qr import OfflinePayload, ScanResult, classify_scan
from tests.unit.qr.conftest import KEY, PUBLIC_BASE
from tests.unit.qr.factories import IDENTIFIER, as_decoded


def test_offline_payload_is_classified_offline(offline_text: str, signed_payload: OfflinePayload) -> None:
    result = classify_scan(offline_text)
    assert result == ScanResult(kind="offline", identifier=IDENTIFIER, payload=as_decoded(signed_payload))
    assert result.key is None


def test_trailing_newline_from_a_scanner_is_ignored(offline_text: str, ref_url: str) -> None:
    assert classify_scan(offline_text + "\r\n").kind == "offline"
    assert classify_scan(ref_url + "\n").kind == "reference"


def test_reference_link_is_classified_reference(ref_url: str) -> None:
    result = classify_scan(ref_url, public_base=PUBLIC_BASE)
    assert (result.kind, result.identifier, result.key, result.payload) == ("reference", IDENTIFIER, KEY, None)


def test_scan_result_repr_hides_the_key(ref_url: str) -> None:
    assert KEY.hex() not in repr(classify_scan(ref_url)) and "key" not in repr(classify_scan(ref_url))


@pytest.mark.parametrize(
    "text",
    [
        "https://www.baidu.com/",
        "https://weixin.qq.com/r/abc",
        "WIFI:S:office;T:WPA;P:secret;;",
        "随便一段文字",
        "",
        "HC1:6BFOXN%TS3DH0YOJ58S S-W5HDC *M0II5XHC9B5G2+$N",
        f"https://evil.example/v/{IDENTIFIER}",
    ],
)
def test_anything_else_is_not_a_lianzheng_qr(text: str) -> None:
    with pytest.raises(PayloadFormatError, match="^这不是链证电子证照二维码 / Not a Lianzheng") as err:
        classify_scan(text, public_base=PUBLIC_BASE)
    assert err.value.code == "not_lianzheng_qr"


def test_link_on_another_origin_is_not_ours_when_the_base_is_known(ref_url: str) -> None:
    forged = ref_url.replace(PUBLIC_BASE, "https://lz-hlj.example.com")
    assert classify_scan(forged).kind == "reference"
    with pytest.raises(PayloadFormatError) as err:
        classify_scan(forged, public_base=PUBLIC_BASE)
    assert err.value.code == "not_lianzheng_qr"


def test_damaged_offline_payload_keeps_its_specific_code(offline_text: str) -> None:
    with pytest.raises(PayloadFormatError) as err:
        classify_scan(offline_text[:-100])
    assert err.value.code == "truncated_payload"
    with pytest.raises(PayloadFormatError) as err:
        classify_scan("LZ9:" + offline_text[4:])
    assert err.value.code == "unsupported_version"


def test_long_junk_is_shortened_in_the_message() -> None:
    with pytest.raises(PayloadFormatError) as err:
        classify_scan("x" * 500)
    assert len(err.value.message) < 200
