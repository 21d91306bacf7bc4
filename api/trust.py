"""The signed trust list (members, keys, roles, revocations) served to verifiers, rebuilt only when the
chain index has moved to a new block.

    >>> signed, parsed = TrustListCache(node, index).current()     # doctest: +SKIP
"""

from __future__ import annotations

import threading
from typing import Any

from registry.certificates.index import ChainIndex
from registry.consortium.trust_list import TrustList, build_trust_list
from registry.node import Node
from registry.seals.ca import trust_entry


class TrustListCache:
    def __init__(self, node: Node, index: ChainIndex) -> None:
        self.node = node
        self.index = index
        self._lock = threading.Lock()
        self._block = -1
        self._signed: dict[str, Any] | None = None
        self._parsed: TrustList | None = None

    def current(self, *, force: bool = False) -> tuple[dict[str, Any], TrustList]:
        self.index.refresh(force=force)
        with self._lock:
            if self._signed is None or self._parsed is None or self._block != self.index.synced_block:
                signed = build_trust_list(self.node, self.index, seal_ca=trust_entry(self.node))
                self._parsed = TrustList.from_json(signed)
                self._signed, self._block = signed, int(signed["as_of"]["block"])
            return self._signed, self._parsed
