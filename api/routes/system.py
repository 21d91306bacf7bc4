"""Health, members and identifier resolution (多标识融合)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from api.deps import NodeDep
from api.schemas import PUBLIC_ERRORS
from registry.consortium.members import MemberView, list_members, resolve

router = APIRouter()


class MemberPublic(BaseModel):
    uscc: str
    name: str
    name_en: str
    short_name: str
    region: str
    bid: str
    roles: list[str]
    status: str
    accounts: list[str]


class MembersPublic(BaseModel):
    count: int
    members: list[MemberPublic]


class Resolution(BaseModel):
    query: str
    kind: str
    member: MemberPublic


def _public(view: MemberView) -> MemberPublic:
    return MemberPublic(**asdict(view))


@router.get("/healthz", tags=["system"], responses=PUBLIC_ERRORS)
def healthz(node: NodeDep) -> dict[str, Any]:
    """Chain reachability, block height and the deployment in use."""
    chain: dict[str, Any] = {"reachable": False}
    try:
        chain = {"reachable": True, "chain_id": node.blocks.chain_id(), "block_number": node.blocks.head()}
    except Exception as exc:  # unreachable is a health answer, not an error
        chain["error"] = str(exc)[:200]
    deployment = node.deployment.to_json() if node.deployment else None
    status = "ok" if chain["reachable"] and deployment else "degraded"
    return {"status": status, "chain": chain, "deployment": deployment}


@router.get("/api/v1/members", tags=["consortium"], responses=PUBLIC_ERRORS)
async def members(node: NodeDep) -> MembersPublic:
    views = await run_in_threadpool(list_members, node)
    return MembersPublic(count=len(views), members=[_public(v) for v in views])


@router.get("/api/v1/identifiers/{identifier}", tags=["consortium"], responses=PUBLIC_ERRORS)
async def identifiers(identifier: Annotated[str, Path(max_length=128)], node: NodeDep) -> Resolution:
    """Resolve a BID (did:bid:...), a USCC or an account address to the consortium member."""
    kind, view = await run_in_threadpool(resolve, node, identifier)
    return Resolution(query=identifier, kind=kind, member=_public(view))
