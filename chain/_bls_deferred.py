"""py_ecc's BLS12-381 signatures, imported the first time something uses them rather than with web3.

web3 imports eth-account, which imports eth-keyfile, which imports `py_ecc.bls` for the EIP-2335 (BLS) key files
it can write. Importing `py_ecc.bls` computes pairing tables: about half a second of CPU in every process that
imports web3 -- each API process, each witness process, each CLI command that opens a node (docs/PERFORMANCE.md,
session 11: 90 s of the test suite's CPU). Lianzheng never makes or reads such key files: its chain keys are
secp256k1 and SM2, and its key files are its own (registry/consortium/key_backends).

`install()` (run by chain/__init__.py, so before anything in this package imports web3) puts a stand-in for
`py_ecc.bls` in front of the import system. eth-keyfile's `from py_ecc.bls import G2ProofOfPossession` gets a
proxy, and the real module is imported the first time an attribute of either is used; from then on
`py_ecc.bls` is the real module. Its submodules import as usual. Code that signs with BLS sees no difference
(tests/unit/chain/test_bls_deferred.py makes an EIP-2335 key file through eth-keyfile and checks its key).

eth-keyfile also takes `curve_order` from `py_ecc.bls12_381`, whose `__init__` imports the pairing module, and that
module checks its line function at import with three scalar multiplications by the curve order: 0.1-0.2 s of CPU
more in each of those processes. `py_ecc.bls12_381` is deferred the same way: its stand-in holds `curve_order`
from the curve submodule alone, which imports without the pairing, and any other attribute imports the real
package (which then shares the submodules already loaded).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
import types
from collections.abc import Sequence
from typing import Any

NAME = "py_ecc.bls"
CURVE = "py_ecc.bls12_381"
_BY_NAME = ("G2ProofOfPossession",)  # what eth-keyfile takes from py_ecc.bls when it is imported
_lock = threading.RLock()
_importing: set[str] = set()


def real(name: str = NAME) -> types.ModuleType:
    """The real module `name` (`NAME` or `CURVE`), imported on the first call."""
    with _lock:
        module = sys.modules.get(name)
        if module is not None and not isinstance(module, _StandIn):
            return module
        _importing.add(name)
        try:
            sys.modules.pop(name, None)
            if name == NAME:
                import py_ecc.bls  # noqa: F401 (the finder lets these through to the real modules)
            else:
                import py_ecc.bls12_381  # noqa: F401
        finally:
            _importing.discard(name)
        module = sys.modules[name]
        for full, sub in list(sys.modules.items()):  # submodules loaded under the stand-in are the real ones
            if full.startswith(name + ".") and "." not in full[len(name) + 1:]:
                module.__dict__.setdefault(full[len(name) + 1:], sub)
        return module


class _StandIn(types.ModuleType):
    """A deferred module until first used: any attribute it does not hold comes from the real module."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(real(self.__name__), name)


class _Proxy:
    """A name taken from `py_ecc.bls` at import time (a class of static methods): each attribute read goes to
    the real module's object of that name."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(getattr(real(), self._name), attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(real(), self._name)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<deferred {NAME}.{self._name}>"


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in (NAME, CURVE) or fullname in _importing:
            return None
        found = importlib.machinery.PathFinder.find_spec(fullname, path)
        if found is None:  # no py_ecc.bls: let the import fail as it would
            return None
        spec = importlib.machinery.ModuleSpec(fullname, self, origin=found.origin, is_package=True)
        spec.submodule_search_locations = found.submodule_search_locations  # `import py_ecc.bls.hash` works
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _StandIn(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        if module.__name__ == NAME:
            for name in _BY_NAME:
                setattr(module, name, _Proxy(name))
        else:  # the curve's constants without the pairing module
            # (a `from` import would ask the stand-in for the submodule's name, and so import the real package)
            import py_ecc.bls12_381.bls12_381_curve  # noqa: F401

            module.__dict__["curve_order"] = sys.modules[CURVE + ".bls12_381_curve"].curve_order


_FINDER = _Finder()


def install() -> None:
    """Defer `py_ecc.bls` and `py_ecc.bls12_381` in this process (once; nothing when they are imported already)."""
    if NAME not in sys.modules and CURVE not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
