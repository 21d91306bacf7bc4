"""The field leaves of a certificate document: the GB/T 36905 common fields, salts, and the raw Merkle
entry of one field.

Every field is a leaf whose entry is the RFC 8785 canonical JSON of ``{"path", "salt", "value"}`` with a
16-byte salt; leaves are ordered by path in RFC 8785 key order (`path_key`). Salts derive from one 16-byte
seed per document (`derive_salt`). registry.formats re-derives salts and leaves with these functions (the
one implementation).

The hot paths (`derive_salts`, `document_roots`: issuing, verifying a document, decoding an offline payload)
run in C when the package was built (registry/certificates/_leaves.c, OpenSSL's SHA-256 and SM3); this module
is their specification and does the same in Python otherwise. tests/unit/registry/test_leaves_c.py compares
the two.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import rfc8785

from registry.certificates.common_fields import COMMON_FIELD_NAMES, COMMON_FIELD_ROWS
from registry.crypto import merkle
from registry.crypto.hashing import DIGEST_SIZE, HMAC_BLOCK, HashObject, hash_constructor, hmac_sha256_pads
from registry.seeds import FieldSpec, JsonValue

__all__ = [
    "COMMON_FIELDS",
    "COMPILED",
    "COMMON_FIELD_NAMES",
    "SALT_SEED_SIZE",
    "SALT_SIZE",
    "DisclosedField",
    "HOLDER_KEY_FIELD",
    "HiddenField",
    "derive_salt",
    "derive_salts",
    "document_heads",
    "document_roots",
    "leaf_entry",
    "leaf_input",
    "path_key",
    "value_json",
]

SALT_SIZE = 16
SALT_SEED_SIZE = 16
_SALT_LABEL = b"lianzheng/salt/1"  # domain separation: these HMAC outputs are field salts, version 1

try:  # the compiled hot paths (see the module docstring); without them this module's Python does the work
    from registry.certificates import _leaves

    COMPILED = True
except ImportError:  # not built (a source checkout without `pip install -e .`), or an OpenSSL without SM3
    COMPILED = False


@contextlib.contextmanager
def python_only() -> Iterator[None]:
    """Within the block, this process does the hot paths in Python: this module's and the LZ2 decoder's
    (registry/formats/lz2.py reads `COMPILED` too). The baseline `lianzheng bench offline` measures beside the
    compiled modules, and the tests' reference. Not for concurrent use: it sets a module global."""
    global COMPILED
    before, COMPILED = COMPILED, False
    try:
        yield
    finally:
        COMPILED = before

COMMON_FIELDS: tuple[FieldSpec, ...] = tuple(
    FieldSpec.model_validate({"name": n, "name_en": e, "type": t, "required": r, "max_length": m, "pattern": p})
    for n, e, t, r, m, p in COMMON_FIELD_ROWS
)

# Field names the document header binds or the cross-field rules read.
ID_FIELD, TYPE_FIELD, ISSUER_FIELD = "证照标识", "证照类型代码", "颁发机构代码"
HOLDER_CODE_FIELD, HOLDER_TYPE_FIELD = "持证主体代码", "持证主体代码类型"
FROM_FIELD, UNTIL_FIELD = "有效期起始", "有效期截止"
# A bound certificate's holder key id (registry/holders/keys.py: SHA-256 of the DER SPKI, hex): a field leaf like
# the others, so the anchored digest covers it; present only in bound certificates (an unbound document's leaves
# and digest are unchanged), never hidden (a verifier needs it to check a presentation).
HOLDER_KEY_FIELD = "holderKeyDigest"


@dataclass(frozen=True, slots=True)
class DisclosedField:
    salt: bytes
    value: JsonValue


@dataclass(frozen=True, slots=True)
class HiddenField:
    """A withheld field: only its leaf hashes (H(0x00 || entry)) in both algorithms remain."""

    sha256: bytes
    sm3: bytes


