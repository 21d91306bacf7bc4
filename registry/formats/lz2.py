"""The LZ2 wire format of offline (by-value) QR payloads: encode, decode, sign, recover the signer.

An offline payload carries a certificate's disclosed fields, the leaf hashes of its hidden fields, the
Merkle inclusion proof of the document in its anchored batch, where that batch was anchored, and the
issuing agency's signature, so a verifier with a cached trust list needs no network.

Wire format ``LZ2`` (the ``2`` is the format version; everything after ``LZ2:`` is Base45)::

    text      = "LZ2:" || Base45(zlib(envelope, level 9))          Base45: RFC 9285, zlib: RFC 1950
    envelope  = CBOR [body: bstr, statement]                       CBOR: RFC 8949   (what is written)
              / CBOR [body: bstr, signature: bstr]                  (the first intl form: read, not written)
    statement = [signed_at: uint, signature: bstr .size 65]                       (intl: secp256k1, recoverable)
              / [signed_at: uint, key_id: bstr .size 8, signature: bstr (DER)]    (gm: SM2-SM3)
                the issuer's signature over its batch (registry.formats.batch_statement), not the body
    signature = secp256k1 recoverable, r || s || recid (0..3), over SHA-256(body)   (65 bytes, or empty)
    body      = CBOR [ 2 (format version, also under the signature),
                       identifier: tstr, type_code: tstr,
                       salt_seed: bstr .size 16, or empty,
                       disclosed: {field: value}                  with a salt seed (salts derive from it),
                                  {field: [salt: bstr .size 16, value]}  without,
                       hidden: {field: leaf_hash: bstr .size 32},
                       index: uint, size: uint,
                       proof: bstr (the audit path hashes concatenated, 32 bytes each),
                       chain_id: uint, ledger: bstr .size 20, block_number: uint, block_timestamp: uint,
                       ? sm3: [hidden: {field: sm3_leaf_hash: bstr .size 32},
                               proof: bstr (the SM3 audit path, 32 bytes per hash, as many as ``proof``)] ]

A statement signs the batch (chain, ledger, both roots, signing time): the body is bound to it through the
batch root it leads to, so one signature covers every payload of a batch and a verifier checks it once. The
signed bytes include the batch's SM3 root, which only the trust list holds, so the decoder cannot check or
recover a statement: ``issuer_account`` stays empty, and the verifier finds the issuer (the account that
recovers from an intl statement, the owner of the gm key ``key_id``). An intl statement costs 6 bytes more than
a signature over the body (its ``signed_at`` and the array around it), a gm one ~22 bytes more.

The trailing ``sm3`` item is optional (a body of 13 items has none, and its SM3 check reports not available):
with it a verifier recomputes the SM3 document digest and SM3 batch root and compares the latter with the SM3
root the trust list says was anchored beside the SHA-256 one. It costs 32 bytes per audit-path hash and per
hidden field (~330 bytes, ~500 characters, for a fully disclosed certificate in a 1,000-document batch).

What is *not* on the wire, and how the decoder restores it (LZ1, the first format, carried all of these; it
is no longer read -- it never left development -- and decodes as ``unsupported_version``):

- ``batch_root``: recomputed from the body. The document digest is the RFC 6962 root over the disclosed
  fields' leaves (`registry.certificates.fields.leaf_entry`) and the hidden fields' leaf hashes in the documents'
  path order; the batch root follows from that digest, ``index``, ``size`` and ``proof`` (RFC 9162
  §2.1.3.2). Dropping it loses nothing: the signature covers every input of that computation, so the
  root is exactly as bound by the signature as if it were sent, and a forged proof (or field) only yields
  a root that the trust list / chain does not know -- a verifier must compare the root with the anchored
  one in any case, sent or not. A proof whose length does not fit ``index`` and ``size`` is refused.
- ``issuer_account``: it is the signer. After decoding it is set to the address recovered from the
  signature (empty when the payload is unsigned or no key recovers); whether that account may sign for
  the identifier's agency is the verifier's trust decision, as before.
- ``tx_hash``: it is ``b""`` after decoding. Offline results cite the block (``block_number``,
  ``block_timestamp``) the batch was anchored in, not the transaction.
- per-field salts, when the document's salts derive from one seed (``Document.create`` does that,
  `registry.certificates.fields.derive_salt`): the 16-byte seed travels instead and the decoder re-derives each
  disclosed field's salt. A payload with hidden fields never carries the seed, which would reveal their
  salts and so let anyone test guesses of a hidden value against its leaf hash: it sends per-field salts.

Compactness (a version-25 QR at level M holds 964 compressed bytes): positional arrays instead of named keys, raw bytes
instead of hex, a frozen table ``FIELD_CODES`` turning the standard field names into 1-2 byte integers, and
text values made only of ASCII and common CJK characters stored as GB 18030 bytes (2 bytes per Hanzi
instead of 3 in UTF-8) -- a value that is a CBOR byte string is always such text, since values are never
bytes. The bytes that do not compress are the seed (16), the proof (32 per hash), the ledger address (20)
and the signature (65, with the statement's signing time 71): 421 for a batch of 1,000 documents, down from 793
in LZ1. Encoding is
deterministic (RFC 8949 §4.2.3 length-first map key order) and decoding refuses any body that does not
re-encode to the same bytes, so one payload has exactly one encoding and ``recover_signer`` can re-derive
the signed bytes.

>>> from registry.certificates.documents import derive_salt
>>> seed = bytes(range(16))
>>> shown = {"证照标识": "1.2.156.3005.2.X.Y.1.001.A", "证照名称": "营业执照"}
>>> p = OfflinePayload(identifier="1.2.156.3005.2.X.Y.1.001.A", type_code="X",
...     disclosed={k: (derive_salt(seed, k), v) for k, v in shown.items()}, hidden={},
...     batch_root=bytes(32), index=0, size=1, proof=[], chain_id=31337, ledger=bytes(20),
...     block_number=7, block_timestamp=1_700_000_000, tx_hash=bytes(32), issuer_account=b"", salt_seed=seed)
>>> p = dataclasses.replace(p, batch_root=p.computed_batch_root())  # a batch of one: the document's leaf
>>> signed = sign_payload(p, bytes(31) + b"\\x01")
>>> text = encode_payload(signed)
>>> text[:4]
'LZ2:'
>>> decoded = decode_payload(text)
>>> decoded == dataclasses.replace(signed, tx_hash=b"")  # the transaction hash does not travel
True
>>> recover_signer(decoded), decoded.issuer_account == signed.issuer_account
('0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf', True)
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import cbor2

from registry.certificates import fields
from registry.certificates.fields import derive_salts
from registry.crypto.hashing import sha256
from registry.crypto.signing import SIGNATURE_SIZE, SignatureScheme, Signer, checksum_address, recover_account
from registry.errors import PayloadFormatError, SignatureError, ValidationError
from registry.formats._qr_errors import NOT_OURS as _NOT_OURS
from registry.formats._qr_errors import invalid as _invalid
from registry.formats._qr_errors import truncated as _truncated
from registry.formats.base45 import b45decode, b45encode
from registry.formats.batch_statement import KEY_ID_LEN, BatchStatement
from registry.formats.gb_text import GB_TEXTS as _GB_TEXTS
from registry.formats.gb_text import GB_TEXTS_SIZE as _GB_TEXTS_SIZE
from registry.formats.gb_text import opened as _opened
from registry.formats.gb_text import pack_value as _pack_value
from registry.formats.offline_payload import (
    _CODE_OF,
    _FIELD_NAMES,
    FIELD_CODES,
    HASH_LEN,
    SEED_LEN,
    FieldValue,
    OfflinePayload,
    _describe,
)

try:  # the common case of decoding in C (registry/formats/_lz2.c); without it this module does all the work, as
    from registry.formats import _lz2  # within fields.python_only() (the benches' baseline, the tests' reference)
except ImportError:  # not built (a source checkout without `pip install -e .`)
    _lz2 = None  # type: ignore[assignment]

__all__ = ["FORMAT_VERSION", "PREFIX", "PREFIX_RE", "body_bytes", "decode_payload", "encode_payload",
           "recover_signer", "sign_payload"]

FORMAT_VERSION = 2
PREFIX = f"LZ{FORMAT_VERSION}:"
PREFIX_RE = re.compile(r"LZ(\d{1,3}):")


def body_bytes(payload: OfflinePayload) -> bytes:
    """The deterministic CBOR body: exactly the bytes whose SHA-256 the issuer signs."""
    if payload.salt_seed:  # every salt derives from the seed (checked on construction): send values only
        disclosed: dict[Any, Any] = {_CODE_OF.get(k, k): _pack_value(v) for k, (_, v) in payload.disclosed.items()}
    else:
        disclosed = {_CODE_OF.get(k, k): [salt, _pack_value(v)] for k, (salt, v) in payload.disclosed.items()}
    hidden = {_CODE_OF.get(k, k): leaf for k, leaf in payload.hidden.items()}
    body = [FORMAT_VERSION, payload.identifier, payload.type_code, payload.salt_seed, disclosed, hidden,
            payload.index, payload.size, b"".join(payload.proof), payload.chain_id, payload.ledger,
            payload.block_number, payload.block_timestamp]
    if payload.sm3_proof is not None:
        body.append([{_CODE_OF.get(k, k): leaf for k, leaf in payload.sm3_hidden.items()}, b"".join(payload.sm3_proof)])
    try:
        return cbor2.dumps(body, canonical=True)
    except (cbor2.CBOREncodeError, UnicodeError, ValueError) as exc:  # e.g. a lone surrogate in a string
        raise ValidationError(f"offline payload cannot be encoded as CBOR: {exc}",
                              code="invalid_payload_field") from exc


def encode_payload(payload: OfflinePayload) -> str:
    """``LZ2:`` + Base45(zlib(CBOR [body, signature])): all characters are QR alphanumeric.

    The wire has no batch root, issuer account or transaction hash (module docstring), so a payload whose
    ``batch_root`` is not `OfflinePayload.computed_batch_root`, or whose ``issuer_account`` is neither empty
    nor the signer, is refused (``ValidationError``): it would decode as something else. The ``tx_hash`` is
    dropped; an unsigned payload's ``issuer_account`` too (it decodes empty)."""
    body = body_bytes(payload)
    if payload.computed_batch_root() != payload.batch_root:
        raise ValidationError("offline payload batch_root is not the root its fields, index, size and proof lead "
                              "to; LZ2 does not carry the root, the decoder recomputes it",
                              code="invalid_payload_field")
    if payload.signature and payload.issuer_account:
        signer = _signer_or_empty(body, payload.signature)
        if signer != payload.issuer_account:
            raise ValidationError(f"offline payload issuer_account 0x{payload.issuer_account.hex()} is not the "
                                  f"signer {'0x' + signer.hex() if signer else '(none recovers)'}; LZ2 carries no "
                                  f"issuer account, the decoder takes the signer", code="invalid_payload_field")
    envelope = cbor2.dumps([body, _statement_item(payload.statement) if payload.statement else payload.signature])
    return PREFIX + b45encode(zlib.compress(envelope, 9))


