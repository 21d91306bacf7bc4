"""The order `make test` runs test files in (tests/support/durations.py): heaviest first, unknown files before
all, a file's tests together and in their order; and the weights read back from a JUnit XML report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support import durations


@dataclass
class Item:
    nodeid: str


def test_heaviest_file_first_unknown_before_all_and_each_file_in_its_order() -> None:
    items = [Item(n) for n in ("tests/unit/test_a.py::one", "tests/unit/test_a.py::two", "tests/e2e/test_b.py::one",
                               "tests/new/test_c.py::one", "tests/e2e/test_b.py::two[x]", "tests/unit/test_d.py::one")]
    durations.order_by_weight(items, {"tests/unit/test_a.py": 2.0, "tests/e2e/test_b.py": 40.0, "tests/unit/test_d.py": 2.0})
    assert [i.nodeid for i in items] == [
        "tests/new/test_c.py::one", "tests/e2e/test_b.py::one", "tests/e2e/test_b.py::two[x]",
        "tests/unit/test_a.py::one", "tests/unit/test_a.py::two", "tests/unit/test_d.py::one"]


def test_weights_are_summed_per_file_from_junit_xml(tmp_path: Path) -> None:
    xml = tmp_path / "run.xml"
    xml.write_text('<testsuites><testsuite>'
                   '<testcase classname="tests.unit.test_durations" name="a" time="1.25"/>'
                   '<testcase classname="tests.unit.test_durations" name="b" time="2.5"/>'
                   '<testcase classname="tests.unit.test_durations.TestX" name="c" time="0.25"/>'
                   '<testcase classname="tests.e2e.test_up" name="d" time="30"/>'
                   '</testsuite></testsuites>', encoding="utf-8")
    assert durations.from_junit(xml) == {"tests/e2e/test_up.py": 30.0, "tests/unit/test_durations.py": 4.0}


def test_the_committed_weights_name_existing_test_files() -> None:
    root = durations.DURATIONS.parent.parent
    weights = durations.weights()
    assert weights and all((root / path).is_file() for path in weights)
