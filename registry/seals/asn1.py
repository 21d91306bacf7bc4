"""GB/T 38540-2020 (安全电子签章密码技术规范) structures, version 4, in asn1crypto: the e-seal (SESeal) the
seal-making authority signs, and the sealed signature (SES_Signature) made with a seal.

    SESeal ::= SEQUENCE {
        eSealInfo   SES_SealInfo,
        cert        OCTET STRING,          -- 制章人 (seal maker) signer: see docs/SEALS.md, "cert"
        signAlgID   OBJECT IDENTIFIER,
        signedValue BIT STRING }           -- over DER(SEQUENCE {eSealInfo, cert, signAlgID})
    SES_SealInfo ::= SEQUENCE {
        header   SES_Header,               -- {ID IA5String "ES", version INTEGER 4, Vid IA5String}
        esID     IA5String,
        property SES_ESPropertyInfo,
        picture  SES_ESPictrueInfo,        -- {type IA5String, data OCTET STRING, width, height INTEGER}
        extDatas ExtensionDatas OPTIONAL }
    SES_ESPropertyInfo ::= SEQUENCE {
        type INTEGER, name UTF8String, certListType INTEGER (1: certs, 2: digests),
        certList SES_CertList, createDate, validStart, validEnd GeneralizedTime }
    SES_Signature ::= SEQUENCE {
        toSign TBS_Sign, cert OCTET STRING, signatureAlgID OBJECT IDENTIFIER,
        signature BIT STRING,              -- over DER(SEQUENCE {toSign, cert, signatureAlgID})
        timeStamp [0] BIT STRING OPTIONAL }
    TBS_Sign ::= SEQUENCE {
        version INTEGER 4, eseal SESeal, timeInfo GeneralizedTime, dataHash BIT STRING,
        propertyInfo IA5String, extDatas [0] EXPLICIT ExtensionDatas OPTIONAL }

The field order and types follow the standard as implemented by ofdrw's `org.ofdrw.gm.ses.v4` (the
public reference implementation); what is signed follows its v4 container (the signed structure, the
signer's cert and the algorithm OID in one DER SEQUENCE). Deviations are listed in docs/SEALS.md.

>>> oid = SIGNATURE_OIDS["sm2"]
>>> oid
'1.2.156.10197.1.501'
>>> TBSSign.load(TBSSign({"version": 4, "eseal": SESeal.load(_EMPTY_SEAL), "timeInfo": _T, "dataHash": bytes(32),
...                       "propertyInfo": "x"}).dump())["propertyInfo"].native
'x'
"""

from __future__ import annotations

import datetime as dt

from asn1crypto import core

__all__ = [
    "SIGNATURE_OIDS",
    "CertList",
    "ExtData",
    "ExtensionDatas",
    "SESHeader",
    "SESSignature",
    "SESeal",
    "SealInfo",
    "TBSSign",
    "bits_of",
    "signed_seal_bytes",
    "signed_signature_bytes",
]

# GM/T 0006-2012: SM2 signature with SM3; RFC 5758: ECDSA with SHA-256 (here on secp256k1, the intl profile)
SIGNATURE_OIDS = {"sm2": "1.2.156.10197.1.501", "secp256k1": "1.2.840.10045.4.3.2"}
ALGORITHM_OF_OID = {v: k for k, v in SIGNATURE_OIDS.items()}
# the seal's category (公章, 业务专用章 ...) rides in an extension under this UUID OID (ITU-T X.667 arc 2.25)
CATEGORY_OID = "2.25.191483729010873462871290011950336813079"


class SESHeader(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields = [("ID", core.IA5String), ("version", core.Integer), ("Vid", core.IA5String)]


class CertDigestObj(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields = [("type", core.PrintableString), ("value", core.OctetString)]


class CertInfoList(core.SequenceOf):  # type: ignore[misc]  # asn1crypto is untyped
    _child_spec = core.OctetString


class CertList(core.SequenceOf):  # type: ignore[misc]  # asn1crypto is untyped
    """SES_CertList with certListType 1 (a list of certs; each an OCTET STRING)."""

    _child_spec = core.OctetString


class ExtData(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields = [("extnID", core.ObjectIdentifier), ("critical", core.Boolean, {"default": False}),
               ("extnValue", core.OctetString)]


class ExtensionDatas(core.SequenceOf):  # type: ignore[misc]  # asn1crypto is untyped
    _child_spec = ExtData


class PropertyInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields = [("type", core.Integer), ("name", core.UTF8String), ("certListType", core.Integer),
               ("certList", CertList), ("createDate", core.GeneralizedTime), ("validStart", core.GeneralizedTime),
               ("validEnd", core.GeneralizedTime)]


class PictureInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields = [("type", core.IA5String), ("data", core.OctetString), ("width", core.Integer),
               ("height", core.Integer)]


class SealInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields = [("header", SESHeader), ("esID", core.IA5String), ("property", PropertyInfo),
               ("picture", PictureInfo), ("extDatas", ExtensionDatas, {"optional": True})]


class SESeal(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields = [("eSealInfo", SealInfo), ("cert", core.OctetString), ("signAlgID", core.ObjectIdentifier),
               ("signedValue", core.OctetBitString)]


class TBSSign(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields = [("version", core.Integer), ("eseal", SESeal), ("timeInfo", core.GeneralizedTime),
               ("dataHash", core.OctetBitString), ("propertyInfo", core.IA5String),
               ("extDatas", ExtensionDatas, {"explicit": 0, "optional": True})]


class SESSignature(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields = [("toSign", TBSSign), ("cert", core.OctetString), ("signatureAlgID", core.ObjectIdentifier),
               ("signature", core.OctetBitString), ("timeStamp", core.OctetBitString, {"implicit": 0, "optional": True})]


class _SignedSeal(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields = [("eSealInfo", SealInfo), ("cert", core.OctetString), ("signAlgID", core.ObjectIdentifier)]


class _SignedSignature(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields = [("toSign", TBSSign), ("cert", core.OctetString), ("signatureAlgID", core.ObjectIdentifier)]


def signed_seal_bytes(info: SealInfo, cert: bytes, oid: str) -> bytes:
    """What the seal maker signs: DER(SEQUENCE {eSealInfo, cert, signAlgID})."""
    return bytes(_SignedSeal({"eSealInfo": info, "cert": cert, "signAlgID": oid}).dump())


def signed_signature_bytes(tbs: TBSSign, cert: bytes, oid: str) -> bytes:
    """What the sealer signs: DER(SEQUENCE {toSign, cert, signatureAlgID})."""
    return bytes(_SignedSignature({"toSign": tbs, "cert": cert, "signatureAlgID": oid}).dump())


def bits_of(value: core.OctetBitString) -> bytes:
    return bytes(value.native or b"")


_T = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_EMPTY_SEAL = SESeal({
    "eSealInfo": {"header": {"ID": "ES", "version": 4, "Vid": "x"}, "esID": "x",
                  "property": {"type": 1, "name": "x", "certListType": 1, "certList": [], "createDate": _T,
                               "validStart": _T, "validEnd": _T},
                  "picture": {"type": "PNG", "data": b"", "width": 0, "height": 0}},
    "cert": b"", "signAlgID": SIGNATURE_OIDS["sm2"], "signedValue": b""}).dump()
