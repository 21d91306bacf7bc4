"""Identifiers the registry speaks: USCC (统一社会信用代码, GB 32100-2015), the e-certificate identifier
(电子证照标识, GB/T 36904 style), 星火 BID (BIF RFC-003/005) and Ethereum accounts, plus a classifier
for the resolver endpoint (多标识融合: BID <-> USCC <-> account).

Check characters are never written by hand: python-stdnum's `cn.uscc` and `iso7064.mod_37_36` do it.

>>> validate_uscc("91110000600037341L")
'91110000600037341L'
>>> cid = CertificateId.build("11230000MB1A00028M001", "11230000MB1A00028M", 7)
>>> str(cid)
'1.2.156.3005.2.11230000MB1A00028M001.11230000MB1A00028M.000000000007.001.B'
>>> CertificateId.parse(str(cid)).next_version().version
2
>>> parse_bid(bid_from_private_key(bytes(31) + b"\\x01")).crypto
's'
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import Literal

from stdnum import exceptions as stdnum_exc
from stdnum.cn import uscc as _uscc
from stdnum.iso7064 import mod_37_36

from registry.consortium.bid import (  # re-exported: BIDs are identifiers too
    BID_PREFIX,
    Bid,
    bid_from_ed25519_public_key,
    bid_from_private_key,
    bid_from_secp256k1_public_key,
    bid_from_sm2_public_key,
    eth_address_from_private_key,
    eth_address_from_public_key,
    is_bid,
    parse_bid,
)
from registry.errors import ValidationError

__all__ = [
    "BID_PREFIX",
    "CERTIFICATE_OID_PREFIX",
    "Bid",
    "CertificateId",
    "IdentifierKind",
    "bid_from_ed25519_public_key",
    "bid_from_private_key",
    "bid_from_secp256k1_public_key",
    "bid_from_sm2_public_key",
    "bytes32_to_uscc",
    "classify_identifier",
    "eth_address_from_private_key",
    "eth_address_from_public_key",
    "is_bid",
    "parse_bid",
    "uscc_to_bytes32",
    "validate_uscc",
]

# --- USCC (GB 32100-2015) ---------------------------------------------------------------------------

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z


def validate_uscc(text: str) -> str:
    """Return the compact USCC, or raise ValidationError(code="invalid_uscc") naming the problem."""
    if not isinstance(text, str):
        raise ValidationError(f"USCC must be a string, got {type(text).__name__}", code="invalid_uscc")
    return _validate_uscc(text)


@functools.lru_cache(maxsize=4096)  # the same agencies' codes are checked for every field of every document
def _validate_uscc(text: str) -> str:
    number = _uscc.compact(text)
    try:
        return _uscc.validate(number)
    except stdnum_exc.InvalidLength:
        raise ValidationError(
            f"USCC {number!r} has {len(number)} characters, expected 18", code="invalid_uscc"
        ) from None
    except stdnum_exc.InvalidFormat:
        raise ValidationError(_uscc_format_problem(number), code="invalid_uscc") from None
    except stdnum_exc.InvalidChecksum:
        raise ValidationError(
            f"USCC {number} has check character {number[-1]}, expected {_uscc.calc_check_digit(number)}",
            code="invalid_uscc",
        ) from None


@functools.lru_cache(maxsize=4096)  # stdnum's clean() is slow; identifiers name the same few agencies
def _compact_uscc(text: str) -> str:
    return str(_uscc.compact(text))


@functools.lru_cache(maxsize=16384)  # an identifier is built, printed and parsed several times while issuing
def _check_character(body: str) -> str:
    return str(mod_37_36.calc_check_digit(body))


def _uscc_format_problem(number: str) -> str:
    for pos, ch in enumerate(number, start=1):
        if pos <= 8 and not ch.isdigit():
            return f"USCC {number} has {ch!r} at position {pos}, expected a digit (positions 1-8 are digits)"
        if pos > 8 and ch not in _USCC_ALPHABET:
            return (
                f"USCC {number} has {ch!r} at position {pos}, expected a digit or a capital letter "
                "other than I, O, S, V, Z"
            )
    return f"USCC {number} is not well formed"  # pragma: no cover - stdnum and this loop agree


def uscc_to_bytes32(text: str) -> bytes:
    """The on-chain form: the 18 ASCII characters right-padded with zero bytes to 32 bytes."""
    return validate_uscc(text).encode("ascii").ljust(32, b"\x00")


def bytes32_to_uscc(data: bytes) -> str:
    """Inverse of `uscc_to_bytes32`; refuses anything that is not a padded valid USCC."""
    if not isinstance(data, (bytes, bytearray)) or len(data) != 32:
        found = f"{len(data)} bytes" if isinstance(data, (bytes, bytearray)) else type(data).__name__
        raise ValidationError(f"USCC bytes32 must be 32 bytes, got {found}", code="invalid_uscc")
    body, padding = bytes(data[:18]), bytes(data[18:])
    if padding.strip(b"\x00"):
        raise ValidationError("USCC bytes32 must be zero-padded after 18 characters", code="invalid_uscc")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise ValidationError("USCC bytes32 does not hold ASCII characters", code="invalid_uscc") from None
    if text != _uscc.compact(text):
        raise ValidationError(f"USCC bytes32 holds {text!r}, not a compact USCC", code="invalid_uscc")
    return validate_uscc(text)


# --- certificate identifier (GB/T 36904 style) ------------------------------------------------------

CERTIFICATE_OID_PREFIX = "1.2.156.3005.2"
_SERIAL = re.compile(r"[0-9A-Z]{1,20}")
_TYPE_SUFFIX = re.compile(r"[0-9]{3}")
_VERSION = re.compile(r"[0-9]{3}")
_SERIAL_WIDTH = 12  # our own serials are zero-padded 12-digit numbers


def _invalid_id(message: str, part: str) -> ValidationError:
    return ValidationError(message, code="invalid_identifier", details={"part": part})


def _check_type_code(type_code: object) -> str:
    if not isinstance(type_code, str) or len(type_code) != 21:
        found = f"{len(type_code)} characters" if isinstance(type_code, str) else type(type_code).__name__
        raise _invalid_id(
            f"证照类型代码 must be 21 characters (authority USCC + 3 digits), got {found}", "type_code"
        )
    if not _TYPE_SUFFIX.fullmatch(type_code[18:]):
        raise _invalid_id(f"证照类型代码 {type_code} must end in 3 digits, got {type_code[18:]!r}", "type_code")
    try:
        validate_uscc(type_code[:18])
    except ValidationError as exc:
        raise _invalid_id(f"证照类型代码 {type_code}: defining authority {exc.message}", "type_code") from None
    return type_code


@dataclass(frozen=True, slots=True)
class CertificateId:
    """``1.2.156.3005.2.<证照类型代码>.<颁发机构代码>.<流水号>.<版本号>.<校验位>``.

    The check character is ISO 7064 MOD 37,36 over 证照类型代码 + 颁发机构代码 + 流水号 + 版本号 (no dots).
    """

    type_code: str
    issuer_uscc: str
    serial: str
    version: int = 1
    # the identifier's text, made once: an issued document's is asked for three times (~0.7 us each: the check
    # character is a Python loop over ~50 characters)
    _text: str = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_type_code(self.type_code)
        try:
            validate_uscc(self.issuer_uscc)
        except ValidationError as exc:
            raise _invalid_id(f"颁发机构代码: {exc.message}", "issuer_uscc") from None
        if not isinstance(self.issuer_uscc, str) or self.issuer_uscc != _compact_uscc(self.issuer_uscc):
            raise _invalid_id(f"颁发机构代码 must be a compact USCC, got {self.issuer_uscc!r}", "issuer_uscc")
        if not isinstance(self.serial, str) or not _SERIAL.fullmatch(self.serial):
            raise _invalid_id(f"流水号 must be 1-20 characters of 0-9 A-Z, got {self.serial!r}", "serial")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or not 1 <= self.version <= 999:
            raise _invalid_id(f"版本号 must be an integer from 1 to 999, got {self.version!r}", "version")
        object.__setattr__(self, "_text", ".".join((CERTIFICATE_OID_PREFIX, self.type_code, self.issuer_uscc, self.serial,
                                                     f"{self.version:03d}", self.check_character)))

    @classmethod
    def build(cls, type_code: str, issuer_uscc: str, serial: int | str, version: int = 1) -> CertificateId:
        """Build an identifier; an integer serial becomes a zero-padded 12-digit 流水号."""
        if isinstance(serial, int) and not isinstance(serial, bool):
            if not 0 <= serial < 10**_SERIAL_WIDTH:
                raise _invalid_id(f"流水号 must be between 0 and {10**_SERIAL_WIDTH - 1}, got {serial}", "serial")
            serial = f"{serial:0{_SERIAL_WIDTH}d}"
        if not isinstance(serial, str):
            raise _invalid_id(f"流水号 must be an integer or a string, got {type(serial).__name__}", "serial")
        issuer = _compact_uscc(issuer_uscc) if isinstance(issuer_uscc, str) else issuer_uscc
        return cls(type_code=type_code, issuer_uscc=issuer, serial=serial, version=version)

    @classmethod
    def parse(cls, text: str) -> CertificateId:
        """Parse and check an identifier, saying exactly which part is wrong."""
        if not isinstance(text, str):
            raise _invalid_id(f"certificate identifier must be a string, got {type(text).__name__}", "text")
        return _parse_certificate_id(text)

    @classmethod
    def _parse(cls, text: str) -> CertificateId:
        text = text.strip()
        if not text.startswith(CERTIFICATE_OID_PREFIX + "."):
            raise _invalid_id(
                f"certificate identifier must start with {CERTIFICATE_OID_PREFIX}., got {text[:20]!r}", "prefix"
            )
        parts = text[len(CERTIFICATE_OID_PREFIX) + 1 :].split(".")
        if len(parts) != 5:
            raise _invalid_id(
                "certificate identifier must have 5 parts after the prefix "
                f"(证照类型代码.颁发机构代码.流水号.版本号.校验位), got {len(parts)}",
                "structure",
            )
        type_code, issuer, serial, version, check = parts
        if not _VERSION.fullmatch(version):
            raise _invalid_id(f"版本号 must be 3 digits, got {version!r}", "version")
        cid = cls(type_code=type_code, issuer_uscc=issuer, serial=serial, version=int(version))
        if len(check) != 1:
            raise _invalid_id(f"校验位 must be one character, got {check!r}", "check")
        if check != cid.check_character:
            raise _invalid_id(
                f"校验位 of {text} is {check!r}, expected {cid.check_character!r} (ISO 7064 MOD 37,36)", "check"
            )
        return cid

    @property
    def check_character(self) -> str:
        return _check_character(self.type_code + self.issuer_uscc + self.serial + f"{self.version:03d}")

    @property
    def authority_uscc(self) -> str:
        """The defining authority's USCC (first 18 characters of 证照类型代码)."""
        return self.type_code[:18]

    def next_version(self) -> CertificateId:
        """The identifier of a corrected reissue (版本号 + 1)."""
        if self.version >= 999:
            raise _invalid_id(f"版本号 cannot go beyond 999 for {self}", "version")
        return dataclasses.replace(self, version=self.version + 1)

    def __str__(self) -> str:
        return self._text