@functools.lru_cache(maxsize=4096)  # a handful of field names, sorted for every document
def path_key(path: str) -> bytes:
    # RFC 8785 §3.2.3 sorts keys by UTF-16 code units; big-endian UTF-16 bytes compare the same way.
    return path.encode("utf-16-be", "surrogatepass")


_json_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_json_str = json.encoder.encode_basestring  # what _json_text does for a str (the C function), without the method


@functools.lru_cache(maxsize=4096)
def _entry_head(path: str) -> str:
    # '{"path":<path>,"salt":"': the same for a field in every document of a type
    return f'{{"path":{_json_str(path)},"salt":"'


def value_json(value: JsonValue) -> str | None:
    """The RFC 8785 text of a field value when Python's compact JSON (ensure_ascii=False) writes the same text:
    strings, booleans, null and integers within ±2^53 (what FieldSpec.normalise returns); None for anything
    else. The document's JSON (``json.dumps(doc.to_json(), ensure_ascii=False)``) writes a value as this too,
    so issuing makes a field's leaf entry and its place in the document's JSON from one text."""
    if type(value) is str:
        return _json_str(value)
    if value is None:
        return "null"
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int and -(2**53) < value < 2**53:
        return str(value)
    return None


def leaf_entry(path: str, salt: bytes, value: JsonValue) -> bytes:
    """The raw Merkle entry of one field: RFC 8785 canonical JSON of {"path", "salt", "value"}.

    Field values are strings, integers within ±2^53, booleans or null (FieldSpec.normalise), and the
    keys are already in RFC 8785 order; for those, Python's compact JSON with ensure_ascii=False is
    byte-for-byte the RFC 8785 form (same escapes, ECMAScript integer rendering), at a tenth of the
    cost (`value_json`). Anything else goes through `rfc8785`. tests/unit/registry/test_documents.py checks
    the two agree on arbitrary strings and integers.
    """
    text = value_json(value) if type(path) is str else None
    if text is not None:
        try:
            return f'{_entry_head(path)}{salt.hex()}","value":{text}}}'.encode()
        except UnicodeEncodeError:  # a lone surrogate: let rfc8785 refuse it with its own error
            pass
    return rfc8785.dumps({"path": path, "salt": salt.hex(), "value": value})


@functools.lru_cache(maxsize=4096)
def document_heads(path: str) -> tuple[str, str]:
    """The text before a field's salt hex in its leaf entry and in the document's JSON ``fields`` object: the
    same for that field in every document of a type (`leaf_entry`, `Document.issued`)."""
    return _entry_head(path), f'{_json_str(path)}:{{"salt":"'


_INPUT_HEADS: dict[str, str] = {}  # path -> '\x00{"path":<path>,"salt":"' (bounded: see leaf_input)


def leaf_input(path: str, salt: bytes, value: JsonValue) -> bytes:
    """``0x00 || leaf_entry(path, salt, value)``: what RFC 6962 §2.1 hashes for a leaf, in one string build
    for the common values (a str, a bool, None, an integer within ±2^53), with the head of each path made once.
    The offline verifier makes ~20 per payload. tests/unit/qr/test_offline_hot_path.py compares it with
    ``b"\\x00" + leaf_entry(...)`` on arbitrary paths, salts and values.

    >>> leaf_input("住所", bytes(16), "x") == b"\\x00" + leaf_entry("住所", bytes(16), "x")
    True
    """
    text = value_json(value) if type(path) is str else None
    if text is not None:
        head = _INPUT_HEADS.get(path)
        if head is None:
            if len(_INPUT_HEADS) >= 4096:  # names come from the wire: bound the table
                _INPUT_HEADS.clear()
            head = _INPUT_HEADS[path] = "\x00" + _entry_head(path)
        try:
            return f'{head}{salt.hex()}","value":{text}}}'.encode()
        except UnicodeEncodeError:  # a lone surrogate: let rfc8785 refuse it with its own error
            pass
    return b"\x00" + leaf_entry(path, salt, value)


