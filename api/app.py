"""The FastAPI application.

    >>> app = create_app(node, settings)      # doctest: +SKIP
    >>> uvicorn.run(app)                       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.limits import BodyLimitMiddleware
from api.routes import system
from api.services import build_services, start_services
from api.settings import Settings
from registry.node import Node


def create_app(node: Node, settings: Settings, *, workers: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running = start_services(app.state.services) if workers else []
        if workers:
            for module in routers:
                start = getattr(module, "start", None)
                if start is not None:  # a ledger's background service (outbox worker, checkpoint gateway ...)
                    running.extend(start(app))
        try:
            yield
        finally:
            for s in running:
                s.stop()

    routers = _optional_routers()
    app = FastAPI(
        title="链证 Lianzheng",
        version="0.1.0",
        description="可信电子证照链、存证公正链、数据共享交换链 — e-certificates, evidence and data exchanges on a "
        "permissioned EVM chain.",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # served by api/routes/pages.py from vendored assets (no CDN)
    )
    app.state.node = node
    app.state.settings = settings
    app.state.services = build_services(node, settings)
    app.state.extras = {}  # per-ledger services, created by their route modules (see api/routes/*.py)
    errors.install(app)
    for module in routers:  # pages: HTML 404s for browsers, wrapping the JSON handler just installed
        if hasattr(module, "install"):
            module.install(app)
    app.include_router(system.router)
    for module in routers:
        app.include_router(module.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    return app


def _optional_routers() -> list:  # type: ignore[type-arg]
    """Routers of the later ledgers, included when present."""
    import importlib

    found = []
    for name in ("certificates", "verify", "qr", "evidence", "exchanges", "audit", "proofs", "pages"):
        try:
            found.append(importlib.import_module(f"api.routes.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"api.routes.{name}":
                raise
    return found
