"""The bootstrap seeds load, are consistent, and broken seeds are refused naming file and entry."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from stdnum.cn import uscc as stdnum_uscc

from registry.certificates.documents import COMMON_FIELD_NAMES
from registry.errors import NotFoundError, ValidationError
from registry.seeds import FieldSpec, Seeds, load_seeds

SEEDS = Path(__file__).resolve().parents[3] / "seeds"


@pytest.fixture(scope="module")
def seeds() -> Seeds:
    return load_seeds(SEEDS)


def _gb11714_valid(org: str) -> bool:
    """GB 11714-1997 organisation code check, written independently of the generator in samples.py."""
    values = [int(c) if c.isdigit() else ord(c) - ord("A") + 10 for c in org[:8]]
    c9 = 11 - sum(v * w for v, w in zip(values, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    return org[8] == {10: "X", 11: "0"}.get(c9, str(c9))


def test_the_consortium_has_the_agencies_and_one_genesis(seeds: Seeds) -> None:
    assert len(seeds.members) >= 10
    assert seeds.threshold == 2 and seeds.proposal_ttl_seconds == 604800
    assert seeds.genesis.name == "黑龙江省政务服务管理局"
    assert set(seeds.genesis.roles) >= {"admin", "issuer", "gateway", "auditor"}
    names = {m.name for m in seeds.members}
    expected = {"黑龙江省市场监督管理局", "黑龙江省司法厅", "黑龙江省公安厅", "哈尔滨市公证处", "哈尔滨市中级人民法院"}
    assert expected <= names
    assert len(seeds.members_with_role("admin")) >= seeds.threshold


def test_every_member_uscc_passes_stdnum_and_gb_11714(seeds: Seeds) -> None:
    for m in seeds.members:
        assert stdnum_uscc.validate(m.uscc) == m.uscc
        assert _gb11714_valid(m.uscc[8:17]), m.name
        assert m.uscc[2:8] == m.region


def test_certificate_types_are_defined_by_members_and_issued_by_issuers(seeds: Seeds) -> None:
    assert len(seeds.certificate_types) >= 6
    names = {t.name for t in seeds.certificate_types}
    assert {"营业执照", "食品经营许可证", "道路运输从业人员资格证", "学位证书", "职业资格证书", "不动产权证书"} <= names
    for t in seeds.certificate_types:
        assert t.code.startswith(t.authority) and len(t.code) == 21
        assert all("issuer" in seeds.member(u).roles for u in t.issuers)
        assert not {f.name for f in t.fields} & set(COMMON_FIELD_NAMES)
    assert seeds.certificate_type(seeds.certificate_types[0].code).name == "营业执照"


def test_evidence_types_cover_the_three_scenarios(seeds: Seeds) -> None:
    assert {e.scenario for e in seeds.evidence_types} == {"行政执法", "刑罚执行", "公证"}
    assert any("行政处罚法" in e.legal_basis for e in seeds.evidence_types)
    assert seeds.evidence_type("GZ-001").name == "公证书"


def test_catalogue_items_are_provided_by_members(seeds: Seeds) -> None:
    assert len(seeds.catalogue) >= 6
    for item in seeds.catalogue:
        seeds.member(item.provider)
    assert seeds.catalogue_item("GAT-001").share_condition == "有条件共享"


@pytest.mark.parametrize(("lookup", "code"), [
    ("certificate_type", "unknown_certificate_type"),
    ("member", "unknown_member"),
    ("evidence_type", "unknown_evidence_type"),
    ("catalogue_item", "unknown_catalogue_item"),
])
def test_lookups_of_unknown_codes_raise_not_found(seeds: Seeds, lookup: str, code: str) -> None:
    with pytest.raises(NotFoundError, match="no .* 'nope' in the seeds") as info:
        getattr(seeds, lookup)("nope")
    assert info.value.code == code


def test_seed_models_are_frozen(seeds: Seeds) -> None:
    with pytest.raises(Exception, match="frozen"):
        seeds.members[0].name = "x"  # type: ignore[misc]


# --- broken seeds -------------------------------------------------------------------------------------


def _broken(tmp_path: Path, file: str, change: Callable[[dict[str, Any]], None]) -> Path:
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    data = yaml.safe_load((target / file).read_text(encoding="utf-8"))
    change(data)
    (target / file).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return target


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


@pytest.mark.parametrize(("file", "change", "message"), [
    ("consortium.yaml", _set(["members", 3, "uscc"], "11230000MB1A00044C"),
     r"consortium.yaml members\[3\] \(黑龙江省公安厅\): uscc: "
     "USCC 11230000MB1A00044C has check character C, expected B"),
    ("consortium.yaml", _set(["members", 1, "genesis"], True), "exactly one member must have genesis: true, found 2"),
    ("consortium.yaml", _set(["members", 1, "uscc"], "11230000MB1A0001XM"),
     r"uscc 11230000MB1A0001XM repeats members\[0\]"),
    ("consortium.yaml", _set(["members", 0, "roles"], ["admin", "mayor"]), r"members\[0\].*roles.1"),
    ("consortium.yaml", _set(["threshold"], 9), "threshold: must be between 1 and the 3 admins, got 9"),
    ("consortium.yaml", _set(["members", 0, "region"], 230000),
     r"members\[0\].*region: Input should be a valid string"),
    ("consortium.yaml", _set(["members", 8, "revoker_delegates"], ["11230000MB1A0001XM"]),
     "revoker delegate 11230000MB1A0001XM must be another member with the revoker role"),
    ("consortium.yaml", _set(["extra"], 1), r"unknown top-level keys \['extra'\]"),
    ("certificate_types.yaml", _set(["certificate_types", 0, "code"], "11230000MB1A000526001"),
     "code 11230000MB1A000526001 must start with the authority's USCC 11230000MB1A00028M"),
    ("certificate_types.yaml", _set(["certificate_types", 1, "code"], "11230000MB1A00028M001"),
     r"certificate_types.yaml certificate_types\[1\] \(食品经营许可证\): code 11230000MB1A00028M001 repeats"),
    ("certificate_types.yaml", _set(["certificate_types", 0, "issuers"], ["11230000MB1A00095K"]),
     "issuer 11230000MB1A00095K must be a member with the issuer role"),
    ("certificate_types.yaml", _set(["certificate_types", 0, "fields", 0, "name"], "持证主体"),
     "repeat common metadata fields: 持证主体"),
    ("certificate_types.yaml", _set(["certificate_types", 0, "fields", 0, "pattern"], "(unclosed"),
     "is not a regular expression"),
    ("catalogue.yaml", _set(["items", 0, "provider"], "91110000600037341L"),
     r"catalogue.yaml items\[0\] \(企业登记信息\): provider 91110000600037341L is not a member"),
    ("evidence_types.yaml", _set(["evidence_types", 0, "scenario"], "民事"), r"evidence_types\[0\].*scenario"),
])
def test_broken_seeds_are_refused_naming_file_and_entry(tmp_path: Path, file: str,
                                                       change: Callable[[dict[str, Any]], None], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        load_seeds(_broken(tmp_path, file, change))
    assert info.value.code == "invalid_seed"
    assert info.value.details["file"] == file


def test_missing_seed_file_is_reported(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    (tmp_path / "seeds" / "catalogue.yaml").unlink()
    with pytest.raises(ValidationError, match="catalogue.yaml \\(file\\): missing"):
        load_seeds(tmp_path / "seeds")


# --- FieldSpec.normalise ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "value", "expected"), [
    (FieldSpec(name="日期", name_en="d", type="date"), "2024-02-29", "2024-02-29"),
    (FieldSpec(name="金额", name_en="m", type="decimal"), "12.50", "12.50"),
    (FieldSpec(name="金额", name_en="m", type="decimal"), 12, "12"),
    (FieldSpec(name="数", name_en="n", type="integer"), 7, 7),
    (FieldSpec(name="是否", name_en="b", type="boolean"), False, False),
    (FieldSpec(name="可选", name_en="o", type="string", required=False), None, None),
])
def test_field_values_are_normalised(spec: FieldSpec, value: Any, expected: Any) -> None:
    assert spec.normalise(value) == expected


@pytest.mark.parametrize(("spec", "value", "message"), [
    (FieldSpec(name="日期", name_en="d", type="date"), "2023-02-29", "is not a calendar date"),
    (FieldSpec(name="日期", name_en="d", type="date"), "20230101", "must be a date yyyy-mm-dd"),
    (FieldSpec(name="金额", name_en="m", type="decimal"), 1.5, "not a float"),
    (FieldSpec(name="金额", name_en="m", type="decimal"), "1e5", "must be a decimal string"),
    (FieldSpec(name="数", name_en="n", type="integer"), True, "must be an integer, got bool"),
    (FieldSpec(name="数", name_en="n", type="integer"), 2**60, "within ±"),
    (FieldSpec(name="是否", name_en="b", type="boolean"), "true", "must be true or false"),
    (FieldSpec(name="名", name_en="s", type="string", max_length=3), "四个字符", "4 characters long, at most 3"),
    (FieldSpec(name="性别", name_en="s", type="string", pattern="男|女"), "男女", "does not match pattern"),
])
def test_invalid_field_values_are_refused(spec: FieldSpec, value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        spec.normalise(value)
    assert info.value.code == "invalid_field"
    assert info.value.details == {"field": spec.name}


def test_missing_required_field_is_reported() -> None:
    with pytest.raises(ValidationError, match="is required") as info:
        FieldSpec(name="名", name_en="s", type="string").normalise(None)
    assert info.value.code == "missing_field"
