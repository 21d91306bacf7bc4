"""Grants (授权他人用证): a holder lets a named party (an agency by USCC, a person by ID number) present or fetch
one certificate for a stated purpose (申请事由), from ``not_before`` until ``expires``, optionally only some
fields; and revokes it with a signed statement.

The signed grant (JSON; every member required, ``fields`` and ``wrapped_key`` may be null)::

    {"type": "LianzhengGrant", "v": 1, "id": <16 random bytes, hex>, "certificate": <document digest, hex>,
     "issuer": <issuing agency USCC>, "holder_key": <holder SPKI, base64url>,
     "grantee": {"kind": "agency" | "person", "digest": <hex>}, "purpose": <≤ 200 characters>,
     "not_before": <RFC 3339 UTC>, "expires": <RFC 3339 UTC>, "fields": [<field name>, ...] | null,
     "wrapped_key": <registry/holders/wrapping.py, for an agency grantee> | null, "signature": <base64url r||s>}

- signature: the holder key's ECDSA P-256 signature (raw r||s) of the RFC 8785 form without ``signature``
  (registry/holders/keys.py);
- grant digest = SHA-256 of the RFC 8785 form of the *signed* grant (signature included): what GrantRegistry
  anchors, what a revocation names;
- grantee digest: agency = SHA-256("lianzheng/grantee/agency/v1:" + USCC); person = SHA-256(
  "lianzheng/grantee/person/v1:" + salt_hex + ":" + ID number) with a 16-byte salt that travels with the grant's
  QR code (or is handed to the person), never to the chain or the server: an ID number (18 characters, a few
  million plausible ones per birth date) hashed without a secret salt could be found by trying them all.
- QR: ``lianzheng:grant:`` + base64url(RFC 8785 JSON of the signed grant), followed for a person grantee by
  ``.`` + base64url(salt). (JSON rather than CBOR: the same bytes are the ones signed and digested.)

Revocation statement: ``{"type": "LianzhengGrantRevocation", "grant": <grant digest hex>, "time": <RFC 3339>,
"signature": ...}`` signed by the grant's holder key; its digest (SHA-256 of its RFC 8785 form) goes on chain.

>>> from registry.holders.keys import HolderKey
>>> holder = HolderKey.generate()
>>> g = Grant.build(certificate="ab" * 32, issuer="11230000MB1A00028M", holder_key=holder.public,
...                 grantee=Grantee.agency("11230000MB1A00036G"), purpose="办理开户",
...                 not_before=1795900000, expires=1796000000).sign(holder)
>>> Grant.parse(g.to_json()) == g and g.signature_valid()
True
>>> Grant.from_qr(g.qr())[0].digest == g.digest
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785
from stdnum import exceptions as stdnum_exc
from stdnum.cn import ric

from registry.certificates.fields import HOLDER_KEY_FIELD, ID_FIELD
from registry.errors import PayloadFormatError, ValidationError
from registry.holders._time import format_time, parse_time
from registry.holders.keys import HolderKey, HolderPublicKey, b64url_decode, b64url_encode
from registry.identifiers import validate_uscc
from registry.validation import check_text

__all__ = [
    "GRANT_QR_PREFIX",
    "GRANT_TYPE",
    "REASONS",
    "REVOCATION_TYPE",
    "Grant",
    "GrantRevocation",
    "Grantee",
    "agency_grantee_digest",
    "person_grantee_digest",
]

GRANT_TYPE = "LianzhengGrant"
REVOCATION_TYPE = "LianzhengGrantRevocation"
GRANT_QR_PREFIX = "lianzheng:grant:"
_AGENCY_LABEL = "lianzheng/grantee/agency/v1:"
_PERSON_LABEL = "lianzheng/grantee/person/v1:"
PERSON_SALT_SIZE = 16
MAX_PURPOSE = 200
MAX_FIELDS = 64
MAX_GRANT_BYTES = 4096
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEYS = {"type", "v", "id", "certificate", "issuer", "holder_key", "grantee", "purpose", "not_before", "expires",
         "fields", "wrapped_key", "signature"}

# reason code -> (Chinese, English): why a grant does not authorise this use (evaluated in registry/holders/
# grant_checks.py; the same codes in API answers and the verifier page)
REASONS: dict[str, tuple[str, str]] = {
    "bad_signature": ("授权书签名无效", "the grant's holder signature does not verify"),
    "unknown_certificate": ("授权书所指证照不存在", "the certificate the grant names is not registered"),
    "not_anchored": ("授权书未上链", "the grant is not anchored on chain"),
    "holder_mismatch": ("授权人不是证照持有人", "the grant's holder key is not the key the certificate is bound to"),
    "certificate_not_valid": ("证照不在有效状态", "the certificate is not valid (revoked, suspended or superseded)"),
    "revoked": ("授权已被持证人撤回", "the holder revoked the grant"),
    "not_yet_valid": ("授权尚未生效", "the grant is not valid yet"),
    "expired": ("授权已过期", "the grant has expired"),
    "wrong_party": ("使用人不是被授权人", "the party presenting is not the grantee"),
    "fields_out_of_scope": ("出示的字段超出授权范围", "fields outside the grant's scope were presented"),
}


def _bad(message: str, code: str = "invalid_grant") -> PayloadFormatError:
    return PayloadFormatError(message, code=code)


def _text(value: str, what: str) -> str:
    """``value`` if RFC 8785 can canonicalise it (no lone surrogates) and it holds no unsafe characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(f"grant {what} contains a lone surrogate (not canonicalisable by RFC 8785)") from None
    try:
        return check_text(value, what)
    except ValidationError as exc:
        raise _bad(f"grant {exc.message}") from None


