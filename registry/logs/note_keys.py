"""Ed25519 note keys per agency (registry/logs/note.py): the gateway's log key (type 0x01) and each witness's
cosignature key (type 0x04), kept like the agencies' signing keys: encrypted at rest under the master key
(registry.consortium.keys), with the agency and key type as associated data.

    >>> keys = NoteKeys(node)                                                     # doctest: +SKIP
    >>> keys.key("11230000MB1A00036G", SignatureType.COSIGNATURE_V1, name).verifier.vkey()  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import DateTime, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.errors import NotFoundError
from registry.logs.note import NoteKey, SignatureType, Verifier
from registry.node import Node
from registry.store.db import Base, utcnow

__all__ = ["NoteKeyRow", "NoteKeys"]


class NoteKeyRow(Base):
    __tablename__ = "note_keys"
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    sig_type: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)  # the 32-byte Ed25519 seed, sealed by the KeyStore
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


def _aad(uscc: str, sig_type: SignatureType) -> bytes:
    return f"note-key:{uscc}:{int(sig_type)}".encode()


class NoteKeys:
    """One Ed25519 note key per (agency, signature type) in this data dir; created on first use when asked."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._cache: dict[tuple[str, SignatureType], bytes] = {}

    def seed(self, uscc: str, sig_type: SignatureType, *, create: bool = True) -> bytes:
        cached = self._cache.get((uscc, sig_type))
        if cached is not None:
            return cached
        with self.node.db.session() as s:
            row = s.get(NoteKeyRow, (uscc, int(sig_type)))
            if row is None:
                if not create:
                    raise NotFoundError(f"no note key of type 0x{int(sig_type):02x} for agency {uscc} in this data dir",
                                        code="no_note_key")
                private = Ed25519PrivateKey.generate()
                seed = private.private_bytes_raw()
                public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
                s.add(NoteKeyRow(uscc=uscc, sig_type=int(sig_type), public_key=public,
                                 ciphertext=self.node.keys.seal_secret(seed, _aad(uscc, sig_type))))
            else:
                seed = self.node.keys.open_secret(row.ciphertext, _aad(uscc, sig_type))
        self._cache[(uscc, sig_type)] = seed
        return seed

    def key(self, uscc: str, sig_type: SignatureType, name: str, *, create: bool = True) -> NoteKey:
        """The agency's key of `sig_type` under note key name `name` (the key ID depends on the name)."""
        return NoteKey(name, sig_type, self.seed(uscc, sig_type, create=create))

    def public(self, uscc: str, sig_type: SignatureType, name: str) -> Verifier | None:
        """The public half of a key this data dir holds (None when it holds none)."""
        with self.node.db.session() as s:
            row = s.get(NoteKeyRow, (uscc, int(sig_type)))
            return None if row is None else Verifier(name, sig_type, bytes(row.public_key))