def decode_payload(text: str) -> OfflinePayload:
    """Parse and structurally validate an ``LZ<n>:`` text. The batch root is recomputed, ``issuer_account``
    is the address that recovers from the signature (empty if none does: the signature is not *checked*
    here, see :func:`recover_signer`) and ``tx_hash`` is empty: offline results cite the block, not the tx.

    Raises ``PayloadFormatError`` with code ``not_lianzheng_qr``, ``unsupported_version``,
    ``truncated_payload`` or ``invalid_payload``.
    """
    match = PREFIX_RE.match(text)
    if match is None:
        raise PayloadFormatError(f"{_NOT_OURS}: text does not start with {PREFIX!r}", code="not_lianzheng_qr")
    version = int(match.group(1))
    if match.group(1) != str(FORMAT_VERSION):  # also refuses "LZ02:", another spelling of version 2
        raise PayloadFormatError(
            f"二维码格式版本不受支持 / unsupported QR payload version: expected LZ{FORMAT_VERSION}, "
            f"got LZ{match.group(1)}",
            code="unsupported_version", details={"version": version},
        )
    b45 = text[match.end():]
    in_c = _lz2 is not None and fields.COMPILED
    compressed = _lz2.b45decode(b45) if in_c else None  # None: not strictly Base45, the Python says why
    if compressed is None:
        try:
            compressed = b45decode(b45)
        except PayloadFormatError as exc:
            if exc.code == "invalid_payload" and _cut_mid_group(b45):
                raise _truncated("the text ends in the middle of a Base45 group") from exc
            raise
    inflater = zlib.decompressobj()
    try:
        envelope = inflater.decompress(compressed, _MAX_INFLATED)
    except zlib.error as exc:
        if _cut_mid_group(b45):
            raise _truncated("the text ends in the middle of a Base45 group") from exc
        raise _invalid(f"zlib data is corrupt ({exc})") from exc
    if inflater.unconsumed_tail:
        raise _invalid(f"payload inflates to more than {_MAX_INFLATED} bytes")
    if not inflater.eof:
        raise _truncated("the compressed stream ends early")
    if inflater.unused_data:
        raise _invalid(f"{len(inflater.unused_data)} unexpected bytes after the compressed stream")
    if in_c and (common := _decoded_in_c(envelope)) is not None:
        return common
    outer = _loads(envelope, "envelope")
    if not (isinstance(outer, list) and len(outer) == 2 and isinstance(outer[0], bytes)
            and isinstance(outer[1], bytes | list)):
        raise _invalid("envelope must be a CBOR array [body: bytes, signature: bytes or statement: array]")
    if cbor2.dumps(outer) != envelope:
        raise _invalid("envelope is not in deterministic CBOR encoding")
    body, signed = outer
    statement = _statement(signed) if isinstance(signed, list) else None
    signature = b"" if statement is not None else signed
    raw = _loads(body, "body")
    payload, exact = _payload_from_body(raw, signature, statement)
    # One payload, one encoding: the body must be exactly what body_bytes(payload) writes. ``exact`` says the
    # decoded items are the ones the encoder writes for this payload (field codes for known names, GB 18030
    # bytes for the texts it packs, an integer version, no null SM3 part); then re-encoding them as they are
    # is re-encoding the payload (tests/unit/qr/test_wire.py compares the two on altered bodies).
    if not exact or not _is_canonical(raw, body):
        raise _invalid(f"body is not in the deterministic LZ{FORMAT_VERSION} encoding (RFC 8949 §4.2)")
    if statement is not None:
        return payload  # the issuer is the owner of the statement's key: the verifier's trust list says who
    # The instance has not escaped yet: set the two values the wire does not carry without re-running the
    # validation (an address of 20 bytes or b""; the root is 32 bytes). Offline verification is a hot path.
    object.__setattr__(payload, "issuer_account", _signer_or_empty(body, signature))
    return payload


