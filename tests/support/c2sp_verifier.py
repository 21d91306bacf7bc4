"""A verifier of C2SP checkpoints written from the spec texts alone (signed-note, tlog-checkpoint,
tlog-cosignature), with hashlib and cryptography's Ed25519 only: no project code, so that the tests check the
project's notes against the specs and not against itself."""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

DASH = "\u2014"


def _parse_vkey(line: str) -> tuple[str, bytes, int, bytes]:
    """signed-note verifier key: <name>+<hex key ID>+base64(type byte || public key)."""
    name, hex_id, blob = line.split("+", 2)
    raw = base64.b64decode(blob, validate=True)
    key_id = hashlib.sha256(name.encode() + b"\n" + raw[:1] + raw[1:]).digest()[:4]
    assert key_id.hex() == hex_id, "vkey key ID is SHA-256(name || 0x0A || type || key)[:4]"
    return name, key_id, raw[0], raw[1:]


def independent_verify(note_text: str, vkey_lines: list[str]) -> dict[str, Any]:
    """Returns the checkpoint's origin, size, root and the names of the keys whose signatures verified."""
    assert note_text.endswith("\n")
    split = note_text.rfind("\n\n")  # the text ends at the last empty line
    text, sigs = note_text[:split + 1], note_text[split + 2:].splitlines()
    lines = text[:-1].split("\n")
    origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
    assert str(size) == lines[1] and len(root) == 32
    keys = {}
    for v in vkey_lines:
        name, key_id, sig_type, pub = _parse_vkey(v)
        keys[(name, key_id)] = (sig_type, pub)
    verified = []
    for line in sigs:
        assert line.startswith(DASH + " ")
        name, blob = line[2:].split(" ")
        raw = base64.b64decode(blob, validate=True)
        known = keys.get((name, raw[:4]))
        if known is None:
            continue  # unknown keys are ignored
        sig_type, pub = known
        if sig_type == 0x01:
            message, sig = text.encode(), raw[4:]
        else:
            assert sig_type == 0x04
            (timestamp,) = struct.unpack(">Q", raw[4:12])
            assert timestamp <= time.time() + 60
            message, sig = f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode(), raw[12:]
        try:
            Ed25519PublicKey.from_public_bytes(pub).verify(sig, message)
        except InvalidSignature:
            raise AssertionError(f"signature by {name} does not verify") from None
        verified.append(name)
    return {"origin": origin, "size": size, "root": root, "verified": verified}
