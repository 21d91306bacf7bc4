"""The holder-signed request (the client side of api/holder_auth.py): a holder proves possession of their key on
each request, no password.

    Authorization: LianzhengHolder keyId=<key id hex>,key=<SPKI base64url>,time=<RFC 3339 UTC>,sig=<base64url>

``sig`` is the holder key's ECDSA P-256 signature (raw r||s, registry/holders/keys.py) of the UTF-8 text::

    lianzheng-holder-auth/v1\\n<METHOD>\\n<path with query>\\n<time>\\n<hex SHA-256 of the request body>

``key`` carries the public key (the server may know only its digest, from a bound certificate); ``keyId`` must be
its SHA-256. ``time`` must be within ±``WINDOW`` seconds of the server's clock, and the server accepts a
signature once within that window.

Apart from the FastAPI dependency that checks it, so that a client (the CLI wallet) builds the header without
loading the web stack.

    >>> auth_message("get", "/api/v1/holders/me/grants", "2026-12-02T01:00:00Z", b"").decode().splitlines()[:3]
    ['lianzheng-holder-auth/v1', 'GET', '/api/v1/holders/me/grants']
"""

from __future__ import annotations

import hashlib
import time

from registry.holders._time import format_time
from registry.holders.keys import HolderKey, b64url_encode

__all__ = ["SCHEME", "WINDOW", "auth_message", "authorization_header"]

SCHEME = "LianzhengHolder"
WINDOW = 300


def auth_message(method: str, path: str, time_text: str, body: bytes) -> bytes:
    """The bytes a holder signs for one request."""
    return (f"lianzheng-holder-auth/v1\n{method.upper()}\n{path}\n{time_text}\n"
            f"{hashlib.sha256(body).hexdigest()}").encode()


def authorization_header(key: HolderKey, method: str, path: str, body: bytes = b"",
                         now: int | None = None) -> str:
    """The `Authorization` value a holder's client sends (the CLI wallet, tests)."""
    stamp = format_time(int(time.time()) if now is None else now)
    sig = b64url_encode(key.sign(auth_message(method, path, stamp, body)))
    return f"{SCHEME} keyId={key.public.key_id},key={key.public.spki_b64url},time={stamp},sig={sig}"
