"""Presenting a bound certificate (出示): the verifier's node issues a challenge, the holder signs it together
with the certificate's digest, the node consumes the challenge (once) and checks the signature against the key
the certificate is bound to.

Challenge (issued by a node; single use, valid `CHALLENGE_TTL` seconds)::

    {"nonce": <16 random bytes, base64url>, "verifier": <the verifier's id or node URL>, "time": <RFC 3339 UTC>}

Presentation (what the holder's wallet returns)::

    {"type": "LianzhengPresentation", "certificate": <document digest hex>, "challenge": {...},
     "holder_key": <holder SPKI, base64url>, "signature": <base64url r||s>}

signed by the holder key over the RFC 8785 form without ``signature`` (registry/holders/keys.py). The holder's
public key is inside the signed part, so the signature also commits to which key presents.

Verdicts: ``presented_by_holder``, or ``status_only`` with a reason: ``no_signature`` (nothing presented),
``not_bound`` (the certificate has no holder key), ``wrong_key`` (a key other than the bound one signed),
``bad_signature``, ``wrong_certificate`` (the presentation names another document), ``unknown_challenge``
(not issued by this node), ``replayed_nonce`` (already used), ``expired_challenge``.

>>> from registry.holders.keys import HolderKey
>>> key = HolderKey.generate()
>>> c = Challenge(nonce="AAAAAAAAAAAAAAAAAAAAAA", verifier="https://bank.example", time=1796173200)
>>> p = sign_presentation(key, "ab" * 32, c)
>>> check_signature(p, certificate="ab" * 32, holder_key_digest=key.public.key_id).verdict
'presented_by_holder'
>>> check_signature(p, certificate="ab" * 32, holder_key_digest="00" * 32).reason
'wrong_key'
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import rfc8785

from registry.errors import ValidationError
from registry.holders._time import format_time, parse_time
from registry.holders.keys import HolderKey, HolderPublicKey, b64url_decode, b64url_encode
from registry.validation import check_text

if TYPE_CHECKING:  # the node's side (ChallengeStore) loads the database when used: a wallet signing needs none of it
    from registry.certificates.documents import Document
    from registry.certificates.verification import VerificationResult
    from registry.node import Node

__all__ = [
    "CHALLENGE_TTL",
    "PRESENTATION_TYPE",
    "REASONS",
    "Challenge",
    "ChallengeStore",
    "PresentationResult",
    "check_signature",
    "sign_presentation",
    "with_presentation",
]

PRESENTATION_TYPE = "LianzhengPresentation"
CHALLENGE_TTL = 300
NONCE_BYTES = 16
_KEYS = {"type", "certificate", "challenge", "holder_key", "signature"}

PRESENTED, STATUS_ONLY = "presented_by_holder", "status_only"
REASONS: dict[str, tuple[str, str]] = {
    "no_signature": ("未由持证人签名出示，仅核验状态", "not presented with the holder's signature: status only"),
    "not_bound": ("该证照未绑定持证人密钥", "the certificate is not bound to a holder key"),
    "wrong_key": ("签名密钥不是证照绑定的持证人密钥", "signed with a key other than the holder key the certificate "
                                                       "is bound to"),
    "bad_signature": ("持证人签名无效", "the holder signature does not verify"),
    "wrong_certificate": ("签名所指证照与出示的证照不符", "the signature is for another certificate"),
    "unknown_challenge": ("挑战码不是本节点签发的", "the challenge was not issued by this node"),
    "replayed_nonce": ("挑战码已被使用（重放）", "the challenge was already used (replayed)"),
    "expired_challenge": ("挑战码已过期", "the challenge has expired"),
}


@dataclass(frozen=True)
class Challenge:
    nonce: str
    verifier: str
    time: int

    def to_json(self) -> dict[str, str]:
        return {"nonce": self.nonce, "verifier": self.verifier, "time": format_time(self.time)}

    @classmethod
    def parse(cls, obj: Any) -> Challenge:
        if not isinstance(obj, Mapping) or set(obj) != {"nonce", "verifier", "time"}:
            raise ValidationError("a challenge is {nonce, verifier, time}", code="invalid_presentation")
        nonce = obj["nonce"]
        if len(b64url_decode(nonce, "nonce", code="invalid_presentation", max_length=32)) != NONCE_BYTES:
            raise ValidationError(f"a challenge nonce is {NONCE_BYTES} bytes", code="invalid_presentation")
        verifier = obj["verifier"]
        if not isinstance(verifier, str) or not 0 < len(verifier) <= 200:
            raise ValidationError("a challenge verifier is 1..200 characters", code="invalid_presentation")
        try:
            check_text(verifier, "verifier").encode("utf-8")
        except (ValidationError, UnicodeEncodeError):
            raise ValidationError("the challenge verifier holds characters that are not allowed",
                                  code="invalid_presentation") from None
        return cls(nonce, verifier, parse_time(obj["time"], "challenge time", code="invalid_presentation"))


@dataclass(frozen=True)
class PresentationResult:
    verdict: str  # presented_by_holder | status_only
    reason: str | None
    holder_key: str | None = None  # the key id that signed (when it verified)

    def to_json(self) -> dict[str, Any]:
        zh, en = REASONS.get(self.reason or "", (None, None))
        return {"verdict": self.verdict, "reason": self.reason, "reason_zh": zh, "reason_en": en,
                "holder_key": self.holder_key}


def status_only(reason: str) -> PresentationResult:
    return PresentationResult(STATUS_ONLY, reason)


def sign_presentation(key: HolderKey, certificate: str, challenge: Challenge) -> dict[str, Any]:
    """The holder's signed presentation of the document with digest ``certificate`` (hex) for ``challenge``."""
    return key.sign_object({"type": PRESENTATION_TYPE, "certificate": certificate,
                            "challenge": challenge.to_json(), "holder_key": key.public.spki_b64url})