# --- resolver ---------------------------------------------------------------------------------------------

IdentifierKind = Literal["bid", "uscc", "address", "certificate"]
_ADDRESS = re.compile(r"0[xX][0-9a-fA-F]{40}")


def classify_identifier(text: str) -> tuple[IdentifierKind, str]:
    """Recognise a BID, USCC, account address or certificate identifier and normalise it.

    Raises ValidationError(code="invalid_identifier"); ``details["kind"]`` names the kind it looked like.
    """
    if not isinstance(text, str):
        raise ValidationError(f"identifier must be a string, got {type(text).__name__}", code="invalid_identifier")
    value = text.strip()
    kind: IdentifierKind
    try:
        if value.startswith("did:"):
            kind = "bid"
            return kind, str(parse_bid(value))
        if value[:2] in ("0x", "0X"):
            kind = "address"
            return kind, _normalise_address(value)
        if value.startswith("1.2.156."):
            kind = "certificate"
            return kind, str(CertificateId.parse(value))
        if len(_uscc.compact(value)) == 18:
            kind = "uscc"
            return kind, validate_uscc(value)
    except ValidationError as exc:
        raise ValidationError(
            exc.message, code="invalid_identifier", details={"kind": kind, "reason": exc.code, **exc.details}
        ) from exc
    raise ValidationError(
        f"identifier {value[:60]!r} is none of: BID (did:bid:...), USCC (18 characters), "
        f"account address (0x + 40 hex), certificate identifier ({CERTIFICATE_OID_PREFIX}....)",
        code="invalid_identifier",
    )


def validate_account(value: str) -> str:
    """An account address (0x + 40 hex, EIP-55 checked when mixed case), checksummed."""
    return _normalise_address(value)


def _normalise_address(value: str) -> str:
    # eth-utils loads here, not with this module: parsing a certificate identifier (every CLI verify) needs none of it
    from eth_utils.address import is_checksum_address, to_checksum_address

    if not _ADDRESS.fullmatch(value):
        raise ValidationError(f"account address must be 0x + 40 hex digits, got {value[:50]!r}", code="invalid_address")
    body = value[2:]
    # EIP-55: mixed case carries a checksum; a mixed-case address that fails it is a typo, not an address.
    if body != body.lower() and body != body.upper() and not is_checksum_address("0x" + body):
        raise ValidationError(f"account address {value} fails its EIP-55 checksum", code="invalid_address")
    return to_checksum_address("0x" + body)


@functools.lru_cache(maxsize=16384)  # a value object: issuing and verifying parse one identifier several times
def _parse_certificate_id(text: str) -> CertificateId:
    return CertificateId._parse(text)
