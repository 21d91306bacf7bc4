"""Making and reading the seal structures: the GB/T 38540 SESeal (制章: signed by the seal maker), and the
sealed signature of one document (用章) — an SES_Signature in the `gm` profile, a signed JSON proof carrying
the same information in the `intl` profile (registry/crypto/proofs.py):

    {"format": "lianzheng-seal-signature/1", "document": <identifier>, "digest": {"sha256", "sm3"},
     "time": <ISO 8601 UTC>, "seseal": <base64 DER SESeal>, "proof": {... ES256K by the seal's key}}

    >>> der = make_seseal(spec, seal_key, maker)                                  # doctest: +SKIP
    >>> proof = make_sealed_signature(der, seal_key, "1.2.156...", sha, sm3, now)  # doctest: +SKIP
    >>> read_sealed_signature(proof).verify()                                      # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization

from registry.crypto.proofs import sign_json, verify_json
from registry.errors import SignatureError, ValidationError
from registry.seals.asn1 import (
    ALGORITHM_OF_OID,
    CATEGORY_OID,
    SIGNATURE_OIDS,
    SealInfo,
    SESeal,
    SESSignature,
    TBSSign,
    bits_of,
    signed_seal_bytes,
    signed_signature_bytes,
)
from registry.seals.images import SealImage
from registry.seals.keys import SealKey, verify_raw

__all__ = ["JSON_FORMAT", "ParsedSeal", "SealSpec", "SealedProof", "make_sealed_signature", "make_seseal",
           "parse_seseal", "read_sealed_signature"]

JSON_FORMAT = "lianzheng-seal-signature/1"
SES_SIGNATURE, JSON_PROOF = "ses-signature", "json-proof"
_VID = "lianzheng"
# GB/T 38540 SES_ESPropertyInfo.type: 1 单位印章 (an organisation's seal); the kind of 单位印章 (公章, 业务专用章 …)
# rides in an extension (CATEGORY_OID)
_ORGANISATION_SEAL = 1


@dataclass(frozen=True)
class SealSpec:
    es_id: str
    name: str
    category: str
    image: SealImage
    width_mm: int
    height_mm: int
    created: dt.datetime
    valid_from: dt.datetime
    valid_until: dt.datetime


def make_seseal(spec: SealSpec, seal_key: SealKey, maker: SealKey) -> bytes:
    """The DER SESeal: the seal's information, image and signer (the seal key), signed by the maker."""
    info = SealInfo({
        "header": {"ID": "ES", "version": 4, "Vid": _VID},
        "esID": spec.es_id,
        "property": {"type": _ORGANISATION_SEAL, "name": spec.name, "certListType": 1, "certList": [seal_key.spki],
                     "createDate": _utc(spec.created), "validStart": _utc(spec.valid_from),
                     "validEnd": _utc(spec.valid_until)},
        "picture": {"type": spec.image.kind, "data": spec.image.data, "width": spec.width_mm,
                    "height": spec.height_mm},
        "extDatas": [{"extnID": CATEGORY_OID, "critical": False, "extnValue": spec.category.encode()}],
    })
    oid = SIGNATURE_OIDS[maker.algorithm]
    signature = maker.signer.sign(signed_seal_bytes(info, maker.spki, oid))
    return bytes(SESeal({"eSealInfo": info, "cert": maker.spki, "signAlgID": oid, "signedValue": signature}).dump())


@dataclass(frozen=True)
class ParsedSeal:
    """An SESeal read back: what a verifier compares with the chain."""

    der: bytes
    es_id: str
    name: str
    category: str
    image_type: str
    image: bytes
    signer_keys: tuple[bytes, ...]  # DER SPKIs of certList
    valid_start: dt.datetime
    valid_end: dt.datetime
    maker_key: bytes  # DER SPKI (the `cert` field)
    algorithm: str
    _info: bytes
    _signed_value: bytes

    @property
    def image_digest(self) -> bytes:
        return hashlib.sha256(self.image).digest()

    @property
    def seal_info_digest(self) -> bytes:
        return hashlib.sha256(self._info).digest()

    @property
    def maker_key_digest(self) -> bytes:
        return hashlib.sha256(self.maker_key).digest()

    def verify(self) -> None:
        """SignatureError unless the maker's signature over the seal verifies under `maker_key` (one seal signs
        thousands of documents: a signature that verified is remembered, by every byte it was checked over)."""
        _verify_seal(self.algorithm, self.maker_key, self._info, self._signed_value)


@functools.lru_cache(maxsize=32)  # an entry holds a seal image (<= 256 KiB)
def _verify_seal(algorithm: str, maker_key: bytes, info_der: bytes, signed_value: bytes) -> None:
    message = signed_seal_bytes(SealInfo.load(info_der), maker_key, SIGNATURE_OIDS[algorithm])
    verify_raw(algorithm, maker_key, message, signed_value)  # raises: a failure is never cached


def parse_seseal(der: bytes) -> ParsedSeal:
    """ValidationError (``invalid_seseal``) for bytes that are not a version 4 SESeal. The same seal rides in
    every sealed signature it made: its parse is remembered (ParsedSeal is immutable)."""
    return _parse_seseal(bytes(der))


