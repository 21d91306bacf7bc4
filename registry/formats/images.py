"""QR images: generate PNG/SVG with segno, read codes back from photos with zxing-cpp.

Offline payloads (``LZ1:...``) are pure QR alphanumeric text and are encoded in alphanumeric mode (5.5 bits
per character); anything else (verification links) is split so that long upper-case runs such as the
certificate identifier use alphanumeric mode and the rest byte mode (ISO/IEC 18004 allows mixed segments).

>>> from registry.formats.images import decode_qr_image, qr_png
>>> decode_qr_image(qr_png("https://lz.example.gov.cn/v/1.2.156.3005.2.X.Y.1.001.A#k"))
['https://lz.example.gov.cn/v/1.2.156.3005.2.X.Y.1.001.A#k']
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import segno
import zxingcpp
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError
from segno import consts

from registry.errors import PayloadFormatError, PayloadTooLargeError, ValidationError

__all__ = ["MAX_IMAGE_PIXELS", "decode_qr_image", "qr_png", "qr_svg", "qr_version"]

MAX_IMAGE_PIXELS = 40_000_000  # a 48 MP phone photo is 48e6; refuse larger before decoding pixels
_ALNUM = re.compile(r"[0-9A-Z $%*+\-./:]+")
# An alphanumeric run of n characters costs 5.5n bits instead of 8n in byte mode, plus ~13 bits for its own
# segment header and ~20 for the byte segment resuming after it: it pays off from about 15 characters.
_MIN_ALNUM_RUN = 15
_NO_QR = "图片中未找到二维码 / no QR code found in the image"
_QR_FORMATS = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)  # the QR family only: faster, no false 1D hits


def qr_png(text: str, *, scale: int = 8, border: int = 4, error: str = "m", boost_error: bool = True) -> bytes:
    """A black-on-white PNG, ``scale`` pixels per module, ``border`` modules of quiet zone (ISO minimum 4).

    ``boost_error`` raises the error-correction level when that fits in the same version (free robustness).
    """
    buf = io.BytesIO()
    _make(text, error, boost_error).save(buf, kind="png", scale=scale, border=border)
    return buf.getvalue()


def qr_svg(text: str, *, scale: int = 8, border: int = 4, error: str = "m", boost_error: bool = True,
           title: str | None = None) -> str:
    """The same code as a standalone SVG document (one ``<path>``), for print layouts."""
    buf = io.BytesIO()
    _make(text, error, boost_error).save(buf, kind="svg", scale=scale, border=border, xmldecl=False,
                                         title=title, encoding="utf-8")
    return buf.getvalue().decode("utf-8")


def qr_version(text: str, *, error: str = "m") -> int:
    """The smallest QR version (1..40) holding ``text`` at exactly this error-correction level."""
    return int(_make(text, error, False).version)


def decode_qr_image(data: bytes | Path) -> list[str]:
    """Texts of every QR code in an image (PNG, JPEG, ...), in the order zxing reports them, without duplicates.

    Tries the photo as is, then grey + autocontrast, a sharpened, a downscaled and an upscaled copy,
    each with zxing's local-average and global-histogram binarizers, stopping at the first variant that
    yields a code (zxing-cpp's reader options default to "try harder", which the Python binding does not
    expose; rotation, inversion and its own downscaling are switched on). Phone photos are turned upright
    from their EXIF orientation first. Raises ``PayloadFormatError(code="no_qr_found")`` or
    ``code="invalid_image"``, and ``PayloadTooLargeError(code="image_too_large")``.
    """
    image = _open(data)
    for variant in _variants(image):
        for binarizer in (zxingcpp.Binarizer.LocalAverage, zxingcpp.Binarizer.GlobalHistogram):
            found = zxingcpp.read_barcodes(variant, formats=_QR_FORMATS, try_rotate=True,
                                           try_downscale=True, try_invert=True, binarizer=binarizer)
            texts = list(dict.fromkeys(r.text for r in found if r.valid and r.text))
            if texts:
                return texts
    raise PayloadFormatError(f"{_NO_QR}: tried {len(_STEPS)} image variants", code="no_qr_found")


# --- internals -------------------------------------------------------------------------------------------


def _make(text: str, error: str, boost_error: bool) -> segno.QRCode:
    if error.lower() not in ("l", "m", "q", "h"):
        raise ValidationError(f"QR error correction must be one of L, M, Q, H, got {error!r}", code="invalid_input")
    try:
        if _ALNUM.fullmatch(text):
            return segno.make(text, error=error, mode="alphanumeric", micro=False, boost_error=boost_error)
        segments: Any = _segments(text)  # segno accepts (content, mode) tuples; its annotations do not say so
        return segno.make(segments, error=error, micro=False, boost_error=boost_error)
    except segno.DataOverflowError as exc:
        raise PayloadTooLargeError(f"text of {len(text)} characters does not fit a version-40 QR code at level "
                                   f"{error.upper()}", code="qr_too_large") from exc


def _segments(text: str) -> list[tuple[str, int]]:
    """Byte-mode text with long alphanumeric runs split out into their own segments."""
    parts: list[tuple[str, int]] = []
    pos = 0
    for run in _ALNUM.finditer(text):
        if run.end() - run.start() >= _MIN_ALNUM_RUN:
            if run.start() > pos:
                parts.append((text[pos:run.start()], consts.MODE_BYTE))
            parts.append((run.group(), consts.MODE_ALPHANUMERIC))
            pos = run.end()
    if pos < len(text):
        parts.append((text[pos:], consts.MODE_BYTE))
    return parts


def _open(data: bytes | Path) -> Image.Image:
    try:
        source = Path(data).read_bytes() if isinstance(data, Path) else data
        with Image.open(io.BytesIO(source)) as src:
            if src.width * src.height > MAX_IMAGE_PIXELS:
                raise PayloadTooLargeError(
                    f"图片过大 / image too large: {src.width}x{src.height} pixels, limit {MAX_IMAGE_PIXELS}",
                    code="image_too_large",
                )
            return ImageOps.exif_transpose(src).convert("L")  # zxing reads luminance; also flattens palettes and alpha
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise PayloadFormatError(f"无法读取图片 / cannot read the image: not a PNG, JPEG or other supported "
                                 f"image ({type(exc).__name__})", code="invalid_image") from exc


def _downscale(im: Image.Image) -> Image.Image:
    factor = max(im.size) / 1200
    if factor <= 1.2:
        return im.reduce(2) if min(im.size) >= 400 else im
    return im.resize((round(im.width / factor), round(im.height / factor)), Image.Resampling.LANCZOS)


def _upscale(im: Image.Image) -> Image.Image:
    factor = 2 if max(im.size) < 2000 else 1
    return im.resize((im.width * factor, im.height * factor), Image.Resampling.BICUBIC)


def _sharpen(im: Image.Image) -> Image.Image:
    # An out-of-focus photo smears module edges; an unsharp mask restores enough contrast at the edges for
    # the binarizer (measured: blur radius 2.5 px at 6 px/module goes from 6/16 to 16/16 decoded).
    return im.filter(ImageFilter.UnsharpMask(radius=3, percent=200, threshold=0))


_STEPS: tuple[Callable[[Image.Image], Image.Image], ...] = (
    lambda im: im,
    lambda im: ImageOps.autocontrast(im, cutoff=1),
    _sharpen,
    lambda im: _downscale(ImageOps.autocontrast(im, cutoff=1)),
    lambda im: _upscale(_sharpen(im)),
)


def _variants(image: Image.Image) -> Iterator[Image.Image]:
    for step in _STEPS:
        yield step(image)
