"""C2SP signed notes (c2sp.org/signed-note), checkpoints (c2sp.org/tlog-checkpoint) and Ed25519 cosignatures
(c2sp.org/tlog-cosignature, ``cosignature/v1``), each exactly as its spec writes it.

A note is a text ending in a newline, a blank line, then signature lines ``— <key name> base64(key ID || sig)``.
The key ID is ``SHA-256(name || 0x0A || type || public key)[:4]``; the type byte is 0x01 for a plain Ed25519
note signature (the log's) and 0x04 for a timestamped Ed25519 cosignature (a witness's), whose signed message
is ``cosignature/v1\\ntime <ts>\\n`` followed by the checkpoint body. A verifier key (vkey) is written
``<name>+<8 hex digits of the key ID>+base64(type || public key)``.

    >>> key = NoteKey.generate("lianzheng.hl.gov.cn/31337/certificates")
    >>> body = CheckpointBody("lianzheng.hl.gov.cn/31337/certificates", 0, bytes(32)).text()
    >>> note = Note(body, (key.sign(body),))
    >>> verify_note(Note.parse(note.text_with_signatures()), [key.verifier]) == [key.verifier]
    True
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from registry.errors import ValidationError

__all__ = [
    "EM_DASH", "MAX_SIGNATURES", "CheckpointBody", "NoteError", "NoteKey", "Note", "NoteSignature", "SignatureType",
    "Verifier", "cosignature_message", "key_id", "verify_note",
]

EM_DASH = "\u2014"
# the spec: verifiers MUST accept at least 16 signatures and SHOULD cap them
MAX_SIGNATURES = 64
_MAX_TIMESTAMP = 2**63 - 1


class NoteError(ValidationError):
    """A note, checkpoint or vkey that does not follow its spec, or a signature that does not verify."""

    def __init__(self, message: str, *, code: str = "invalid_note") -> None:
        super().__init__(message, code=code)


class SignatureType(enum.IntEnum):
    """Signature type identifier bytes assigned by c2sp.org/signed-note (the two this project uses)."""

    ED25519 = 0x01
    COSIGNATURE_V1 = 0x04  # timestamped Ed25519 witness cosignature, c2sp.org/tlog-cosignature


def key_id(name: str, sig_type: SignatureType, public_key: bytes) -> bytes:
    """``SHA-256(key name || 0x0A || signature type || public key)[:4]`` (signed-note, tlog-cosignature)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def _check_name(name: str) -> str:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'", code="invalid_key_name")
    return name


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NoteError(f"{what} is not standard base64: {text[:80]!r}") from exc


def cosignature_message(body: str, timestamp: int) -> bytes:
    """The message a ``cosignature/v1`` signs: header line, time line, then the whole checkpoint body."""
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} out of range", code="invalid_cosignature")
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, key ID and the signature bytes after the ID."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{EM_DASH} {self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"

    @classmethod
    def parse_line(cls, line: str) -> NoteSignature:
        """One ``— <name> <base64>`` line, without its newline."""
        prefix = EM_DASH + " "
        if not line.startswith(prefix):
            raise NoteError(f"signature line must start with an em dash and a space: {line[:80]!r}")
        name, sep, blob = line[len(prefix):].partition(" ")
        if not sep or " " in blob:
            raise NoteError(f"signature line must be '— <name> <base64>': {line[:80]!r}")
        raw = _b64decode(blob, "signature")
        if len(raw) < 5:
            raise NoteError("signature shorter than its 4-byte key ID")
        return cls(_check_name(name), raw[:4], raw[4:])


@dataclass(frozen=True)
class Verifier:
    """A public key trusted for notes: name, type and key; its vkey is what `/logs/<ledger>/keys` serves."""

    name: str
    sig_type: SignatureType
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != 32:
            raise NoteError("an Ed25519 public key is 32 bytes", code="invalid_vkey")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.sig_type, self.public_key)

    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(bytes([self.sig_type]) + self.public_key).decode()}"

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        parts = vkey.strip().split("+", 2)  # base64 may hold "+"; the name may not
        if len(parts) != 3 or len(parts[1]) != 8:
            raise NoteError(f"a vkey is '<name>+<8 hex>+<base64>': {vkey[:120]!r}", code="invalid_vkey")
        name, hex_id, blob = parts
        raw = _b64decode(blob, "vkey key material")
        try:
            sig_type = SignatureType(raw[0])
        except (ValueError, IndexError) as exc:
            raise NoteError(f"unsupported vkey signature type in {vkey[:120]!r}", code="invalid_vkey") from exc
        verifier = cls(name, sig_type, raw[1:])
        if verifier.key_id.hex() != hex_id.lower():
            raise NoteError(f"vkey key ID {hex_id} does not match its key", code="invalid_vkey")
        return verifier

    def matches(self, sig: NoteSignature) -> bool:
        return sig.name == self.name and sig.key_id == self.key_id

    def verify(self, text: str, sig: NoteSignature) -> bool:
        """Whether `sig` (which `matches` this key) is a valid signature of note text `text`."""
        pub = Ed25519PublicKey.from_public_bytes(self.public_key)
        if self.sig_type is SignatureType.ED25519:
            message, signature = text.encode(), sig.signature
        else:
            if len(sig.signature) != 8 + 64:
                return False
            (timestamp,) = struct.unpack(">Q", sig.signature[:8])
            if timestamp > _MAX_TIMESTAMP:
                return False
            message, signature = cosignature_message(text, timestamp), sig.signature[8:]
        try:
            pub.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    @staticmethod
    def cosignature_time(sig: NoteSignature) -> int:
        """The timestamp of a ``cosignature/v1`` signature."""
        return int(struct.unpack(">Q", sig.signature[:8])[0])


