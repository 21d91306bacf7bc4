"""The trust list: what an offline verifier needs to know about the consortium, signed by its operator.

A verifier at a border post or a bank counter may have no network. Before going offline it pulls a trust list
(``GET /api/v1/trust-list``, ``lianzheng trust-list pull``) and from then on can check offline QR codes
(registry.offline) against it: which accounts belong to which member (USCC, registered name, BID, roles,
status), which agencies may issue which certificate type, which batch roots were anchored in which block,
and which documents were revoked, suspended or superseded -- all *as of* one block.

Format ``lianzheng/trust-list/1`` (JSON)::

    {"format": "lianzheng/trust-list/1", "chain_id": 31337,
     "contracts": {"ConsortiumRegistry": "0x..", "CertificateLedger": "0x.."},
     "as_of": {"block": 812, "block_hash": "0x..", "timestamp": 1718000000, "time": "2024-06-10T06:13:20Z"},
     "generated_at": "2024-06-10T06:13:21Z",
     "operator": {"uscc": "...", "name": "...", "account": "0x.."},
     "members": [{"uscc", "name", "bid", "roles": ["issuer", ..], "status": "active", "accounts": ["0x.."]}],
     "certificate_types": [{"code", "name", "issuers": ["<uscc>", ..]}],
     "batches": {"<root hex>": [block_number, "<issuer uscc>", "<anchoring tx hash>", "<SM3 root hex>"]},
     "documents": {"<document digest hex>": {"status": "revoked", "reason": 2, "block": 790, "root": "<batch root hex>"}},
     "signature": {"alg": "ES256K-R+SHA256+JCS", "signer": "0x..", "value": "0x<r||s||recid, 65 bytes>"}}

The signature is a recoverable secp256k1 ECDSA signature by the consortium operator (the genesis member's
account) over SHA-256 of the RFC 8785 canonical JSON of every other key: the same bytes in every language,
whatever the key order or whitespace of the file. A verifier pins the operator's account the first time
(or is given it) and refuses a list signed by anyone else.

Format ``lianzheng/trust-list/2`` (what nodes build now) has the same members, and two differences:

- each member lists its SM2 keys with their validity, ``"sm2_keys": [{"key": "<hex x || y>", "since": <unix
  s>, "until": <unix s, 0 while current>}]`` (registry.consortium.signers.sm2_key_entry, from the chain's
  ``sm2KeyRecord``): what an offline verifier checks a gm payload's batch statement against;
- instead of ``signature`` it carries a ``proof`` (registry.crypto.proofs, docs/CRYPTO.md) by the operator in
  the node's crypto profile: SM2-SM3 with the operator's registered SM2 key (gm) or ES256K with its account
  key (intl), over the RFC 8785 bytes of the list without ``proof``. OpenSSL alone verifies it. The key must
  be the operator member's own, per the list itself, as of the list's block: an SM2 key valid at
  ``as_of.timestamp``, or one of its accounts. The list's signer (what a verifier pins) is then the SM2 key
  (128 hex characters) or the account.

Format 2 may also carry ``"seal_ca": {"certificate": "<PEM>", "sha256": "<hex SHA-256 of the DER>"}``: the root
of the consortium seal CA (registry/seals/ca.py), which certifies the keys that sign sealed PDFs. It is under
the operator's proof like everything else; a list whose fingerprint does not match its certificate is refused.

Verifiers accept both formats.

>>> from registry.consortium.trust_list import sign_trust_list, TrustList
>>> body = {"format": FORMAT_ID, "chain_id": 1, "contracts": {}, "generated_at": "2024-01-01T00:00:00Z",
...         "as_of": {"block": 5, "block_hash": "0x00", "timestamp": 0, "time": "1970-01-01T00:00:00Z"},
...         "operator": {"uscc": "X", "name": "op", "account": "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"},
...         "members": [], "certificate_types": [], "batches": {}, "documents": {}}
>>> signed = sign_trust_list(body, bytes(31) + b"\\x01")
>>> TrustList.from_json(signed).as_of_block
5
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from eth_utils.address import to_checksum_address

from chain.contracts import DocStatus, MemberStatus, Role, Sm2KeyRecord
from registry.consortium.signers import check_in_member, sm2_key_entry
from registry.crypto.proofs import PROOF_MEMBER, ProofSigner, sign_json, verify_json
from registry.crypto.signing import SignatureScheme, Signer, recover
from registry.errors import PayloadFormatError, ProofError, SignatureError
from registry.formats.batch_statement import key_id as sm2_key_id

__all__ = [
    "FORMAT_ID",
    "FORMAT_V2",
    "SIGNATURE_ALG",
    "DocumentState",
    "TrustList",
    "TrustedMember",
    "build_trust_list",
    "sign_trust_list",
    "sign_trust_list_v2",
]

FORMAT_ID = "lianzheng/trust-list/1"
FORMAT_V2 = "lianzheng/trust-list/2"
SIGNATURE_ALG = "ES256K-R+SHA256+JCS"  # recoverable secp256k1 over SHA-256 of the RFC 8785 (JCS) bytes
_BODY_KEYS = {"format", "chain_id", "contracts", "as_of", "generated_at", "operator", "members",
              "certificate_types", "batches", "documents"}
SEAL_CA = "seal_ca"  # optional in format 2: the seal CA's root certificate


@dataclass(frozen=True, slots=True)
class TrustedMember:
    uscc: str
    name: str
    bid: str
    roles: tuple[str, ...]
    status: str
    accounts: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"uscc": self.uscc, "name": self.name, "bid": self.bid, "roles": list(self.roles),
                "status": self.status, "accounts": list(self.accounts)}


@dataclass(frozen=True, slots=True)
class DocumentState:
    status: str  # revoked | suspended | superseded
    reason: int
    block: int
    root: bytes  # the batch the document was anchored in


@dataclass(frozen=True)
class TrustList:
    """A verified trust list with lookup tables; build it with :meth:`from_json` only."""

    body: Mapping[str, Any]
    signature: bytes
    signer: str
    members: Mapping[str, TrustedMember] = field(repr=False)
    account_member: Mapping[str, str] = field(repr=False)  # lower-case address -> USCC
    batches: Mapping[bytes, tuple[int, str, str]] = field(repr=False)  # root -> (block, issuer USCC, tx hash)
    documents: Mapping[bytes, DocumentState] = field(repr=False)
    type_issuers: Mapping[str, tuple[str, tuple[str, ...]]] = field(repr=False)  # code -> (name, issuers)
    changed_roots: frozenset[bytes] = field(repr=False, default=frozenset())  # batches with a non-issued document
    # root -> the SM3 root anchored beside it (the optional 4th item of a "batches" entry; absent in older lists)
    sm3_roots: Mapping[bytes, bytes] = field(repr=False, default_factory=dict)
    # v2: short key id (registry.formats.batch_statement.key_id) -> the SM2 keys with that id
    sm2_keys: Mapping[bytes, tuple[Sm2KeyRecord, ...]] = field(repr=False, default_factory=dict)
    proof: Mapping[str, Any] | None = field(repr=False, default=None)  # v2: the operator's proof
    seal_ca: bytes | None = field(repr=False, default=None)  # v2: DER of the seal CA's root, if published

    @property
    def format(self) -> str:
        return str(self.body["format"])

    @property
    def as_of_block(self) -> int:
        return int(self.body["as_of"]["block"])

    @property
    def as_of_time(self) -> str:
        return str(self.body["as_of"]["time"])

    @property
    def chain_id(self) -> int:
        return int(self.body["chain_id"])

    @property
    def operator(self) -> str:
        return str(self.body["operator"]["account"])

    def member_of_account(self, account: str) -> TrustedMember | None:
        uscc = self.account_member.get(account.lower())
        return None if uscc is None else self.members.get(uscc)

    def to_json(self) -> dict[str, Any]:
        """A fresh copy of the signed list (changing it does not change this object)."""
        if self.proof is not None:
            return {**copy.deepcopy(dict(self.body)), PROOF_MEMBER: copy.deepcopy(dict(self.proof))}
        return {**copy.deepcopy(dict(self.body)), "signature": {"alg": SIGNATURE_ALG, "signer": self.signer,
                                           "value": "0x" + self.signature.hex()}}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], *, operator: str | None = None) -> TrustList:
        """Check the format and the operator's signature, then index the list.

        ``operator`` is the pinned operator account; without it the list must at least be signed by the
        account it names as operator (trust on first use: the caller pins ``signer`` afterwards).
        Raises ``PayloadFormatError(code="invalid_trust_list")`` or ``ProofError(code="bad_trust_list_signature")``.
        """
        if isinstance(obj, Mapping) and obj.get("format") == FORMAT_V2:
            return cls._from_v2(obj, operator)
        if not isinstance(obj, Mapping) or obj.get("format") != FORMAT_ID:
            found = obj.get("format") if isinstance(obj, Mapping) else type(obj).__name__
            raise _invalid(f"expected format {FORMAT_ID!r} or {FORMAT_V2!r}, got {found!r}")
        body = {k: copy.deepcopy(v) for k, v in obj.items() if k != "signature"}  # later changes to obj cannot leak in
        if set(body) != _BODY_KEYS:
            raise _invalid(f"keys must be {sorted(_BODY_KEYS | {'signature'})}, got {sorted(obj)}")
        sig = obj.get("signature")
        if not isinstance(sig, Mapping) or sig.get("alg") != SIGNATURE_ALG or not isinstance(sig.get("value"), str):
            raise _invalid(f"signature must be {{'alg': {SIGNATURE_ALG!r}, 'signer', 'value'}}")
        try:
            signature = bytes.fromhex(sig["value"].removeprefix("0x"))
        except ValueError:
            raise _invalid("signature value is not hex") from None
        signer = _recover(body, signature)
        named = str(body["operator"].get("account", "")) if isinstance(body["operator"], Mapping) else ""
        if signer.lower() != named.lower():
            raise ProofError(f"信任列表签名无效 / trust list signature is invalid: signed by {signer}, but it names "
                             f"{named or 'no account'} as operator (the list was altered or forged)",
                             code="bad_trust_list_signature")
        _check_pin(signer, operator)
        try:
            return cls._index(body, signature, signer)
        except (LookupError, TypeError, ValueError, AttributeError) as exc:
            raise _invalid(f"malformed content ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _from_v2(cls, obj: Mapping[str, Any], operator: str | None) -> TrustList:
        body = {k: copy.deepcopy(v) for k, v in obj.items() if k != PROOF_MEMBER}
        if set(body) - {SEAL_CA} != _BODY_KEYS or not isinstance(obj.get(PROOF_MEMBER), Mapping):
            raise _invalid(f"keys must be {sorted(_BODY_KEYS | {PROOF_MEMBER})} (and optionally {SEAL_CA!r}), "
                           f"got {sorted(obj)}")
        proof = copy.deepcopy(dict(obj[PROOF_MEMBER]))
        try:
            signed_by = verify_json({**body, PROOF_MEMBER: proof})
        except (TypeError, ValueError) as exc:  # rfc8785 refuses floats out of range, lone surrogates ...
            raise _invalid(f"cannot canonicalise (RFC 8785): {exc}") from None
        except SignatureError as exc:
            raise ProofError(f"信任列表签名无效 / trust list signature is invalid ({exc.message})",
                             code="bad_trust_list_signature") from exc
        try:
            op_uscc = str(body["operator"]["uscc"])
            entry = next((m for m in body["members"] if isinstance(m, Mapping) and m.get("uscc") == op_uscc), None)
            at = int(body["as_of"]["timestamp"])
        except (LookupError, TypeError, ValueError) as exc:
            raise _invalid(f"malformed operator or as_of ({type(exc).__name__}: {exc})") from None
        try:
            signer = check_in_member(entry, signed_by, op_uscc, at=at).value
        except SignatureError as exc:
            raise ProofError(f"信任列表签名无效 / trust list is not signed by its operator {op_uscc}'s key as of its "
                             f"block ({exc.message}; the list was altered or forged)",
                             code="bad_trust_list_signature") from exc
        _check_pin(signer, operator)
        try:
            return cls._index(body, b"", signer, proof)
        except (LookupError, TypeError, ValueError, AttributeError) as exc:
            raise _invalid(f"malformed content ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _index(cls, body: dict[str, Any], signature: bytes, signer: str,
               proof: Mapping[str, Any] | None = None) -> TrustList:
        members = {m["uscc"]: TrustedMember(m["uscc"], m["name"], m["bid"], tuple(m["roles"]), m["status"],
                                            tuple(m["accounts"])) for m in body["members"]}
        accounts = {a.lower(): m.uscc for m in members.values() for a in m.accounts}
        batches = {bytes.fromhex(root.removeprefix("0x")): (int(v[0]), str(v[1]), str(v[2]))
                   for root, v in body["batches"].items()}
        sm3_roots = {bytes.fromhex(root.removeprefix("0x")): bytes.fromhex(str(v[3]).removeprefix("0x"))
                     for root, v in body["batches"].items() if len(v) > 3}
        documents = {bytes.fromhex(d.removeprefix("0x")): DocumentState(str(v["status"]), int(v.get("reason") or 0),
                                                                        int(v["block"]), bytes.fromhex(v["root"]))
                     for d, v in body["documents"].items()}
        types = {t["code"]: (t["name"], tuple(t["issuers"])) for t in body["certificate_types"]}
        int(body["as_of"]["block"])  # must be present and numeric
        sm2_keys: dict[bytes, tuple[Sm2KeyRecord, ...]] = {}
        for m in body["members"] if body["format"] == FORMAT_V2 else ():
            for e in m["sm2_keys"]:
                key = bytes.fromhex(str(e["key"]).removeprefix("0x"))
                if len(key) != 64:
                    raise ValueError(f"an SM2 key of {m['uscc']} is not 64 bytes")
                item = Sm2KeyRecord(str(m["uscc"]), key, int(e["since"]), int(e["until"]))
                sm2_keys[sm2_key_id(key)] = (*sm2_keys.get(sm2_key_id(key), ()), item)
        return cls(body=body, signature=signature, signer=signer, members=members, account_member=accounts,
                   batches=batches, documents=documents, type_issuers=types,
                   changed_roots=frozenset(d.root for d in documents.values()), sm3_roots=sm3_roots,
                   sm2_keys=sm2_keys, proof=proof, seal_ca=_seal_ca(body.get(SEAL_CA)))


def canonical_digest(body: Mapping[str, Any]) -> bytes:
    """SHA-256 of the RFC 8785 canonical JSON of ``body`` (what the operator signs)."""
    return hashlib.sha256(rfc8785.dumps(dict(body))).digest()


def sign_trust_list(body: Mapping[str, Any], private_key: bytes) -> dict[str, Any]:
    """``body`` plus the operator's signature (the operator account in ``body`` must match the key)."""
    body = {k: v for k, v in body.items() if k != "signature"}
    signer = Signer.from_private_key(private_key)
    signature = signer.sign(canonical_digest(body), SignatureScheme.RECOVERABLE)
    return {**body, "signature": {"alg": SIGNATURE_ALG, "signer": signer.address, "value": "0x" + signature.hex()}}