def _decoded_in_c(envelope: bytes) -> OfflinePayload | None:
    """What the rest of `decode_payload` makes of ``envelope`` when it is in the form the encoder writes and
    valid (registry/formats/_lz2.c parses and checks it, its docstring says what it accepts); None otherwise,
    and the Python decodes it or says what is wrong. tests/unit/qr/test_lz2_c.py compares the two."""
    items = _lz2.parse(envelope, FIELD_CODES, _GB_TEXTS, _GB_TEXTS_SIZE)
    if items is None:
        return None
    (identifier, type_code, seed, names, salts, values, hidden, index, size, proof, chain_id, ledger, block_number,
     block_timestamp, sm3_hidden, sm3_proof, signed, body) = items
    statement = BatchStatement(*signed) if type(signed) is tuple else None  # its checks were made in C
    disclosed = dict(zip(names, zip(derive_salts(seed, names) if salts is None else salts, values, strict=True),
                         strict=True))
    payload = OfflinePayload.__new__(OfflinePayload)
    # every check of OfflinePayload._validate was made in C: set the fields by one update of the instance dict
    payload.__dict__.update(zip(_FIELD_NAMES, (
        identifier, type_code, disclosed, hidden, _NO_ROOT, index, size, proof, chain_id, ledger, block_number,
        block_timestamp, b"", b"", b"" if statement else signed, seed, sm3_hidden or {}, sm3_proof, statement),
        strict=True))
    try:
        root = payload.computed_batch_root()
    except ValidationError:  # the proof does not fit index and size: the Python says so
        return None
    object.__setattr__(payload, "batch_root", root)
    if statement is None and signed:
        object.__setattr__(payload, "issuer_account", _signer_or_empty(body, signed))
    return payload