def derive_salt(seed: bytes, path: str) -> bytes:
    """The salt of field ``path`` in a document whose salts derive from ``seed``:
    ``HMAC-SHA256(seed, b"lianzheng/salt/1" || UTF-8(path))[:16]``.

    HMAC is a PRF keyed by the 16 random bytes of the seed, so each salt is as unpredictable as a random
    one to anyone without the seed, distinct paths give independent salts, and one salt reveals neither
    the seed nor any other field's salt. registry.qr re-derives the salts of an offline payload with this
    function (the one implementation).

    >>> derive_salt(bytes(16), "住所").hex()
    '62050facdfa1bc73f1b9daaa112d18d0'
    """
    return hmac.digest(seed, _SALT_LABEL + path.encode("utf-8"), "sha256")[:SALT_SIZE]


@functools.lru_cache(maxsize=1024)
def _salt_message(path: str) -> bytes:
    # the HMAC message of a path: field names recur in every document of a type
    return _SALT_LABEL + path.encode("utf-8")


def derive_salts(seed: bytes, paths: Iterable[str]) -> list[bytes]:
    """``[derive_salt(seed, p) for p in paths]`` in one loop: the padded-key hashes made once, no call per
    field (the offline decoder derives ~20 per payload).

    >>> derive_salts(bytes(16), ["住所", "类型"]) == [derive_salt(bytes(16), "住所"), derive_salt(bytes(16), "类型")]
    True
    """
    if len(seed) > HMAC_BLOCK:
        return [derive_salt(seed, path) for path in paths]
    if COMPILED:
        return _leaves.derive_salts(seed, _SALT_LABEL, paths, SALT_SIZE)
    return _derive_salts(seed, paths)


def _derive_salts(seed: bytes, paths: Iterable[str]) -> list[bytes]:
    """`derive_salts` in Python (a seed of at most one block): what the compiled one does."""
    inner, outer = hmac_sha256_pads(bytes(seed))
    out = []
    for path in paths:
        i = inner.copy()
        i.update(_salt_message(path))
        o = outer.copy()
        o.update(i.digest())
        out.append(o.digest()[:SALT_SIZE])
    return out


def document_roots(paths: Sequence[str], salts: Sequence[bytes | None], values: Sequence[JsonValue],
                   hidden_sha256: Sequence[bytes | None] | None = None, hidden_sm3: Sequence[bytes | None] | None = None,
                   *, sha256: bool = True, sm3: bool = True,
                   fields_json: bool = False) -> tuple[bytes | None, bytes | None, bytes | None]:
    """The RFC 6962 roots (SHA-256 when ``sha256``, SM3 when ``sm3``; None for the other) of a document's fields
    in tree order: field ``i`` is shown when ``salts[i]`` is bytes -- its leaf is ``leaf_input(paths[i],
    salts[i], values[i])`` hashed -- and hidden when it is None: ``hidden_sha256[i]`` / ``hidden_sm3[i]`` are its
    leaf hashes. With ``fields_json``, also the UTF-8 text of the shown fields as the document's JSON ``fields``
    object holds them, without its braces (``"<path>":{"salt":"<hex>","value":<value>}`` joined by commas), or
    None when a value is not plain JSON text (`value_json`): the caller then encodes the document whole.

    One call per document, in C when built (`COMPILED`). A path or value that is no canonical JSON text raises
    the error of `leaf_entry` (rfc8785's). A hidden field without a 32-byte leaf hash is a ValueError.

    >>> names, salts = ["住所", "名称"], [bytes(16), bytes(16)]
    >>> d256, dsm3, _ = document_roots(names, salts, ["x", "y"])
    >>> d256 == merkle.merkle_root([leaf_entry(n, s, v) for n, s, v in zip(names, salts, ["x", "y"])])
    True
    """
    if COMPILED:
        roots = _leaves.document_roots(paths, salts, values, hidden_sha256, hidden_sm3, sha256, sm3, fields_json)
        if roots is not None:
            return roots
    return _document_roots(paths, salts, values, hidden_sha256, hidden_sm3, sha256, sm3, fields_json)


