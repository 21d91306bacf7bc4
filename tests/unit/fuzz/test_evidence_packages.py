"""The evidence-package reader (registry/evidence/package.py, offline mode) on untrusted zips: arbitrary bytes,
mutations of a well-formed package, and well-formed zips whose JSON files hold anything, all end in a report
or a RegistryError, never another exception."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.errors import RegistryError
from registry.evidence.package import FORMAT, PackageReport, verify_package
from tests.unit.fuzz.strategies import json_values, mutated_bytes, safe_json_values

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ACCOUNT = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
USCC = "11230000MB1A00036G"

FILES: dict[str, Any] = {
    "case.json": {"case_no": "哈公行罚〔2026〕17号", "key": "0x" + "11" * 32, "owner": USCC, "sealed": False},
    "custody.json": [{"action": "register", "record": "E1", "actor": USCC, "tx_hash": "0x" + "22" * 32,
                      "block_number": 7, "block_hash": "0x" + "33" * 32, "time": "2026-01-01T00:00:00Z",
                      "raw_transaction": "0x" + "44" * 40}],
    "records/E1.json": {"id": "E1", "case_no": "哈公行罚〔2026〕17号", "sha256": "55" * 32, "size": 3},
    "trust-list.json": {"members": [{"uscc": USCC, "name": "省司法厅", "accounts": [ACCOUNT]}]},
}


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def _package(overrides: dict[str, Any] | None = None) -> dict[str, bytes]:
    contents = {**FILES, **(overrides or {})}
    files = {name: json.dumps(value, ensure_ascii=False).encode() for name, value in contents.items()}
    manifest = {"format": FORMAT, "case": "哈公行罚〔2026〕17号", "chain": {"id": 1337, "as_of_block": 9},
                "exported_by": {"uscc": USCC, "account": ACCOUNT},
                "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}
    files["manifest.json"] = rfc8785.dumps(manifest)
    files["signature.json"] = json.dumps({"algorithm": "secp256k1-recoverable/sha256", "signature": "00" * 65}).encode()
    return files


VALID = _zip(_package())


def _read_or_refuse(data: bytes) -> PackageReport | None:
    try:
        return verify_package(data)
    except RegistryError:
        return None


def test_the_base_package_is_read_and_reported_not_ok() -> None:
    report = _read_or_refuse(VALID)
    assert report is not None and not report.ok  # its signature is zeros: found, not crashed on
    assert any(f.code == "bad_signature" for f in report.findings)


@FUZZ
@given(st.binary(max_size=600))
def test_arbitrary_bytes_are_refused_with_a_registry_error(data: bytes) -> None:
    assert _read_or_refuse(data) is None or data.startswith(b"PK")


@FUZZ
@given(st.data())
def test_a_mutated_package_is_reported_or_refused(data: st.DataObject) -> None:
    _read_or_refuse(data.draw(mutated_bytes(VALID)))


@FUZZ
@given(st.sampled_from(sorted(FILES)), json_values)
def test_any_json_in_a_package_file_is_reported_or_refused(name: str, value: Any) -> None:
    _read_or_refuse(_zip(_package({name: value})))


@FUZZ
@given(st.sampled_from(["manifest.json", "signature.json"]), safe_json_values)
def test_any_manifest_or_signature_is_reported_or_refused(name: str, value: Any) -> None:
    files = _package()
    files[name] = rfc8785.dumps(value)
    _read_or_refuse(_zip(files))


@FUZZ
@given(st.dictionaries(st.text(alphabet="ab./\\_-~ é证", min_size=1, max_size=30).filter(lambda n: n.strip("/")),
                       st.binary(max_size=40), max_size=6))
def test_any_file_names_are_reported_or_refused(extra: dict[str, bytes]) -> None:
    files = {**_package(), **extra}
    _read_or_refuse(_zip(files))


def test_a_package_claiming_a_later_zip_version_is_refused() -> None:
    """Found by the fuzz test above: zipfile raises NotImplementedError for a central directory entry whose
    'version needed to extract' is beyond what it reads (6.4 here); the reader refuses the package instead."""
    data = bytearray(VALID)
    central = data.index(b"PK\x01\x02")  # the first central directory entry; bytes 6-7: version needed
    data[central + 6:central + 8] = (64).to_bytes(2, "little")
    with pytest.raises(RegistryError) as refused:
        verify_package(bytes(data))
    assert refused.value.code == "invalid_package"