def sign_payload(payload: OfflinePayload, private_key: bytes) -> OfflinePayload:
    """Return a copy signed with the agency's secp256k1 account key (recoverable ECDSA over SHA-256(body)).
    An empty ``issuer_account`` is filled in with the key's address (what the decoder will report)."""
    signer = Signer.from_private_key(private_key)
    signature = signer.sign(sha256(body_bytes(payload)), SignatureScheme.RECOVERABLE)
    account = payload.issuer_account or signer.account
    return dataclasses.replace(payload, signature=signature, issuer_account=account, statement=None)


def recover_signer(payload: OfflinePayload) -> str:
    """The EIP-55 checksummed address whose key signed this payload. Any change to the body yields another
    address (or none); whether that address may sign for the issuer is the caller's trust decision.
    SignatureError (a ProofError, code ``bad_signature``) when the payload is unsigned or no key recovers."""
    return checksum_address(_recover(body_bytes(payload), payload.signature))


def _statement_item(statement: BatchStatement) -> list[Any]:
    if not statement.key_id:
        return [statement.signed_at, statement.signature]
    return [statement.signed_at, statement.key_id, statement.signature]


def _statement(item: list[Any]) -> BatchStatement:
    intl = len(item) == 2 and type(item[0]) is int and isinstance(item[1], bytes) and len(item[1]) == SIGNATURE_SIZE
    if not intl and not (len(item) == 3 and type(item[0]) is int and isinstance(item[1], bytes)
                         and len(item[1]) == KEY_ID_LEN and isinstance(item[2], bytes)):
        raise _invalid(f"the batch statement must be [signed_at: uint, signature: {SIGNATURE_SIZE} bytes] or "
                       f"[signed_at: uint, key_id: {KEY_ID_LEN} bytes, signature: bytes]")
    try:
        return BatchStatement(item[0], b"", item[1]) if intl else BatchStatement(item[0], item[1], item[2])
    except ValidationError as exc:
        raise _invalid(exc.message) from exc


