"""Realistic "phone photos" of a printed QR code, for decoder tests (test-only).

Each step is a small pure function on a greyscale PIL image; :func:`photograph` chains them the way a
print ends up in a camera: the page lies on a grey desk, the phone is tilted (rotation + perspective),
slightly out of focus (blur), the sensor is noisy, the light uneven, and the result is saved as JPEG.

>>> import random
>>> from registry.formats.images import qr_png
>>> jpeg = photograph(qr_png("HELLO"), rng=random.Random(1), angle=33)
>>> jpeg[:2] == b"\\xff\\xd8"
True
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageFilter

from registry.formats.images import qr_png

__all__ = [
    "add_noise",
    "blur",
    "degraded_photos",
    "jpeg",
    "on_background",
    "perspective",
    "photograph",
    "rotate",
    "scale",
    "shade",
]

WHITE = 255


def rotate(im: Image.Image, angle: float) -> Image.Image:
    """Counter-clockwise by ``angle`` degrees, canvas grown to fit, new corners white (paper)."""
    return im.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=WHITE)


def scale(im: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(im.width * factor)), max(1, round(im.height * factor)))
    return im.resize(size, Image.Resampling.LANCZOS if factor < 1 else Image.Resampling.BICUBIC)


def perspective(im: Image.Image, rng: random.Random, strength: float = 0.06) -> Image.Image:
    """Keystone the image: each corner moves inward by up to ``strength`` of the side, as when the phone
    is not held parallel to the page."""
    w, h = im.size
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    jitter = [(rng.uniform(0, strength) * w, rng.uniform(0, strength) * h) for _ in src]
    signs = [(1, 1), (-1, 1), (-1, -1), (1, -1)]
    dst = [(x + sx * jx, y + sy * jy) for (x, y), (sx, sy), (jx, jy) in zip(src, signs, jitter, strict=True)]
    # PIL maps each output pixel (x, y) to the input ((ax+by+c)/(gx+hy+1), (dx+ey+f)/(gx+hy+1)): solve the
    # eight coefficients from the four corner pairs (output quad -> input corners).
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    coeffs = np.linalg.solve(np.array(rows, dtype=float), np.array(rhs, dtype=float))
    return im.transform(im.size, Image.Transform.PERSPECTIVE, tuple(coeffs), Image.Resampling.BICUBIC,
                        fillcolor=WHITE)


def blur(im: Image.Image, radius: float) -> Image.Image:
    return im.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else im


def add_noise(im: Image.Image, rng: random.Random, sigma: float) -> Image.Image:
    """Additive Gaussian sensor noise of standard deviation ``sigma`` grey levels."""
    gen = np.random.default_rng(rng.getrandbits(64))
    pixels = np.asarray(im, dtype=np.float32) + gen.normal(0.0, sigma, (im.height, im.width))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")


def shade(im: Image.Image, rng: random.Random, strength: float = 0.25) -> Image.Image:
    """Uneven light: brightness falls linearly by up to ``strength`` across the frame in a random direction."""
    theta = rng.uniform(0, 2 * np.pi)
    # broadcast a row and a column instead of two full grids: the same values, a fraction of the time
    xx = np.arange(im.width, dtype=np.float32)[None, :] / max(im.width, 1)
    yy = np.arange(im.height, dtype=np.float32)[:, None] / max(im.height, 1)
    ramp = xx * np.float32(np.cos(theta)) + yy * np.float32(np.sin(theta))
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    pixels = np.asarray(im, dtype=np.float32) * (1.0 - strength * ramp)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")


def on_background(im: Image.Image, rng: random.Random, *, margin: float = 0.3, grey: int = 120) -> Image.Image:
    """Lay the printed code (with its white quiet zone) on a larger grey desk at a random offset."""
    mw, mh = round(im.width * margin), round(im.height * margin)
    desk = Image.new("L", (im.width + 2 * mw, im.height + 2 * mh), grey)
    desk.paste(im, (rng.randint(0, 2 * mw), rng.randint(0, 2 * mh)))
    return desk


def jpeg(im: Image.Image, quality: int = 60) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def photograph(png: bytes, *, rng: random.Random, angle: float, factor: float | None = None,
               skew: float = 0.06, blur_radius: float = 1.0, noise_sigma: float = 8.0, light: float = 0.2,
               quality: int = 60) -> bytes:
    """A JPEG "photo" of ``png``: scaled by ``factor`` (random 0.8..1.0 by default, so a scale-8 print
    keeps 6.4..8 px per module), on a desk, rotated by ``angle``, keystoned, blurred, shaded and noisy."""
    with Image.open(io.BytesIO(png)) as src:
        im = src.convert("L")
    im = scale(im, rng.uniform(0.8, 1.0) if factor is None else factor)
    im = rotate(on_background(im, rng), angle)
    im = perspective(im, rng, skew)
    im = shade(blur(im, blur_radius), rng, light)
    return jpeg(add_noise(im, rng, noise_sigma), quality)


def degraded_photos(texts: list[str], *, rng: random.Random, per_text: int = 4,
                    scale_px: int = 6) -> list[tuple[str, dict[str, float], bytes]]:
    """``per_text`` degraded JPEG photos of each text's QR code (``(text, parameters, jpeg)``), spread over the
    range a verifier must read: rotated 5-30°, blurred (Gaussian radius 0.5-1.3), noisy (sigma 4-10), JPEG
    quality 40-60, keystoned, unevenly lit, and at 4.2-6 pixels per module (a ``scale_px`` print scaled by
    0.7-1.0)."""
    out = []
    for text in texts:
        png = qr_png(text, scale=scale_px)
        for _ in range(per_text):
            params = {"angle": rng.uniform(5, 30) * rng.choice((1, -1)), "factor": rng.uniform(0.7, 1.0),
                      "blur_radius": rng.uniform(0.5, 1.3), "noise_sigma": rng.uniform(4, 10),
                      "quality": rng.randint(40, 60)}
            jpeg_bytes = photograph(png, rng=rng, angle=params["angle"], factor=params["factor"],
                                    blur_radius=params["blur_radius"], noise_sigma=params["noise_sigma"],
                                    quality=int(params["quality"]))
            out.append((text, params, jpeg_bytes))
    return out
