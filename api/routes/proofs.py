"""Ledger-log proofs and checkpoints (public: they reveal hashes and chain positions, no personal data).

- ``GET /api/v1/proofs/inclusion?ledger=L&index=I&size=N`` (or ``&key=0x...`` instead of the index: a batch
  root, an evidence or exchange id): the RFC 6962 audit path of entry I in the tree of the first N entries
  of ledger L, the entry itself, and the Backbone checkpoint of size N when there is one (N defaults to the
  latest checkpoint that covers I).
- ``GET /api/v1/proofs/consistency?ledger=L&first=M&second=N``: the RFC 6962 consistency proof between the
  trees of sizes M and N, with the checkpoints of those sizes.
- ``GET /api/v1/proofs/checkpoints?ledger=L`` and ``GET /api/v1/proofs/ledgers``: checkpoints with their
  cosigners, and each log's size and root.

Verify an inclusion proof with RFC 9162 §2.1.3.2 (registry.merkle.verify_inclusion) over the entry's bytes,
and a consistency proof with §2.1.4.2 (registry.merkle.verify_consistency).

    $ curl '127.0.0.1:8000/api/v1/proofs/inclusion?ledger=certificates&index=0'     # doctest: +SKIP

The checkpoint gateway runs with the API (api/services.py), unless ``checkpoint_interval`` is 0.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from api.deps import ProofsDep
from api.proofs import ProofService
from api.schemas import PUBLIC_ERRORS
from registry.errors import ValidationError
from registry.logs.log import LEDGERS, check_ledger

router = APIRouter(prefix="/api/v1/proofs", tags=["proofs"], responses=PUBLIC_ERRORS)


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def inclusion(svc: ProofService, ledger: str, index: int | None, size: int | None, key: str | None) -> dict[str, Any]:
    check_ledger(ledger)
    logs = svc.sync()
    with logs.lock:
        lg = logs.log(ledger)
        if index is None:
            if not key:
                raise ValidationError("give the entry's index or its key (a batch root, an evidence or exchange id)",
                                      code="missing_index")
            index = lg.index_of(key)
        if size is None:
            covering = [c for c in svc.checkpoints(ledger) if c.tree_size > index]
            size = covering[0].tree_size if covering else lg.size
        proof = lg.inclusion_proof(index, size)
        entry = lg.entry(index)
        root = lg.root(size)
        leaf = lg.leaf_hashes[index]
        block = lg.block_of(index)
    checkpoint = next((c for c in svc.checkpoints(ledger) if c.tree_size == size), None)
    return {"ledger": ledger, "index": index, "size": size, "block": block, "entry": json.loads(entry),
            "entry_hex": _hex(entry), "leaf_hash": _hex(leaf), "proof": [_hex(p) for p in proof], "root": _hex(root),
            "algorithm": "RFC 6962 SHA-256; verify with RFC 9162 §2.1.3.2", "checkpoint": svc.checkpoint_json(checkpoint)}


def consistency(svc: ProofService, ledger: str, first: int, second: int | None) -> dict[str, Any]:
    check_ledger(ledger)
    logs = svc.sync()
    cps = svc.checkpoints(ledger)
    with logs.lock:
        lg = logs.log(ledger)
        if second is None:
            second = cps[-1].tree_size if cps else lg.size
        proof = lg.consistency_proof(first, second)
        first_root, second_root = lg.root(first), lg.root(second)
    by_size = {c.tree_size: c for c in cps}
    return {"ledger": ledger, "first": first, "second": second, "first_root": _hex(first_root),
            "second_root": _hex(second_root), "proof": [_hex(p) for p in proof],
            "algorithm": "RFC 6962 SHA-256; verify with RFC 9162 §2.1.4.2",
            "first_checkpoint": svc.checkpoint_json(by_size.get(first)),
            "second_checkpoint": svc.checkpoint_json(by_size.get(second))}


LedgerQ = Annotated[str, Query(description=f"one of {', '.join(LEDGERS)}", max_length=32,
                               json_schema_extra={"enum": list(LEDGERS)})]  # check_ledger answers unknown_ledger
SizeQ = Annotated[int | None, Query(ge=0, le=2**53, description="tree size (default: the latest checkpoint's)")]


@router.get("/inclusion")
async def get_inclusion(svc: ProofsDep, ledger: LedgerQ,
                        index: Annotated[int | None, Query(ge=0, le=2**53)] = None,
                        size: SizeQ = None,
                        key: Annotated[str | None, Query(max_length=66, pattern=r"^0x[0-9a-fA-F]{1,64}$")] = None,
                        ) -> dict[str, Any]:
    """RFC 6962 inclusion proof of one ledger-log entry, and the checkpoint of that tree size."""
    return await run_in_threadpool(inclusion, svc, ledger, index, size, key)


@router.get("/consistency")
async def get_consistency(svc: ProofsDep, ledger: LedgerQ, first: Annotated[int, Query(ge=0, le=2**53)],
                          second: SizeQ = None) -> dict[str, Any]:
    """RFC 6962 consistency proof between two sizes of a ledger log."""
    return await run_in_threadpool(consistency, svc, ledger, first, second)


@router.get("/checkpoints")
async def get_checkpoints(svc: ProofsDep, ledger: LedgerQ) -> dict[str, Any]:
    """A ledger's checkpoints on the Backbone, oldest first, with their cosigners."""
    check_ledger(ledger)
    cps = await run_in_threadpool(svc.checkpoints, ledger)
    return {"ledger": ledger, "count": len(cps), "checkpoints": [svc.checkpoint_json(c) for c in cps]}


@router.get("/ledgers")
async def get_ledgers(svc: ProofsDep) -> dict[str, Any]:
    """Every ledger log's size and root, its latest checkpoint, and where the Backbone is."""

    def work() -> dict[str, Any]:
        logs = svc.sync()
        link = svc.link()
        out: dict[str, Any] = {"subchain": {"chain_id": logs.chain_id, "block": logs.synced_block},
                               "backbone": link.to_json() if link is not None else None, "ledgers": {}}
        for name in LEDGERS:
            cps = svc.checkpoints(name)
            with logs.lock:
                lg = logs.log(name)
                out["ledgers"][name] = {"size": lg.size, "root": _hex(lg.root()),
                                        "latest_checkpoint": svc.checkpoint_json(cps[-1] if cps else None)}
        return out

    return await run_in_threadpool(work)
