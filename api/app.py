"""The FastAPI application: every router listed here, every service built by api/services.py.

    >>> app = create_app(node, settings)      # doctest: +SKIP
    >>> uvicorn.run(app)                       # doctest: +SKIP
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from api import errors
from api.lanes import VerificationLane
from api.middleware import install_middleware
from api.routes import (
    audit,
    certificates,
    evidence,
    exchanges,
    holders,
    logs,
    pages,
    proofs,
    qr,
    seals,
    system,
    usage,
    verify,
    wallet,
)
from api.services import BackgroundWriters, build_services
from api.settings import Settings
from registry.node import Node
from registry.store.leader import LeaderElection

ROUTERS: tuple[APIRouter, ...] = (
    system.router, certificates.router, verify.router, seals.router, qr.router, evidence.router, exchanges.router, audit.router,
    proofs.router, usage.router, usage.pages, pages.router, logs.router, holders.router, wallet.router,
)


def create_app(node: Node, settings: Settings, *, workers: bool = True, start_build_pool: bool = False,
               freeze_heap: bool = False, verify_shortcut: bool = True) -> FastAPI:
    services = build_services(node, settings)
    writers = BackgroundWriters(services)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Of the API processes sharing the database, the elected one runs the background writers
        # (registry/store/leader.py); on SQLite the only process leads at once.
        election = LeaderElection(node.db, on_elected=writers.start, on_deposed=writers.stop)
        app.state.election = election
        # every API process builds large issuing requests in its own worker processes: `serve` starts them now,
        # an app made in process (the tests, LocalStack) on its first large request (about a second, once)
        if start_build_pool:
            services.certificates.builder.start()
        if workers:
            election.start()
        if freeze_heap:
            # `serve`: what start-up made (modules, the app, the node, its caches) lives as long as the process.
            # Frozen, the collector's full passes stop walking it (the imports alone leave ~260,000 tracked
            # objects): they cost a large issuing request ~45 % of its CPU here (docs/PERFORMANCE.md, round 3).
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            election.stop()
            services.certificates.close()

    app = FastAPI(
        title="链证 Lianzheng",
        version="0.1.0",
        description="可信电子证照链、存证公正链、数据共享交换链 — e-certificates, evidence and data exchanges on a "
        "permissioned EVM chain.",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # served by api/routes/pages.py from vendored assets (no CDN)
        # FastAPI's built-in OpenTelemetry asks the global providers on every request (~20-30 µs, more than a
        # verification by identifier's own hop): Lianzheng exports no traces or metrics, its logs are its own
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.node = node
    app.state.settings = settings
    app.state.services = services
    app.state.writers = writers
    app.state.verification = VerificationLane(settings.verify_threads)
    errors.install(app)
    pages.install(app)  # HTML 404s for browsers, wrapping the JSON handler just installed
    for router in ROUTERS:
        app.include_router(router)
    install_middleware(app, settings, verify_shortcut=verify_shortcut)
    return app
