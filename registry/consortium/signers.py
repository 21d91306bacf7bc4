"""Whose key signed a proof, and whether it was that agency's key when it signed.

`registry.crypto.proofs.verify_json` says *which* key made a signature; this module answers the trust
question for the two kinds of application keys (docs/CRYPTO.md):

- ``SM2-SM3`` proofs: the SM2 public key must be registered for the agency in ConsortiumRegistry
  (`sm2KeyRecord`: owner and validity ``since .. until`` in block timestamps) and valid at the time the
  record says it was signed. A record signed before a rotation keeps verifying; one signed with the old key
  after the rotation is refused (``key_not_valid_at_time``).
- ``ES256K`` proofs: the key's Ethereum account must be one of the agency's accounts.

Offline verifiers use a member entry of a trust list instead of the chain (`check_in_member`).

    >>> signed = sign_json({"a": 1}, node.keys.proof_signer(uscc))               # doctest: +SKIP
    >>> check_on_chain(node.consortium, verify_json(signed), uscc, at=now)        # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import coincurve
from cryptography.hazmat.primitives import serialization

from chain.contracts import ConsortiumClient, Sm2KeyRecord
from registry.crypto import sm2
from registry.crypto.proofs import ProofAlgorithm, SignedBy
from registry.crypto.signing import address_of_public_key
from registry.errors import SignatureError

__all__ = ["KeyIdentity", "check_in_member", "check_on_chain", "identify", "signed_at", "sm2_key_entry"]


@dataclass(frozen=True)
class KeyIdentity:
    """A signing key as the consortium names it: an account (ES256K) or a 64-byte SM2 key (hex)."""

    kind: str  # "account" | "sm2"
    value: str  # EIP-55 address | 128 hex characters x || y

    def __str__(self) -> str:
        return self.value if self.kind == "account" else f"SM2 key {self.value[:16]}…"


def identify(signed_by: SignedBy) -> KeyIdentity:
    """The consortium name of the key that made a verified proof."""
    if signed_by.alg is ProofAlgorithm.SM2_SM3:
        return KeyIdentity("sm2", sm2.raw_public_key(sm2.load_public_key(signed_by.key_pem)).hex())
    public = serialization.load_pem_public_key(signed_by.key_pem)
    point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return KeyIdentity("account", address_of_public_key(coincurve.PublicKey(point)))


def check_on_chain(consortium: ConsortiumClient, signed_by: SignedBy, uscc: str, *, at: int) -> KeyIdentity:
    """SignatureError unless the key was ``uscc``'s on chain at unix time ``at`` (see the module docstring):
    code ``untrusted_key`` (never the agency's) or ``key_not_valid_at_time`` (rotated out before, or
    registered after, ``at``)."""
    key = identify(signed_by)
    if key.kind == "account":
        owner = consortium.member_of(key.value)
        if owner != uscc:
            raise SignatureError(f"签名密钥不属于 {uscc} / the signing account {key.value} is not an account of {uscc}",
                                 code="untrusted_key")
        return key
    record = consortium.sm2_key_record(bytes.fromhex(key.value))
    _check_record(record, key, uscc, at)
    return key


def signed_at(text: str) -> int:
    """The unix time of a record's ISO 8601 signing time (``2026-03-15T08:30:00Z``); SignatureError when it
    is no such time: without it the key's validity cannot be checked."""
    try:
        when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError as exc:
        raise SignatureError(f"the record's signing time {str(text)[:40]!r} is not ISO 8601",
                             code="malformed_proof") from exc
    if when.tzinfo is None:
        raise SignatureError("the record's signing time has no time zone", code="malformed_proof")
    return int(when.timestamp())


def sm2_key_entry(record: Sm2KeyRecord) -> dict[str, Any]:
    """A key as trust lists and evidence packages list it: ``{"key": hex x || y, "since", "until"}``."""
    return {"key": record.key.hex(), "since": record.since, "until": record.until}


def check_in_member(member: Mapping[str, Any] | None, signed_by: SignedBy, uscc: str, *, at: int) -> KeyIdentity:
    """`check_on_chain` against a member entry of a trust list (``accounts``, ``sm2_keys``) for offline
    verification; ``member`` None means the list does not know the agency."""
    key = identify(signed_by)
    if member is None or member.get("uscc") != uscc:
        raise SignatureError(f"信任列表中没有机构 {uscc} / the trust list does not know agency {uscc}",
                             code="untrusted_key")
    if key.kind == "account":
        if key.value.lower() not in {str(a).lower() for a in member.get("accounts", [])}:
            raise SignatureError(f"the signing account {key.value} is not an account of {uscc} in the trust list",
                                 code="untrusted_key")
        return key
    entry = next((e for e in member.get("sm2_keys", []) if str(e.get("key", "")).lower() == key.value), None)
    record = None if entry is None else Sm2KeyRecord(uscc, bytes.fromhex(key.value), int(entry["since"]),
                                                    int(entry["until"]))
    _check_record(record, key, uscc, at)
    return key


def _check_record(record: Sm2KeyRecord | None, key: KeyIdentity, uscc: str, at: int) -> None:
    if record is None or record.uscc != uscc:
        raise SignatureError(f"签名密钥不属于 {uscc} / the {key} is not registered for {uscc}", code="untrusted_key")
    if not record.valid_at(at):
        until = record.until or "now"
        raise SignatureError(f"签名时该密钥无效 / the {key} of {uscc} was valid from {record.since} to {until}, "
                             f"not at {at} when the record says it was signed (rotated key)",
                             code="key_not_valid_at_time")
