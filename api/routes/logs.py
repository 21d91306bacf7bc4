"""C2SP checkpoints of the ledger logs (registry/logs/cosigning.py), public like the proofs:

- ``GET /logs/<ledger>/checkpoint``: the latest checkpoint that reached the witness quorum, as a C2SP signed
  note (``text/plain; charset=utf-8``): the log's signature and the witnesses' ``cosignature/v1`` lines;
- ``GET /logs/<ledger>/keys``: one C2SP vkey line per signer (the log, then every witness), each after a
  ``# <agency name> <USCC>`` comment line; with ``Accept: application/json``, the same as a JSON list;
- ``GET /logs/<ledger>/status``: the latest cosigned size, the quorum, why checkpoints stopped, if they did
  (each witness's last error), and the latest checkpoint on the Backbone with the witness accounts that
  cosigned it there.

    $ curl 127.0.0.1:8000/logs/certificates/checkpoint        # doctest: +SKIP
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from api.deps import NodeDep, ServicesDep
from api.schemas import PUBLIC_ERRORS
from chain.errors import ChainError
from registry.errors import ChainUnavailableError, NotFoundError, RegistryError
from registry.logs.backbone import gateway_uscc
from registry.logs.cosigning import CheckpointCosigning
from registry.logs.log import check_ledger
from registry.node import Node

router = APIRouter(prefix="/logs", tags=["proofs"], responses=PUBLIC_ERRORS)

NOTE_MEDIA_TYPE = "text/plain; charset=utf-8"


def _cosigning(services: ServicesDep) -> CheckpointCosigning:
    gateway = services.checkpoints.gateway if services.checkpoints is not None else None
    if gateway is None or gateway.cosigning is None:
        raise ChainUnavailableError("no checkpoint gateway runs on this node (checkpoint_interval is 0 or the "
                                    "contracts are not deployed)", code="no_checkpoint_gateway")
    return gateway.cosigning


CosigningDep = Annotated[CheckpointCosigning, Depends(_cosigning)]
LedgerPath = Annotated[str, Path(max_length=32, pattern=r"^[a-z]+$")]


def _agency_name(node: Node, uscc: str) -> str:
    try:
        return node.seeds.member(uscc).name
    except RegistryError:
        return uscc


# response_model=None and the 200 declared by hand: a response_class would declare the JSON errors as text too
@router.get("/{ledger}/checkpoint", response_model=None,
            responses={200: {"description": "a C2SP signed note", "content": {"text/plain": {"schema": {"type": "string"}}}}})
def checkpoint(ledger: LedgerPath, cosigning: CosigningDep) -> PlainTextResponse:
    """The latest cosigned checkpoint of the ledger log (C2SP tlog-checkpoint in a signed note)."""
    row = cosigning.latest(check_ledger(ledger))
    if row is None:
        why = cosigning.last_error.get(ledger) or "no checkpoint reached its witness quorum yet"
        raise NotFoundError(f"no cosigned checkpoint of the {ledger} log: {why}", code="no_cosigned_checkpoint")
    return PlainTextResponse(row.note, media_type=NOTE_MEDIA_TYPE)


def _signers(node: Node, cosigning: CheckpointCosigning, ledger: str) -> list[dict[str, str]]:
    gw = gateway_uscc(node)
    out = [{"role": "log", "vkey": cosigning.log_key_verifier(ledger).vkey(), "agency": gw,
            "agency_name": _agency_name(node, gw)}]
    for verifier, agency in cosigning.verifiers():
        out.append({"role": "witness", "vkey": verifier.vkey(), "agency": agency,
                    "agency_name": _agency_name(node, agency)})
    return out


_KEYS_CONTENT = {200: {"description": "vkey lines (text) or, with Accept: application/json, the same as JSON",
                       "content": {"text/plain": {"schema": {"type": "string"}},
                                   "application/json": {"schema": {"type": "object"}}}}}


@router.get("/{ledger}/keys", response_model=None, responses=_KEYS_CONTENT)
async def keys(ledger: LedgerPath, node: NodeDep, cosigning: CosigningDep,
               accept: Annotated[str, Header()] = "") -> PlainTextResponse | dict[str, Any]:
    """The vkeys of the log and its witnesses, each with its agency."""
    signers = await run_in_threadpool(_signers, node, cosigning, check_ledger(ledger))
    if "application/json" in accept:
        return {"ledger": ledger, "quorum": cosigning.quorum, "signers": signers}
    text = "".join(f"# {s['agency_name']} {s['agency']} ({s['role']})\n{s['vkey']}\n" for s in signers)
    return PlainTextResponse(text, media_type=NOTE_MEDIA_TYPE)


@router.get("/{ledger}/status")
def status(ledger: LedgerPath, cosigning: CosigningDep, services: ServicesDep) -> dict[str, Any]:
    """Whether checkpoints of the log are being cosigned, and if not, why (each witness's last error)."""
    row = cosigning.latest(check_ledger(ledger))
    error = cosigning.last_error.get(ledger)
    try:
        on_backbone = services.proofs.checkpoints(ledger)
    except (RegistryError, ChainError, OSError):  # the Backbone's chain is unreachable: the rest of the status still holds
        on_backbone = []
    cp = on_backbone[-1] if on_backbone else None
    return {
        "ledger": ledger, "state": "stalled" if error else "ok", "error": error, "quorum": cosigning.quorum,
        "latest": None if row is None else {"tree_size": row.tree_size, "cosignatures": row.cosignatures},
        "witnesses": [{"url": w.url or None, "agency": w.agency, "error": w.last_error} for w in cosigning.witnesses],
        "backbone": None if cp is None else {
            "index": cp.index, "tree_size": cp.tree_size, "hash": "0x" + cp.hash.hex(),
            "cosigners": [{"account": a, "agency": u} for a, u in cp.cosigners]},
    }
