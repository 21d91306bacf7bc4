"""The audit tamper matrix: one small history on real chains (certificates issued, revoked, suspended and
superseded; evidence registered, transferred, accepted, rejected and its case sealed; an exchange through all
four steps; e-seals made, changed and used on certificates and evidence; checkpoints on the Backbone), then
every chain-derived column of every ledger table edited in the database one at a time, each edit found by the
audit under its own finding kind.

The columns come from the ORM models: a table or column nobody classified fails the first test, so a new
column is never silently left out of the audit. Columns that are purely local are listed with the reason.
The chain is replayed once; each edit is compared against that replay (`Auditor.report`), and undone (the
old value written back) before the next. Through SQLAlchemy Core, so it runs on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Integer, LargeBinary, Table, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.schema import Column

import registry.store.audit_models  # noqa: F401  (registers the tables with Base.metadata)
import registry.store.holder_models  # noqa: F401
import registry.store.ledger_models  # noqa: F401
import registry.store.seal_models  # noqa: F401
import registry.store.usage_models  # noqa: F401
from registry.audit.replay import Auditor
from registry.certificates.service import CertificateService
from registry.evidence.service import EvidenceService
from registry.store.db import Base
from tests.support.audit import TwoChains, build_two_chains, checkpoint_all, populate, seal_history

pytestmark = pytest.mark.anvil

POLICE = "11230000MB1A00044B"  # 省公安厅: evidence role
JUSTICE = "11230000MB1A00036G"  # 省司法厅: evidence role
FORGED_USCC = "91230100MA1CXQ2T7Y"  # a well-formed USCC of no member

_DOC = "inside the document: the chain holds only its digest and the server cannot decrypt it to recompute"
_LOCAL = "local bookkeeping of this node (ids, retries, errors, times it wrote); nothing on chain says it"

# tables that hold no ledger state, and why
NOT_LEDGER_TABLES = {
    "agency_keys": "the agencies' encrypted signing keys (local secrets)",
    "agency_sm2_keys": "the agencies' encrypted SM2 signing keys (local secrets; the public keys are on chain)",
    "api_keys": "hashes of API keys (local access control)",
    "serials": "the last 流水号 handed out per agency and type (local counter)",
    "ledger_serials": "the last evidence/exchange serial per prefix (local counter)",
    "kv": "local caches and cursors",
    "audit_snapshots": "the audit's own resume point",
    "audit_reports": "the auditor's own signed reports; anchored digests are checked against the audit-reports "
                     "checkpoints (test_audit.py)",
    "certificate_blobs": "each certificate's document, encrypted under a key the server does not keep (the chain "
                         "holds only the document's digest, which a verifier checks once the QR key opens it)",
    "certificate_numbers": "keyed MACs of issued 证照编号 for idempotent issuing (local bookkeeping, nothing on chain)",
    "idempotency_keys": "the first answer to each Idempotency-Key, encrypted (local bookkeeping)",
    "note_keys": "the node's Ed25519 note keys, encrypted (local secrets)",
    "seal_ca_keys": "the seal CA's root key, encrypted (a local secret), and its certificate: published in the "
                    "operator-signed trust list, not on chain",
    "seal_pdf_certs": "each seal's PAdES key, encrypted (a local secret), and its X.509 certificate: the CA's "
                      "signature, not the chain, protects it (tests/integration/test_seal_pdf.py)",
    "holder_challenges": "single-use presentation challenges this node issued (local, short-lived)",
    "holder_requests_seen": "the replay cache of holder-signed requests (local, short-lived)",
    "grants": "holder-signed grants this node relayed: their holder signatures, not the database, protect them; "
              "GrantRegistry holds their digests (checked by every grant verification); not yet in the audit "
              "replay",
    "grant_steps": "GrantRegistry's outbox rows; their events are indexed in grant_chain_events",
    "grant_chain_events": "a copy of GrantRegistry's events (the grant index), rebuilt from the chain after a reset",
    "agency_exchange_keys": "the hosted agencies' exchange keys, encrypted (local secrets); published signed by "
                            "the agency's ledger key",
    "checkpoint_notes": "C2SP signed notes as cosigned; their signatures, not the chain, protect them (checked by "
                        "any verifier of /logs/<ledger>/checkpoint, test_c2sp_*.py)",
}

# columns of ledger tables that are not chain-derived, and why
LOCAL_COLUMNS = {
    "members": {"name_en": "from the seeds file, not on chain", "short_name": "from the seeds file, not on chain",
                "region": "from the seeds file, not on chain", "updated_at": _LOCAL},
    "batches": {"id": _LOCAL, "attempts": _LOCAL, "error": _LOCAL, "created_at": _LOCAL, "anchored_at": _LOCAL},
    "certificates": {"identifier": _DOC, "type_code": _DOC, "serial": _DOC, "version": _DOC,
                     "valid_from": _DOC,
                     "valid_until": _DOC,
                     "created_at": _LOCAL, "issued_at": _LOCAL,
                     "status_change_id": "the local status-change row the status reflects (compare-and-set order)",
                     "holder_key_digest": _DOC + " (the holderKeyDigest field of a bound certificate)"},
    "status_changes": {"id": _LOCAL, "attempts": _LOCAL, "error": _LOCAL, "created_at": _LOCAL, "done_at": _LOCAL},
    "evidence_cases": {"scenario": "the case's label; records carry their scenario inside metaDigest",
                       "created_at": _LOCAL},
    "evidence_records": {"created_at": _LOCAL},
    "evidence_events": {"id": _LOCAL, "attempts": _LOCAL, "error": _LOCAL, "created_at": _LOCAL, "done_at": _LOCAL},
    "exchanges": {"payload_sm3": "only the payload's SHA-256 is on chain", "created_at": _LOCAL,
                  "updated_at": _LOCAL},
    "exchange_steps": {"id": _LOCAL, "attempts": _LOCAL, "error": _LOCAL, "created_at": _LOCAL, "done_at": _LOCAL},
    "checkpoint_records": {"created_at": _LOCAL},
    "seals": {"key_blob": "the seal's private key, encrypted (a local secret: its public key's digest is on chain)",
              "created_at": _LOCAL},
    "seal_steps": {"id": _LOCAL, "attempts": _LOCAL, "error": _LOCAL, "created_at": _LOCAL, "done_at": _LOCAL},
    "seal_maker_keys": {"key_blob": "the seal maker's private key, encrypted (a local secret)", "created_at": _LOCAL},
    "seal_chain_events": {"id": _LOCAL},
    "sealed_signatures": {"id": _LOCAL, "created_at": _LOCAL + " (the signing time is inside the signature)"},
    "usages": {"id": _LOCAL, "attempts": _LOCAL, "error": _LOCAL, "created_at": _LOCAL, "done_at": _LOCAL,
               "certificate_id": "the certificate's identifier when it was issued here (the chain has its digest)"},
}

_ANCHOR = {c: "anchor_mismatch" for c in ("account", "tx_hash", "raw_tx", "block_number", "block_hash",
                                           "block_timestamp")}
_STEP = {"state": "step_mismatch", **_ANCHOR}
_META = {c: "digest_mismatch" for c in ("id", "scenario", "type_code", "authority", "legal_basis", "collector_bid",
                                         "operator_id", "sha256", "sm3", "size", "media_type", "filename",
                                         "description", "acquisition", "timestamp_token", "correction_reason",
                                         "salt", "meta_digest")}

# every chain-derived column: the finding kind that must name its edit
EXPECTED: dict[str, dict[str, str]] = {
    "members": {"uscc": "chain_record_not_in_db", "name": "member_mismatch", "bid": "member_mismatch",
                "roles": "member_mismatch", "status": "member_mismatch", "accounts": "member_mismatch",
                "admitted_block": "member_mismatch"},
    "batches": {"ledger": "status_mismatch", "state": "status_mismatch", "issuer_uscc": "issuer_mismatch",
                "root": "db_record_not_on_chain", "size": "anchor_mismatch", "tx_hash": "anchor_mismatch",
                "block_number": "anchor_mismatch", "block_hash": "anchor_mismatch", "block_timestamp": "anchor_mismatch",
                "issuer_account": "anchor_mismatch", "gas_used": "anchor_mismatch",
                "raw_tx": "anchor_mismatch", "root_sm3": "anchor_mismatch"},
    "certificates": {"issuer_uscc": "issuer_mismatch", "digest_sha256": "digest_mismatch", "status": "status_mismatch",
                     "reason": "status_mismatch", "superseded_by": "supersession_mismatch",
                     "supersedes": "supersession_mismatch", "batch_id": "db_row_missing",
                     "leaf_index": "digest_mismatch", "proof": "proof_mismatch",
                     "digest_sm3": "digest_mismatch", "proof_sm3": "proof_mismatch"},
    "status_changes": {"identifier": "step_mismatch", "action": "step_mismatch", "reason": "step_mismatch",
                       "new_identifier": "step_mismatch", "actor_uscc": "step_mismatch", "state": "step_mismatch",
                       "tx_hash": "anchor_mismatch", "block_number": "anchor_mismatch",
                       "block_hash": "anchor_mismatch", "block_timestamp": "anchor_mismatch",
                       "account": "anchor_mismatch", "raw_tx": "anchor_mismatch"},
    "evidence_cases": {"case_key": "digest_mismatch", "case_no": "digest_mismatch", "owner_uscc": "case_mismatch",
                       "sealed": "case_mismatch", "sealed_block": "case_mismatch", "sealed_timestamp": "case_mismatch"},
    "evidence_records": {**_META, "key": "db_record_not_on_chain", "case_key": "case_mismatch",
                         "collector_uscc": "custody_mismatch", "status": "status_mismatch",
                         "custodian_uscc": "custody_mismatch", "pending_to": "custody_mismatch",
                         "supersedes": "supersession_mismatch", "superseded_by": "supersession_mismatch"},
    "evidence_events": {**_STEP, "kind": "step_mismatch", "record_id": "step_mismatch", "case_key": "step_mismatch",
                        "actor_uscc": "step_mismatch", "to_uscc": "step_mismatch", "purpose": "step_mismatch",
                        "purpose_digest": "step_mismatch", "digest_rechecked": "step_mismatch"},
    "exchanges": {"id": "digest_mismatch", "key": "db_record_not_on_chain", "consumer_uscc": "exchange_mismatch",
                  "provider_uscc": "exchange_mismatch", "item_code": "exchange_mismatch", "purpose": "digest_mismatch",
                  "legal_basis": "digest_mismatch", "operator_id": "digest_mismatch", "salt": "digest_mismatch",
                  "purpose_digest": "digest_mismatch", "status": "status_mismatch", "reason": "exchange_mismatch",
                  "payload_sha256": "exchange_mismatch", "size": "exchange_mismatch", "records": "exchange_mismatch",
                  "received_sha256": "exchange_mismatch"},
    "exchange_steps": {**_STEP, "exchange_id": "step_mismatch", "kind": "step_mismatch", "actor_uscc": "step_mismatch",
                       "params": "step_mismatch"},
    "seals": {"id": "seal_mismatch", "key": "seal_mismatch", "image": "seal_image_mismatch",
              **{c: "seal_mismatch" for c in ("agency_uscc", "name", "category", "image_type", "image_digest",
                                              "key_algorithm", "public_key", "key_digest", "seseal", "seal_info_digest",
                                              "valid_from", "valid_until", "status")}},
    "seal_steps": {**_STEP, "seal_id": "step_mismatch", "kind": "step_mismatch", "actor_uscc": "step_mismatch",
                   "params": "step_mismatch"},
    "seal_maker_keys": {c: "seal_mismatch" for c in ("key_digest", "uscc", "algorithm", "public_key")},
    "seal_chain_events": {c: "seal_index_mismatch" for c in ("tx_hash", "log_index", "name", "seal_key", "agency_uscc",
                                                             "args", "block_number", "block_hash", "block_timestamp")},
    "sealed_signatures": {c: "sealed_signature_invalid" for c in ("record_kind", "record_id", "seal_id", "format",
                                                                  "signature", "digest_sha256", "digest_sm3")},
    "usages": {**_ANCHOR, "state": "step_mismatch", "ref": "digest_mismatch", "key": "db_record_not_on_chain",
               "agency_uscc": "usage_mismatch", "certificate_doc": "usage_mismatch", "channel": "digest_mismatch",
               "grant_digest": "usage_mismatch", "grant": "usage_grant_invalid",
               "presentation_digest": "usage_mismatch", "presentation": "usage_presentation_invalid",
               "holder_key_id": "usage_grant_invalid", "purpose": "digest_mismatch", "operator_id": "digest_mismatch",
               "salt": "digest_mismatch", "purpose_digest": "usage_mismatch", "status": "status_mismatch"},
    "checkpoint_records": {"hash": "db_record_not_on_chain", "signer": "checkpoint_signature_invalid",
                           "signer_uscc": "checkpoint_signature_invalid", "signature": "checkpoint_signature_invalid",
                           **{c: "checkpoint_record_mismatch" for c in (
                               "subchain_id", "ledger", "index", "tree_size", "root", "prev_hash", "from_block",
                               "to_block", "to_block_hash", "main_chain_id", "tx_hash", "main_block")}},
}

# which row to edit, and to what, where the first row holding a value is not the telling one
ROW = {("certificates", "status"): "status = 'suspended'", ("status_changes", "action"): "action = 'revoke'",
       ("exchange_steps", "params"): "kind = 'deliver'", ("evidence_events", "kind"): "kind = 'accept'",
       ("evidence_records", "custodian_uscc"): f"custodian_uscc = '{JUSTICE}'"}
VALUE: dict[tuple[str, str], Any] = {
    ("certificates", "status"): "issued", ("status_changes", "action"): "suspend", ("evidence_events", "kind"): "reject",
    ("evidence_records", "custodian_uscc"): POLICE,  # the forged custodian of issue 10
    ("evidence_records", "status"): "failed", ("exchanges", "status"): "disputed", ("batches", "state"): "prepared",
    **{(t, "state"): "failed" for t in ("status_changes", "evidence_events", "exchange_steps", "seal_steps",
                                         "usages")},
    # DateTime columns: another valid time (a string that is no time would not load at all)
    ("seals", "valid_from"): dt.datetime(2020, 1, 1), ("seals", "valid_until"): dt.datetime(2099, 1, 1),
    ("seals", "status"): "active",  # the first seal is revoked on chain
    ("usages", "status"): "pending",
    ("sealed_signatures", "record_kind"): "evidence",  # VARCHAR(12): another kind, not a longer string
}


def _flip_hex(text: str) -> str:
    return text[:-1] + ("0" if text[-1] != "0" else "1")


def _is_hex(text: str) -> bool:
    body = text.removeprefix("0x")
    return len(body) >= 32 and all(c in "0123456789abcdefABCDEF" for c in body)


def _tamper(column: Column[Any], old: Any) -> Any:
    """A different value of the column's type."""
    if isinstance(column.type, Boolean):
        return not old
    if isinstance(column.type, Integer):  # BigInteger too
        return (old or 0) + 1
    if isinstance(column.type, LargeBinary):
        return bytes([old[0] ^ 1]) + old[1:] if old else b"\x01" * 32
    if isinstance(column.type, JSON):
        value = json.loads(old) if isinstance(old, str) else old
        if isinstance(value, list):
            return [*value, "0x" + "11" * 20]
        if isinstance(value, dict) and value:
            return {k: _tamper_scalar(v) for k, v in value.items()}
        return {"tampered": "改"}
    return _tamper_scalar(old)


