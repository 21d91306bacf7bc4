"""Consortium governance from the CLI: M-of-N proposals by admin agencies, key rotation, refusals."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest
from stdnum.cn import uscc as uscc_lib

from api.stack import LocalStack
from tests.support.cli import FirstCallReal

# each command family's first call is a real process, later ones run in this process (on the stack's database,
# which this process only holds idle: stack.node)
CLI = FirstCallReal(idle_sqlite=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # the API in a process of its own: its background writers never share this process's hold on the database,
    # so the commands (which open a node on it) can run in this process
    with LocalStack(tmp_path_factory.mktemp("governance"), server_process=True) as s:
        yield s


def run(stack: LocalStack, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIANZHENG_DATA_DIR": str(stack.data_dir), "LIANZHENG_DEVNET_PORT": str(stack.devnet_port),
           "LIANZHENG_API_URL": stack.url}
    p = CLI(args, env=env)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def _new_uscc() -> str:
    body = "11230000MB1A0077"
    for c in "0123456789ABCDEFGHJKLMNPQRTUWXY":
        try:
            return str(uscc_lib.validate(body + c + uscc_lib.calc_check_digit(body + c)))
        except Exception:
            continue
    raise AssertionError("no valid USCC")


def _members(stack: LocalStack) -> dict[str, dict]:  # type: ignore[type-arg]
    return {m["uscc"]: m for m in json.loads(run(stack, "members", "--json").stdout)}


def test_admit_with_two_admin_approvals_then_rotate_its_key(stack: LocalStack) -> None:
    admins = [m.uscc for m in stack.node.seeds.members if "admin" in m.roles]
    new = _new_uscc()
    proposal = json.loads(run(stack, "consortium", "propose", "admit", new, "--as", admins[0],
                              "--name", "黑龙江省测试厅", "--roles", "issuer,revoker", "--json").stdout)
    assert proposal["approvals"] == 1 and proposal["required"] == 2
    early = run(stack, "consortium", "execute", str(proposal["id"]), "--as", admins[0], ok=False)
    assert early.returncode != 0 and "ConsortiumInsufficientApprovals" in early.stderr
    twice = run(stack, "consortium", "approve", str(proposal["id"]), "--as", admins[0], ok=False)
    assert "ConsortiumAlreadyApproved" in twice.stderr and len(twice.stderr.strip().splitlines()) == 1
    run(stack, "consortium", "approve", str(proposal["id"]), "--as", admins[1])
    run(stack, "consortium", "execute", str(proposal["id"]), "--as", admins[0])
    member = _members(stack)[new]
    assert member["status"] == "active" and member["roles"] == ["issuer", "revoker"]
    old_account = member["accounts"][0]

    rotation = json.loads(run(stack, "consortium", "propose", "rotate-key", new, "--as", admins[1], "--json").stdout)
    run(stack, "consortium", "approve", str(rotation["id"]), "--as", admins[2])
    run(stack, "consortium", "execute", str(rotation["id"]), "--as", admins[1])
    rotated = _members(stack)[new]
    assert rotated["accounts"] != [old_account] and len(rotated["accounts"]) == 1
    assert json.loads(run(stack, "resolve", rotated["accounts"][0]).stdout)["member"]["uscc"] == new
    listing = json.loads(run(stack, "consortium", "proposals", "--json").stdout)
    assert {p["id"]: p["executed"] for p in listing}[rotation["id"]] is True


def test_a_non_admin_cannot_propose(stack: LocalStack) -> None:
    outsider = next(m.uscc for m in stack.node.seeds.members if "admin" not in m.roles)
    p = run(stack, "consortium", "propose", "suspend", stack.node.seeds.genesis.uscc, "--as", outsider, ok=False)
    assert p.returncode != 0 and "ConsortiumUnauthorized" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    bad = run(stack, "consortium", "propose", "promote", outsider, "--as", outsider, ok=False)
    assert bad.returncode != 0 and "unknown action" in bad.stderr
