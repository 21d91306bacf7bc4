"""The consortium: deploying the contracts once, admitting the seed agencies through M-of-N proposals,
mirroring members into the database, and identifier resolution (多标识融合: BID <-> USCC <-> account).

    >>> bootstrap(node)                       # deploy if needed, admit seeds, mirror    # doctest: +SKIP
    >>> resolve(node, "did:bid:sf...")        # -> the member, its USCC and accounts    # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from chain.contracts import Action, ConsortiumClient, MemberInfo, MemberStatus, Role
from chain.deploy import Deployment, deploy_contracts
from chain.errors import ContractRevertError, DeploymentError
from registry.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from registry.identifiers import classify_identifier, validate_account, validate_uscc
from registry.node import Node
from registry.store.db import Member

log = structlog.get_logger(__name__)

DEV_FUNDS = 10**21  # devnets only; production chains run with gas price 0


@dataclass(frozen=True)
class ExternalAgency:
    """A seed agency hosted on a node of its own: the platform admits it with the account and BID its node
    generated (`lianzheng node init` prints them) and never holds its key."""

    uscc: str
    account: str
    bid: str
    sm2_key: bytes = b""  # its SM2 public key (x || y), registered with it on chain


MAX_EXTERNAL_FILE = 1024 * 1024


def parse_sm2_public_key(text: object, what: str, *, code: str = "invalid_sm2_key") -> bytes:
    """An SM2 public key as `node init` prints it (128 hex digits, x || y), or b"" for an empty string."""
    try:
        key = bytes.fromhex(text) if isinstance(text, str) else None
    except ValueError:
        key = None
    if key is None or (key and len(key) != 64):
        raise ValidationError(f"{what} must be 128 hex digits (x || y), as `node init` prints it", code=code)
    return key


def load_external_agencies(path: Path) -> dict[str, ExternalAgency]:
    """Read agencies hosted elsewhere from a JSON file: `node init --json` output(s) — an object with an
    ``agencies`` list, or a list of such objects or of ``{"uscc", "account", "bid"}`` entries."""
    if path.stat().st_size > MAX_EXTERNAL_FILE:
        raise ValidationError(f"{path} is larger than {MAX_EXTERNAL_FILE} bytes", code="external_agencies_too_large")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"{path} is not JSON: {exc}", code="invalid_external_agencies") from None
    items = data if isinstance(data, list) else [data]
    entries: list[object] = []
    for item in items:
        entries.extend(item["agencies"] if isinstance(item, dict) and isinstance(item.get("agencies"), list)
                       else [item])
    out: dict[str, ExternalAgency] = {}
    for e in entries:
        if not isinstance(e, dict) or not all(isinstance(e.get(k), str) for k in ("uscc", "account", "bid")):
            raise ValidationError(f"{path}: each agency needs uscc, account and bid strings, got {str(e)[:120]}",
                                  code="invalid_external_agencies")
        uscc = validate_uscc(e["uscc"])
        sm2 = parse_sm2_public_key(e.get("sm2_key", ""), f"{path}: sm2_key of {uscc}",
                                   code="invalid_external_agencies")
        out[uscc] = ExternalAgency(uscc, validate_account(e["account"]), e["bid"], sm2)
    return out


def ensure_keys(node: Node, external: Mapping[str, ExternalAgency] | None = None) -> None:
    """Every seed agency hosted here gets a signing key (encrypted at rest) the first time; agencies hosted on
    nodes of their own (`external`) never do."""
    for m in node.seeds.members:
        if m.uscc not in (external or {}) and not node.keys.has_signing_key(m.uscc):
            node.keys.create_signing_key(m.uscc)


def member_bid(node: Node, uscc: str) -> str:
    return node.keys.bid(uscc)


def member_sm2_key(node: Node, uscc: str) -> bytes:
    """The agency's SM2 public key (64 bytes) for its admission, or empty if this node holds none for it."""
    return node.keys.sm2_public_key(uscc) if node.keys.has_sm2_key(uscc) else b""


def _fund(node: Node, address: str) -> None:
    fund = getattr(node.backend, "fund", None)
    if fund is None:
        return
    try:
        if node.blocks.balance(address) < DEV_FUNDS // 10:
            fund(address, DEV_FUNDS)
    except Exception as exc:  # an external chain without anvil_setBalance: accounts are funded by the operator
        log.info("cannot fund account (not a devnet?)", account=address, error=str(exc))


