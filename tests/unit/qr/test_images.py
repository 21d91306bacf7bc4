"""QR generation (segno) and photo decoding (zxing-cpp), including distorted phone photos."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from PIL import Image

from registry.errors import PayloadFormatError, PayloadTooLargeError, ValidationError
from registry.formats import images
from registry.formats.images import decode_qr_image, qr_png, qr_svg, qr_version
from tests.support.photos import jpeg, photograph

ANGLES = [7, 33, 90, 180]
SEEDS = [0, 1, 2]


def test_png_has_the_requested_module_size(offline_text: str) -> None:
    with Image.open(io.BytesIO(qr_png(offline_text, scale=6, border=4))) as im:
        assert im.format == "PNG"
        assert im.size == ((qr_version(offline_text) * 4 + 17 + 8) * 6,) * 2


def test_svg_is_a_standalone_document(ref_url: str) -> None:
    svg = qr_svg(ref_url, title="链证")
    assert svg.startswith("<svg") and "<title>链证</title>" in svg and svg.rstrip().endswith("</svg>")


def test_offline_payload_uses_alphanumeric_mode(offline_text: str) -> None:
    import segno

    alnum = segno.make(offline_text, error="m", mode="alphanumeric", boost_error=False)
    assert qr_version(offline_text) == alnum.version


def test_link_puts_the_identifier_in_an_alphanumeric_segment(ref_url: str) -> None:
    import segno

    byte_only = segno.make(ref_url, error="m", mode="byte", boost_error=False).version
    assert qr_version(ref_url) < int(byte_only)  # 7 < 8 for a 142-character link
    assert qr_version(ref_url) <= 7


@pytest.mark.parametrize("fixture", ["offline_text", "ref_url"])
def test_generated_png_decodes_back(fixture: str, request: pytest.FixtureRequest) -> None:
    text = request.getfixturevalue(fixture)
    assert decode_qr_image(qr_png(text)) == [text]


def test_decodes_from_a_path(tmp_path: Path, ref_url: str) -> None:
    path = tmp_path / "code.png"
    path.write_bytes(qr_png(ref_url))
    assert decode_qr_image(path) == [ref_url]


def test_two_codes_in_one_image_are_both_returned(ref_url: str) -> None:
    a, b = (Image.open(io.BytesIO(qr_png(t, scale=4))).convert("L") for t in (ref_url, "HELLO WORLD"))
    sheet = Image.new("L", (a.width + b.width, max(a.height, b.height)), 255)
    sheet.paste(a, (0, 0))
    sheet.paste(b, (a.width, 0))
    assert sorted(decode_qr_image(jpeg(sheet, 90))) == sorted([ref_url, "HELLO WORLD"])


def test_exif_orientation_is_applied_before_decoding(ref_url: str) -> None:
    # zxing reads rotated and mirrored codes anyway, so check the image handed to it: a 300x200 landscape
    # JPEG tagged "rotate 90 CW to display" (how phones store portrait shots) must arrive as 200x300.
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(buf, "JPEG", exif=exif)
    assert images._open(buf.getvalue()).size == (200, 300)
    assert images._open(buf.getvalue()).mode == "L"


def test_image_without_a_code_says_so_in_chinese_first() -> None:
    blank = jpeg(Image.new("L", (640, 480), 200))
    with pytest.raises(PayloadFormatError, match="^图片中未找到二维码 / no QR code found") as err:
        decode_qr_image(blank)
    assert err.value.code == "no_qr_found"


def test_bytes_that_are_no_image_are_refused() -> None:
    with pytest.raises(PayloadFormatError, match="^无法读取图片 / cannot read the image") as err:
        decode_qr_image(b"%PDF-1.7 not an image")
    assert err.value.code == "invalid_image"


def test_oversized_image_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch, ref_url: str) -> None:
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(PayloadTooLargeError, match="image too large") as err:
        decode_qr_image(qr_png(ref_url))
    assert err.value.code == "image_too_large"


def test_unknown_error_level_is_refused(ref_url: str) -> None:
    with pytest.raises(ValidationError, match="one of L, M, Q, H"):
        qr_png(ref_url, error="x")


def test_text_too_long_for_any_version_is_refused() -> None:
    with pytest.raises(PayloadTooLargeError, match="does not fit a version-40 QR") as err:
        qr_png("A" * 5000, error="h")
    assert err.value.code == "qr_too_large"


# --- photos ----------------------------------------------------------------------------------------------
# Print at scale 8, photo at 0.8..1.0 of that (6.4..8 px per module), on a grey desk, rotated, keystoned by
# up to 6 %, Gaussian blur radius 1, uneven light, noise sigma 8, JPEG quality 60.


@pytest.mark.parametrize("angle", ANGLES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fixture", ["ref_url", "offline_text"])
def test_photo_of_a_printed_code_decodes(fixture: str, seed: int, angle: int, request: pytest.FixtureRequest) -> None:
    text = request.getfixturevalue(fixture)
    photo = photograph(qr_png(text, scale=8), rng=random.Random(seed * 1000 + angle), angle=angle)
    assert decode_qr_image(photo) == [text]


@pytest.mark.parametrize("seed", SEEDS)
def test_out_of_focus_photo_decodes_after_sharpening(offline_text: str, seed: int) -> None:
    # 6 px per module and blur radius 2.5: zxing alone reads about a third of these; the sharpened variant all.
    photo = photograph(qr_png(offline_text), rng=random.Random(seed), angle=33, factor=0.75, blur_radius=2.5)
    assert decode_qr_image(photo) == [offline_text]