@dataclass(frozen=True)
class NoteKey:
    """An Ed25519 private key with its note name and type: signs notes (0x01) or cosigns checkpoints (0x04)."""

    name: str
    sig_type: SignatureType
    seed: bytes

    @classmethod
    def generate(cls, name: str, sig_type: SignatureType = SignatureType.ED25519) -> NoteKey:
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return cls(_check_name(name), sig_type, seed)

    @property
    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def verifier(self) -> Verifier:
        pub = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Verifier(self.name, self.sig_type, pub)

    def sign(self, text: str, *, timestamp: int | None = None) -> NoteSignature:
        """A signature of note text `text`: plain Ed25519, or a cosignature at `timestamp` (POSIX seconds)."""
        if self.sig_type is SignatureType.ED25519:
            raw = self._private.sign(text.encode())
        else:
            if timestamp is None:
                raise NoteError("a cosignature needs its timestamp", code="invalid_cosignature")
            raw = struct.pack(">Q", timestamp) + self._private.sign(cosignature_message(text, timestamp))
        return NoteSignature(self.name, self.verifier.key_id, raw)


@dataclass(frozen=True)
class Note:
    """A note text (ending in a newline) and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...] = ()

    def text_with_signatures(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def with_signatures(self, extra: tuple[NoteSignature, ...]) -> Note:
        """This note with `extra` signatures appended (a signature already present is kept once)."""
        have = set(self.signatures)
        return Note(self.text, self.signatures + tuple(s for s in extra if s not in have))

    @classmethod
    def parse(cls, data: str | bytes) -> Note:
        """A signed note; the text is separated from the signatures by the last empty line."""
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise NoteError("a note must be valid UTF-8") from exc
        if any(ord(c) < 0x20 and c != "\n" for c in data):
            raise NoteError("a note must not contain control characters other than newline")
        if not data.endswith("\n"):
            raise NoteError("a note must end with a newline")
        split = data.rfind("\n\n")
        if split < 0:
            raise NoteError("a note needs a blank line between its text and its signatures")
        text, sig_block = data[:split + 1], data[split + 2:]
        lines = sig_block[:-1].split("\n") if sig_block else []
        if not lines:
            raise NoteError("a note needs at least one signature")
        if len(lines) > MAX_SIGNATURES:
            raise NoteError(f"a note with more than {MAX_SIGNATURES} signatures is refused")
        return cls(text, tuple(NoteSignature.parse_line(line) for line in lines))


def verify_note(note: Note, verifiers: list[Verifier]) -> list[Verifier]:
    """The known keys whose signatures on `note` verify. Unknown signatures are ignored; a known key's failing
    signature rejects the note, and so does a note no known key signed (signed-note, "Signatures")."""
    good: list[Verifier] = []
    for sig in note.signatures:
        for v in verifiers:
            if v.matches(sig):
                if not v.verify(note.text, sig):
                    raise NoteError(f"signature by {v.name} does not verify", code="bad_note_signature")
                if v not in good:
                    good.append(v)
    if not good:
        raise NoteError("no signature from a known key", code="unknown_note_signer")
    return good


@dataclass(frozen=True)
class CheckpointBody:
    """A tlog-checkpoint note text: origin, tree size, base64 RFC 6962 root, optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        if self.size < 0 or len(self.root) != 32 or not self.origin or "\n" in self.origin:
            raise NoteError("a checkpoint needs an origin, a size >= 0 and a 32-byte root", code="invalid_checkpoint")
        if any(not e or "\n" in e for e in self.extensions):
            raise NoteError("extension lines must be non-empty single lines", code="invalid_checkpoint")
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> CheckpointBody:
        if not text.endswith("\n"):
            raise NoteError("a checkpoint body ends with a newline", code="invalid_checkpoint")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise NoteError("a checkpoint is at least three non-empty lines", code="invalid_checkpoint")
        origin, size, root = lines[:3]
        if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")):
            raise NoteError(f"tree size {size!r} is not a decimal without leading zeroes", code="invalid_checkpoint")
        raw = _b64decode(root, "root hash")
        if len(raw) != 32:
            raise NoteError("the root hash is 32 bytes", code="invalid_checkpoint")
        return cls(origin, int(size), raw, tuple(lines[3:]))
