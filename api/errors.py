"""One table maps domain and chain errors to HTTP statuses; every error body is
`{"error": {"code": "...", "message": "...", "details": {...}}}`. Never a stack trace, never a 500 for
bad input. A 500 (a bug) says only `internal_error` and the request id to quote; its traceback goes to the log,
redacted (api/middleware.py renders it, api/logging.py scrubs it)."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.logging import plain_traceback
from chain.errors import ChainError, ChainUnavailableError, ContractRevertError, DeploymentError
from registry import errors as e
from registry.consortium.members import translate_revert

log = structlog.get_logger(__name__)

STATUS: list[tuple[type[BaseException], int]] = [
    (e.PayloadTooLargeError, 413),
    (e.PayloadFormatError, 422),
    (e.ValidationError, 422),
    (e.AuthenticationError, 401),
    (e.PermissionDeniedError, 403),
    (e.NotFoundError, 404),
    (e.ConflictError, 409),
    (e.ProofError, 422),
    (e.ChainUnavailableError, 503),
    (e.RegistryError, 400),
]


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


INTERNAL_ERROR_MESSAGE = "内部错误 / internal error; it was logged with this request id"


def internal_error_body(request_id: str | None) -> dict[str, Any]:
    return {"error": {"code": "internal_error", "message": INTERNAL_ERROR_MESSAGE, "details": {},
                      "request_id": request_id}}


def status_for(exc: BaseException) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def install(app: FastAPI) -> None:
    @app.exception_handler(e.RegistryError)
    async def _domain(_: Request, exc: e.RegistryError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, e.AuthenticationError) else None
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=status_for(exc), headers=headers)

    @app.exception_handler(ContractRevertError)
    async def _revert(_: Request, exc: ContractRevertError) -> JSONResponse:
        domain = translate_revert(exc)
        assert isinstance(domain, e.RegistryError)
        return JSONResponse(error_body(domain.code, domain.message, domain.details), status_code=status_for(domain))

    @app.exception_handler(ChainUnavailableError)
    @app.exception_handler(DeploymentError)
    async def _chain_down(_: Request, exc: ChainError) -> JSONResponse:
        return JSONResponse(error_body("chain_unavailable", f"区块链节点不可用 / chain unavailable: {exc}"), status_code=503)

    @app.exception_handler(ChainError)
    async def _chain(_: Request, exc: ChainError) -> JSONResponse:
        log.error("chain error", error=str(exc))
        return JSONResponse(error_body("chain_error", str(exc)), status_code=502)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        code = "invalid_json" if first.get("type") == "json_invalid" else "invalid_request"
        message = "request body is not valid JSON" if code == "invalid_json" else f"{where}: {first.get('msg', 'invalid')}"
        details = {"errors": [{"loc": list(x.get("loc", ())), "msg": x.get("msg"), "type": x.get("type")}
                              for x in errors[:20]]}
        return JSONResponse(error_body(code, message, details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(exc.status_code, "http_error")
        # exc.headers carries `Allow` on 405 (RFC 9110 §15.5.6) and the like
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Only reached for errors raised outside api/middleware.RequestContext, which renders the others.
        request_id = request.scope.get("state", {}).get("request_id")
        log.error("unhandled_error", error_type=type(exc).__name__, exception=plain_traceback(exc))
        return JSONResponse(internal_error_body(request_id), status_code=500)
