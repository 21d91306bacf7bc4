"""Usage-record test helpers: bound certificates issued through the API, holder-signed grants anchored on the
GrantRegistry (by the issuing agency's node, as registry/holders/service.py does), presentations over fresh
challenges, and the test-only GrantRegistry that says yes to everything (to force what UsageLedger refuses).

    cert = issue_bound(api, holder)
    grant = anchored_grant(api, holder, cert, POLICE, wrap_for=POLICE)
    api.client.post("/api/v1/usages", json={"certificate": cert.identifier, "purpose": "...", "grant": grant})
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import solcx

from api.devtools.samples import sample_values
from chain.compile import SOLC_SHIM
from chain.grants import GrantRegistryClient
from registry.formats.envelope import decode_key
from registry.holders.exchange import ExchangeKeys
from registry.holders.grants import Grant, Grantee
from registry.holders.keys import HolderKey
from registry.holders.presentation import ChallengeStore, sign_presentation
from registry.holders.service import GrantService
from registry.holders.wrapping import wrap_key
from registry.node import Node
from tests.conftest import Api

POLICE = "11230000MB1A00044B"  # 省公安厅
JUSTICE = "11230000MB1A00036G"  # 省司法厅 (auditor)
HRSS = "11230000MB1A000526"  # 省人社厅
MARKET = "11230000MB1A00028M"  # 省市场监管局
HOUR = 3600


@dataclass(frozen=True)
class Issued:
    identifier: str
    digest: str  # hex, no 0x: the document digest (CertificateLedger doc key)
    issuer: str
    type_code: str
    key: bytes  # the by-reference document key (from the QR URL's fragment)
    document: dict[str, Any]
    values: dict[str, Any]


def issue_bound(api: Api, holder: HolderKey | None, *, type_index: int = 2, seed: int = 1) -> Issued:
    """One certificate of seed type `type_index` (default: a person's 道路运输从业人员资格证), bound to `holder`'s key,
    issued and anchored through the API."""
    ct = api.node.seeds.certificate_types[type_index]
    issuer = api.node.seeds.member(ct.issuers[0])
    [values] = sample_values(ct, 1, issuer=issuer, seed=seed)
    body: dict[str, Any] = {"type": ct.code, "fields": values}
    if holder is not None:
        body["holder_key"] = holder.public.spki_b64url
    r = api.client.post("/api/v1/certificates?wait=true", json=body, headers=api.auth(issuer.uscc))
    assert r.status_code == 201, r.text
    out = r.json()
    api.services.certificates.wait_for([out["identifier"]], timeout=30)
    return Issued(out["identifier"], out["document"]["digest"]["sha256"], issuer.uscc, ct.code,
                  decode_key(out["qr_url"].split("#", 1)[1]), out["document"], values)


def chain_now(node: Node) -> int:
    header = node.blocks.header(node.blocks.head())
    assert header is not None
    return int(header.timestamp)


def make_grant(node: Node, holder: HolderKey, cert: Issued, grantee: str, *, purpose: str = "办理社会保险关系转移",
               not_before: int | None = None, expires: int | None = None, fields: list[str] | None = None,
               wrap_for: str | None = None, key: bytes | None = None) -> Grant:
    """A grant signed by `holder` letting agency `grantee` use `cert`; with `wrap_for`, the document key wrapped to
    that agency's exchange key."""
    now = chain_now(node)
    grant_id = Grant.build(certificate=cert.digest, issuer=cert.issuer, holder_key=holder.public,
                           grantee=Grantee.agency(grantee), purpose=purpose, not_before=now - HOUR,
                           expires=now + 24 * HOUR).id
    wrapped = None
    if wrap_for is not None:
        wrapped = wrap_key(key or cert.key, ExchangeKeys(node).public(wrap_for), grant_id=grant_id)
    return Grant.build(certificate=cert.digest, issuer=cert.issuer, holder_key=holder.public,
                       grantee=Grantee.agency(grantee), purpose=purpose,
                       not_before=now - HOUR if not_before is None else not_before,
                       expires=now + 24 * HOUR if expires is None else expires, fields=fields, wrapped_key=wrapped,
                       grant_id=grant_id).sign(holder)


def anchor(node: Node, grant: Grant) -> dict[str, Any]:
    """Anchor the grant on the GrantRegistry through the issuing agency's node (the holders' relay)."""
    view = GrantService(node).anchor(grant.to_json())
    deadline = time.monotonic() + 30
    while view["status"] != "active":
        assert time.monotonic() < deadline, view
        time.sleep(0.05)
        view = GrantService(node).view(grant.digest.hex())
    return view


def anchored_grant(api: Api, holder: HolderKey, cert: Issued, grantee: str, **kw: Any) -> dict[str, Any]:
    grant = make_grant(api.node, holder, cert, grantee, **kw)
    anchor(api.node, grant)
    return grant.to_json()


def presentation(node: Node, holder: HolderKey, cert: Issued, verifier: str = "窗口 3 号") -> dict[str, Any]:
    """The holder's signature over a fresh challenge this node issued (in-person presentation)."""
    return sign_presentation(holder, cert.digest, ChallengeStore(node).issue(verifier))


def record_usages(node: Node) -> list[str]:
    """A bound certificate issued and used twice, through the services (no API): under a grant to 省公安厅 and
    after an in-person presentation to 省人社厅 (the audit tamper matrix's history). Returns the usage ids."""
    from registry.certificates.anchoring import BatchAnchoring
    from registry.certificates.service import CertificateService
    from registry.outbox.worker import OutboxWorker
    from registry.store.db import Certificate
    from registry.usage.service import UsageService, UsageSubmission

    holder = HolderKey.generate()
    ct = node.seeds.certificate_types[2]
    issuer = node.seeds.member(ct.issuers[0])
    worker = OutboxWorker([BatchAnchoring(node, batch_size=1000, max_age=0)])
    certificates = CertificateService(node, public_base="http://lianzheng.test", worker=worker)
    [issued] = certificates.issue_request(issuer.uscc, ct.code, sample_values(ct, 1, issuer=issuer, seed=21),
                                          holder_keys=[holder.public.spki_b64url]).certificates
    worker.flush()
    with node.db.session() as s:
        row = s.get(Certificate, issued.identifier)
        assert row is not None and row.status == "issued"
        cert = Issued(row.identifier, row.digest_sha256, row.issuer_uscc, row.type_code, b"", {}, {})
    grant = make_grant(node, holder, cert, POLICE)
    anchor(node, grant)
    usage = UsageService(node)
    return [usage.record(POLICE, UsageSubmission(cert.identifier, "核查从业资格", grant=grant.to_json(),
                                                 operator_id="HLJ-0002")).id,
            usage.record(HRSS, UsageSubmission(cert.identifier, "办理社保转移",
                                               presentation=presentation(node, holder, cert))).id]


# -- forcing what the contract refuses -------------------------------------------------------------------------

_YES_GRANTS = """// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;
/// Test only: a GrantRegistry that says every grant is active, for `doc`, naming `grantee`, forever.
contract YesGrants {
    bytes32 private immutable _doc;
    bytes32 private immutable _grantee;
    constructor(bytes32 doc, bytes32 grantee) { _doc = doc; _grantee = grantee; }
    function grantOf(bytes32) external view returns (bytes32, bytes32, uint64, uint64, uint8) {
        return (_doc, _grantee, 0, type(uint64).max, 1);
    }
}
"""


def record_without_grant(node: Node, agency: str, doc: bytes, grant_digest: bytes, usage_id: bytes,
                         purpose_digest: bytes) -> str:
    """Record a usage under a grant GrantRegistry never anchored, on the real UsageLedger: for one transaction the
    GrantRegistry's code is swapped (anvil_setCode) for YesGrants, then put back (storage untouched). Returns the
    transaction hash. The chain then holds what a faulty ledger could have let through."""
    from chain.usage import UsageLedgerClient, agency_grantee_digest

    out = solcx.compile_standard({
        "language": "Solidity", "sources": {"YesGrants.sol": {"content": _YES_GRANTS}},
        "settings": {"evmVersion": "paris", "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
    }, solc_binary=SOLC_SHIM)
    c = out["contracts"]["YesGrants.sol"]["YesGrants"]
    w3 = node.backend.w3
    sender = node.sender_for(agency)
    factory = w3.eth.contract(abi=c["abi"], bytecode="0x" + c["evm"]["bytecode"]["object"])
    data = factory.constructor(doc, agency_grantee_digest(agency)).data_in_transaction
    pending = sender.send_raw_params({"to": None, "data": data, "gas": 500_000})
    yes_code = w3.eth.get_code(w3.eth.get_transaction_receipt(sender.wait(pending).tx_hash)["contractAddress"])
    registry = node.client(GrantRegistryClient).address
    real_code = w3.eth.get_code(registry)
    node.backend.raw("anvil_setCode", [registry, "0x" + bytes(yes_code).hex()])  # type: ignore[attr-defined]
    try:
        receipt = node.client(UsageLedgerClient).record(sender, usage_id, doc, grant_digest, b"\0" * 32,
                                                        purpose_digest)
    finally:
        node.backend.raw("anvil_setCode", [registry, "0x" + bytes(real_code).hex()])  # type: ignore[attr-defined]
    return receipt.tx_hash
