"""The usage ledger's table against the chain: usages (用证记录).

Each usage row: its key is SHA-256 of its identifier (``digest_mismatch``); once done, the UsageRecorded event in its
transaction (``step_mismatch``, ``anchor_mismatch``) with the same agency, document digest, grant digest, presentation
digest and purposeDigest (``usage_mismatch``); its status says recorded exactly when it is on chain
(``status_mismatch``). A usage recorded here under a grant keeps the holder-signed grant: it must still verify and
be the grant the chain names, for this certificate and this agency (``usage_grant_invalid``) — a usage on chain
without a valid grant behind it is found here even if the contract was bypassed.
"""

from __future__ import annotations

from sqlalchemy import select

from registry.audit._context import DONE, OPEN, Anchor, CompareContext, opt_hex
from registry.crypto.hashing import hex0x, sha256_key
from registry.outbox.inbox import is_mirrored_id
from registry.store.usage_models import UsageRecord
from registry.usage.consent import grant_problem

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
            problem = grant_problem(u.grant, u.agency_uscc, u.certificate_doc, u.grant_digest)
            if problem:
                ctx.add("usage_grant_invalid", LEDGER, u.ref, f"the usage's grant does not hold: {problem}")
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
    return len(rows)


_ZERO = "0x" + "00" * 32

__all__ = ["compare_usages"]
