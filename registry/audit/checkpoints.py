"""Checking the Backbone's checkpoints of every ledger against the replayed ledger logs, on both chains.

For each ledger's checkpoints on the main chain: the chain of checkpoint hashes (``checkpoint_chain_broken``);
the gateway's stored signature (``checkpoint_signature_invalid``); its sub-chain block range still exists with
the same boundary hash (``subchain_blocks_lost``); its size and RFC 6962 root match the events
(``checkpoint_size_mismatch``, ``checkpoint_root_mismatch``); consecutive checkpoints are consistent (RFC 9162
§2.1.4.2, ``checkpoint_inconsistent``); no event waited longer than the deadline for a checkpoint
(``checkpoint_missing``, ``checkpoint_late``); and each checkpoint older than the deadline has its quorum of
witness cosignatures (``checkpoint_unwitnessed``).

What the auditor counts, without trusting the gateway: the Backbone's ``CheckpointCosigned`` events (the
contract accepts one per registered witness account and checkpoint), by distinct agency, and only agencies
that the replayed sub-chain shows as consortium members holding the auditor role, never the gateway's own
member: the Backbone owner registers witness accounts, but cannot make a witness agency of someone the
consortium (M-of-N governed) did not admit as an auditor. The quorum `k` is the auditor's own setting
(``witness_quorum``), not read from the gateway. The ``audit-reports`` log's checkpoints are checked against the
stored report digests, and every stored checkpoint row against the Backbone (``checkpoint_record_mismatch``).

    >>> checker = CheckpointChecker(node, link)                                        # doctest: +SKIP
    >>> checkpoints = checker.read(findings)                                           # doctest: +SKIP
    >>> checker.check(logs, state, checkpoints, head, deadline=600, now=now, findings=findings)  # doctest: +SKIP
    4
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select

from chain.backbone import ZERO32
from chain.blocks import BlockReader
from chain.contracts import Role
from registry.audit.report import Finding
from registry.audit.rules import hex0x
from registry.audit.state import ReplayState
from registry.crypto.merkle import leaf_hash, root_from_leaf_hashes, verify_consistency
from registry.logs.checkpoints import BackboneLink, Checkpoint, checkpoints_from_events, recover_signer
from registry.logs.log import AUDIT_LEDGER, LEDGERS, LedgerLogs
from registry.node import Node
from registry.store.audit_models import AuditReportRow, CheckpointRecord

# the main chain's own parent links are checked from the Backbone's deployment when that is at most this many
# blocks (a busy 星火 main chain is audited by its own operators; we check the blocks our checkpoints are in)
MAIN_LINK_CHECK_LIMIT = 50_000

Checkpoints = Mapping[str, list[Checkpoint]]


class CheckpointChecker:
    """Reads the Backbone's checkpoints of this sub-chain and checks them (see the module docstring)."""

    def __init__(self, node: Node, link: BackboneLink) -> None:
        self.node = node
        self.link = link
        self.main = BlockReader(link.backend)

    def read(self, findings: list[Finding]) -> dict[str, list[Checkpoint]]:
        """Checkpoints per ledger with their submission times (and the main chain's parent links checked)."""
        link = self.link
        main_head = self.main.head()
        check_links = not link.same_chain and main_head - link.contract.block <= MAIN_LINK_CHECK_LIMIT
        headers = self.main.header_range(link.contract.block, main_head) if check_links else {}
        if check_links:
            for n in range(link.contract.block + 1, main_head + 1):
                if n in headers and n - 1 in headers and headers[n].parent_hash != headers[n - 1].hash:
                    findings.append(Finding("block_link_broken", "backbone", str(n),
                                            f"main-chain block {n} does not link to block {n - 1}"))

        def block_time(n: int) -> int:
            if n not in headers:
                headers.update(self.main.header_range(n, n))
            return headers[n].timestamp

        return checkpoints_from_events(link.reader().events(from_block=link.contract.block), link.subchain_id, block_time)

    def check(self, logs: LedgerLogs, state: ReplayState, checkpoints: Checkpoints, head: int, *, deadline: float,
              now: float, findings: list[Finding], witness_quorum: int = 2) -> int:
        """Returns how many consistency proofs between consecutive checkpoints were verified."""
        verified = 0
        gateways = self._gateway_accounts()
        gateway_members = {state.account_member.get(a.lower()) for a in gateways} - {None}
        stored = self._stored_rows()
        known = self.node.blocks.headers(sorted({c.to_block for cps in checkpoints.values() for c in cps
                                                 if c.to_block <= head}))
        for ledger in LEDGERS:
            lg = logs.log(ledger)
            prev: Checkpoint | None = None
            prev_ok = True
            covered = 0
            for cp in sorted(checkpoints.get(ledger, []), key=lambda c: c.index):
                ref = hex0x(cp.hash)
                expected_prev = prev.hash if prev else ZERO32
                if cp.prev_hash != expected_prev or cp.index != (prev.index + 1 if prev else 0):
                    findings.append(Finding("checkpoint_chain_broken", ledger, ref,
                                            f"checkpoint #{cp.index} names previous {hex0x(cp.prev_hash)}, "
                                            f"expected {hex0x(expected_prev)}"))
                self._check_signature(cp, gateways, stored, state, findings)
                if cp.submitted_at is not None and now - cp.submitted_at > deadline:  # witnesses had their time
                    self._check_witnesses(cp, state, gateway_members, witness_quorum, findings)
                header = known.get(cp.to_block)
                ok = True
                if header is None or header.hash != hex0x(cp.to_block_hash):
                    ok = False
                    now_is = "no longer exists" if header is None else f"is now {header.hash}"
                    findings.append(Finding("subchain_blocks_lost", ledger, ref,
                                            f"checkpoint #{cp.index} covers sub-chain blocks {cp.from_block}..{cp.to_block} "
                                            f"ending in {hex0x(cp.to_block_hash)}; block {cp.to_block} {now_is} "
                                            f"(head {head}): the sub-chain was reset or rewritten"))
                else:
                    size = lg.size_at_block(cp.to_block)
                    if size != cp.tree_size:
                        ok = False
                        findings.append(Finding("checkpoint_size_mismatch", ledger, ref,
                                                f"checkpoint #{cp.index} says {cp.tree_size} events up to block {cp.to_block}; "
                                                f"the chain has {size}"))
                    elif lg.root(size) != cp.root:
                        ok = False
                        findings.append(Finding("checkpoint_root_mismatch", ledger, ref,
                                                f"checkpoint #{cp.index} root {hex0x(cp.root)} for size {size}; "
                                                f"the events give {hex0x(lg.root(size))}"))
                if ok and prev is not None and prev_ok:
                    # RFC 9162 §2.1.4.2 between the two published (size, root) pairs, proof from the replayed log
                    proof = lg.consistency_proof(prev.tree_size, cp.tree_size)
                    if verify_consistency(prev.tree_size, cp.tree_size, prev.root, cp.root, proof):
                        verified += 1
                    else:
                        findings.append(Finding("checkpoint_inconsistent", ledger, ref,
                                                f"checkpoint #{cp.index} is not consistent with #{prev.index}"))
                if ok and cp.tree_size > covered and cp.submitted_at is not None:
                    first_new = state.block_time(lg.block_of(covered))
                    if first_new is not None and cp.submitted_at - first_new > deadline:
                        findings.append(Finding("checkpoint_late", ledger, ref,
                                                f"checkpoint #{cp.index} was submitted {cp.submitted_at - first_new:.0f} s "
                                                f"after event {covered} (block {lg.block_of(covered)}); the deadline is "
                                                f"{deadline:.0f} s"))
                if ok:
                    covered = max(covered, cp.tree_size)
                prev, prev_ok = cp, ok
            if lg.size > covered:
                t = state.block_time(lg.block_of(covered))
                if t is not None and now - t > deadline:
                    findings.append(Finding("checkpoint_missing", ledger, str(covered),
                                            f"{lg.size - covered} events from block {lg.block_of(covered)} on "
                                            f"({now - t:.0f} s ago) are not covered by any checkpoint; "
                                            f"the deadline is {deadline:.0f} s"))
        return verified

    def check_audit_log(self, checkpoints: Sequence[Checkpoint], findings: list[Finding]) -> None:
        """The audit-reports log's checkpoints against the digests of the anchored reports."""
        if not checkpoints:
            return
        with self.node.db.session() as s:
            digests = list(s.scalars(select(AuditReportRow.digest).where(AuditReportRow.log_index.is_not(None))
                                     .order_by(AuditReportRow.log_index)))
        leaves = [leaf_hash(bytes.fromhex(d[2:])) for d in digests]
        for cp in checkpoints:
            if cp.tree_size <= len(leaves) and root_from_leaf_hashes(leaves[:cp.tree_size]) != cp.root:
                findings.append(Finding("checkpoint_root_mismatch", AUDIT_LEDGER, hex0x(cp.hash),
                                        f"audit-report checkpoint #{cp.index} does not match the stored report digests"))

    def compare_records(self, checkpoints: Checkpoints, findings: list[Finding]) -> int:
        """Every stored checkpoint row against the Backbone's checkpoint of that hash."""
        by_hash = {hex0x(c.hash): c for cps in checkpoints.values() for c in cps}
        rows = self._stored_rows()
        subchain = hex0x(self.link.subchain_id)
        for ref, row in rows.items():
            cp = by_hash.get(ref)
            if cp is None:
                findings.append(Finding("db_record_not_on_chain", row.ledger, ref,
                                        f"the database holds checkpoint #{row.index} of {row.ledger} submitted in tx "
                                        f"{row.tx_hash}; the Backbone has no checkpoint with this hash"))
                continue
            mirrored = (("subchain_id", row.subchain_id, subchain), ("ledger", row.ledger, cp.ledger),
                        ("index", row.index, cp.index), ("tree_size", row.tree_size, cp.tree_size),
                        ("root", row.root, hex0x(cp.root)), ("prev_hash", row.prev_hash, hex0x(cp.prev_hash)),
                        ("from_block", row.from_block, cp.from_block), ("to_block", row.to_block, cp.to_block),
                        ("to_block_hash", row.to_block_hash, hex0x(cp.to_block_hash)),
                        ("main_chain_id", row.main_chain_id, self.link.chain_id),
                        ("tx_hash", (row.tx_hash or "").lower(), cp.main_tx.lower()),
                        ("main_block", row.main_block, cp.main_block))
            diffs = [f"{what} {mine!r} (Backbone: {theirs!r})" for what, mine, theirs in mirrored if mine != theirs]
            if diffs:
                findings.append(Finding("checkpoint_record_mismatch", row.ledger, ref,
                                        f"the stored checkpoint differs from the Backbone in: {', '.join(diffs)}"))
        return len(rows)

    # -- helpers -------------------------------------------------------------------------------------------
    def _gateway_accounts(self) -> set[str]:
        accounts = set()
        for e in self.link.reader().events(from_block=self.link.contract.block):
            if e.name in ("SubchainRegistered", "GatewaySet") and e.args["subchainId"] == self.link.subchain_id:
                accounts.add(e.args["gateway"])
        return accounts

    def _stored_rows(self) -> dict[str, CheckpointRecord]:
        with self.node.db.session() as s:
            return {r.hash: r for r in s.scalars(select(CheckpointRecord))}

    @staticmethod
    def _check_witnesses(cp: Checkpoint, state: ReplayState, gateway_members: set[str | None], quorum: int,
                         findings: list[Finding]) -> None:
        counted, ignored = set(), set()
        for _account, uscc in cp.cosigners:
            member = state.members.get(uscc)
            if member is not None and member.roles & Role.AUDITOR and uscc not in gateway_members:
                counted.add(uscc)
            else:
                ignored.add(uscc)
        if len(counted) >= quorum:
            return
        names = ", ".join(f"{state.members[u].name} {u}" for u in sorted(counted)) or "none"
        extra = f"; not counted (not an auditor member, or the gateway's own): {', '.join(sorted(ignored))}" \
            if ignored else ""
        findings.append(Finding("checkpoint_unwitnessed", cp.ledger, hex0x(cp.hash),
                                f"checkpoint #{cp.index} has {len(counted)} witness cosignatures on the Backbone "
                                f"({names}){extra}; the quorum is {quorum}"))

    @staticmethod
    def _check_signature(cp: Checkpoint, gateways: set[str], stored: Mapping[str, CheckpointRecord],
                         state: ReplayState, findings: list[Finding]) -> None:
        row = stored.get(hex0x(cp.hash))
        if row is None:
            return  # submitted by another gateway process: its signature lives there
        uscc = state.account_member.get(row.signer.lower())
        if recover_signer(cp.hash, row.signature) not in gateways or row.signer not in gateways:
            findings.append(Finding("checkpoint_signature_invalid", cp.ledger, hex0x(cp.hash),
                                    f"the stored signature of checkpoint #{cp.index} was not made by the sub-chain's gateway"))
        elif uscc is not None and uscc != row.signer_uscc:
            findings.append(Finding("checkpoint_signature_invalid", cp.ledger, hex0x(cp.hash),
                                    f"checkpoint #{cp.index} was signed by {row.signer} of member {uscc}; "
                                    f"the database names {row.signer_uscc}"))


__all__ = ["MAIN_LINK_CHECK_LIMIT", "CheckpointChecker", "Checkpoints"]
