"""The 电子卡包 export: a certificate as a W3C VC 2.0 credential (registry/formats/vc.py), checked against the VC 2.0
JSON Schema vendored from w3c/vc-data-model (tests/data/vc-2.0-verifiable-credential-schema.NOTICE.md), and back."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from registry.certificates.documents import AnchorProof, Document
from registry.crypto import merkle
from registry.errors import PayloadFormatError, ValidationError
from registry.formats.vc import (
    CONTEXT_PATH,
    LIANZHENG_CONTEXT,
    VC_CONTEXT,
    from_credential,
    holder_key_urn,
    to_credential,
)
from registry.holders.keys import HolderKey
from registry.seeds import CertificateType
from tests.unit.registry.test_documents import DRIVER, LICENCE, SEEDS, make_document

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "data" / "vc-2.0-verifiable-credential-schema.json"
SCHEMA = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
DID = "did:bid:efTestIssuerBid1234567890"
BASE = "https://lz.example.gov.cn"


def anchored(docs: list[Document]) -> list[Document]:
    hashes = [merkle.leaf_hash(d.digest_sha256) for d in docs]
    root = merkle.root_from_leaf_hashes(hashes)
    return [d.with_anchor(AnchorProof(batch_root=root, index=i, size=len(docs), path=tuple(p), chain_id=31337,
                                      ledger="0x5fbdb2315678afecb367f032d93f642f64180aa3", tx_hash=bytes(range(32)),
                                      block_number=12, block_timestamp=1_774_400_000,
                                      issuer_account="0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"))
            for i, (d, p) in enumerate(zip(docs, merkle.all_inclusion_proofs(hashes), strict=True))]


def credential(cert_type: CertificateType = LICENCE, **overrides: Any) -> tuple[Document, dict[str, Any]]:
    doc = anchored([make_document(cert_type, serial=s, seed=s, **overrides) for s in (1, 2, 3)])[1]
    return doc, to_credential(doc, issuer_did=DID, base_url=BASE)


def schema_errors(vc: Any) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(vc)]


def test_the_vendored_schema_is_the_w3c_vc_2_0_one() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == "https://www.w3.org/2022/credentials/v2/verifiable-credential-schema.json"
    assert SCHEMA["properties"]["@context"]["contains"]["const"] == VC_CONTEXT
    assert set(SCHEMA["required"]) == {"@context", "type", "issuer", "credentialSubject"}


@pytest.mark.parametrize("cert_type", SEEDS.certificate_types, ids=lambda t: t.name_en)
def test_every_seeded_type_exports_a_credential_that_validates_and_round_trips(cert_type: CertificateType) -> None:
    doc, vc = credential(cert_type)
    assert schema_errors(vc) == []
    assert schema_errors(json.loads(json.dumps(vc, ensure_ascii=False))) == []
    assert vc["@context"] == [VC_CONTEXT, BASE + CONTEXT_PATH]
    assert vc["type"] == ["VerifiableCredential", "LianzhengCertificate"]
    assert vc["issuer"] == {"id": DID, "uscc": doc.issuer_uscc, "name": doc.fields["颁发机构"].value}
    assert vc["credentialSubject"]["fields"] == {p: f.value for p, f in doc.fields.items()}
    assert vc["credentialStatus"]["documentKey"] == "0x" + doc.digest_sha256.hex()
    assert vc["credentialStatus"]["id"] == f"{BASE}/api/v1/certificates/{doc.identifier}/status"
    assert vc["proof"]["verificationMethod"] == f"{DID}#0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
    imported = from_credential(json.loads(json.dumps(vc)))
    assert imported.document == doc and imported.document.anchor == doc.anchor
    assert imported.document.integrity_errors() == []
    assert imported.issuer_did == DID and imported.status_url == vc["credentialStatus"]["id"]


def test_validity_is_the_whole_beijing_day_range_and_a_permanent_licence_has_no_valid_until() -> None:
    doc, vc = credential(DRIVER)
    assert doc.valid_from is not None and doc.valid_until is not None
    assert vc["validFrom"] == f"{doc.valid_from.isoformat()}T00:00:00+08:00"
    assert vc["validUntil"] == f"{doc.valid_until.isoformat()}T23:59:59+08:00"
    until = dt.datetime.fromisoformat(vc["validUntil"])
    assert until.astimezone(dt.UTC) == dt.datetime.combine(doc.valid_until, dt.time(15, 59, 59), dt.UTC)
    _, permanent = credential(LICENCE, 有效期截止=None)
    assert "validUntil" not in permanent and schema_errors(permanent) == []
    assert permanent["proof"]["created"] == "2026-03-25T00:53:20Z"  # the anchoring block's time, UTC


def test_a_bound_certificate_names_its_holder_key_as_the_subject() -> None:
    key = HolderKey.generate().public
    doc = anchored([make_document(serial=s, seed=s, holderKeyDigest=key.key_id) for s in (1, 2)])[1]
    vc = to_credential(doc, issuer_did=DID, base_url=BASE)
    assert vc["credentialSubject"]["id"] == f"urn:lianzheng:holder-key:{key.key_id}" == holder_key_urn(key.key_id)
    assert vc["credentialSubject"]["holderKeyId"] == key.key_id
    assert vc["credentialSubject"]["fields"]["holderKeyDigest"] == key.key_id and schema_errors(vc) == []
    assert from_credential(vc).document.holder_key_digest == key.key_id
    unbound = to_credential(anchored([make_document(serial=s, seed=s) for s in (1, 2)])[1], issuer_did=DID,
                            base_url=BASE)
    assert "id" not in unbound["credentialSubject"] and "holderKeyId" not in unbound["credentialSubject"]
    moved = copy.deepcopy(vc)  # a subject id claimed for another key does not match the document
    moved["credentialSubject"]["id"] = holder_key_urn("ab" * 32)
    with pytest.raises(PayloadFormatError, match="credentialSubject"):
        from_credential(moved)
    with pytest.raises(ValidationError, match="64 lowercase hex"):
        holder_key_urn("AB" * 32)


def test_a_disclosed_document_exports_only_its_shown_fields() -> None:
    doc = anchored([make_document(serial=s, seed=s) for s in (1, 2)])[0]
    shown = doc.disclose(["住所", "法定代表人"])
    vc = to_credential(shown, issuer_did=DID, base_url=BASE + "/")
    assert "住所" not in vc["credentialSubject"]["fields"]
    assert sorted(vc["credentialSubject"]["hiddenFields"]) == sorted(["住所", "法定代表人"])
    assert schema_errors(vc) == [] and from_credential(vc).document == shown


@pytest.mark.parametrize(("breakage", "expected"), [
    (lambda vc: vc.update({"@context": [BASE + CONTEXT_PATH]}), "does not contain"),
    (lambda vc: vc.update({"@context": VC_CONTEXT}), "is not of type 'array'"),
    (lambda vc: vc.update({"type": ["LianzhengCertificate"]}), "is not valid under any of the given schemas"),
    (lambda vc: vc.pop("issuer"), "'issuer' is a required property"),
    (lambda vc: vc.update({"issuer": {"name": "省市场监管局"}}), "is not valid under any of the given schemas"),
    (lambda vc: vc.update({"validFrom": "2026-03-25"}), "does not match"),
    (lambda vc: vc.update({"validUntil": "2026-03-25T00:00:00"}), "does not match"),
    (lambda vc: vc.update({"credentialSubject": {}}), "is not valid under any of the given schemas"),
    (lambda vc: vc["credentialStatus"].pop("type"), "is not valid under any of the given schemas"),
    (lambda vc: vc["proof"].pop("proofPurpose"), "is not valid under any of the given schemas"),
    (lambda vc: vc["proof"].pop("verificationMethod"), "is not valid under any of the given schemas"),
])
def test_a_broken_credential_fails_the_schema(breakage: Any, expected: str) -> None:
    _, vc = credential()
    broken = copy.deepcopy(vc)
    breakage(broken)
    errors = schema_errors(broken)
    assert errors and any(expected in e for e in errors), errors


@pytest.mark.parametrize(("edit", "members"), [
    (lambda vc: vc["credentialSubject"]["fields"].update({"持证主体": "冒名顶替有限公司"}), ["credentialSubject"]),
    (lambda vc: vc.update({"validUntil": "2099-12-31T23:59:59+08:00"}), ["validUntil"]),
    (lambda vc: vc["issuer"].update({"name": "另一机构"}), ["issuer"]),
    (lambda vc: vc["credentialStatus"].update({"id": "https://evil.example/status"}), ["credentialStatus"]),
    (lambda vc: vc.update({"credentialSchema": {"id": "https://x.example/s", "type": "JsonSchema"}}),
     ["credentialSchema"]),
    (lambda vc: vc.pop("name"), ["name"]),
    (lambda vc: vc["proof"].update({"created": "2020-01-01T00:00:00Z"}), ["proof"]),
])
def test_a_claim_that_differs_from_the_document_is_refused(edit: Any, members: list[str]) -> None:
    _, vc = credential()
    edited = copy.deepcopy(vc)
    edit(edited)
    assert schema_errors(edited) == []  # still a well-formed VC 2.0 credential: only the import catches it
    with pytest.raises(PayloadFormatError, match="differ from its Lianzheng document") as info:
        from_credential(edited)
    assert info.value.code == "credential_mismatch" and info.value.details["members"] == members


def test_a_tampered_document_with_matching_claims_imports_but_fails_integrity() -> None:
    _, vc = credential()
    forged = copy.deepcopy(vc)
    forged["proof"]["document"]["fields"]["持证主体"]["value"] = "冒名顶替有限公司"
    forged["credentialSubject"]["fields"]["持证主体"] = "冒名顶替有限公司"
    imported = from_credential(forged)
    assert any("digest.sha256 differs" in e for e in imported.document.integrity_errors())


@pytest.mark.parametrize(("change", "code"), [
    (lambda vc: vc.update({"type": ["VerifiableCredential"]}), "invalid_credential"),
    (lambda vc: vc.update({"@context": [VC_CONTEXT]}), "invalid_credential"),
    (lambda vc: vc["proof"].update({"type": "DataIntegrityProof"}), "invalid_credential"),
    (lambda vc: vc["proof"].pop("document"), "invalid_credential"),
    (lambda vc: vc.update({"issuer": DID}), "invalid_credential"),
    (lambda vc: vc["proof"]["document"].update({"format": "other"}), "invalid_document"),
])
def test_what_is_not_a_lianzheng_credential_is_refused_with_a_code(change: Any, code: str) -> None:
    _, vc = credential()
    broken = copy.deepcopy(vc)
    change(broken)
    with pytest.raises(PayloadFormatError) as info:
        from_credential(broken)
    assert info.value.code == code
    with pytest.raises(PayloadFormatError, match="must be a JSON object"):
        from_credential([vc])


def test_only_anchored_documents_with_a_bid_issuer_and_an_http_base_are_exported() -> None:
    with pytest.raises(ValidationError, match="no anchor proof") as info:
        to_credential(make_document(), issuer_did=DID, base_url=BASE)
    assert info.value.code == "not_anchored"
    doc, _ = credential()
    with pytest.raises(ValidationError, match="did:bid") as info:
        to_credential(doc, issuer_did="did:web:example.com", base_url=BASE)
    with pytest.raises(ValidationError, match="base URL") as info:
        to_credential(doc, issuer_did=DID, base_url="ftp://x/?q")


def test_issuer_did_must_be_the_one_the_chain_shows() -> None:
    _, vc = credential()
    imported = from_credential(vc)
    assert imported.issuer_errors(DID) == []
    assert imported.issuer_errors("did:bid:efOther") == [
        f"issuer.id is {DID}, the chain shows did:bid:efOther for the anchoring agency"]
    assert imported.issuer_errors(None)


def test_the_lianzheng_context_defines_every_term_the_credential_uses_outside_the_vc_2_0_context() -> None:
    _, vc = credential()
    ctx = LIANZHENG_CONTEXT["@context"]
    scoped = {t: set(ctx[t]["@context"]) - {"@protected"} for t in
              ("LianzhengCertificate", "LianzhengChainStatus", "LianzhengAnchorProof")}
    assert set(vc["credentialSubject"]) - {"id"} <= scoped["LianzhengCertificate"]
    assert set(vc["credentialStatus"]) - {"id", "type"} <= scoped["LianzhengChainStatus"]
    assert set(vc["proof"]) - {"type"} <= scoped["LianzhengAnchorProof"]
    assert set(vc["issuer"]) - {"id", "name"} <= set(ctx)