def _b64(value: Any, what: str, max_length: int) -> bytes:
    try:
        return b64url_decode(value, what, code="invalid_grant", max_length=max_length)
    except ValidationError as exc:
        raise _bad(exc.message) from None


def agency_grantee_digest(uscc: str) -> bytes:
    """SHA-256("lianzheng/grantee/agency/v1:" + USCC): an agency grantee as the chain and the grant name it."""
    return hashlib.sha256((_AGENCY_LABEL + validate_uscc(uscc)).encode("ascii")).digest()


def person_grantee_digest(salt: bytes, id_number: str) -> bytes:
    """SHA-256("lianzheng/grantee/person/v1:" + salt_hex + ":" + ID number) for an 18-character 居民身份证号."""
    if not isinstance(salt, (bytes, bytearray)) or len(salt) != PERSON_SALT_SIZE:
        raise ValidationError(f"the grantee salt must be {PERSON_SALT_SIZE} bytes", code="invalid_grantee_salt")
    try:
        number = ric.validate(id_number) if isinstance(id_number, str) else None
    except stdnum_exc.ValidationError as exc:
        raise ValidationError(f"not a valid resident identity number (GB 11643): {exc}",
                              code="invalid_id_number") from None
    if number is None:
        raise ValidationError("the ID number must be a string", code="invalid_id_number")
    return hashlib.sha256(f"{_PERSON_LABEL}{bytes(salt).hex()}:{number}".encode("ascii")).digest()


@dataclass(frozen=True)
class Grantee:
    kind: str  # "agency" | "person"
    digest: bytes

    @classmethod
    def agency(cls, uscc: str) -> Grantee:
        return cls("agency", agency_grantee_digest(uscc))

    @classmethod
    def person(cls, id_number: str, salt: bytes | None = None) -> tuple[Grantee, bytes]:
        """The grantee and its salt (fresh unless given): hand the salt to the person with the grant."""
        salt = secrets.token_bytes(PERSON_SALT_SIZE) if salt is None else salt
        return cls("person", person_grantee_digest(salt, id_number)), bytes(salt)

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "digest": self.digest.hex()}


