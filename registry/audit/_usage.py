"""The usage ledger's table against the chain: usages (用证记录).

Each usage row: its key is SHA-256 of its identifier (``digest_mismatch``); once done, the UsageRecorded event in its
transaction (``step_mismatch``, ``anchor_mismatch``) with the same agency, document digest, grant digest, presentation
digest and purposeDigest (``usage_mismatch``); its status says recorded exactly when it is on chain
(``status_mismatch``). A usage recorded here under a grant keeps the holder-signed grant: it must still verify and
be the grant the chain names, for this certificate and this agency (``usage_grant_invalid``); a usage recorded here
after an in-person presentation keeps the signed presentation, whose digest is the one on chain and whose signature
verifies (``usage_presentation_invalid``); the holder key the row names is the grant's or the presentation's
(``usage_mismatch``).

Every usage on chain under a grant is also judged against GrantRegistry's own events (read from the chain, not the
database): the grant was anchored before the usage's block, not revoked before it, for this certificate, naming this
agency, and the usage's block time lies in [notBefore, expiresAt) (``usage_without_valid_grant``). The contract
refuses such a usage; the audit still finds one that got through (a bypassed or faulty contract).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from chain.artifacts import load_artifact
from chain.logs import EventDecoder
from chain.usage import agency_grantee_digest
from registry.audit._context import DONE, OPEN, Anchor, CompareContext, opt_hex
from registry.audit.state import UsageState
from registry.crypto.hashing import hex0x, sha256_key
from registry.outbox.inbox import is_mirrored_id
from registry.store.usage_models import UsageRecord
from registry.usage.consent import grant_problem, presentation_problem

LEDGER = "usage"


def compare_usages(ctx: CompareContext) -> int:
    """Returns how many usage rows were compared."""
    with ctx.node.db.session() as s:
        rows = list(s.scalars(select(UsageRecord).order_by(UsageRecord.id)))
        s.expunge_all()
    ctx.receipts([u.tx_hash for u in rows if u.account and u.state == DONE])
    for u in rows:
        mirrored = is_mirrored_id(u.ref)
        if not mirrored and u.key != hex0x(sha256_key(u.ref)):
            ctx.add("digest_mismatch", LEDGER, u.ref, f"the usage's key {u.key} is not SHA-256 of its identifier")
        if u.grant is not None:
            problem = grant_problem(u.grant, u.agency_uscc, u.certificate_doc, u.grant_digest, u.holder_key_id)
            if problem:
                ctx.add("usage_grant_invalid", LEDGER, u.ref, f"the usage's grant does not hold: {problem}")
        if u.presentation is not None:
            problem = presentation_problem(u.presentation, u.certificate_doc, u.presentation_digest, u.holder_key_id)
            if problem:
                ctx.add("usage_presentation_invalid", LEDGER, u.ref, f"the usage's presentation does not hold: {problem}")
        chain = ctx.state.usages.get(u.key)
        if u.state in OPEN:
            continue
        recorded = u.status == "recorded"
        if recorded != (chain is not None and u.state == DONE):
            ctx.add("status_mismatch", LEDGER, u.ref, f"the database says {u.status} ({u.state}); the chain "
                                                      f"{'has' if chain is not None else 'has no'} usage {u.key}")
        anchor = Anchor(u.state, u.tx_hash, u.block_number, u.block_hash, u.block_timestamp, u.account, u.raw_tx)
        event = ctx.check_step(LEDGER, u.ref, "the usage", anchor, {"UsageRecorded"}, u.key)
        if event is None:
            continue
        a = event.args
        ctx.differs("usage_mismatch", LEDGER, u.ref, "usage", [
            ("agency", u.agency_uscc, a["agencyUscc"]), ("certificate", u.certificate_doc, a["certificateDoc"]),
            ("grant digest", opt_hex(u.grant_digest) or _ZERO, a["grantDigest"]),
            ("presentation digest", opt_hex(u.presentation_digest) or _ZERO, a["presentationDigest"]),
            ("purpose digest", u.purpose_digest, a["purposeDigest"])])
    return len(rows) + _check_chain_grants(ctx)


_ZERO = "0x" + "00" * 32


@dataclass(frozen=True, slots=True)
class _ChainGrant:
    anchored_block: int
    certificate_doc: str
    grantee_digest: str
    not_before: int
    expires_at: int
    revoked_block: int | None = None


def _chain_grants(ctx: CompareContext) -> dict[str, _ChainGrant]:
    """Every grant as GrantRegistry's events tell it (anchors and revocations), by 0x digest."""
    deployment = ctx.node.require_deployment()
    if "GrantRegistry" not in deployment.contracts:
        return {}
    address = deployment.address("GrantRegistry")
    decoder = EventDecoder({address: load_artifact("GrantRegistry").abi})
    events = sorted((e for e in map(decoder.decode, ctx.node.blocks.logs(address, topics=[],
                                                                          from_block=deployment.first_block))
                     if e is not None), key=lambda e: e.position)
    grants: dict[str, _ChainGrant] = {}
    for e in events:
        digest = hex0x(e.args["grantDigest"])
        if e.name == "GrantAnchored" and digest not in grants:
            a = e.args
            grants[digest] = _ChainGrant(e.block_number, hex0x(a["certificateDoc"]), hex0x(a["granteeDigest"]),
                                         int(a["notBefore"]), int(a["expiresAt"]))
        elif e.name == "GrantRevoked" and digest in grants and grants[digest].revoked_block is None:
            g = grants[digest]
            grants[digest] = _ChainGrant(g.anchored_block, g.certificate_doc, g.grantee_digest, g.not_before,
                                         g.expires_at, e.block_number)
    return grants


def _grant_fault(u: UsageState, g: _ChainGrant | None, time: int | None) -> str | None:
    if g is None:
        return "GrantRegistry never anchored it"
    if g.anchored_block > u.block:
        return f"it was anchored in block {g.anchored_block}, after the usage"
    if g.revoked_block is not None and g.revoked_block < u.block:
        return f"it was revoked in block {g.revoked_block}, before the usage"
    if g.certificate_doc != u.certificate_doc:
        return f"it is for certificate {g.certificate_doc}, not {u.certificate_doc}"
    if g.grantee_digest != hex0x(agency_grantee_digest(u.agency)):
        return f"it does not name {u.agency} as its grantee"
    if time is not None and not g.not_before <= time < g.expires_at:
        return f"the usage's block time {time} is outside its window [{g.not_before}, {g.expires_at})"
    return None


def _check_chain_grants(ctx: CompareContext) -> int:
    """Judge every replayed usage under a grant by GrantRegistry's events; returns how many were judged."""
    under_grant = [(key, u) for key, u in ctx.state.usages.items() if u.grant_digest]
    if not under_grant:
        return 0
    grants = _chain_grants(ctx)
    for key, u in under_grant:
        fault = _grant_fault(u, grants.get(u.grant_digest), ctx.state.block_time(u.block))
        if fault:
            ctx.add("usage_without_valid_grant", LEDGER, key, f"usage by {u.agency} in block {u.block} under grant "
                                                              f"{u.grant_digest}: {fault}")
    return len(under_grant)

__all__ = ["compare_usages"]
