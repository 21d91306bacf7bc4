"""The browser QR decoder we vendor (jsQR) reads the codes we print. Runs the vendored file under Node.

Measured by hand beyond these tests, on the distorted photos of ``test_images`` (7-33-90-180 degrees, blur 1,
noise 8, JPEG 60): jsQR reads ~7/12 link photos as they are and 12/12 once halved, and ~0-2/12 photos of
the version-31 offline payload; zxing-cpp reads all of them.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import subprocess
from pathlib import Path

from PIL import Image

from registry.formats.images import qr_png
from tests.support.photos import photograph

ROOT = Path(__file__).resolve().parents[3]
VENDOR = ROOT / "api" / "static" / "vendor"
JSQR = VENDOR / "jsQR.js"

NODE_SCRIPT = """
const fs = require("fs");
const jsQR = require(process.argv[1]);
const jobs = JSON.parse(fs.readFileSync(0, "utf8"));
const out = jobs.map(({path, width, height}) => {
  const raw = fs.readFileSync(path);
  const code = jsQR(new Uint8ClampedArray(raw.buffer, raw.byteOffset, raw.length), width, height);
  return code ? code.data : null;
});
process.stdout.write(JSON.stringify(out));
"""


def _jsqr(images: list[Image.Image], tmp_path: Path) -> list[str | None]:
    """Decode each image with the vendored jsQR in one Node process, from raw RGBA files."""
    jobs = []
    for i, im in enumerate(images):
        rgba = im.convert("RGBA")
        path = tmp_path / f"img{i}.rgba"
        path.write_bytes(rgba.tobytes())
        jobs.append({"path": str(path), "width": rgba.width, "height": rgba.height})
    proc = subprocess.run(["node", "-e", NODE_SCRIPT, str(JSQR)], input=json.dumps(jobs), capture_output=True,
                          text=True, timeout=120, check=True)
    result: list[str | None] = json.loads(proc.stdout)
    return result


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_vendored_jsqr_decodes_generated_pngs_of_both_kinds(ref_url: str, offline_text: str, tmp_path: Path) -> None:
    assert _jsqr([_open(qr_png(ref_url)), _open(qr_png(offline_text))], tmp_path) == [ref_url, offline_text]


def test_vendored_jsqr_decodes_halved_photos_of_a_link(ref_url: str, tmp_path: Path) -> None:
    photos = [_open(photograph(qr_png(ref_url), rng=random.Random(a), angle=a)) for a in (7, 33, 90, 180)]
    assert _jsqr([p.reduce(2) for p in photos], tmp_path) == [ref_url] * 4


def test_vendored_file_is_the_pinned_release() -> None:
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    row = re.search(r"\| `jsQR.js` \|.*?\| ([\d.]+) \|.*?\| `([0-9a-f]{64})` \|", readme)
    assert row, "vendor README lost its jsQR row"
    version, digest = row.groups()
    assert hashlib.sha256(JSQR.read_bytes()).hexdigest() == digest
    package = json.loads((ROOT / "hardhat-free-devnet" / "package.json").read_text(encoding="utf-8"))
    assert package["devDependencies"]["jsqr"] == version
    lock = json.loads((ROOT / "hardhat-free-devnet" / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"]["node_modules/jsqr"]["version"] == version
    assert "Apache License" in (VENDOR / "jsQR.LICENSE").read_text(encoding="utf-8")