def batch_root(digest: bytes, index: int, size: int, proof: Sequence[bytes], *,
               algorithm: str = "sha256") -> bytes | None:
    """The root of the batch tree that a document's ``digest`` (its leaf is H(0x00 || digest)), its ``index``
    in a batch of ``size`` and its audit path ``proof`` (32-byte hashes) lead to, in SHA-256 or ``"sm3"``;
    None when the path does not fit ``index`` and ``size`` (`merkle.root_from_audit_path`, in C when built).

    >>> leaves = [merkle.leaf_hash(d) for d in (b"a", b"b", b"c")]
    >>> batch_root(b"c", 2, 3, merkle.inclusion_proof_from_leaf_hashes(leaves, 2)) == merkle.root_from_leaf_hashes(leaves)
    True
    """
    if COMPILED and algorithm in ("sha256", "sm3"):
        return _leaves.batch_root(digest, index, size, proof, algorithm == "sm3")
    return merkle.root_from_audit_path(merkle.leaf_hash(digest, algorithm=algorithm), index, size, proof,
                                       algorithm=algorithm)


def batch_includes(root: Any, digest: bytes, index: Any, size: Any, proof: Any, *, algorithm: str = "sha256") -> bool:
    """RFC 9162 §2.1.3.2 for a document's digest: does ``proof`` place its leaf H(0x00 || digest) at ``index``
    of a batch of ``size`` whose root is ``root``? False for anything malformed (the anchor may come from an
    untrusted document): well-formed input goes to `batch_root` (in C when built), the rest to
    `merkle.verify_inclusion_leaf_hash`, which checks each input."""
    if (type(index) is int and type(size) is int and 0 <= index < size < 2**64 and type(digest) is bytes
            and type(proof) in (list, tuple) and all(type(p) is bytes and len(p) == DIGEST_SIZE for p in proof)):
        return bool(batch_root(digest, index, size, proof, algorithm=algorithm) == root)
    return merkle.verify_inclusion_leaf_hash(merkle.leaf_hash(digest, algorithm=algorithm), index, size, proof, root,
                                             algorithm=algorithm)


def _document_roots(paths: Sequence[str], salts: Sequence[bytes | None], values: Sequence[JsonValue],
                    hidden_sha256: Sequence[bytes | None] | None, hidden_sm3: Sequence[bytes | None] | None,
                    sha256: bool, sm3: bool, fields_json: bool) -> tuple[bytes | None, bytes | None, bytes | None]:
    """`document_roots` in Python: what the compiled one does, and what takes the values it hands back."""
    if not len(paths) == len(salts) == len(values):
        raise ValueError("paths, salts and values must have the same length")
    # algorithm -> (its constructor, the hidden fields' leaf hashes, the leaf hashes so far), for those wanted
    trees: dict[str, tuple[Callable[[bytes], HashObject], Sequence[bytes | None] | None, list[bytes]]] = {
        a: (hash_constructor(a), hidden, []) for a, hidden, on in (("sha256", hidden_sha256, sha256),
                                                                   ("sm3", hidden_sm3, sm3)) if on}
    parts: list[str] | None = [] if fields_json else None
    for i, (path, salt, value) in enumerate(zip(paths, salts, values, strict=True)):
        if salt is None:
            for algorithm, (_, hidden, out) in trees.items():
                leaf = hidden[i] if hidden is not None and len(hidden) == len(paths) else None
                if not (isinstance(leaf, bytes) and len(leaf) == DIGEST_SIZE):
                    raise ValueError(f"hidden field {i} needs a 32-byte {algorithm.upper()} leaf hash")
                out.append(leaf)
            continue
        entry = leaf_input(path, salt, value)
        for ctor, _, out in trees.values():
            out.append(ctor(entry).digest())
        if parts is not None:
            text = value_json(value) if type(path) is str else None
            if text is None:
                parts = None
            else:
                parts.append(f'{document_heads(path)[1]}{salt.hex()}","value":{text}}}')
    roots = {a: merkle.root_of_hashed_leaves(out, ctor) for a, (ctor, _, out) in trees.items()}
    return roots.get("sha256"), roots.get("sm3"), None if parts is None else ",".join(parts).encode()