def _payload_from_body(body: Any, signature: bytes,
                       statement: BatchStatement | None = None) -> tuple[OfflinePayload, bool]:
    """The payload of a decoded body, and whether every item is in the form `body_bytes` writes for it."""
    if not isinstance(body, list) or len(body) not in (_BODY_ITEMS, _BODY_ITEMS + 1):
        raise _invalid(f"body must be a CBOR array of {_BODY_ITEMS} items (or {_BODY_ITEMS + 1} with the SM3 part), "
                       f"got {_describe(body)}")
    if body[0] != FORMAT_VERSION:
        raise PayloadFormatError(
            f"二维码格式版本不受支持 / unsupported QR payload version: body says {body[0]!r}, "
            f"prefix LZ{FORMAT_VERSION}",
            code="unsupported_version",
        )
    (version, identifier, type_code, seed, disclosed, hidden, index, size, proof, chain_id, ledger, block_number,
     block_timestamp) = body[:_BODY_ITEMS]
    exact = type(version) is int and (len(body) == _BODY_ITEMS or body[_BODY_ITEMS] is not None)
    sm3_hidden, sm3_proof, sm3_exact = _sm3_part(body[_BODY_ITEMS] if len(body) > _BODY_ITEMS else None)
    if not isinstance(disclosed, dict) or not isinstance(hidden, dict):
        raise _invalid("disclosed and hidden fields must be CBOR maps")
    if not isinstance(proof, bytes) or len(proof) % HASH_LEN:
        raise _invalid(f"proof must be a byte string of 32-byte hashes, got {_describe(proof)}")
    if not isinstance(seed, bytes) or len(seed) not in (0, SEED_LEN):
        raise _invalid(f"salt seed must be {SEED_LEN} bytes or empty, got {_describe(seed)}")
    keys = list(disclosed)
    if set(map(type, keys)) <= _INT_ONLY:  # the encoder's form: every name has a code
        names = [FIELD_CODES[k] if 0 <= k < _N_CODES else _field_name(k) for k in keys]
    else:
        names = [FIELD_CODES[k] if type(k) is int and 0 <= k < _N_CODES else _field_name(k) for k in keys]
        exact = exact and not any(type(k) is str and k in _CODE_OF for k in keys)
    if seed:  # the salts derive from the seed (each once, the HMAC pads once): the map holds values only
        fields: Iterable[tuple[str, bytes, Any]] = zip(names, derive_salts(seed, names), disclosed.values(),
                                                       strict=True)
    else:
        fields = _salted(names, disclosed.values())
    opened: dict[str, tuple[bytes, FieldValue]] = {}
    for name, salt, packed in fields:
        if type(packed) is str and packed.isascii():  # most values (dates, codes): unpack and pack to themselves
            opened[name] = (salt, packed)
            continue
        value, packs = _opened(packed, name)
        opened[name] = (salt, value)
        if exact and not packs:
            exact = False
    hidden_named = {_field_name(k): v for k, v in hidden.items()}
    exact = exact and sm3_exact and not any(type(k) is str and k in _CODE_OF for k in hidden)
    try:
        payload = OfflinePayload._decoded(
            bool(seed),
            identifier=identifier, type_code=type_code, disclosed=opened,
            hidden=hidden_named, batch_root=_NO_ROOT, index=index, size=size,
            proof=[proof[i:i + HASH_LEN] for i in range(0, len(proof), HASH_LEN)], chain_id=chain_id,
            ledger=ledger, block_number=block_number, block_timestamp=block_timestamp, tx_hash=b"",
            issuer_account=b"", signature=signature, salt_seed=seed, sm3_hidden=sm3_hidden, sm3_proof=sm3_proof,
            statement=statement,
        )
        # The root is not on the wire: it is whatever the signed fields, index, size and proof lead to. A forged
        # proof or field gives a root the trust list / chain does not know, and the issuer's signature over this
        # body then recovers another account anyway. Set without re-validating: see decode_payload.
        object.__setattr__(payload, "batch_root", payload.computed_batch_root())
    except ValidationError as exc:
        raise _invalid(exc.message) from exc
    return payload, exact


