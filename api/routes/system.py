"""Health, members and identifier resolution (多标识融合)."""

from __future__ import annotations

import os
import socket
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from api.deps import NodeDep
from api.schemas import PUBLIC_ERRORS
from registry.consortium.members import MemberView, list_members, resolve
from registry.store.leader import current_leader

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


class LeaderPublic(BaseModel):
    """Which API process runs the background writers (outbox worker, chain inbox, checkpoint gateway)."""

    database: str  # sqlite | postgresql
    pid: int  # the process that answered
    host: str
    leader: bool  # this process leads
    writers_running: bool  # its background writers run (the leader's, after its start)
    leader_pid: int | None  # the leading process as the database server sees it (None: an election is under way)
    leader_host: str | None
    elected_times: int  # how often this process became leader


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


@router.get("/api/v1/system/leader", tags=["system"], responses=PUBLIC_ERRORS)
async def leader(request: Request, node: NodeDep) -> LeaderPublic:
    """Which of the node's API processes leads: elected through a PostgreSQL advisory lock, it alone runs the
    outbox worker, the chain inbox and the checkpoint gateway; on SQLite the only process leads."""
    election = request.app.state.election
    info = await run_in_threadpool(current_leader, node.db)
    return LeaderPublic(database=node.db.engine.dialect.name, pid=os.getpid(), host=socket.gethostname(),
                        leader=election.is_leader, writers_running=request.app.state.writers.running,
                        leader_pid=info.pid, leader_host=info.host, elected_times=election.elected_times)


@router.get("/api/v1/members", tags=["consortium"], responses=PUBLIC_ERRORS)
async def members(node: NodeDep) -> MembersPublic:
    views = await run_in_threadpool(list_members, node)
    return MembersPublic(count=len(views), members=[_public(v) for v in views])


@router.get("/api/v1/identifiers/{identifier}", tags=["consortium"], responses=PUBLIC_ERRORS)
async def identifiers(identifier: Annotated[str, Path(max_length=128)], node: NodeDep) -> Resolution:
    """Resolve a BID (did:bid:...), a USCC or an account address to the consortium member."""
    kind, view = await run_in_threadpool(resolve, node, identifier)
    return Resolution(query=identifier, kind=kind, member=_public(view))
