"""aiohttp, imported the first time something uses it rather than with web3.

web3 imports aiohttp for its asynchronous providers (`AsyncHTTPProvider`, the async session cache, CCIP-read):
0.24-0.40 s of CPU, a third of what `import web3` costs, in every process that imports web3 -- each API process,
each witness process, each CLI command that opens a node. Lianzheng talks to its nodes through web3's synchronous
HTTP provider (chain/backends.py) and never makes an aiohttp session.

`install()` (run by chain/__init__.py, so before anything in this package imports web3) puts a stand-in for
`aiohttp` in front of the import system. The five names web3's modules take from aiohttp when they are imported
(`_AT_IMPORT`) are stand-in classes: making one (``ClientSession(...)``) imports the real aiohttp and makes the
real object. The real module is also imported by any other attribute of the stand-in, by `real()`, or by importing
a submodule such as ``aiohttp.web``. From then on `aiohttp` is the real module, and every module that took a
stand-in class holds the real class instead.

One stand-in can outlive that: web3's `AsyncHTTPProvider` puts ``ClientError`` into its retry settings (an
attribute, not a module name) when it makes its first request, before its first session. So the stand-in
``ClientError`` is an Exception subclass, and the real module's ``ClientError`` is made its subclass when it is
imported: an ``except`` clause naming either catches aiohttp's errors, and the provider retries as it would.

tests/unit/chain/test_aiohttp_deferred.py reads the chain head through web3's `AsyncHTTPProvider` and its error
path through a closed port, and checks that a process importing web3 through the chain layer has no aiohttp.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
import types
from collections.abc import Sequence
from typing import Any

NAME = "aiohttp"
# what web3 8 takes from aiohttp when its modules are imported (web3/_utils/http_session_manager.py,
# web3/providers/rpc/async_rpc.py, web3/utils/async_exception_handling.py)
_AT_IMPORT = ("ClientSession", "ClientTimeout", "ClientResponse", "TCPConnector", "ClientError")
_ERROR = "ClientError"
_lock = threading.RLock()
_importing = False


def _stand_in_class(name: str) -> type:
    """A class in the place of ``aiohttp.<name>``: calling it makes the real object."""
    base: type = Exception if name == _ERROR else object

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:  # noqa: N807 (the hook's own name)
        if cls is not made[0]:  # the real ClientError and its subclasses, once rebased (`real`): the next
            order = cls.__mro__  # __new__ in their order (OSError's for ClientOSError), as super() finds it
            after = next(k for k in order[order.index(made[0]) + 1:] if "__new__" in vars(k))
            return after.__new__(cls, *args, **kwargs)
        return getattr(real(), name)(*args, **kwargs)

    # no slots of its own: the real ClientError can take it as its base in the place of Exception
    made: list[type] = [type(name, (base,), {"__new__": __new__, "__module__": __name__, "__slots__": (),
                                             "__doc__": f"deferred {NAME}.{name}"})]
    return made[0]


_STAND_INS = {name: _stand_in_class(name) for name in _AT_IMPORT}


def real() -> types.ModuleType:
    """The real aiohttp, imported on the first call. The stand-in classes and the stand-in module that modules
    hold as names are replaced by the real ones, and the stand-in module answers with the real classes."""
    global _importing
    with _lock:
        stand_in = sys.modules.get(NAME)
        if stand_in is not None and not isinstance(stand_in, _StandIn):
            return stand_in
        _importing = True
        try:
            sys.modules.pop(NAME, None)
            import aiohttp  # noqa: F401 (the finder lets this through to the real package)
        finally:
            _importing = False
        module = sys.modules[NAME]
        error = module.__dict__[_ERROR]
        if error.__bases__ == (Exception,):  # aiohttp's errors are stand-in ClientErrors too (module docstring)
            error.__bases__ = (_STAND_INS[_ERROR],)
        for full, sub in list(sys.modules.items()):  # submodules loaded under the stand-in are the real ones
            if full.startswith(NAME + ".") and "." not in full[len(NAME) + 1:]:
                module.__dict__.setdefault(full[len(NAME) + 1:], sub)
        replacing: dict[int, tuple[object, object]] = {
            id(cls): (cls, module.__dict__[name]) for name, cls in _STAND_INS.items()}
        if stand_in is not None:  # ``import aiohttp`` made before: the name holds the stand-in module
            replacing[id(stand_in)] = (stand_in, module)
            stand_in.__dict__.update({name: module.__dict__[name] for name in _STAND_INS})
        for holder in list(sys.modules.values()):
            names = getattr(holder, "__dict__", None)
            if not isinstance(names, dict):
                continue
            for key, value in list(names.items()):
                old, new = replacing.get(id(value), (None, None))
                if value is old:
                    names[key] = new
        return module


class _StandIn(types.ModuleType):
    """aiohttp until first used: the stand-in classes, and any other attribute from the real module."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(real(), name)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if _importing:
            return None
        if fullname.startswith(NAME + "."):  # a submodule needs the real package first
            if isinstance(sys.modules.get(NAME), _StandIn):
                real()
            return None
        if fullname != NAME:
            return None
        found = importlib.machinery.PathFinder.find_spec(fullname, path)
        if found is None:  # no aiohttp: let the import fail as it would
            return None
        spec = importlib.machinery.ModuleSpec(fullname, self, origin=found.origin, is_package=True)
        spec.submodule_search_locations = found.submodule_search_locations
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _StandIn(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__dict__.update(_STAND_INS)


_FINDER = _Finder()


def install() -> None:
    """Defer aiohttp in this process (once; nothing when it is imported already)."""
    if NAME not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
