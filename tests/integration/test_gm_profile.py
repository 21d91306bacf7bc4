"""crypto_profile=gm on a real anvil: new certificates are sealed with SM4 (envelope version 2), certificates
sealed with AES under intl still open, and the server-side routes that open a blob with the QR key read both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from api.devtools.samples import sample_values
from registry.formats import envelope
from registry.node import Node
from tests.conftest import Api, make_api


def _issue(api: Api, seed: int) -> tuple[str, dict[str, Any]]:
    ct = api.node.seeds.certificate_types[0]
    issuer = api.node.seeds.member(ct.issuers[0])
    r = api.client.post("/api/v1/certificates/batch?wait=true",
                        json={"type": ct.code, "documents": sample_values(ct, 1, issuer=issuer, seed=seed)},
                        headers=api.auth(issuer.uscc))
    assert r.status_code == 201, r.text
    return issuer.uscc, r.json()["certificates"][0]


def _blob_version_and_print(api: Api, agency: str, cert: dict[str, Any]) -> tuple[int, int]:
    ident, key = cert["identifier"], cert["qr_url"].split("#", 1)[1]
    blob = api.client.get(f"/api/v1/certificates/{ident}/blob").content
    plain = envelope.open_(blob, envelope.decode_key(key), aad=envelope.aad_for(ident))
    assert json.loads(plain)["fields"] == cert["document"]["fields"]  # the URL key opens the stored blob
    printed = api.client.get(f"/api/v1/certificates/{ident}/print", headers={**api.auth(agency),
                                                                               "X-Document-Key": key})
    return blob[0], printed.status_code


def test_gm_profile_seals_with_sm4_and_still_opens_aes(anvil_node: Node, tmp_path: Path) -> None:
    intl = make_api(anvil_node, tmp_path / "intl", crypto_profile="intl")
    api = next(intl)
    agency, old = _issue(api, seed=11)
    assert _blob_version_and_print(api, agency, old) == (envelope.EnvelopeAlgorithm.AES_256_GCM, 200)
    intl.close()
    gm = make_api(anvil_node, tmp_path / "gm", crypto_profile="gm")
    api = next(gm)
    agency, new = _issue(api, seed=12)
    assert _blob_version_and_print(api, agency, new) == (envelope.EnvelopeAlgorithm.SM4_CTR_HMAC_SM3, 200)
    assert _blob_version_and_print(api, agency, old) == (envelope.EnvelopeAlgorithm.AES_256_GCM, 200)
    gm.close()
