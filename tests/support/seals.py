"""E-seals for the tests that need one through real HTTP (a LocalStack, the CLI, two nodes): a drawn seal image,
registering a seal, issuing under it, and swapping the image inside a stored sealed signature for another one
(the tampering tests/integration/test_seals.py does through the API's node).

>>> seal = create_seal(stack.url, stack.auth(MARKET), seal_png("red"))   # doctest: +SKIP
>>> swap_sealed_image(stack.node, identifier, other_png)                 # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from typing import Any

from PIL import Image, ImageDraw
from sqlalchemy import select

from registry.node import Node
from registry.seals.asn1 import SESeal, SESSignature
from registry.store.seal_models import SealedSignature
from tests.support import plain_http

MARKET = "11230000MB1A00028M"  # 省市场监管局: issues 营业执照 (type 0)
CITY_MARKET = "11230100MB1B000456"  # 哈尔滨市市场监管局: also issues 营业执照


def seal_png(color: str, size: int = 160) -> bytes:
    """A round seal with a star, in ``color``, on a transparent ground."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.ellipse((4, 4, size - 4, size - 4), outline=color, width=8)
    draw.regular_polygon((size // 2, size // 2, size // 6), 5, fill=color)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def create_seal(url: str, auth: dict[str, str], image: bytes, *, name: str = "黑龙江省市场监督管理局行政许可专用章",
                category: str = "permit") -> dict[str, Any]:
    """Register a seal through the API and return its view (on chain: 201)."""
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=365)).isoformat()
    r = plain_http.post(f"{url}/api/v1/seals", headers=auth, timeout=60,
                        json={"name": name, "category": category, "image": base64.b64encode(image).decode(),
                              "valid_until": until})
    assert r.status_code == 201, r.text
    return dict(r.json())


def swap_sealed_image(node: Node, identifier: str, image: bytes) -> None:
    """Replace the picture inside the certificate's stored SES_Signature (its signatures are left as they were)."""
    with node.db.session() as s:
        row = s.scalars(select(SealedSignature).where(SealedSignature.record_id == identifier)).one()
        sig = SESSignature.load(row.signature)
        seal = SESeal.load(sig["toSign"]["eseal"].dump())
        seal["eSealInfo"]["picture"]["data"] = image
        tbs = sig["toSign"]
        tbs["eseal"] = seal
        row.signature = SESSignature({"toSign": tbs, "cert": sig["cert"], "signatureAlgID": sig["signatureAlgID"],
                                      "signature": sig["signature"]}).dump(force=True)