def ensure_deployment(node: Node, *, on_step: Callable[[str], None] | None = None,
                      external: Mapping[str, ExternalAgency] | None = None) -> Deployment:
    """Deploy all contracts unless deployment.json describes a live deployment on this chain."""
    external = external or {}
    ensure_keys(node, external)
    if node.deployment is not None:
        try:
            node.deployment.check(node.backend)
            return node.deployment
        except DeploymentError as exc:
            log.warning("deployment is stale; redeploying", reason=str(exc))
            node.deployment = None
    for m in node.seeds.members:
        _fund(node, external[m.uscc].account if m.uscc in external else node.keys.signing_account(m.uscc).address)
    genesis = node.seeds.genesis
    sender = node.sender_for(genesis.uscc)
    sender.reset_nonce()
    roles = int(Role.from_names(genesis.roles))
    plan = [
        ("ConsortiumRegistry", lambda d: [_b32(genesis.uscc), genesis.name, member_bid(node, genesis.uscc),
                                          [sender.address], roles, member_sm2_key(node, genesis.uscc),
                                          node.seeds.threshold,
                                          node.seeds.proposal_ttl_seconds]),
        ("CertificateLedger", lambda d: [d["ConsortiumRegistry"].address]),
        ("EvidenceLedger", lambda d: [d["ConsortiumRegistry"].address]),
        ("ExchangeLedger", lambda d: [d["ConsortiumRegistry"].address]),
        ("Backbone", lambda d: [member_bid(node, genesis.uscc)]),
        ("SealRegistry", lambda d: [d["ConsortiumRegistry"].address, _b32(genesis.uscc)]),
        ("GrantRegistry", lambda d: [d["ConsortiumRegistry"].address]),
        ("UsageLedger", lambda d: [d["ConsortiumRegistry"].address, d["GrantRegistry"].address]),
    ]
    if on_step:
        on_step("deploying contracts")
    deployment = deploy_contracts(sender, plan)
    deployment.save(node.deployment_file)
    node.deployment = deployment
    node._clients.clear()
    return deployment


def open_admissions(node: Node) -> dict[tuple[str, bytes], int]:
    """Pending (unexecuted, unexpired) ADMIT proposals by (USCC, admission data)."""
    consortium = node.consortium
    head = node.blocks.header(node.blocks.head())
    now = head.timestamp if head is not None else 0
    out = {}
    for pid in range(1, consortium.proposal_count() + 1):
        p = consortium.get_proposal(pid)
        if p.action == Action.ADMIT and not p.executed and p.expires_at > now:
            out[(p.uscc, p.data)] = pid
    return out


def _b32(uscc: str) -> bytes:
    return uscc.encode().ljust(32, b"\0")


def admit_seed_members(node: Node, *, on_step: Callable[[str], None] | None = None,
                       external: Mapping[str, ExternalAgency] | None = None) -> list[str]:
    """Admit every seed member not yet on chain, admins first (those hosted here before those hosted elsewhere),
    each through an ADMIT proposal approved by the admins hosted here. An agency in `external` is admitted with
    the account and BID its own node generated. When the admins hosted here cannot reach `requiredApprovals()`,
    the proposal is left pending for the other admins to approve from their own nodes
    (`lianzheng consortium approve`), and a later run executes it. Returns the USCCs admitted now."""
    consortium = node.consortium
    external = external or {}
    admitted: list[str] = []
    ordered = sorted(node.seeds.members, key=lambda m: (not m.genesis, "admin" not in m.roles, m.uscc in external))
    hosted_admins = [a.uscc for a in ordered if "admin" in a.roles and a.uscc not in external]
    open_proposals = open_admissions(node)
    # who is on chain, asked once per member (one call each) and kept up to date with what this run admits;
    # a hosted admin not on chain yet is asked again before each admission (another node may execute its
    # pending admission meanwhile)
    on_chain = {m.uscc for m in ordered if consortium.member_status(m.uscc) is not MemberStatus.NONE}
    for m in ordered:
        if m.uscc in on_chain:
            continue
        if m.uscc in external:
            account, bid, sm2 = external[m.uscc].account, external[m.uscc].bid, external[m.uscc].sm2_key
        else:
            account, bid = node.keys.signing_account(m.uscc).address, member_bid(node, m.uscc)
            sm2 = member_sm2_key(node, m.uscc)
        data = ConsortiumClient.admit_data(m.name, bid, [account], Role.from_names(m.roles), sm2)
        on_chain.update(u for u in hosted_admins
                        if u not in on_chain and consortium.member_status(u) is not MemberStatus.NONE)
        admins = [u for u in hosted_admins if u in on_chain]
        if not admins:
            raise ConflictError("no admin member hosted here is on chain to admit others", code="no_admin")
        proposal = open_proposals.get((m.uscc, data))
        if proposal is None:
            proposal = consortium.propose(node.sender_for(admins[0]), Action.ADMIT, m.uscc, data)
        need = consortium.required_approvals()
        approvals = consortium.get_proposal(proposal).approvals
        for admin in admins:
            if approvals >= need:
                break
            if not consortium.has_approved(proposal, admin):
                consortium.approve(node.sender_for(admin), proposal)
                approvals += 1
        if approvals < need:
            if on_step:
                on_step(f"proposal {proposal} (admit {m.name}) awaits approvals from admins on their own nodes")
            continue
        consortium.execute(node.sender_for(admins[0]), proposal)
        on_chain.add(m.uscc)
        admitted.append(m.uscc)
        if on_step:
            on_step(f"admitted {m.name}")
    for m in node.seeds.members:
        if m.uscc in external:
            continue  # only the agency itself may name its delegates, from its own node
        for delegate in m.revoker_delegates:
            if m.uscc not in on_chain or delegate not in on_chain:
                continue  # its admission (or the delegate's) awaits approvals from other nodes: a later run
            if not consortium.contract.functions.isRevokerDelegate(_b32(m.uscc), _b32(delegate)).call():
                consortium.set_revoker_delegate(node.sender_for(m.uscc), delegate, True)
    sync_members(node)
    return admitted