def _tamper_scalar(old: Any) -> Any:
    if old is None:
        return FORGED_USCC
    if isinstance(old, bool):
        return not old
    if isinstance(old, int):
        return old + 1
    text = str(old)
    if _is_hex(text):
        return _flip_hex(text)
    if len(text) == 18 and text.isalnum() and text.isupper():  # a USCC
        return FORGED_USCC
    return text + "·改"


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoChains]:
    built = build_two_chains(tmp_path_factory.mktemp("two-chains"))
    try:
        yield built
    finally:
        built.stop()


def test_every_table_and_column_is_classified_for_the_audit() -> None:
    tables = {t.name: t for t in Base.metadata.sorted_tables}
    unknown = sorted(set(tables) - set(NOT_LEDGER_TABLES) - set(EXPECTED))
    assert not unknown, f"tables neither compared by the audit nor listed as local: {unknown}"
    for name in EXPECTED:
        columns = {c.name for c in tables[name].columns}
        derived, local = set(EXPECTED[name]), set(LOCAL_COLUMNS.get(name, {}))
        assert not derived & local, f"{name}: {sorted(derived & local)} are both chain-derived and local"
        assert columns == derived | local, (f"{name}: unclassified {sorted(columns - derived - local)}, "
                                            f"gone {sorted((derived | local) - columns)}")


