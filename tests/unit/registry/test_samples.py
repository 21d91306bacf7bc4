"""Sample values are realistic, reproducible, fast, and always pass Document.create."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from stdnum.cn import ric, uscc

from api.devtools.samples import sample_values
from registry.certificates.documents import Document
from registry.identifiers import CertificateId
from registry.seeds import CertificateType, load_seeds

SEEDS = load_seeds(Path(__file__).resolve().parents[3] / "seeds")
TODAY = dt.date(2025, 3, 1)


@pytest.mark.parametrize("cert_type", SEEDS.certificate_types, ids=lambda t: t.name_en)
def test_every_sample_of_every_type_passes_document_validation(cert_type: CertificateType) -> None:
    for issuer_uscc in cert_type.issuers:
        issuer = SEEDS.member(issuer_uscc)
        samples = sample_values(cert_type, 150, issuer=issuer, seed=3, today=TODAY)
        for serial, values in enumerate(samples):
            identifier = str(CertificateId.build(cert_type.code, issuer.uscc, serial))
            doc = Document.create(cert_type, values, identifier=identifier)
            assert doc.integrity_errors() == []
            assert doc.valid_from is not None and doc.valid_from <= TODAY
            if cert_type.validity_years is None:
                assert doc.valid_until is None
            else:
                assert doc.valid_until is not None and doc.valid_until > doc.valid_from


def test_holders_are_realistic_people_and_companies() -> None:
    person_type = SEEDS.certificate_type("11230000MB1A000601001")  # 学位证书
    for v in sample_values(person_type, 300, issuer=SEEDS.member(person_type.issuers[0]), seed=5, today=TODAY):
        code = str(v["持证主体代码"])
        assert ric.is_valid(code)
        assert ric.get_birth_date(code).isoformat() == v["出生日期"]
        assert (int(code[16]) % 2 == 1) == (v["性别"] == "男")  # GB 11643: odd 17th digit = male
        assert code.startswith("23")  # born in Heilongjiang
        assert 2 <= len(str(v["持证主体"])) <= 3
        assert str(v["授予日期"]) <= str(v["颁发日期"])
    company_type = SEEDS.certificate_type("11230000MB1A00028M001")  # 营业执照
    for v in sample_values(company_type, 300, issuer=SEEDS.member(company_type.issuers[0]), seed=5, today=TODAY):
        assert uscc.is_valid(str(v["持证主体代码"]))
        assert str(v["持证主体"]).endswith("有限公司")
        assert str(v["住所"]).startswith("黑龙江省")
        assert str(v["成立日期"]) < TODAY.isoformat()


def test_samples_are_reproducible_with_a_seed() -> None:
    t = SEEDS.certificate_types[0]
    issuer = SEEDS.member(t.issuers[0])
    a = sample_values(t, 20, issuer=issuer, seed=42, today=TODAY)
    assert a == sample_values(t, 20, issuer=issuer, seed=42, today=TODAY)
    assert a != sample_values(t, 20, issuer=issuer, seed=43, today=TODAY)
    assert len({v["持证主体代码"] for v in a}) == 20


def test_samples_carry_values_only_not_identifiers() -> None:
    t = SEEDS.certificate_types[0]
    [v] = sample_values(t, 1, issuer=SEEDS.member(t.issuers[0]), seed=1)
    assert "证照标识" not in v


def test_ten_thousand_samples_are_distinct_and_reproducible() -> None:
    """The bench issues 10,000+ documents from these samples: numbers must not repeat and a seed must reproduce
    them. (How fast they are made is part of `lianzheng bench issue`, not a timed test.)"""
    t = SEEDS.certificate_type("11230000MB1A00087Q001")  # 不动产权证书, the largest type
    issuer = SEEDS.member(t.issuers[0])
    samples = sample_values(t, 10_000, issuer=issuer, seed=1)
    assert len(samples) == 10_000
    assert len({v["证照编号"] for v in samples}) == 10_000
    assert sample_values(t, 10_000, issuer=issuer, seed=1) == samples