def parse_presentation(obj: Any) -> tuple[Challenge, HolderPublicKey]:
    """The challenge and holder key of a presentation; ValidationError(code="invalid_presentation")."""
    if not isinstance(obj, Mapping) or set(obj) != _KEYS or obj["type"] != PRESENTATION_TYPE:
        raise ValidationError(f"a presentation is {{type: {PRESENTATION_TYPE}, certificate, challenge, holder_key, "
                              "signature}", code="invalid_presentation")
    if not isinstance(obj["certificate"], str) or len(obj["certificate"]) != 64:
        raise ValidationError("presentation certificate must be the document digest (64 hex digits)",
                              code="invalid_presentation")
    try:
        key = HolderPublicKey.from_b64url(obj["holder_key"])
    except ValidationError as exc:
        raise ValidationError(f"presentation holder_key: {exc.message}", code="invalid_presentation") from None
    return Challenge.parse(obj["challenge"]), key


def check_signature(presentation: Mapping[str, Any] | None, *, certificate: str,
                    holder_key_digest: str | None) -> PresentationResult:
    """The signature part of the verdict (no challenge bookkeeping): bound, same document, bound key, valid."""
    if presentation is None:
        return status_only("no_signature")
    _, key = parse_presentation(presentation)
    if holder_key_digest is None:
        return status_only("not_bound")
    if presentation["certificate"] != certificate:
        return status_only("wrong_certificate")
    if key.key_id != holder_key_digest:
        return status_only("wrong_key")
    if not key.verify_object(presentation):
        return status_only("bad_signature")
    return PresentationResult(PRESENTED, None, key.key_id)


def presentation_digest(presentation: Mapping[str, Any]) -> str:
    return hashlib.sha256(rfc8785.dumps(dict(presentation))).hexdigest()


class ChallengeStore:
    """Challenges issued by this node, in its database: issue, then consume once within `CHALLENGE_TTL`.

    ``clock`` gives seconds since the epoch (the node's wall clock: challenges are short-lived, and the chain's
    clock on a devnet may be moved by tests)."""

    def __init__(self, node: Node, *, ttl: int = CHALLENGE_TTL, clock: Callable[[], float] | None = None) -> None:
        import time

        self.node = node
        self.ttl = ttl
        self.clock = clock or time.time

    def issue(self, verifier: str) -> Challenge:
        if not isinstance(verifier, str) or not 0 < len(verifier.strip()) <= 200:
            raise ValidationError("verifier must be 1..200 characters (the verifier's id or URL)",
                                  code="invalid_verifier")
        verifier = check_text(verifier.strip(), "verifier")
        try:
            verifier.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("verifier contains a lone surrogate", code="invalid_verifier") from None
        from sqlalchemy import delete

        from registry.store.holder_models import HolderChallenge

        now = int(self.clock())
        challenge = Challenge(b64url_encode(secrets.token_bytes(NONCE_BYTES)), verifier, now)
        with self.node.db.session() as s:
            s.execute(delete(HolderChallenge).where(HolderChallenge.expires_at < now - self.ttl))  # keep it small
            s.add(HolderChallenge(nonce=challenge.nonce, verifier=verifier, issued_at=now,
                                  expires_at=now + self.ttl))
        return challenge

    def verify(self, presentation: Mapping[str, Any] | None, *, certificate: str,
               holder_key_digest: str | None) -> PresentationResult:
        """The full verdict: the signature (`check_signature`), then the challenge: issued here, with the same
        verifier and time, unexpired, unused — consumed now (atomically: of two concurrent presentations of one
        nonce, one wins)."""
        result = check_signature(presentation, certificate=certificate, holder_key_digest=holder_key_digest)
        if result.verdict != PRESENTED or presentation is None:
            return result
        from sqlalchemy import update

        from registry.store.holder_models import HolderChallenge

        challenge, _ = parse_presentation(presentation)
        now = int(self.clock())
        with self.node.db.session() as s:
            row = s.get(HolderChallenge, challenge.nonce)
            if row is None or row.verifier != challenge.verifier or row.issued_at != challenge.time:
                return status_only("unknown_challenge")
            if row.consumed_at is not None:
                return status_only("replayed_nonce")
            if now >= row.expires_at:
                return status_only("expired_challenge")
            taken = s.execute(update(HolderChallenge).where(
                HolderChallenge.nonce == challenge.nonce, HolderChallenge.consumed_at.is_(None))
                .values(consumed_at=now, consumed_by=presentation_digest(presentation)))
            if getattr(taken, "rowcount", 0) != 1:
                return status_only("replayed_nonce")
        return result


def with_presentation(result: VerificationResult, document: Document, presentation: Mapping[str, Any] | None,
                      store: ChallengeStore) -> VerificationResult:
    """``result`` (of `document`) with its presentation verdict: for a bound certificate always (without a
    presentation: status_only / no_signature), for an unbound one when a presentation was offered (not_bound)."""
    if presentation is None and not document.bound:
        return result
    verdict = store.verify(presentation, certificate=document.digest_sha256.hex(),
                           holder_key_digest=document.holder_key_digest if document.bound else None)
    return dataclasses.replace(result, presentation=verdict.to_json())
