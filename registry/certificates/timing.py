"""Where issuing spends its time: wall-clock seconds per stage of one request, so that a slow stage shows
up in the logs of a real deployment and in `lianzheng bench issue` (which sums them from the server's log).

Stages, in the order a document meets them:

- ``parse``: receiving and parsing the request body (measured by the API);
- ``validate``: the submitted values against the type's field specs (`_validate.validated_values`);
- ``build``: salts, leaf entries and the SHA-256 and SM3 document digests (`Document.from_validated`);
- ``seal``: the encrypted by-reference envelope of each document, and the e-seal signature when asked;
- ``store``: the serial range, the 证照编号 MACs and their lookup, the bulk insert and the commit;
- ``respond``: the answer's JSON (measured by the API);
- ``anchor``: forming batches, their Merkle roots and audit paths, the transactions and receipts (measured
  by the anchoring lane, per pass, not per request).

    >>> t = StageTimer()
    >>> with t.stage("validate"):
    ...     pass
    >>> sorted(t.seconds)
    ['validate']
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["STAGES", "StageTimer"]

STAGES = ("parse", "validate", "build", "seal", "store", "respond", "anchor")


class StageTimer:
    """Seconds per stage, added up over the calls of one request (not shared between threads)."""

    __slots__ = ("processes", "seconds")

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        # worker processes that built this request's documents (registry/certificates/parallel.py); their
        # validate/build/seal seconds are summed over the processes, so they may exceed the request's wall time
        self.processes = 0

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def as_ms(self) -> dict[str, float]:
        """``{"<stage>_ms": milliseconds}`` for a log line."""
        return {f"{k}_ms": round(v * 1000, 3) for k, v in self.seconds.items()}
