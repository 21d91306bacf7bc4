"""The order test files run in: heaviest first, so that the two xdist workers of `make test` end together.

`make test` distributes whole files (`--dist loadfile`) in the order collected (`--no-loadscope-reorder`:
xdist's own order, most tests first, put the heavy end-to-end files, which have few tests each, last, and a
worker then ran one of them alone for up to a minute while the other was done). tests/durations.json holds
the seconds each file took in a full run (setup, call and teardown of its tests, from the JUnit XML);
`order_by_weight` sorts the collected items by it, heaviest file first. A file it does not list (a new one)
goes first, as if it were the heaviest: a light file there costs nothing, a heavy one last would.

Refresh it after a full run that wrote a JUnit XML:

    $ .venv/bin/pytest -n 2 --dist loadfile --no-loadscope-reorder --junitxml=/tmp/run.xml
    $ .venv/bin/python -m tests.support.durations /tmp/run.xml
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

DURATIONS = Path(__file__).resolve().parents[1] / "durations.json"


def weights() -> dict[str, float]:
    """Seconds per test file (its path from the project root), {} when the file is missing or unreadable."""
    try:
        data = json.loads(DURATIONS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def order_by_weight(items: list[Any], known: dict[str, float]) -> None:
    """Sort pytest items in place: the heaviest file first, files not in `known` before all others. The sort
    is stable, so a file's tests keep their order and stay together."""
    unknown = max(known.values(), default=0.0) + 1.0

    def weight(item: Any) -> float:
        return -known.get(item.nodeid.split("::", 1)[0], unknown)

    items.sort(key=weight)


def from_junit(xml: Path) -> dict[str, float]:
    """Seconds per test file summed from a JUnit XML report (classname ``tests.e2e.test_up`` -> the file)."""
    seconds: Counter[str] = Counter()
    for case in ET.parse(xml).getroot().iter("testcase"):
        path = Path(*(case.get("classname") or "").split("."))
        while path.parts and not (DURATIONS.parent.parent / path).with_suffix(".py").exists():
            path = path.parent  # a test class: tests.e2e.test_x.TestY
        if path.parts:
            seconds[path.with_suffix(".py").as_posix()] += float(case.get("time") or 0.0)
    return {k: round(v, 1) for k, v in sorted(seconds.items())}


if __name__ == "__main__":
    measured = from_junit(Path(sys.argv[1]))
    DURATIONS.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(measured)} files, {sum(measured.values()):.0f} s in all -> {DURATIONS}")