def _salted(names: list[str], items: Iterable[Any]) -> Iterator[tuple[str, bytes, Any]]:
    """(name, salt, packed value) of a map of [salt, value] items (a payload without a seed), refusing an item
    of another shape when the decoder reaches it."""
    for name, item in zip(names, items, strict=True):
        if not (isinstance(item, list) and len(item) == 2):
            raise _invalid(f"disclosed field {name!r} must be [salt, value] (no salt seed), got {_describe(item)}")
        yield name, item[0], item[1]


def _is_canonical(raw: list[Any], body: bytes) -> bool:
    """``cbor2.dumps(raw, canonical=True) == body`` (RFC 8949 §4.2) for a body `_payload_from_body` accepted as
    exact (it holds no float: every item is an integer, text, bytes, null, boolean, array or map), without
    sorting: the two encoders then differ only in map order, the plain one keeps the wire's order, and that
    order is the canonical one when every map's keys are non-negative integers in ascending order (shorter
    encodings first, then bytewise: numeric order). Other maps (names spelt out) take the sorting encoder.
    tests/unit/qr/test_offline_shortcuts.py compares the two on reordered bodies."""
    if cbor2.dumps(raw) != body:
        return False
    maps = [raw[4], raw[5]]
    if len(raw) > _BODY_ITEMS and isinstance(raw[_BODY_ITEMS], list) and raw[_BODY_ITEMS]:
        maps.append(raw[_BODY_ITEMS][0])
    for m in maps:
        if not isinstance(m, dict):
            return bool(cbor2.dumps(raw, canonical=True) == body)
        keys = list(m)
        if not (set(map(type, keys)) <= _INT_ONLY and (not keys or keys[0] >= 0) and keys == sorted(keys)):
            return bool(cbor2.dumps(raw, canonical=True) == body)
    return True