@functools.lru_cache(maxsize=32)  # an entry holds a seal image (<= 256 KiB)
def _parse_seseal(der: bytes) -> ParsedSeal:
    try:
        seal = SESeal.load(bytes(der), strict=True)
        info = seal["eSealInfo"]
        prop, pic = info["property"], info["picture"]
        category = next((bytes(e["extnValue"].native).decode() for e in (info["extDatas"] or [])
                         if e["extnID"].dotted == CATEGORY_OID), "")
        algorithm = ALGORITHM_OF_OID.get(seal["signAlgID"].dotted)
        if algorithm is None:
            raise ValidationError(f"unsupported seal signature algorithm {seal['signAlgID'].dotted}",
                                  code="invalid_seseal")
        if info["header"]["version"].native != 4 or info["header"]["ID"].native != "ES":
            raise ValidationError("not a GB/T 38540 version 4 seal (header)", code="invalid_seseal")
        return ParsedSeal(
            der=bytes(der), es_id=info["esID"].native, name=prop["name"].native, category=category,
            image_type=pic["type"].native, image=bytes(pic["data"].native), signer_keys=tuple(
                bytes(c.native) for c in prop["certList"]),
            valid_start=prop["validStart"].native, valid_end=prop["validEnd"].native,
            maker_key=bytes(seal["cert"].native), algorithm=algorithm, _info=bytes(info.dump()),
            _signed_value=bits_of(seal["signedValue"]))
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError(f"not a GB/T 38540 SESeal ({exc})", code="invalid_seseal") from exc


@dataclass(frozen=True)
class SealedProof:
    """A sealed signature read back, in either format."""

    format: str
    seal: ParsedSeal
    document: str
    data_hash: bytes  # SM3 digest (SES_Signature) or SHA-256 digest (JSON proof) of the document
    time: dt.datetime
    signer_key: bytes  # DER SPKI
    _message: bytes
    _signature: bytes

    @property
    def signer_key_digest(self) -> bytes:
        return hashlib.sha256(self.signer_key).digest()

    def verify(self) -> None:
        """SignatureError unless the seal key's signature verifies and that key is the seal's (certList)."""
        if self.signer_key not in self.seal.signer_keys:
            raise SignatureError("the signer's key is not the seal's key (SES_SealInfo certList)",
                                 code="seal_key_mismatch")
        if self.format == SES_SIGNATURE:
            verify_raw(self.seal.algorithm, self.signer_key, self._message, self._signature)


def make_sealed_signature(seseal_der: bytes, seal_key: SealKey, identifier: str, sha256: bytes, sm3: bytes,
                          when: dt.datetime) -> tuple[str, bytes]:
    """(format, bytes): an SES_Signature over the SM3 digest (SM2 seal key), else a JSON proof (ES256K)."""
    if seal_key.algorithm == "sm2":
        tbs = TBSSign({"version": 4, "eseal": SESeal.load(seseal_der), "timeInfo": _utc(when), "dataHash": sm3,
                       "propertyInfo": identifier})
        oid = SIGNATURE_OIDS["sm2"]
        signature = seal_key.signer.sign(signed_signature_bytes(tbs, seal_key.spki, oid))
        return SES_SIGNATURE, bytes(SESSignature({"toSign": tbs, "cert": seal_key.spki, "signatureAlgID": oid,
                                                  "signature": signature}).dump())
    body = {"format": JSON_FORMAT, "document": identifier, "digest": {"sha256": sha256.hex(), "sm3": sm3.hex()},
            "time": _utc(when).isoformat().replace("+00:00", "Z"), "seseal": base64.b64encode(seseal_der).decode()}
    return JSON_PROOF, json.dumps(sign_json(body, seal_key.signer), ensure_ascii=False).encode()


def read_sealed_signature(fmt: str, data: bytes) -> SealedProof:
    """Parse a stored sealed signature (ValidationError ``invalid_sealed_signature`` if it cannot be read;
    the JSON proof's signature is checked here, the SES_Signature's by `verify`)."""
    try:
        if fmt == SES_SIGNATURE:
            sig = SESSignature.load(bytes(data), strict=True)
            tbs = sig["toSign"]
            oid = sig["signatureAlgID"].dotted
            return SealedProof(SES_SIGNATURE, parse_seseal(tbs["eseal"].dump()), tbs["propertyInfo"].native,
                               bits_of(tbs["dataHash"]), tbs["timeInfo"].native, bytes(sig["cert"].native),
                               signed_signature_bytes(tbs, bytes(sig["cert"].native), oid), bits_of(sig["signature"]))
        obj: dict[str, Any] = json.loads(bytes(data))
        if obj.get("format") != JSON_FORMAT:
            raise ValidationError(f"not a {JSON_FORMAT} object", code="invalid_sealed_signature")
        signed_by = verify_json(obj)
        key = serialization.load_pem_public_key(signed_by.key_pem)
        spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        when = dt.datetime.fromisoformat(str(obj["time"]).replace("Z", "+00:00"))
        return SealedProof(JSON_PROOF, parse_seseal(base64.b64decode(obj["seseal"], validate=True)),
                           str(obj["document"]), bytes.fromhex(obj["digest"]["sha256"]), when, spki, b"", b"")
    except SignatureError:
        raise
    except ValidationError as exc:
        raise ValidationError(exc.message, code="invalid_sealed_signature") from exc
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise ValidationError(f"the sealed signature cannot be read ({exc})", code="invalid_sealed_signature") from exc


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)

