"""Headless Chromium for e2e tests: Debian's ``/usr/bin/chromium`` driven by the Python ``playwright`` package
(never ``playwright install``: it downloads browsers), a recorder of every request a page sends, a fake
camera fed from a picture, and screenshots kept under the test's folder and ``test-output/``.

>>> with chromium() as browser:                                  # doctest: +SKIP
...     page = browser.new_page()
...     log = RequestLog(page)
...     page.goto(url)
...     shot(page, tmp_path, "valid")
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking")
REPO = Path(__file__).resolve().parents[2]
TEST_OUTPUT = REPO / "test-output"  # git-ignored; a copy of every screenshot to look at after a run


@contextmanager
def chromium(extra_args: Sequence[str] = ()) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()


def fake_camera_args(y4m: Path) -> list[str]:
    """Chromium flags that grant camera access and feed it ``y4m`` in a loop instead of a device."""
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}"]


def write_y4m(picture: bytes, path: Path, *, size: tuple[int, int] = (640, 480), frames: int = 2) -> Path:
    """A YUV4MPEG2 video (4:2:0) showing ``picture`` centred on grey, for Chromium's fake camera."""
    w, h = size
    with Image.open(io.BytesIO(picture)) as src:
        im = src.convert("L")
    im.thumbnail((w - 40, h - 40))
    canvas = Image.new("L", (w, h), 200)
    canvas.paste(im, ((w - im.width) // 2, (h - im.height) // 2))
    luma = np.asarray(canvas, dtype=np.uint8).tobytes()
    chroma = bytes([128]) * (w // 2 * (h // 2))
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F5:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + luma + chroma + chroma)
    return path


@dataclass
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def text(self) -> str:
        """Everything this request carried, as one string to search."""
        headers = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return f"{self.method} {self.url}\n{headers}\n\n{self.body.decode('utf-8', 'replace')}"


@dataclass
class RequestLog:
    """Every request the page sends, with its URL, all headers and body (Playwright request events)."""

    page: Any
    sent: list[Sent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("request", self._record)

    def _record(self, request: Any) -> None:
        self.sent.append(Sent(request.method, request.url, request.all_headers(), request.post_data_buffer or b""))

    def carrying(self, needle: str) -> list[Sent]:
        return [s for s in self.sent if needle in s.text() or needle in _unquoted(s.text())]

    def clear(self) -> None:
        self.sent.clear()


def _unquoted(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)


def shot(page: Any, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot in the test's folder, with a copy under test-output/ at the repository root."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    TEST_OUTPUT.mkdir(exist_ok=True)
    shutil.copy(path, TEST_OUTPUT / path.name)
    return path
