"""The seal on the printable certificate (api/routes/pages.py, print.html): the seal image over the issuer's name
with "印章有效 / seal verified" when the certificate's `seal` check passed (registry/seals/verification.py), the
reason in words when it failed, nothing for an unsealed certificate. The image is the one inside the sealed
signature, embedded as a data: URI (the printed page is self-contained) only after its SHA-256 was compared
with the digest registered on chain.

    >>> seal_block(verifier, seal_check, identifier)      # doctest: +SKIP
    '<figure class="seal" data-seal="valid" ...'
"""

from __future__ import annotations

import base64
import html

from registry.certificates.verification import VALID, Verifier
from registry.seals.verification import SealVerifier

__all__ = ["seal_block"]

_LATER = {"revoked": ("其后已撤销", "revoked later"), "suspended": ("其后已暂停", "suspended later")}


def seal_block(verifier: Verifier, seals: SealVerifier, identifier: str) -> str:
    """HTML for the issuer line of the printed certificate ('' when the certificate is not sealed)."""
    if seals.stored(identifier) is None:
        return ""
    result = verifier.verify_identifier(identifier)
    check = next((c for c in result.checks if c.name == "seal"), None)
    if check is None:  # not anchored yet (or the chain could not be read): the seal check needs the anchoring block
        return ('<span class="seal-note" data-seal="pending">已加盖电子印章，上链后可验章 / '
                "sealed: it can be verified once anchored</span>")
    if check.status != VALID:
        problem = str(check.details.get("problem", check.status.lower()))
        return (f'<span class="seal-bad" data-seal="{html.escape(problem)}">✗ 印章未通过核验：'
                f"{html.escape(check.reason_zh)} / seal not verified: {html.escape(check.reason_en)}</span>")
    media, image, digest = seals.image(identifier)
    if digest != check.details.get("image_sha256"):
        return ('<span class="seal-bad" data-seal="image_mismatch">✗ 印章图像与链上登记的不符 / the seal image does not '
                "match the one registered on chain</span>")
    later = _LATER.get(str(check.details.get("later")))
    note = f"（盖章时有效，{later[0]} / valid when sealed, {later[1]}）" if later else ""
    name = html.escape(str(check.details.get("name", "")))
    uri = f"data:{media};base64,{base64.b64encode(image).decode()}"
    return (f'<span class="seal-mark" data-seal="valid">✓ 印章有效 / seal verified{note}</span>'
            f'<img class="seal-img" src="{uri}" alt="电子印章 {name}" data-seal-sha256="{digest}">')