def _hex(value: Any, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _bad(f"grant {what} must be lower-case hex ({pattern.pattern[8:10]} digits), got {str(value)[:80]!r}")
    return value


def _fields(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > MAX_FIELDS:
        raise _bad(f"grant fields must be null or a list of 1..{MAX_FIELDS} field names")
    names: list[str] = []
    for name in value:
        if not isinstance(name, str) or not 0 < len(name) <= 64:
            raise _bad(f"grant field names must be strings of 1..64 characters, got {str(name)[:40]!r}")
        names.append(_text(name, "field name"))
    if len(set(names)) != len(names):
        raise _bad("grant fields must not repeat a name")
    return tuple(names)


@dataclass(frozen=True)
class Grant:
    """A grant; `build` (then `sign`) to make one, `parse` / `from_qr` to read one (strict)."""

    id: str
    certificate: str  # the document digest (SHA-256 root), hex: the CertificateLedger doc key
    issuer: str
    holder_key: HolderPublicKey
    grantee: Grantee
    purpose: str
    not_before: int  # seconds since the epoch (the chain's clock decides)
    expires: int
    fields: tuple[str, ...] | None
    wrapped_key: str | None
    signature: str | None = None

    @classmethod
    def build(cls, *, certificate: str, issuer: str, holder_key: HolderPublicKey, grantee: Grantee, purpose: str,
              not_before: int, expires: int, fields: Iterable[str] | None = None, wrapped_key: str | None = None,
              grant_id: str | None = None) -> Grant:
        """An unsigned grant, validated like a parsed one."""
        unsigned = cls(id=grant_id or secrets.token_hex(16), certificate=certificate, issuer=issuer,
                       holder_key=holder_key, grantee=grantee, purpose=purpose, not_before=int(not_before),
                       expires=int(expires), fields=None if fields is None else tuple(fields),
                       wrapped_key=wrapped_key)
        obj = unsigned.unsigned_json()
        return cls._from_obj({**obj, "signature": None}, signed=False)

    def sign(self, key: HolderKey) -> Grant:
        if key.public.spki_der != self.holder_key.spki_der:
            raise ValidationError("the grant must be signed with the holder key it names", code="holder_mismatch")
        signed = key.sign_object(self.unsigned_json())
        return dataclasses.replace(self, signature=signed["signature"])

    # -- wire form ---------------------------------------------------------------------------------
    def unsigned_json(self) -> dict[str, Any]:
        return {"type": GRANT_TYPE, "v": 1, "id": self.id, "certificate": self.certificate, "issuer": self.issuer,
                "holder_key": self.holder_key.spki_b64url, "grantee": self.grantee.to_json(),
                "purpose": self.purpose, "not_before": format_time(self.not_before),
                "expires": format_time(self.expires), "fields": None if self.fields is None else list(self.fields),
                "wrapped_key": self.wrapped_key}

    def to_json(self) -> dict[str, Any]:
        if self.signature is None:
            raise ValidationError("the grant is not signed", code="unsigned_grant")
        return {**self.unsigned_json(), "signature": self.signature}

    def canonical(self) -> bytes:
        return rfc8785.dumps(self.to_json())

    @property
    def digest(self) -> bytes:
        """SHA-256 of the canonical signed grant: its on-chain key."""
        return hashlib.sha256(self.canonical()).digest()

    def signature_valid(self) -> bool:
        return self.signature is not None and self.holder_key.verify_object(self.to_json())

    @property
    def holder_key_id(self) -> str:
        return self.holder_key.key_id

    def allows_fields(self, shown: Iterable[str]) -> list[str]:
        """The shown fields outside this grant's scope (the identifier and holder key id are always allowed)."""
        if self.fields is None:
            return []
        allowed = {*self.fields, ID_FIELD, HOLDER_KEY_FIELD}
        return sorted(f for f in shown if f not in allowed)

    # -- parsing -----------------------------------------------------------------------------------
    @classmethod
    def parse(cls, obj: Mapping[str, Any] | str | bytes) -> Grant:
        """A signed grant from JSON; PayloadFormatError(code="invalid_grant") naming the first problem. The
        signature's *validity* is not checked here (`signature_valid`): a grant with a bad signature is a grant
        whose verification says ``bad_signature``."""
        if isinstance(obj, (str, bytes, bytearray)):
            if len(obj) > MAX_GRANT_BYTES:
                raise _bad(f"a grant is at most {MAX_GRANT_BYTES} bytes")
            try:
                obj = json.loads(obj)
            except (ValueError, RecursionError) as exc:
                raise _bad(f"grant is not JSON: {exc}") from None
        return cls._from_obj(obj, signed=True)

    @classmethod
    def _from_obj(cls, obj: Any, *, signed: bool) -> Grant:
        if not isinstance(obj, Mapping) or set(obj) != _KEYS:
            found = sorted(map(str, obj)) if isinstance(obj, Mapping) else type(obj).__name__
            raise _bad(f"a grant must be an object with keys {sorted(_KEYS)}, got {found}")
        if obj["type"] != GRANT_TYPE or obj["v"] != 1 or isinstance(obj["v"], bool):
            raise _bad(f"not a {GRANT_TYPE} v1: type {str(obj['type'])[:40]!r}, v {str(obj['v'])[:10]!r}")
        grantee = obj["grantee"]
        if not isinstance(grantee, Mapping) or set(grantee) != {"kind", "digest"} or \
                grantee["kind"] not in ("agency", "person"):
            raise _bad('grant grantee must be {"kind": "agency"|"person", "digest": <hex>}')
        try:
            issuer = validate_uscc(obj["issuer"])
            holder_key = HolderPublicKey.from_b64url(obj["holder_key"])
            purpose = obj["purpose"]
            if not isinstance(purpose, str) or not purpose.strip() or len(purpose) > MAX_PURPOSE:
                raise _bad(f"grant purpose (申请事由) must be 1..{MAX_PURPOSE} characters")
            _text(purpose, "purpose")
            not_before = parse_time(obj["not_before"], "not_before", code="invalid_grant")
            expires = parse_time(obj["expires"], "expires", code="invalid_grant")
        except PayloadFormatError:
            raise
        except ValidationError as exc:
            raise _bad(f"grant: {exc.message}") from None
        if expires <= not_before:
            raise _bad("grant expires must be after not_before")
        wrapped = obj["wrapped_key"]
        if wrapped is not None and (not isinstance(wrapped, str) or not 0 < len(wrapped) <= 400):
            raise _bad("grant wrapped_key must be null or a base64url string")
        if wrapped is not None:
            _b64(wrapped, "wrapped_key", 400)
        signature = obj["signature"]
        if signed:
            _b64(signature, "grant signature", 200)
        elif signature is not None:
            raise _bad("an unsigned grant has a signature")
        return cls(id=_hex(obj["id"], _HEX32, "id"), certificate=_hex(obj["certificate"], _HEX64, "certificate"),
                   issuer=issuer, holder_key=holder_key,
                   grantee=Grantee(grantee["kind"], bytes.fromhex(_hex(grantee["digest"], _HEX64, "grantee digest"))),
                   purpose=purpose, not_before=not_before, expires=expires, fields=_fields(obj["fields"]),
                   wrapped_key=wrapped, signature=signature)

    # -- QR ------------------------------------------------------------------------------------------
    def qr(self, person_salt: bytes | None = None) -> str:
        text = GRANT_QR_PREFIX + b64url_encode(self.canonical())
        return text if person_salt is None else f"{text}.{b64url_encode(person_salt)}"

    @classmethod
    def from_qr(cls, text: str) -> tuple[Grant, bytes | None]:
        """(grant, person salt or None) from a grant QR's text."""
        if not isinstance(text, str) or not text.startswith(GRANT_QR_PREFIX):
            raise _bad(f"a grant QR starts with {GRANT_QR_PREFIX!r}")
        body, _, salt_text = text[len(GRANT_QR_PREFIX):].partition(".")
        grant = cls.parse(_b64(body, "grant QR", 2 * MAX_GRANT_BYTES))
        salt = _b64(salt_text, "grantee salt", 64) if salt_text else None
        if salt is not None and len(salt) != PERSON_SALT_SIZE:
            raise _bad(f"the grantee salt must be {PERSON_SALT_SIZE} bytes")
        return grant, salt


@dataclass(frozen=True)
class GrantRevocation:
    """The holder's signed statement revoking a grant."""

    grant: str  # grant digest hex
    time: int
    signature: str | None = None

    @classmethod
    def build(cls, grant_digest: bytes | str, time: int) -> GrantRevocation:
        digest = grant_digest.hex() if isinstance(grant_digest, bytes) else grant_digest
        return cls(_hex(digest, _HEX64, "digest"), int(time))

    def unsigned_json(self) -> dict[str, Any]:
        return {"type": REVOCATION_TYPE, "grant": self.grant, "time": format_time(self.time)}

    def sign(self, key: HolderKey) -> GrantRevocation:
        return dataclasses.replace(self, signature=key.sign_object(self.unsigned_json())["signature"])

    def to_json(self) -> dict[str, Any]:
        if self.signature is None:
            raise ValidationError("the revocation is not signed", code="unsigned_revocation")
        return {**self.unsigned_json(), "signature": self.signature}

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(rfc8785.dumps(self.to_json())).digest()

    def signed_by(self, key: HolderPublicKey) -> bool:
        return self.signature is not None and key.verify_object(self.to_json())

    @classmethod
    def parse(cls, obj: Any) -> GrantRevocation:
        if not isinstance(obj, Mapping) or set(obj) != {"type", "grant", "time", "signature"} \
                or obj["type"] != REVOCATION_TYPE:
            raise _bad(f"a revocation must be {{type: {REVOCATION_TYPE}, grant, time, signature}}",
                       code="invalid_revocation")
        try:
            t = parse_time(obj["time"], "time", code="invalid_revocation")
            b64url_decode(obj["signature"], "revocation signature", code="invalid_revocation", max_length=200)
        except ValidationError as exc:  # PayloadFormatError, with this format's code
            raise _bad(exc.message, code="invalid_revocation") from None
        if not isinstance(obj["grant"], str) or not _HEX64.fullmatch(obj["grant"]):
            raise _bad("revocation grant must be the grant digest (64 lower-case hex digits)",
                       code="invalid_revocation")
        return cls(obj["grant"], t, obj["signature"])