def _history(node: Any) -> None:
    """populate() (usages included) plus a certificate left suspended, a rejected transfer, a sealed case, and
    e-seals: sealed certificates and evidence, a seal suspended and reinstated, another revoked (seal_history)."""
    act = populate(node)
    seal_history(node)
    certs = CertificateService(node, public_base="http://lianzheng.test")
    agency = certs.get(None, act.certificates[3]).issuer_uscc
    certs.change_status(agency, act.certificates[3], "suspend")
    evidence = EvidenceService(node)
    evidence.transfer(POLICE, act.evidence[1], JUSTICE, "移送复核")
    evidence.reject(JUSTICE, act.evidence[1], reason="材料不全")
    evidence.seal(POLICE, "黑公(哈)行罚决字〔2026〕001号")


def _pick(db: Connection, table: Table, column: str) -> tuple[dict[str, Any], Any]:
    """The primary key and value of the row to edit: the first with a value (by key), else the first."""
    where = ROW.get((table.name, column))
    key = list(table.primary_key.columns)
    q = select(*key, table.c[column]).order_by(*key)
    rows = db.execute(q.where(text(where)) if where else q).all()
    assert rows, f"the history has no {table.name} row to edit ({where or 'any'})"
    row = next((r for r in rows if r[-1] is not None), rows[0])
    return {c.name: v for c, v in zip(key, row[:-1], strict=True)}, row[-1]


