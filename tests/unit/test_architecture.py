"""The layout rules of docs/ARCHITECTURE.md, checked on the source itself.

- arrows go one way: api -> registry -> chain (registry never imports api, fastapi, web3 or requests;
  chain never imports registry or api);
- no import cycle between modules of the application;
- no importlib wiring;
- every module of the application stays below 500 lines;
- every user-visible capability has its own package under registry/.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "registry", "chain")
MAX_LINES = 500


def _modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


MODULES = dict(_modules())


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every module name `path` imports (absolute), with the line, including imports inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            for alias in node.names:  # `from registry.formats import qr` imports the module registry.formats.qr
                candidate = f"{node.module}.{alias.name}"
                if candidate in MODULES:
                    yield candidate, node.lineno


def _top(name: str) -> str:
    return name.split(".", 1)[0]


FORBIDDEN = {
    "chain": {"registry", "api", "fastapi"},
    "registry": {"api", "fastapi", "starlette", "uvicorn", "web3", "requests", "httpx"},
    "api": {"web3", "requests"},
}


@pytest.mark.parametrize("package", PACKAGES)
def test_layers_point_one_way(package: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for module, path in MODULES.items() if _top(module) == package
        for name, line in _imports(path) if _top(name) in FORBIDDEN[package]
    ]
    assert wrong == []


_W3 = re.compile(r"(?<!www)\.w3\b")  # `node.backend.w3`, not the SVG namespace www.w3.org


def test_registry_and_api_never_touch_web3_directly() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for module, path in MODULES.items() if _top(module) in ("registry", "api")
        for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _W3.search(text) or "import requests" in text
    ]
    assert found == []


def test_no_importlib_wiring() -> None:
    """Modules are imported by name in code, never looked up by string (a rename must fail loudly)."""
    paths = [*MODULES.values(), *sorted((ROOT / "registry" / "store" / "migrations").glob("*.py"))]
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in paths
        for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "import_module(" in text or "__import__(" in text
    ]
    assert found == []


def test_modules_stay_small() -> None:
    big = {str(path.relative_to(ROOT)): n for path in MODULES.values()
           if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert big == {}


def test_no_import_cycles() -> None:
    graph = {
        module: {name for name, _ in _imports(path) if name in MODULES and name != module}
        for module, path in MODULES.items()
    }
    # a package's __init__ importing its own submodules is how a package shows its surface, not a cycle
    for module in graph:
        graph[module] = {m for m in graph[module] if not (m.startswith(module + ".") and MODULES[module].name ==
                                                           "__init__.py")}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


def test_each_capability_has_its_own_package() -> None:
    expected = {"certificates", "evidence", "exchanges", "audit", "formats", "crypto", "outbox", "store",
                "consortium", "logs"}
    present = {p.name for p in (ROOT / "registry").iterdir() if (p / "__init__.py").exists()}
    assert expected <= present
