"""Interpreter-wide limits the API relies on, set once before serving.

py_ecc (imported through eth_account -> eth_keys) raises the recursion limit to 100,000 when it is imported,
for its pairing code. With that limit Python's RecursionError never trips before the C stack overflows, so a
body of 100,000 nested JSON arrays crashed the server with a segfault (issue 10). Nothing in the API computes
pairings, so the limit goes back to CPython's default once py_ecc is loaded: importing this module does it
(py_ecc is imported here first, so its import-time call can never come after ours), and the CLI and the app
call `pin_recursion_limit()` again after their own imports (py-evm, loaded by eth-tester, raises it too).

    >>> import sys
    >>> pin_recursion_limit(); sys.getrecursionlimit()
    1000
"""

from __future__ import annotations

import sys

import py_ecc  # noqa: F401  (loaded for its import-time side effect, which this module then undoes)

DEFAULT_RECURSION_LIMIT = 1000  # CPython's default (sys.getrecursionlimit() in a fresh interpreter)


def pin_recursion_limit() -> None:
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)


pin_recursion_limit()
