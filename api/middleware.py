"""The middleware every HTTP request passes through, installed by one call from api/app.py
(`install_middleware(app, settings)`). Outermost first:

- `RequestContext`: an `X-Request-ID` on every response (a sane incoming one is kept, else one is made), one
  JSON access-log line per request (method, path without query values, status, duration, agency, request id;
  never a header, body or holder value), and the 500 for any exception nothing else handled: logged once as
  plain redacted frames without locals or exception messages, answered `{"error": {"code": "internal_error", ..., "request_id"}}`.
- `BodyLimitMiddleware` (api/limits.py): 413 past LIANZHENG_MAX_REQUEST_BYTES, declared or chunked.
- `JsonGuard`: a body any route may parse as JSON is checked (UTF-8, nesting depth, number sizes) before a
  parser sees it (api/limits.py says why).
- `VerifyShortcut` (api/routes/verify.py): `POST /api/v1/verify` answered past FastAPI's router, after the
  checks above, as the route would answer it.

Pure ASGI classes, no BaseHTTPMiddleware: they add no task per request and never buffer a response.
"""

from __future__ import annotations

import json
import random
import re
import time
from typing import Any
from urllib.parse import parse_qsl

import structlog
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api.errors import error_body, internal_error_body
from api.interpreter import pin_recursion_limit
from api.limits import MAX_JSON_DEPTH, BodyLimitMiddleware, JsonBodyError, check_json_body
from api.logging import plain_traceback
from api.routes.verify import VerifyShortcut
from api.settings import Settings

Scope = dict[str, Any]

log = structlog.get_logger("api.access")
REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Bodies these routes stream or parse as forms, never as JSON (evidence uploads).
_NOT_JSON = ("multipart/form-data", "application/octet-stream")
_CHECK_IN_THREAD = 256 * 1024  # above this the (linear, C-speed) check runs off the event loop


def install_middleware(app: FastAPI, settings: Settings, *, verify_shortcut: bool = True) -> None:
    """Install the layers in order; the recursion limit is pinned here too, right before serving."""
    pin_recursion_limit()
    if verify_shortcut:  # innermost: the body is limited and checked before it is parsed
        services = app.state.services
        app.add_middleware(VerifyShortcut, lane=app.state.verification, verifier=services.verifier,
                           challenges=services.challenges)
    app.add_middleware(JsonGuard, max_depth=MAX_JSON_DEPTH)  # add_middleware: the last added is the outermost
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestContext, access_log=settings.access_log)


def request_id_of(scope: Scope) -> str:
    """The incoming X-Request-ID if it is <= 64 characters of [A-Za-z0-9._-], else a fresh one."""
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(text):
                return text
            break
    # 128 random bits in uuid4().hex's shape, from the interpreter's generator: uuid4 reads os.urandom, a system
    # call that cost ~0.1-0.3 ms per request on the loaded 2-core machine. A request id correlates log lines; it
    # is not a secret and need not be unpredictable. (The module's generator is reseeded in a forked child.)
    return f"{random.getrandbits(128):032x}"


class RequestContext:
    def __init__(self, app: Any, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        request_id = request_id_of(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["started_at"] = started_at  # routes that time their stages count parsing from here
        status: int | None = None

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]}
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # a bug: answer 500, log it once; uvicorn would print it again with less care
            log.error("unhandled_error", method=scope.get("method"), path=scope.get("path"),
                      error_type=type(exc).__name__, exception=plain_traceback(exc))
            if status is None:
                await _send_json(send_with_id, 500, internal_error_body(request_id))
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
            if self.access_log:
                log.info("request", method=scope.get("method"), path=scope.get("path"),
                         query_params=_query_names(scope), status=status,
                         duration_ms=round((time.perf_counter() - started_at) * 1000, 2),
                         agency=state.get("agency"), request_id=request_id)


class JsonGuard:
    def __init__(self, app: Any, *, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        bodiless = scope.get("method") in ("GET", "HEAD", "OPTIONS")
        if scope["type"] != "http" or bodiless or _content_type(scope).startswith(_NOT_JSON):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:  # bounded by BodyLimitMiddleware outside this layer
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)  # the client went away: let the app see it
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            try:
                if len(body) > _CHECK_IN_THREAD:
                    await run_in_threadpool(check_json_body, body, max_depth=self.max_depth)
                else:
                    check_json_body(body, max_depth=self.max_depth)
            except JsonBodyError as exc:
                await _send_json(send, exc.status, error_body(exc.code, exc.message))
                return
        await self.app(scope, _replay([body], {"type": "http.request", "body": b"", "more_body": False}, receive), send)


def _replay(bodies: list[bytes], last: dict[str, Any], receive: Any) -> Any:
    """A receive() that yields the body already read, then `last`, then whatever the client sends next."""
    pending: list[dict[str, Any]] = [{"type": "http.request", "body": b, "more_body": False} for b in bodies] or [last]

    async def replayed() -> Any:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def _content_type(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return value.decode("latin-1").strip().lower()
    return ""


def _query_names(scope: Scope) -> list[str]:
    """The names of the query parameters, never their values (a value may be a key or holder data)."""
    raw = scope.get("query_string", b"").decode("latin-1")
    return sorted({name[:40] for name, _ in parse_qsl(raw, keep_blank_values=True)})[:20]


async def _send_json(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
