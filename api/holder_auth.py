"""Holder request authentication: the FastAPI dependency that checks a holder-signed request (the header's
format, and how a client builds it: registry/holders/request_auth.py). ``time`` must be within ±5 minutes of the
server's clock, and a signature is accepted once (`holder_requests_seen`, kept for the window): a captured header
cannot be replayed.

`CurrentHolder` is the FastAPI dependency other routes reuse (the holder's `HolderPublicKey`).
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from api.deps import NodeDep
from registry.errors import AuthenticationError, ValidationError
from registry.holders._time import parse_time
from registry.holders.keys import HolderPublicKey, b64url_decode
from registry.holders.request_auth import SCHEME, WINDOW, auth_message, authorization_header
from registry.node import Node
from registry.store.holder_models import HolderRequestSeen

__all__ = ["SCHEME", "WINDOW", "CurrentHolder", "auth_message", "authorization_header", "current_holder"]

_PARAM = re.compile(r"\s*(keyId|key|time|sig)=([A-Za-z0-9_\-=:.TZ]+)\s*")


def _fail(message: str) -> AuthenticationError:
    return AuthenticationError(message, code="holder_auth_failed")


def _params(header: str) -> dict[str, str]:
    scheme, _, rest = header.strip().partition(" ")
    if scheme != SCHEME:
        raise _fail(f"holder endpoints need 'Authorization: {SCHEME} keyId=..,key=..,time=..,sig=..'")
    out: dict[str, str] = {}
    for part in rest.split(","):
        m = _PARAM.fullmatch(part)
        if m is None or m.group(1) in out:
            raise _fail(f"malformed {SCHEME} parameter: {part.strip()[:40]!r}")
        out[m.group(1)] = m.group(2)
    missing = {"keyId", "key", "time", "sig"} - set(out)
    if missing:
        raise _fail(f"{SCHEME} is missing {', '.join(sorted(missing))}")
    return out


def _remember(node: Node, signature: bytes, key_id: str, now: int) -> None:
    digest = hashlib.sha256(signature).hexdigest()
    try:
        with node.db.session() as s:
            s.execute(delete(HolderRequestSeen).where(HolderRequestSeen.expires_at < now))
            s.add(HolderRequestSeen(signature_digest=digest, key_id=key_id, expires_at=now + 2 * WINDOW))
    except IntegrityError:
        raise _fail("this signed request was already used (replay)") from None


async def current_holder(request: Request, node: NodeDep) -> HolderPublicKey:
    """The holder whose key signed this request (see the module docstring)."""
    params = _params(request.headers.get("authorization", ""))
    try:
        key = HolderPublicKey.from_b64url(params["key"])
        signed_at = parse_time(params["time"], "time")
        signature = b64url_decode(params["sig"], "sig", max_length=200)
    except ValidationError as exc:
        raise _fail(f"{SCHEME}: {exc.message}") from None
    if key.key_id != params["keyId"]:
        raise _fail("keyId is not the SHA-256 of key")
    now = int(time.time())
    if abs(now - signed_at) > WINDOW:
        raise _fail(f"the request time is more than {WINDOW // 60} minutes from the server's")
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    body = await request.body()
    if not key.verify(auth_message(request.method, path, params["time"], body), signature):
        raise _fail("the holder signature does not verify")
    await run_in_threadpool(_remember, node, signature, key.key_id, now)
    request.state.holder = key.key_id  # for the access log
    return key


CurrentHolder = Annotated[HolderPublicKey, Depends(current_holder)]
