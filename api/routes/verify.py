"""POST /api/v1/verify, the hot path of every scan: a verifier's page, app or gateway posts a document (full or
selectively disclosed) or ``{"identifier": ...}`` and gets the verdict with the checks it ran.

Two things keep it cheap and fair under load (docs/PERFORMANCE.md, "HTTP verification", round 2):

- **A bounded lane** (`api.lanes.VerificationLane`; the other verification routes use it too): at most
  ``LIANZHENG_VERIFY_THREADS`` verifications (default 2, one per core here) run at once, each in a worker
  thread; the others wait their turn on the event loop. A verification is 0.1-0.5 ms of CPU under the
  interpreter lock: with anyio's default 40 threads, 32 clients put 32 runnable threads on two cores and each
  request waits for the lock behind all the others (a convoy: p99 in the hundreds of ms); in a short queue each
  waits for a few verifications only. The event loop never runs a verification (the parse, the hashing, the
  database on a cache miss, the chain index's refresh).
- **A shortcut past the router** (`VerifyShortcut`, the innermost middleware): FastAPI's router matches a
  request against every route in turn, and its dependency solver and `dict[str, Any]` body validation cost
  more CPU per request than a verification by identifier. The shortcut takes exactly ``POST /api/v1/verify``
  after the body limit and the JSON checks (api/middleware.py) and answers it the way the FastAPI route below
  would: the same JSON parsing rules (content type, empty body, decode errors), the same 4xx codes and bodies
  (through the app's own exception handlers, api/errors.py), the same answer byte for byte
  (tests/integration/test_verify_encoding.py). The route stays the one documented in the OpenAPI and serves
  the requests the shortcut does not see (an app built with ``verify_shortcut=False``).

    >>> await lane.run(len, b"abc")   # doctest: +SKIP
    3
"""

from __future__ import annotations

import email.message
import functools
import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from api.deps import ChallengesDep, VerifierDep
from api.lanes import VerificationLane
from api.schemas import PUBLIC_ERRORS
from registry.certificates.documents import Document
from registry.certificates.verification import Verifier, parse_verify_body
from registry.errors import ValidationError
from registry.holders.presentation import ChallengeStore, with_presentation

router = APIRouter(prefix="/api/v1", tags=["certificates"])  # as when the route lived in certificates.py
PATH = "/api/v1/verify"
Scope = dict[str, Any]


def answer(body: Any, verifier: Verifier, challenges: ChallengeStore) -> bytes:
    """The verification of a parsed request body, encoded as FastAPI's JSONResponse would encode the result's
    dict (compact, UTF-8, no NaN). Raises the domain errors the app maps to 4xx. Runs in a worker thread."""
    kind, value = parse_verify_body(body)
    if kind == "identifier":
        if not isinstance(value, str):
            raise ValidationError("identifier must be a string", code="invalid_identifier")
        result = verifier.verify_identifier(value)
    else:
        doc = Document.from_json(value)
        result = with_presentation(verifier.verify_document(doc), doc, body.get("presentation"), challenges)
    return json.dumps(result.to_json(), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


@router.post("/verify", tags=["verification"], responses=PUBLIC_ERRORS, response_model=dict[str, Any])
async def verify(body: dict[str, Any], verifier: VerifierDep, challenges: ChallengesDep,
                 request: Request) -> Response:
    """Verify a certificate document (full or selectively disclosed), or `{"identifier": ...}` for status only.
    `{"document": ..., "presentation": ...}` also checks the holder's signed presentation of a bound certificate
    (POST /api/v1/presentations/challenge first): `bound` and `presentation` in the answer."""
    lane: VerificationLane = request.app.state.verification
    return Response(await lane.run(answer, body, verifier, challenges), media_type="application/json")


# What FastAPI does with the body of a route declared `body: dict[str, Any]` (fastapi/routing.py, strict content
# type): an empty body is a missing field; a JSON media type (application/json, application/*+json) is parsed;
# any other body, or none declared, stays bytes and fails the dict check.
_MISSING = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}


@functools.lru_cache(maxsize=64)
def _is_json(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def parse_body(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The request body as FastAPI parses and validates it for the route above, with its errors."""
    if not raw:
        raise RequestValidationError([_MISSING])
    body: Any = raw
    if content_type and _is_json(content_type):
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos),
                                           "msg": "JSON decode error", "input": {}, "ctx": {"error": exc.msg}}],
                                         body=exc.doc) from exc
        except Exception as exc:  # FastAPI's answer to any other failure to read a body
            raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc
    if not isinstance(body, dict):
        raise RequestValidationError([{"type": "dict_type", "loc": ("body",),
                                       "msg": "Input should be a valid dictionary", "input": body}])
    return body


class VerifyShortcut:
    """``POST /api/v1/verify`` answered without FastAPI's router, dependency solver and body model (see the
    module docstring); every other request goes on to the app, and so does this one when the app's dependencies
    are overridden (the route resolves the overrides). Errors go through the app's exception handlers, as they
    would from the route; one without a handler (a bug) goes up to api/middleware.RequestContext (a 500)."""

    def __init__(self, app: Any, *, lane: VerificationLane, verifier: Verifier, challenges: ChallengeStore) -> None:
        self.app = app
        self.lane = lane
        self.verifier = verifier
        self.challenges = challenges

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST" or _route_path(scope) != PATH
                or scope["app"].dependency_overrides):  # services swapped (tests, embedders): the route resolves them
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        response: Response
        try:
            try:
                raw = await request.body()
            except Exception as exc:
                raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc
            body = parse_body(raw, request.headers.get("content-type"))
            response = Response(await self.lane.run(answer, body, self.verifier, self.challenges),
                                media_type="application/json")
        except Exception as exc:
            handler = _handler_for(scope, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _handler_for(scope: Scope, exc: Exception) -> Any:
    """The app's handler for ``exc`` (the closest class), as Starlette's ExceptionMiddleware looks it up; the
    catch-all ``Exception`` handler is left to the outer layers, as for any route."""
    handlers = scope["app"].exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