def _sm3_part(item: Any) -> tuple[dict[str, bytes], list[bytes] | None, bool]:
    """The SM3 part's hidden leaves and proof, and whether its field keys are the codes the encoder writes."""
    if item is None:
        return {}, None, True
    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], dict) and isinstance(item[1], bytes)):
        raise _invalid(f"the SM3 part must be [hidden: map, proof: bytes], got {_describe(item)}")
    hidden, proof = item
    if len(proof) % HASH_LEN:
        raise _invalid(f"SM3 proof must be a byte string of 32-byte hashes, got {_describe(proof)}")
    return ({_field_name(k): v for k, v in hidden.items()}, [proof[i:i + HASH_LEN] for i in range(0, len(proof), HASH_LEN)],
            not any(type(k) is str and k in _CODE_OF for k in hidden))


_N_CODES = len(FIELD_CODES)
_INT_ONLY = frozenset({int})
_BODY_ITEMS = 13  # without the optional trailing SM3 part
_NO_ROOT = bytes(HASH_LEN)  # placeholder until the root is computed from the validated payload


def _recover(body: bytes, signature: bytes) -> bytes:
    """The 20-byte account whose key made ``signature`` over SHA-256(``body``); SignatureError if none."""
    if not signature:
        raise SignatureError("离线二维码未签名 / offline payload is not signed")
    try:
        return recover_account(sha256(body), signature, SignatureScheme.RECOVERABLE)
    except SignatureError as exc:
        raise SignatureError(f"签名无效 / bad signature: {exc.message}") from exc


def _signer_or_empty(body: bytes, signature: bytes) -> bytes:
    try:
        return _recover(body, signature)
    except SignatureError:
        return b""


def _field_name(key: Any) -> str:
    if isinstance(key, str) and key:
        return key
    if type(key) is int and 0 <= key < len(FIELD_CODES):
        return FIELD_CODES[key]
    raise _invalid(f"unknown field code {key!r} (LZ{FORMAT_VERSION} defines 0..{len(FIELD_CODES) - 1})")


_MAX_INFLATED = 1 << 16  # a version-40 QR holds < 3 KB compressed; bounds a zlib bomb


def _cut_mid_group(b45: str) -> bool:
    """True when ``b45`` looks like a valid payload cut one character into a 3-character group: its last
    two characters are then not a real final pair (RFC 9285 §4.2 pairs encode only an odd last byte), while
    everything before them decodes and inflates to an unfinished but valid zlib stream."""
    if len(b45) % 3 != 2:
        return False
    try:
        inflater = zlib.decompressobj()
        inflater.decompress(b45decode(b45[:-2]), _MAX_INFLATED)
    except (PayloadFormatError, zlib.error):
        return False
    return not inflater.eof


def _loads(data: bytes, what: str) -> Any:
    try:
        return cbor2.loads(data, allow_indefinite=False, allow_duplicate_keys=False, max_depth=8)
    except (cbor2.CBORError, ValueError, TypeError, RecursionError) as exc:
        raise _invalid(f"{what} is not valid CBOR ({exc})") from exc
