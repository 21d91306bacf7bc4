"""FastAPI dependencies as Annotated aliases: NodeDep, SettingsDep, CurrentAgency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, Request

from api.services import Services
from api.settings import Settings
from registry.errors import AuthenticationError
from registry.node import Node

T = TypeVar("T")


def get_node(request: Request) -> Node:
    return request.app.state.node  # type: ignore[no-any-return]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


_extras_lock = threading.Lock()


def extra_service(app: FastAPI, name: str, factory: Callable[[], T]) -> T:
    """A per-app ledger service kept in `app.state.extras[name]`, created once, lazily (route modules own
    their services; see api/app.py)."""
    with _extras_lock:
        svc = app.state.extras.get(name)
        if svc is None:
            svc = app.state.extras[name] = factory()
        return svc  # type: ignore[no-any-return]


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def current_agency(request: Request, node: Annotated[Node, Depends(get_node)]) -> str:
    """The USCC of the agency whose API key is in `Authorization: Bearer <key>`."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("issuer endpoints need 'Authorization: Bearer <agency API key>'")
    uscc = node.keys.authenticate(token.strip())
    request.state.agency = uscc  # for the access log (api/middleware.py)
    return uscc


NodeDep = Annotated[Node, Depends(get_node)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CurrentAgency = Annotated[str, Depends(current_agency)]
ServicesDep = Annotated[Services, Depends(get_services)]