def sign_trust_list_v2(body: Mapping[str, Any], signer: ProofSigner) -> dict[str, Any]:
    """A ``lianzheng/trust-list/2`` body plus the operator's ``proof`` (its SM2 or ES256K key)."""
    return sign_json({k: v for k, v in body.items() if k not in ("signature", PROOF_MEMBER)}, signer)


def build_trust_list(node: Any, index: Any, *, now: dt.datetime | None = None,
                     seal_ca: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The trust list (format 2) as of the ChainIndex's last synced block (the caller refreshes it), signed with
    the operator's (genesis member's) proof key in the node's crypto profile.

    ``node`` is a registry.node.Node and ``index`` a registry.index.ChainIndex (typed loosely: this module is
    also imported by offline verifiers that have neither). ``seal_ca`` (registry.seals.ca.trust_entry) is
    published when given.
    """
    deployment = node.require_deployment()
    block = index.synced_block
    timestamp = index.block_timestamp(block)
    genesis = node.seeds.genesis
    operator = node.keys.signing_account(genesis.uscc)
    sm2_keys: dict[str, list[dict[str, Any]]] = {}
    for record in node.consortium.sm2_keys(from_block=deployment.first_block, to_block=block):
        sm2_keys.setdefault(record.uscc, []).append(sm2_key_entry(record))
    members = [
        {"uscc": m.uscc, "name": m.name, "bid": m.bid, "roles": Role(m.roles).names(),
         "status": MemberStatus(m.status).name.lower(), "accounts": [to_checksum_address(a) for a in m.accounts],
         "sm2_keys": sm2_keys.get(m.uscc, [])}
        for m in sorted(index.members.values(), key=lambda m: m.uscc)
    ]
    status_names = {DocStatus.REVOKED: "revoked", DocStatus.SUSPENDED: "suspended", DocStatus.SUPERSEDED: "superseded"}
    body = {
        "format": FORMAT_V2,
        "chain_id": int(deployment.chain_id),
        "contracts": {name: deployment.address(name) for name in ("ConsortiumRegistry", "CertificateLedger")},
        "as_of": {"block": block, "block_hash": "0x" + index.synced_hash.removeprefix("0x"), "timestamp": timestamp,
                  "time": _iso(dt.datetime.fromtimestamp(timestamp, dt.UTC))},
        "generated_at": _iso(now or dt.datetime.now(dt.UTC)),
        "operator": {"uscc": genesis.uscc, "name": genesis.name, "account": operator.address},
        "members": members,
        "certificate_types": [{"code": t.code, "name": t.name, "issuers": list(t.issuers)}
                              for t in node.seeds.certificate_types],
        "batches": {root.hex(): [b.block_number, b.issuer_uscc, b.tx_hash, b.sm3_root.hex()]
                    for root, b in index.batches.items()},
        "documents": {digest.hex(): {"status": status_names[d.status], "reason": int(d.reason), "block": d.since_block,
                                     "root": d.root.hex()}
                      for digest, d in index.docs.items() if d.status in status_names},
    }
    if seal_ca is not None:
        body[SEAL_CA] = {"certificate": str(seal_ca["certificate"]), "sha256": str(seal_ca["sha256"])}
    return sign_trust_list_v2(body, node.keys.proof_signer(genesis.uscc))


# --- internals -------------------------------------------------------------------------------------------


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _check_pin(signer: str, operator: str | None) -> None:
    if operator is not None and signer.lower() != operator.lower():
        raise ProofError(f"信任列表不是由联盟运营方签发 / trust list is not from the pinned consortium operator: "
                         f"expected {operator}, signed by {signer}", code="untrusted_trust_list")


def _recover(body: Mapping[str, Any], signature: bytes) -> str:
    if len(signature) != 65 or signature[64] > 3:
        raise ProofError(f"信任列表签名无效 / trust list signature is malformed: expected 65 bytes with recovery id "
                         f"0..3, got {len(signature)} bytes", code="bad_trust_list_signature")
    try:
        digest = canonical_digest(body)
    except (TypeError, ValueError) as exc:  # rfc8785 refuses floats out of range, lone surrogates ...
        raise _invalid(f"cannot canonicalise (RFC 8785): {exc}") from None
    try:
        return recover(digest, signature, SignatureScheme.RECOVERABLE)
    except SignatureError as exc:
        raise ProofError(f"信任列表签名无效 / trust list signature does not recover a key ({exc.message})",
                         code="bad_trust_list_signature") from exc


def _seal_ca(entry: Any) -> bytes | None:
    """The DER of the published seal CA root, checked against its fingerprint (ValueError if malformed)."""
    if entry is None:
        return None
    if not isinstance(entry, Mapping) or set(entry) != {"certificate", "sha256"}:
        raise ValueError(f"{SEAL_CA} must be {{'certificate': PEM, 'sha256': hex}}")
    der = x509.load_pem_x509_certificate(str(entry["certificate"]).encode()).public_bytes(serialization.Encoding.DER)
    if hashlib.sha256(der).hexdigest() != str(entry["sha256"]).lower():
        raise ValueError(f"{SEAL_CA}.sha256 is not the SHA-256 of its certificate")
    return der


def _invalid(message: str) -> PayloadFormatError:
    return PayloadFormatError(f"信任列表格式无效 / invalid trust list: {message}", code="invalid_trust_list")
