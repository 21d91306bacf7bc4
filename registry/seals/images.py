"""Seal images (印章图像): PNG or SVG, checked before anything is stored.

* **PNG**: the 8-byte signature, then decoded completely by Pillow (a truncated or corrupt file fails), at
  most `MAX_BYTES` and `MAX_PIXELS` per side (a decompression bomb is refused from the header, before
  decoding).
* **SVG**: UTF-8 XML with an ``<svg>`` root in the SVG namespace, parsed by the standard library only
  after refusing any DOCTYPE, ENTITY or processing instruction (no entity expansion, no external DTD);
  refused when it holds a ``script`` or ``foreignObject`` element, an ``on*`` event attribute, or a link
  (``href``) that is not a fragment (``#id``): a seal image must not run code or fetch anything.

>>> checked = check_image(_TINY_PNG)
>>> checked.kind, checked.pixel_width, checked.pixel_height
('PNG', 1, 1)
>>> check_image(b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><circle r="9"/></svg>').kind
'SVG'
"""

from __future__ import annotations

import base64
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from registry.errors import PayloadTooLargeError, ValidationError

__all__ = ["MAX_BYTES", "MAX_PIXELS", "SealImage", "check_image"]

MAX_BYTES = 256 * 1024
MAX_PIXELS = 2048  # per side
_PNG = b"\x89PNG\r\n\x1a\n"
_SVG_NS = "{http://www.w3.org/2000/svg}"
_FORBIDDEN_MARKUP = re.compile(rb"<!DOCTYPE|<!ENTITY|<\?(?!xml[\s?])", re.IGNORECASE)
_FORBIDDEN_ELEMENTS = {"script", "foreignobject", "iframe", "embed", "object"}
_LENGTH = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(px)?\s*$")


@dataclass(frozen=True)
class SealImage:
    kind: str  # "PNG" or "SVG" (SES_ESPictrueInfo.type)
    data: bytes
    pixel_width: int
    pixel_height: int


def check_image(data: bytes) -> SealImage:
    """The image's kind and size; ValidationError (code ``invalid_seal_image``) for anything that is not a
    sound PNG or a safe SVG, PayloadTooLargeError (``seal_image_too_large``) beyond the limits."""
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise ValidationError("the seal image is empty", code="invalid_seal_image")
    if len(data) > MAX_BYTES:
        raise PayloadTooLargeError(f"the seal image has {len(data)} bytes; the limit is {MAX_BYTES}",
                                   code="seal_image_too_large", details={"limit": MAX_BYTES})
    data = bytes(data)
    if data.startswith(_PNG):
        return _png(data)
    head = data.lstrip()[:512].lower()
    if head.startswith((b"<svg", b"<?xml")) or b"<svg" in head:
        return _svg(data)
    raise ValidationError("the seal image must be a PNG or an SVG file", code="invalid_seal_image")


def _too_big(width: int, height: int) -> None:
    if not (0 < width <= MAX_PIXELS and 0 < height <= MAX_PIXELS):
        raise PayloadTooLargeError(f"the seal image is {width}x{height}; each side must be 1..{MAX_PIXELS}",
                                   code="seal_image_too_large", details={"limit": MAX_PIXELS})


def _png(data: bytes) -> SealImage:
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
            width, height = img.size
            _too_big(width, height)  # before decoding: a small file may promise a huge bitmap
            img.load()
    except PayloadTooLargeError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError(f"the seal image is not a readable PNG ({exc})", code="invalid_seal_image") from exc
    return SealImage("PNG", data, width, height)


def _svg(data: bytes) -> SealImage:
    if _FORBIDDEN_MARKUP.search(data):
        raise ValidationError("an SVG seal image may not contain a DOCTYPE, ENTITY or processing instruction",
                              code="invalid_seal_image")
    try:
        root = ET.fromstring(data.decode("utf-8"))
    except (UnicodeDecodeError, ET.ParseError) as exc:
        raise ValidationError(f"the SVG seal image is not well-formed UTF-8 XML ({exc})",
                              code="invalid_seal_image") from exc
    if root.tag != _SVG_NS + "svg":
        raise ValidationError("the SVG's root element must be <svg> in the SVG namespace", code="invalid_seal_image")
    for el in root.iter():
        name = str(el.tag).rsplit("}", 1)[-1].lower()
        if name in _FORBIDDEN_ELEMENTS:
            raise ValidationError(f"an SVG seal image may not contain <{name}>", code="invalid_seal_image")
        for attr, value in el.attrib.items():
            local = attr.rsplit("}", 1)[-1].lower()
            if local.startswith("on"):
                raise ValidationError(f"an SVG seal image may not carry event attributes ({local})",
                                      code="invalid_seal_image")
            if local == "href" and not value.strip().startswith("#"):
                raise ValidationError("an SVG seal image may not link outside itself (href must be #id)",
                                      code="invalid_seal_image")
            if "url(" in value.replace(" ", "").lower() and "url(#" not in value.replace(" ", "").lower():
                raise ValidationError("an SVG seal image may not reference external resources (url(...))",
                                      code="invalid_seal_image")
    width, height = _length(root.get("width")), _length(root.get("height"))
    if (width is None or height is None) and root.get("viewBox"):
        parts = root.get("viewBox", "").replace(",", " ").split()
        if len(parts) == 4:
            width, height = _length(parts[2]), _length(parts[3])
    if width is None or height is None:
        raise ValidationError("an SVG seal image needs width and height (or a viewBox) in pixels",
                              code="invalid_seal_image")
    _too_big(width, height)
    return SealImage("SVG", data, width, height)


def _length(value: str | None) -> int | None:
    m = _LENGTH.match(value or "")
    return round(float(m.group(1))) if m else None


_TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
