"""The certificate document: validation, salted leaves, digests, disclosure, JSON and anchor proofs."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import hmac
import json
import random
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.devtools.samples import sample_values
from registry.certificates.documents import COMMON_FIELD_NAMES, FORMAT_ID, AnchorProof, Document, derive_salt, leaf_entry
from registry.crypto import merkle
from registry.errors import NotFoundError, PayloadFormatError, ProofError, ValidationError
from registry.identifiers import CertificateId
from registry.seeds import CertificateType, Seeds, load_seeds

SEEDS: Seeds = load_seeds(Path(__file__).resolve().parents[3] / "seeds")
LICENCE = SEEDS.certificate_type("11230000MB1A00028M001")  # 营业执照, holder 001
DRIVER = SEEDS.certificate_type("11230000MB1A00079X001")  # 道路运输从业人员资格证, holder 111, 6 years


def make_values(cert_type: CertificateType = LICENCE, seed: int = 1, **overrides: Any) -> dict[str, Any]:
    [values] = sample_values(cert_type, 1, issuer=SEEDS.member(cert_type.issuers[0]), seed=seed)
    values.update(overrides)
    return values


def make_document(cert_type: CertificateType = LICENCE, *, serial: int = 1, seed: int = 1,
                  **overrides: Any) -> Document:
    identifier = str(CertificateId.build(cert_type.code, cert_type.issuers[0], serial))
    return Document.create(cert_type, make_values(cert_type, seed, **overrides), identifier=identifier,
                           rng=random.Random(seed))


def _utf16_key(path: str) -> list[int]:
    data = path.encode("utf-16-be")
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


# --- creation and digests -------------------------------------------------------------------------------


@pytest.mark.parametrize("cert_type", SEEDS.certificate_types, ids=lambda t: t.name_en)
def test_every_seeded_type_creates_a_document_whose_digest_checks(cert_type: CertificateType) -> None:
    doc = make_document(cert_type)
    assert doc.integrity_errors() == []
    assert set(doc.fields) == set(COMMON_FIELD_NAMES) | {f.name for f in cert_type.fields}
    assert doc.type_code == cert_type.code and doc.issuer_uscc == cert_type.issuers[0]


def test_digest_is_the_rfc6962_root_over_canonical_salted_leaves_in_utf16_order() -> None:
    doc = make_document()
    paths = sorted(doc.fields, key=_utf16_key)
    entries = [rfc8785.dumps({"path": p, "salt": doc.fields[p].salt.hex(), "value": doc.fields[p].value})
               for p in paths]
    assert [e for _, e in doc.leaf_entries()] == entries
    assert doc.digest_sha256 == merkle.merkle_root(entries) == doc.document_digest_bytes
    assert doc.digest_sm3 == merkle.merkle_root(entries, algorithm="sm3")
    assert leaf_entry(paths[0], doc.fields[paths[0]].salt, doc.fields[paths[0]].value) == entries[0]


def test_identifier_and_type_are_bound_by_the_digest() -> None:
    doc = make_document()
    assert doc.fields["证照标识"].value == doc.identifier
    assert doc.fields["证照类型代码"].value == LICENCE.code
    assert doc.fields["颁发机构代码"].value == LICENCE.issuers[0]


def test_salts_can_be_given_and_reproduce_the_digest() -> None:
    doc = make_document()
    salts = {p: f.salt for p, f in doc.fields.items()}
    values = {p: f.value for p, f in doc.fields.items()}
    again = Document.create(LICENCE, values, identifier=doc.identifier, salts={k: v.hex() for k, v in salts.items()})
    assert again.digest_sha256 == doc.digest_sha256 and again == dataclasses.replace(doc, salt_seed=None)
    assert again.salt_seed is None and doc.salt_seed is not None  # explicit salts: no seed


# Fields whose value is implied by the identifier or type cannot change on their own.
_IMPLIED = {"证照标识", "证照类型代码", "颁发机构代码", "证照名称", "持证主体代码类型"}


def _another_value(path: str, old: Any) -> Any:
    """A different value that is still valid for 营业执照."""
    kind = LICENCE.field(path).type if path not in COMMON_FIELD_NAMES else None
    if kind == "decimal":
        return str(old) + "1" if "." in str(old) else str(old) + ".5"
    if path in ("颁发日期", "有效期起始", "成立日期"):
        return "2001-01-01" if old != "2001-01-01" else "2001-01-02"
    replacements = {"持证主体代码": "91110000600037341L", "有效期截止": "2099-12-31",
                    "属地编码": "230100" if old != "230100" else "230000"}
    return replacements.get(path, f"{old}。" if old is not None else "长期")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_changing_one_value_or_one_salt_changes_both_digests(data: st.DataObject) -> None:
    doc = make_document(seed=data.draw(st.integers(0, 10**6)))
    salts = {p: f.salt for p, f in doc.fields.items()}
    values = {p: f.value for p, f in doc.fields.items()}
    if data.draw(st.booleans()):
        path = data.draw(st.sampled_from(sorted(doc.fields)))
        salt = bytearray(salts[path])
        salt[data.draw(st.integers(0, 15))] ^= 1 << data.draw(st.integers(0, 7))
        salts[path] = bytes(salt)
    else:
        path = data.draw(st.sampled_from(sorted(set(doc.fields) - _IMPLIED)))
        values[path] = _another_value(path, values[path])
    changed = Document.create(LICENCE, values, identifier=doc.identifier, salts=salts)
    assert changed.digest_sha256 != doc.digest_sha256
    assert changed.digest_sm3 != doc.digest_sm3


def test_create_fills_implied_fields_and_normalises_the_holder_code() -> None:
    values = make_values()
    for name in ("证照名称", "证照类型代码", "颁发机构代码", "持证主体代码类型"):
        del values[name]
    values["持证主体代码"] = values["持证主体代码"].lower()
    doc = Document.create(LICENCE, values, identifier=str(CertificateId.build(LICENCE.code, LICENCE.issuers[0], 9)))
    assert doc.fields["证照名称"].value == "营业执照"
    assert doc.holder_code == values["持证主体代码"].upper()
    assert doc.holder_code_type == "001"


# --- validation errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "code", "field", "message"), [
    ({"法定代表人": None}, "missing_field", "法定代表人", "法定代表人 .* is required"),
    ({"注册资本": 100.5}, "invalid_field", "注册资本", "not a float"),
    ({"成立日期": "2020-13-01"}, "invalid_field", "成立日期", "not a calendar date"),
    ({"住所": "长" * 201}, "invalid_field", "住所", "at most 200"),
    ({"属地编码": "23010"}, "invalid_field", "属地编码", "does not match pattern"),
    ({"颜色": "红"}, "unknown_field", "颜色", "营业执照 has no field '颜色'"),
    ({"持证主体代码": "91110000600037341M"}, "invalid_field", "持证主体代码", "check character M, expected L"),
    ({"持证主体代码类型": "111"}, "invalid_field", "持证主体代码类型", "expected '001'"),
    ({"颁发机构代码": "11230000MB1A000526"}, "invalid_field", "颁发机构代码", "expected '11230000MB1A00028M'"),
    ({"证照类型代码": "11230000MB1A00028M002"}, "invalid_field", "证照类型代码", "expected '11230000MB1A00028M001'"),
    ({"有效期起始": "2024-05-02", "有效期截止": "2024-05-01"}, "invalid_field", "有效期截止", "before 有效期起始"),
])
def test_invalid_values_are_refused_naming_the_field(overrides: dict[str, Any], code: str, field: str,
                                                     message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        make_document(**overrides)
    assert info.value.code == code
    assert info.value.details["field"] == field


def test_resident_id_holders_are_checked_with_gb_11643() -> None:
    good = make_values(DRIVER)["持证主体代码"]
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    with pytest.raises(ValidationError, match="not a valid resident identity number") as info:
        make_document(DRIVER, 持证主体代码=bad)
    assert info.value.details == {"field": "持证主体代码"}


def test_expiring_types_need_an_end_date() -> None:
    with pytest.raises(ValidationError, match="valid for 6 years: 有效期截止 is required") as info:
        make_document(DRIVER, 有效期截止=None)
    assert info.value.code == "missing_field"


def test_an_issuer_not_allowed_for_the_type_is_refused() -> None:
    education = SEEDS.member("11230000MB1A000601")
    identifier = str(CertificateId.build(LICENCE.code, education.uscc, 1))
    values = make_values(颁发机构代码=None)
    with pytest.raises(ValidationError, match="11230000MB1A000601 may not issue 营业执照"):
        Document.create(LICENCE, values, identifier=identifier)


def test_identifier_of_another_type_or_malformed_is_refused() -> None:
    other = str(CertificateId.build(DRIVER.code, DRIVER.issuers[0], 1))
    with pytest.raises(ValidationError, match="is for type 11230000MB1A00079X001, expected") as info:
        Document.create(LICENCE, make_values(), identifier=other)
    assert info.value.code == "invalid_identifier"
    with pytest.raises(ValidationError, match="must start with 1.2.156.3005.2"):
        Document.create(LICENCE, make_values(), identifier="nope")


def test_bad_salts_are_refused() -> None:
    identifier = str(CertificateId.build(LICENCE.code, LICENCE.issuers[0], 1))
    with pytest.raises(ValidationError, match="salt for 住所 must be 16 bytes, got 3"):
        Document.create(LICENCE, make_values(), identifier=identifier, salts={"住所": b"abc"})
    with pytest.raises(ValidationError, match="salt given for unknown field"):
        Document.create(LICENCE, make_values(), identifier=identifier, salts={"颜色": bytes(16)})


# --- disclosure ---------------------------------------------------------------------------------------------


def test_disclosed_copy_keeps_the_digests_and_hides_the_values() -> None:
    doc = make_document()
    shown = doc.disclose(["持证主体代码", "住所", "注册资本"])
    assert shown.compute_digests() == doc.compute_digests() == (doc.digest_sha256, doc.digest_sm3)
    assert shown.integrity_errors() == []
    assert set(shown.hidden) == {"持证主体代码", "住所", "注册资本"}
    assert shown.holder_code is None and "住所" not in json.dumps(shown.to_json()["fields"], ensure_ascii=False)
    again = shown.disclose(["经营范围"])
    assert set(again.hidden) == {"持证主体代码", "住所", "注册资本", "经营范围"}
    assert again.compute_digests() == doc.compute_digests()
    with pytest.raises(NotFoundError, match="hidden"):
        shown.value("住所")


def test_the_identifier_cannot_be_hidden() -> None:
    with pytest.raises(ValidationError, match="证照标识 cannot be hidden") as info:
        make_document().disclose(["证照标识"])
    assert info.value.code == "invalid_disclosure"


def test_hiding_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="cannot hide '颜色'"):
        make_document().disclose(["颜色"])


# --- JSON ---------------------------------------------------------------------------------------------------


def test_json_round_trip_of_full_and_disclosed_documents() -> None:
    doc = make_document()
    for d in (doc, doc.disclose(["住所"])):
        obj = d.to_json()
        assert obj["format"] == FORMAT_ID
        assert Document.from_json(obj) == d
        assert Document.from_json(json.dumps(obj, ensure_ascii=False)) == d
        assert Document.from_json(d.canonical_bytes()) == d


def test_integrity_errors_say_which_digest_differs() -> None:
    obj = make_document().to_json()
    obj["fields"]["住所"]["value"] = "黑龙江省哈尔滨市南岗区某街1号"
    errors = Document.from_json(obj).integrity_errors()
    assert len(errors) == 2
    assert errors[0].startswith("digest.sha256 differs") and errors[1].startswith("digest.sm3 differs")
    obj = make_document().to_json()
    obj["digest"]["sm3"] = "00" * 32
    assert [e[:17] for e in Document.from_json(obj).integrity_errors()] == ["digest.sm3 differ"]


def test_a_header_that_disagrees_with_the_bound_fields_is_reported() -> None:
    doc = make_document()
    obj = doc.to_json()
    obj["identifier"] = str(CertificateId.build(LICENCE.code, LICENCE.issuers[0], 2))
    errors = Document.from_json(obj).integrity_errors()
    assert any("field 证照标识 is" in e for e in errors)


def _mutations() -> list[tuple[str, Any]]:
    doc = make_document().to_json()
    first = next(iter(doc["fields"]))
    cases: list[tuple[str, Any]] = [
        ("not json", "{"),
        ("a list", []),
        ("wrong format", {**doc, "format": "lianzheng/cert/2"}),
        ("missing key", {k: v for k, v in doc.items() if k != "digest"}),
        ("extra key", {**doc, "extra": 1}),
        ("bad identifier", {**doc, "identifier": "1.2.3"}),
        ("identifier not a string", {**doc, "identifier": 5}),
        ("fields not an object", {**doc, "fields": []}),
        ("salt upper case", {**doc, "fields": {**doc["fields"], first: {"salt": "AB" * 16, "value": "x"}}}),
        ("salt short", {**doc, "fields": {**doc["fields"], first: {"salt": "ab", "value": "x"}}}),
        ("float value", {**doc, "fields": {**doc["fields"], first: {"salt": "ab" * 16, "value": 1.5}}}),
        ("object value", {**doc, "fields": {**doc["fields"], first: {"salt": "ab" * 16, "value": {}}}}),
        ("huge int", {**doc, "fields": {**doc["fields"], first: {"salt": "ab" * 16, "value": 2**60}}}),
        ("entry extra key", {**doc, "fields": {**doc["fields"], first: {"salt": "ab" * 16, "value": 1, "x": 1}}}),
        ("hidden and shown", {**doc, "hidden": {first: {"sha256": "00" * 32, "sm3": "00" * 32}}}),
        ("hidden bad hash", {**doc, "hidden": {"x": {"sha256": "00" * 31, "sm3": "00" * 32}}}),
        ("common field missing", {**doc, "fields": {k: v for k, v in doc["fields"].items() if k != "颁发日期"}}),
        ("digest not hex", {**doc, "digest": {"sha256": "zz" * 32, "sm3": "00" * 32}}),
        ("anchor not an object", {**doc, "anchor": "yes"}),
        ("anchor incomplete", {**doc, "anchor": {"batch_root": "0x" + "00" * 32}}),
    ]
    dup = json.dumps(doc, ensure_ascii=False)[:-1] + ', "format": "lianzheng/cert/1"}'
    cases.append(("duplicate key", dup))
    cases.append(("NaN", json.dumps(doc).replace('"anchor": null', '"anchor": NaN')))
    return cases


@pytest.mark.parametrize(("name", "obj"), _mutations(), ids=[n for n, _ in _mutations()])
def test_malformed_documents_raise_payload_format_errors(name: str, obj: Any) -> None:
    with pytest.raises(PayloadFormatError) as info:
        Document.from_json(obj)
    assert info.value.code == "invalid_document"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_from_json_never_raises_anything_but_payload_format_error(data: st.DataObject) -> None:
    obj: Any = copy.deepcopy(make_document().to_json())
    # replace one node somewhere in the tree with arbitrary JSON
    node = obj
    for _ in range(data.draw(st.integers(0, 2))):
        if not isinstance(node, dict) or not node:
            break
        key = data.draw(st.sampled_from(sorted(node)))
        if not isinstance(node[key], dict):
            break
        node = node[key]
    if isinstance(node, dict) and node:
        node[data.draw(st.sampled_from(sorted(node)))] = data.draw(json_values)
    try:
        Document.from_json(obj)
    except PayloadFormatError:
        pass


# --- anchors -------------------------------------------------------------------------------------------------


def _batch(docs: list[Document]) -> list[AnchorProof]:
    hashes = [merkle.leaf_hash(d.document_digest_bytes) for d in docs]
    root = merkle.root_from_leaf_hashes(hashes)
    return [AnchorProof(batch_root=root, index=i, size=len(docs), path=tuple(p), chain_id=31337,
                        ledger="0x5fbdb2315678afecb367f032d93f642f64180aa3", tx_hash=bytes([i]) * 32,
                        block_number=12, block_timestamp=1_700_000_000,
                        issuer_account="0x7e5f4552091a69125d5dfcb7b8c2659029395bdf")
            for i, p in enumerate(merkle.all_inclusion_proofs(hashes))]


def test_anchor_proof_places_each_document_in_its_batch_and_round_trips() -> None:
    docs = [make_document(serial=i, seed=i) for i in range(5)]
    proofs = _batch(docs)
    for doc, proof in zip(docs, proofs, strict=True):
        anchored = doc.with_anchor(proof)
        assert anchored.anchor == proof and proof.includes(doc.digest_sha256)
        assert proof.ledger == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
        restored = Document.from_json(json.loads(json.dumps(anchored.to_json())))
        assert restored == anchored and restored.anchor == proof
    with pytest.raises(ProofError, match="does not place document digest"):
        docs[0].with_anchor(proofs[1])


@pytest.mark.parametrize(("change", "message"), [
    ({"index": 5}, "index must be below size 5"),
    ({"size": 0}, "size must be an integer >= 1"),
    ({"batch_root": b"x"}, "batch_root must be 32 bytes, got 1 bytes"),
    ({"ledger": "0x1234"}, "ledger must be a 0x-prefixed 20-byte address"),
    ({"path": (b"y" * 31,)}, r"path\[0\] must be 32 bytes"),
    ({"chain_id": True}, "chain_id must be an integer"),
])
def test_malformed_anchor_proofs_are_refused(change: dict[str, Any], message: str) -> None:
    base = _batch([make_document(serial=i, seed=i) for i in range(5)])[0]
    fields = {f: getattr(base, f) for f in base.__dataclass_fields__}
    with pytest.raises(ValidationError, match=message):
        AnchorProof(**{**fields, **change})


def test_anchor_from_json_refuses_bad_hex() -> None:
    obj = _batch([make_document()])[0].to_json()
    obj["tx_hash"] = "0x12"
    with pytest.raises(PayloadFormatError, match="tx_hash must be 0x \\+ 64 hex digits") as info:
        AnchorProof.from_json(obj)
    assert info.value.code == "invalid_anchor"


# --- properties ------------------------------------------------------------------------------------------------


def test_date_and_holder_properties() -> None:
    doc = make_document(DRIVER)
    assert doc.valid_from is not None and doc.valid_until is not None
    assert doc.valid_from <= doc.valid_until
    assert doc.valid_from.isoformat() == doc.value("有效期起始")
    assert doc.holder_code_type == "111" and doc.holder_name == doc.value("持证主体")
    assert doc.issue_date == doc.valid_from
    assert doc.certificate_id.serial == "000000000001"
    assert make_document().valid_until is None  # 营业执照 never expires
    with pytest.raises(NotFoundError, match="absent"):
        doc.value("颜色")


def test_documents_are_immutable() -> None:
    doc = make_document()
    with pytest.raises(AttributeError):
        doc.identifier = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        doc.fields["住所"] = None  # type: ignore[index]
    assert hash(doc) == hash(Document.from_json(doc.to_json()))


def test_lone_surrogates_are_refused_on_the_way_in() -> None:
    with pytest.raises(ValidationError, match="lone surrogate") as info:
        make_document(住所="黑龙江省\ud800")
    assert info.value.code == "invalid_field"
    obj = make_document().to_json()
    obj["fields"]["住所"]["value"] = "\ud800"
    with pytest.raises(PayloadFormatError, match="lone surrogate"):
        Document.from_json(obj)


def test_a_date_field_that_is_not_a_date_is_reported_as_a_format_error() -> None:
    obj = make_document(DRIVER).to_json()
    obj["fields"]["有效期截止"]["value"] = "soon"
    doc = Document.from_json(obj)
    assert doc.integrity_errors()  # tampered
    with pytest.raises(PayloadFormatError, match="有效期截止 .* is not a date"):
        _ = doc.valid_until


# --- the fast leaf encoding is RFC 8785 ---------------------------------------------------------------------
from hypothesis import given as _given  # noqa: E402
from hypothesis import strategies as _st  # noqa: E402


@_given(
    path=_st.text(min_size=1, max_size=20),
    salt=_st.binary(min_size=16, max_size=16),
    value=_st.one_of(_st.text(max_size=60), _st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
                     _st.booleans(), _st.none()),
)
def test_leaf_entry_fast_path_is_byte_identical_to_rfc8785(path: str, salt: bytes, value: object) -> None:
    import rfc8785

    from registry.certificates.documents import leaf_entry

    try:
        expected = rfc8785.dumps({"path": path, "salt": salt.hex(), "value": value})
    except Exception:
        return  # lone surrogates: both refuse
    assert leaf_entry(path, salt, value) == expected  # type: ignore[arg-type]


# --- the per-document salt seed ------------------------------------------------------------------------------


def test_derive_salt_is_truncated_hmac_sha256_over_a_labelled_path() -> None:
    seed = bytes(range(16))
    expected = hmac.new(seed, b"lianzheng/salt/1" + "住所".encode(), hashlib.sha256).digest()[:16]
    assert derive_salt(seed, "住所") == expected
    assert derive_salt(bytes(16), "住所").hex() == "62050facdfa1bc73f1b9daaa112d18d0"  # frozen: salts on paper


def test_create_draws_one_seed_and_derives_every_salt_from_it() -> None:
    doc = make_document()
    assert doc.salt_seed is not None and len(doc.salt_seed) == 16
    assert {p: f.salt for p, f in doc.fields.items()} == {p: derive_salt(doc.salt_seed, p) for p in doc.fields}
    assert doc.integrity_errors() == [] and doc.salt_seed_errors() == []
    assert make_document(seed=2).salt_seed != doc.salt_seed
    assert "salt_seed" not in repr(doc) and doc.salt_seed.hex() not in repr(doc)


@given(seed=st.binary(min_size=16, max_size=16), paths=st.sets(st.text(min_size=1, max_size=12), min_size=2, max_size=30))
def test_derived_salts_are_distinct_per_path(seed: bytes, paths: set[str]) -> None:
    salts = [derive_salt(seed, p) for p in paths]  # st.text() draws no lone surrogates
    assert all(len(s) == 16 for s in salts)
    assert len(set(salts)) == len(salts)


@given(seeds=st.lists(st.binary(min_size=16, max_size=16), min_size=2, max_size=5, unique=True))
def test_different_seeds_give_different_salts(seeds: list[bytes]) -> None:
    assert len({derive_salt(seed, "持证主体") for seed in seeds}) == len(seeds)


@settings(max_examples=40, deadline=None)
@given(hide=st.sets(st.sampled_from(sorted(set(make_document().fields) - {"证照标识"})), max_size=6))
def test_a_disclosed_copy_never_carries_the_seed(hide: set[str]) -> None:
    doc = make_document()
    shown = doc.disclose(hide)
    assert shown.salt_seed is None and "salt_seed" not in shown.to_json()
    assert shown.compute_digests() == doc.compute_digests() and shown.integrity_errors() == []
    assert Document.from_json(shown.to_json()) == shown


def test_json_round_trip_keeps_the_seed_and_documents_without_one_keep_their_json() -> None:
    doc = make_document()
    obj = doc.to_json()
    assert obj["salt_seed"] == doc.salt_seed.hex()  # type: ignore[union-attr]
    for again in (Document.from_json(obj), Document.from_json(json.dumps(obj, ensure_ascii=False)),
                  Document.from_json(doc.canonical_bytes())):
        assert again == doc and again.salt_seed == doc.salt_seed
    legacy = {k: v for k, v in obj.items() if k != "salt_seed"}  # issued before the seed existed
    parsed = Document.from_json(legacy)
    assert parsed.salt_seed is None and parsed.to_json() == legacy and parsed.integrity_errors() == []
    assert set(legacy) == {"format", "identifier", "type", "fields", "hidden", "digest", "anchor"}


def test_a_salt_that_does_not_derive_from_the_seed_is_reported_naming_the_field() -> None:
    """Not refused by from_json: a changed salt also changes the digest, and the verifier must call that
    document tampered (tests/integration/test_certificates_api.py), as it does for a changed value."""
    obj = make_document().to_json()
    salt = obj["fields"]["住所"]["salt"]
    obj["fields"]["住所"]["salt"] = ("0" if salt[0] != "0" else "1") + salt[1:]
    doc = Document.from_json(obj)
    assert doc.salt_seed_errors() == ["field 住所: salt does not derive from salt_seed"]
    assert "field 住所: salt does not derive from salt_seed" in doc.integrity_errors()
    # a changed seed with untouched salts and digests: every field is reported
    obj = make_document().to_json()
    obj["salt_seed"] = "00" * 16
    doc = Document.from_json(obj)
    assert len(doc.salt_seed_errors()) == len(doc.fields) and doc.compute_digests() == (doc.digest_sha256,
                                                                                         doc.digest_sm3)


@pytest.mark.parametrize(("seed", "message"), [
    ("AB" * 16, "salt_seed must be 32 lower-case hex digits"),
    ("ab" * 15, "salt_seed must be 32 lower-case hex digits"),
    (None, "salt_seed must be 32 lower-case hex digits"),
    (12, "salt_seed must be 32 lower-case hex digits"),
])
def test_a_malformed_seed_is_refused(seed: Any, message: str) -> None:
    obj = make_document().to_json()
    obj["salt_seed"] = seed
    with pytest.raises(PayloadFormatError, match=message) as info:
        Document.from_json(obj)
    assert info.value.code == "invalid_document"


def test_a_document_with_hidden_fields_and_a_seed_is_refused() -> None:
    doc = make_document()
    obj = doc.disclose(["住所"]).to_json()
    obj["salt_seed"] = doc.salt_seed.hex()  # type: ignore[union-attr]
    with pytest.raises(PayloadFormatError, match="hidden fields must not carry salt_seed .*hidden 住所") as info:
        Document.from_json(obj)
    assert info.value.code == "invalid_document"


def test_seed_must_be_16_bytes_when_constructed_directly() -> None:
    doc = make_document()
    with pytest.raises(ValidationError, match="salt_seed must be 16 bytes or None"):
        dataclasses.replace(doc, salt_seed=b"short")
