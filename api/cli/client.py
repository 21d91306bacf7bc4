"""The CLI's HTTP client: the API server is the single writer of the outbox, so the CLI acts as an
agency through it, with the agency's API key (in dev, from <data dir>/api-keys.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from registry.errors import (
    AuthenticationError,
    ChainUnavailableError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RegistryError,
    ValidationError,
)

_BY_STATUS: dict[int, type[RegistryError]] = {401: AuthenticationError, 403: PermissionDeniedError,
                                              404: NotFoundError, 409: ConflictError, 413: PayloadTooLargeError,
                                              422: ValidationError, 503: ChainUnavailableError}


class ApiClient:
    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 300.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """A JSON answer; API errors become the domain errors they stand for."""
        r = self.response(method, path, **kwargs)
        return r.json() if r.content else None

    def response(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The raw answer (binary or HTML bodies); API errors become the domain errors they stand for."""
        try:
            r = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ChainUnavailableError(
                f"cannot reach the Lianzheng API at {self.base_url} ({exc}); is `make run` serving?",
                code="api_unreachable") from exc
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
                code, message, details = err["code"], err["message"], err.get("details") or {}
            except (ValueError, KeyError, TypeError):
                code, message, details = "http_error", f"HTTP {r.status_code}: {r.text[:200]}", {}
            raise _BY_STATUS.get(r.status_code, RegistryError)(message, code=code, details=details)
        return r

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json=body, **kw)


def dev_api_key(data_dir: Path, uscc: str) -> str | None:
    path = data_dir / "api-keys.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text()).get(uscc)
    except ValueError:
        return None