@contextmanager
def _tampering(engine: Engine) -> Iterator[Connection]:
    """A unit of work that may break foreign keys, as a tamperer editing the database can: SQLite's
    foreign_keys pragma off, PostgreSQL's triggers (which check them) off for the session (superuser)."""
    off, on = (("PRAGMA foreign_keys=OFF", "PRAGMA foreign_keys=ON") if engine.dialect.name == "sqlite" else
               ("SET session_replication_role = replica", "SET session_replication_role = DEFAULT"))
    with engine.connect() as db:
        db.exec_driver_sql(off)  # outside a transaction: SQLite ignores the pragma inside one
        db.commit()
        try:
            yield db
            db.commit()
        finally:
            db.rollback()
            db.exec_driver_sql(on)
            db.commit()


def _set(db: Connection, table: Table, key: dict[str, Any], column: str, value: Any) -> None:
    done = db.execute(update(table).where(*(table.c[k] == v for k, v in key.items())).values({column: value}))
    assert done.rowcount == 1, (table.name, key, column)


def test_every_chain_derived_column_edited_is_found_by_its_own_kind(chains: TwoChains, tmp_path: Path) -> None:
    with chains.node(tmp_path / "node") as (node, link):
        _history(node)
        checkpoint_all(node, link)
        auditor = Auditor(node, link=link)
        replayed = auditor.replay(save=False)
        baseline = auditor.report(replayed)
        assert baseline.findings == [], baseline.findings
        c = baseline.counts
        assert (c["certificates_revoked"], c["certificates_suspended"], c["certificates_superseded"]) == (1, 1, 1)

        tables = {t.name: t for t in Base.metadata.sorted_tables}
        missed, edited = [], 0
        for table, columns in EXPECTED.items():
            for column, kind in columns.items():
                t = tables[table]
                with _tampering(node.db.engine) as db:
                    key, old = _pick(db, t, column)
                    new = VALUE.get((table, column), _tamper(t.columns[column], old))
                    assert new != old, (table, column)
                    _set(db, t, key, column, new)
                edited += 1
                report = auditor.report(replayed)
                kinds = {f["kind"] for f in report.findings}
                if kind not in kinds:
                    missed.append(f"{table}.{column} ({old!r} -> {new!r}): expected {kind}, found {sorted(kinds)}")
                edited_key = {**key, column: new} if column in key else key
                with _tampering(node.db.engine) as db:  # undo: the next edit starts from the untouched history
                    _set(db, t, edited_key, column, old)
        assert auditor.report(replayed).findings == []  # every edit was undone
        assert edited == sum(len(v) for v in EXPECTED.values())
        assert not missed, "edits the audit did not report by their kind:\n" + "\n".join(missed)
