"""`lianzheng consortium ...`: M-of-N governance by admin agencies (admit, roles, suspend, reinstate,
remove, key rotation, threshold), each a proposal -> approvals -> execution on ConsortiumRegistry.

Admins act with their signing keys from the data dir (the operator's node); the contract refuses anyone
else, so the CLI cannot do what the chain would not allow.
"""

from __future__ import annotations

from typing import Annotated

import typer
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from api.cli._common import console, print_json, state
from api.cli.options import JsonOpt
from chain.contracts import Action, ConsortiumClient, Role
from registry.consortium.members import member_bid, sync_members
from registry.errors import ValidationError
from registry.identifiers import validate_uscc

consortium_app = typer.Typer(no_args_is_help=True, help="Consortium governance: proposals, approvals, execution.")

ACTIONS = {"admit": "ADMIT", "set-roles": "SET_ROLES", "suspend": "SUSPEND", "reinstate": "REINSTATE",
           "remove": "REMOVE", "rotate-key": "ROTATE_KEY", "set-threshold": "SET_THRESHOLD"}
As = Annotated[str, typer.Option("--as", envvar="LIANZHENG_AGENCY", help="the acting admin agency (USCC)")]


def register(app: typer.Typer) -> None:
    app.add_typer(consortium_app, name="consortium")


def _roles(text: str | None) -> int:
    if not text:
        raise ValidationError("--roles is required (comma-separated: admin, issuer, revoker, evidence, exchange, "
                              "auditor, gateway)", code="missing_roles")
    try:
        return int(Role.from_names([r.strip() for r in text.split(",") if r.strip()]))
    except KeyError as exc:
        raise ValidationError(f"unknown role {exc.args[0]!r}", code="invalid_role") from exc


@consortium_app.command("propose")
def propose(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(help="|".join(ACTIONS))],
    uscc: Annotated[str, typer.Argument(help="the member concerned (for set-threshold: any, ignored)")],
    acting: As,
    name: Annotated[str | None, typer.Option("--name", help="admit: the agency's registered name")] = None,
    roles: Annotated[str | None, typer.Option("--roles", help="admit/set-roles: comma-separated roles")] = None,
    threshold: Annotated[int | None, typer.Option("--threshold", min=1, max=255)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose a change; the proposing admin's approval is counted at once."""
    if action not in ACTIONS:
        raise ValidationError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}", code="invalid_action")
    node = state(ctx).node()
    acting = validate_uscc(acting)
    kind = Action[ACTIONS[action]]
    data = b""
    target = "" if kind == Action.SET_THRESHOLD else validate_uscc(uscc)
    if kind == Action.ADMIT:
        if not name:
            raise ValidationError("admit needs --name", code="missing_name")
        account = (node.keys.signing_account(target) if node.keys.has_signing_key(target)
                   else node.keys.create_signing_key(target))  # the new agency's key, encrypted at rest
        data = ConsortiumClient.admit_data(name, member_bid(node, target), [account.address], _roles(roles))
    elif kind == Action.SET_ROLES:
        data = abi_encode(["uint64"], [_roles(roles)])
    elif kind == Action.ROTATE_KEY:
        old = node.keys.signing_account(target)
        new = node.keys.create_signing_key(target, active=False)  # used once the rotation is executed
        data = abi_encode(["address", "address", "string"], [old.address, new.address, member_bid(node, target)])
    elif kind == Action.SET_THRESHOLD:
        if threshold is None:
            raise ValidationError("set-threshold needs --threshold", code="missing_threshold")
        data = abi_encode(["uint8"], [threshold])
    consortium = node.consortium
    proposal = consortium.propose(node.sender_for(acting), kind, target, data)
    info = consortium.get_proposal(proposal)
    if as_json:
        print_json({"id": proposal, "action": action, "uscc": target, "approvals": info.approvals,
                    "required": consortium.required_approvals(), "expires_at": info.expires_at})
    else:
        console.print(f"proposal {proposal}: {action} {target or ''} — {info.approvals}/"
                      f"{consortium.required_approvals()} approvals")


@consortium_app.command("approve")
def approve(ctx: typer.Context, proposal: int, acting: As) -> None:
    """Approve a proposal (once per admin agency)."""
    node = state(ctx).node()
    node.consortium.approve(node.sender_for(acting), proposal)
    info = node.consortium.get_proposal(proposal)
    console.print(f"proposal {proposal}: {info.approvals}/{node.consortium.required_approvals()} approvals")


@consortium_app.command("execute")
def execute(ctx: typer.Context, proposal: int, acting: As) -> None:
    """Execute a proposal that has enough approvals and has not expired; mirrors members afterwards."""
    node = state(ctx).node()
    node.consortium.execute(node.sender_for(acting), proposal)
    info = node.consortium.get_proposal(proposal)
    if info.action == Action.ROTATE_KEY:  # the chain now knows the new account: sign with it from here on
        old, new, _ = abi_decode(["address", "address", "string"], info.data)
        node.keys.activate(to_checksum_address(new))
        node.keys.deactivate(to_checksum_address(old))
    sync_members(node)
    console.print(f"proposal {proposal}: executed")


@consortium_app.command("proposals")
def proposals(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List proposals with their approvals, expiry and state."""
    node = state(ctx).node()
    c = node.consortium
    count = int(c.contract.functions.proposalCount().call())
    rows = []
    for pid in range(1, count + 1):
        p = c.get_proposal(pid)
        rows.append({"id": pid, "action": p.action.name.lower(), "uscc": p.uscc, "proposer": p.proposer,
                     "approvals": p.approvals, "expires_at": p.expires_at, "executed": p.executed})
    if as_json:
        print_json(rows)
        return
    for r in rows:
        console.print(f"{r['id']:>4}  {r['action']:<13} {r['uscc']:<18} approvals {r['approvals']}  "
                      f"{'executed' if r['executed'] else 'open'}")
