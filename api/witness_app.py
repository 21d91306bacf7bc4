"""A witness as its own HTTP service (``lianzheng witness serve``): the C2SP tlog-witness protocol over one
`TlogWitness` (registry/logs/witness_protocol.py) with its own key, chain connection and state file.

- ``POST /add-checkpoint``: the spec's call; 200 with the cosignature line(s) (``text/plain; charset=utf-8``),
  409 with ``text/x.tlog.size`` (the latest cosigned size) when the caller's old size is not the witness's,
  400/403/404/422 as the spec says, 503 while the witness's copy of the chain is behind the checkpoint;
- ``GET /vkey``: the witness's name, agency and C2SP vkey (signature type 0x04), for the gateway to pin, and
  its secp256k1 Backbone account;
- ``GET /status``: the Backbone side (registry/logs/witness.py `BackboneCosigner`, run in the background while
  the app runs): whether its account is a registered witness, the last checkpoint it cosigned per ledger, and
  why it stopped, if it did;
- ``GET /healthz``.

    >>> app = create_witness_app(witness, agency="11230000MB1A00036G", cosigner=cosigner)   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from registry.logs.witness import BackboneCosigner
from registry.logs.witness_protocol import TlogWitness, WitnessRefusal, WitnessStatus

__all__ = ["MAX_BODY", "create_witness_app"]

# 63 proof lines and a note with up to 64 signatures fit in far less; a witness need not read more
MAX_BODY = 64 * 1024
TEXT = "text/plain; charset=utf-8"


def create_witness_app(witness: TlogWitness, *, agency: str, account: str | None = None,
                       cosigner: BackboneCosigner | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if cosigner is not None:
            cosigner.start()
        try:
            yield
        finally:
            if cosigner is not None:
                await run_in_threadpool(cosigner.stop)

    app = FastAPI(title="链证 witness (C2SP tlog-witness)", version="0.1.0", docs_url=None, redoc_url=None,
                  lifespan=lifespan)

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return PlainTextResponse("request body too large\n", status_code=413, media_type=TEXT)
        try:
            lines = await run_in_threadpool(witness.add_checkpoint, bytes(body))
        except WitnessRefusal as exc:
            if exc.status is WitnessStatus.CONFLICT and exc.latest_size is not None:
                # exactly the spec's media type: Starlette would add "; charset=utf-8" to a text/* media_type
                return Response(f"{exc.latest_size}\n", status_code=409, headers={"Content-Type": "text/x.tlog.size"})
            return PlainTextResponse(exc.message + "\n", status_code=int(exc.status), media_type=TEXT)
        return PlainTextResponse(lines, media_type=TEXT)

    @app.get("/vkey")
    def vkey() -> dict[str, Any]:
        v = witness.key.verifier
        return {"name": v.name, "agency": agency, "vkey": v.vkey(), "logs": sorted(witness.logs), "account": account}

    @app.get("/status")
    def status() -> dict[str, Any]:
        if cosigner is None:
            return {"agency": agency, "account": account, "backbone": None, "registered": False,
                    "error": "this witness was started without a Backbone to cosign on"}
        return cosigner.status()

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "name": witness.key.name, "logs": len(witness.logs)}

    return app