def bootstrap(node: Node, *, on_step: Callable[[str], None] | None = None,
              external: Mapping[str, ExternalAgency] | None = None) -> Deployment:
    deployment = ensure_deployment(node, on_step=on_step, external=external)
    admit_seed_members(node, on_step=on_step, external=external)
    return deployment


def sync_members(node: Node) -> list[MemberInfo]:
    """Mirror on-chain members into the database (the chain is authoritative).

    The API process's inbox mirrors them after membership events, and so does the command that made the change,
    each in its own process. When the other one inserts a member between this one's read and its write, the
    write fails on the member's keys (IntegrityError); the mirror is then made again, and it updates the row
    the other one wrote with the same values from the chain."""
    infos = node.consortium.members()
    try:
        _mirror(node, infos)
    except IntegrityError:  # a concurrent mirror inserted a member first: read again, update it
        _mirror(node, infos)
    return infos


def _mirror(node: Node, infos: list[MemberInfo]) -> None:
    seeds = {m.uscc: m for m in node.seeds.members}
    with node.db.session() as s:
        for info in infos:
            row = s.get(Member, info.uscc) or Member(uscc=info.uscc)
            seed = seeds.get(info.uscc)
            row.name = info.name
            row.bid = info.bid
            row.roles = int(info.roles)
            row.status = int(info.status)
            row.accounts = list(info.accounts)
            row.admitted_block = info.admitted_block
            if seed is not None:
                row.name_en, row.short_name, row.region = seed.name_en, seed.short_name, seed.region
            s.merge(row)


@dataclass(frozen=True)
class MemberView:
    uscc: str
    name: str
    name_en: str
    short_name: str
    region: str
    bid: str
    roles: list[str]
    status: str
    accounts: list[str]

    @classmethod
    def from_row(cls, row: Member) -> MemberView:
        return cls(row.uscc, row.name, row.name_en, row.short_name, row.region, row.bid,
                   Role(row.roles).names(), MemberStatus(row.status).name.lower(), list(row.accounts))


def list_members(node: Node) -> list[MemberView]:
    with node.db.session() as s:
        return [MemberView.from_row(r) for r in s.scalars(select(Member).order_by(Member.uscc))]


def resolve(node: Node, text: str) -> tuple[str, MemberView]:
    """Resolve a BID, USCC or account address to the member (多标识融合). Returns (kind, member)."""
    kind, value = classify_identifier(text)
    with node.db.session() as s:
        if kind == "uscc":
            row = s.get(Member, value)
        elif kind == "bid":
            row = s.scalars(select(Member).where(Member.bid == value)).first()
        elif kind == "address":
            uscc = node.consortium.member_of(value)
            row = s.get(Member, uscc) if uscc else None
        else:
            raise ValidationError(f"{text!r} is a certificate identifier, not a member identifier",
                                  code="invalid_identifier")
        if row is None:
            raise NotFoundError(f"no consortium member has the {kind} {value}", code="unknown_identifier")
        return kind, MemberView.from_row(row)


def translate_revert(exc: ContractRevertError) -> Exception:
    """Contract refusals as domain errors (the chain enforces the same rules as the API)."""
    if exc.name.endswith(("Unauthorized", "NotIssuer", "NotCustodian", "NotRecipient", "NotParty", "NotCaseOwner",
                          "NotGateway", "NotWitness")):
        return PermissionDeniedError(f"the contract refused: {exc}", code="contract_forbidden",
                                     details={"error": exc.name})
    if exc.name.endswith(("NotFound", "Unknown", "UnknownRoot", "UnknownDocument", "UnknownRecord")):
        return NotFoundError(f"the contract does not know it: {exc}", code="contract_not_found",
                             details={"error": exc.name})
    return ConflictError(f"the contract refused: {exc}", code="contract_conflict", details={"error": exc.name})
