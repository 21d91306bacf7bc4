"""The real app in a real uvicorn process, with the verifier and the certificate service swapped (through
FastAPI's dependency overrides) for ones that fail: how a bug's 500 is answered and logged (issue 10).

    python -m tests.support.failing_api <data dir> <port> <devnet port>

The failures carry what a careless library would put in an exception: the caller's input (holder values,
a document key) and a deep stack whose frames hold a large local, which a traceback renderer that shows
locals would spend seconds on.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import uvicorn

from api.app import create_app
from api.deps import get_services
from api.logging import configure_logging
from api.runtime import build_node
from api.settings import Settings

STACK_DEPTH = 60


BALLAST = "x" * 1_000_000


def _fail(value: Any, depth: int = STACK_DEPTH) -> Any:
    ballast = {"input": value, "padding": BALLAST}  # a large local in every frame (shared: costs nothing to make)  # noqa: F841
    if depth:
        return _fail(value, depth - 1)
    raise RuntimeError(f"lookup failed for {value!r}")


class FailingVerifier:
    def verify_identifier(self, identifier: str) -> Any:
        return _fail(identifier)

    def verify_document(self, document: Any) -> Any:
        return _fail(document)


class FailingCertificates:
    def statuses(self, agency: str, identifiers: list[str]) -> Any:
        return _fail({"agency": agency, "identifiers": identifiers})


def main(data_dir: str, port: str, devnet_port: str) -> None:
    settings = Settings(data_dir=Path(data_dir), port=int(port), devnet_port=int(devnet_port), env="test")
    configure_logging("info")
    app = create_app(build_node(settings), settings, workers=False)
    failing = dataclasses.replace(app.state.services, verifier=FailingVerifier(), certificates=FailingCertificates())
    app.dependency_overrides[get_services] = lambda: failing
    uvicorn.run(app, host="127.0.0.1", port=settings.port, log_config=None, access_log=False, log_level="info")


if __name__ == "__main__":
    main(*sys.argv[1:4])
