"""Certificates issued on other nodes (issue 11: nodes share nothing but the chain).

A node holds the records of the certificates its own agencies issued. Any node can still verify any
certificate: a presented document or offline payload carries its own anchor proof (checked against the chain
alone), and for verification by identifier or by digest the node asks the issuing agency's node, whose base URL
that agency published on chain (``ConsortiumRegistry.endpointOf``), for the certificate's *public record*: its
digests, validity dates and Merkle audit path — never a holder field. Every number in the answer is then
checked against this node's own view of the chain (batch root, issuer, status), so the issuing node is trusted
only for the identifier -> digest mapping, which only the holder's document can prove (the verifier says so).

A sealed certificate's record also carries its sealed signature (``"seal": {"id", "format", "signature"}``, the
signature base64: a GB/T 38540 SES_Signature in DER, or the intl profile's signed JSON; registry/seals): the
verifying node runs the same `seal` check on it from its own seal index (registry/seals/verification.py).

    >>> remote = RemoteCertificates(node)                         # doctest: +SKIP
    >>> remote.record(CertificateId.parse("1.2.156.3005.2...."))    # PublicRecord, or NotFoundError  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from registry.errors import ChainUnavailableError, NotFoundError, PayloadFormatError, chain_boundary
from registry.identifiers import CertificateId
from registry.node import Node
from registry.store.db import Batch, Certificate
from registry.store.seal_models import SealedSignature
from registry.validation import hex_or_empty

__all__ = ["PublicRecord", "RemoteCertificates", "RemoteUnavailableError", "SealedCopy", "public_record", "stored_seal"]

# a sealed signature carries its seal's SESeal, image included (at most 256 KiB: registry/seals/images.py)
MAX_SEALED_BYTES = 320 * 1024
MAX_RECORD_BYTES = 512 * 1024
SEALED_FORMATS = ("ses-signature", "json-proof")
MAX_BLOB_BYTES = 4 * 1024 * 1024
MAX_PATH = 64


class RemoteUnavailableError(ChainUnavailableError):
    """The issuing agency's node did not answer (or published no endpoint): cannot verify by identifier here."""

    default_code = "issuer_node_unreachable"


@dataclass(frozen=True)
class SealedCopy:
    """A certificate's sealed signature as a node holds or publishes it: the seal id the issuing node names,
    the format (``ses-signature`` or ``json-proof``) and its bytes, with the SM3 digest of the document it
    should be over (the record's; an SES_Signature signs the SM3 digest)."""

    seal_id: str
    format: str
    signature: bytes
    digest_sm3: bytes

    def to_json(self) -> dict[str, Any]:
        return {"id": self.seal_id, "format": self.format, "signature": base64.b64encode(self.signature).decode()}


@dataclass(frozen=True)
class PublicRecord:
    """What an issuing node tells anybody about one of its certificates (no holder data: the digests are of
    salted fields)."""

    identifier: str
    type_code: str
    issuer_uscc: str
    digest_sha256: bytes
    digest_sm3: bytes
    valid_from: dt.date | None
    valid_until: dt.date | None
    batch_root: bytes | None  # None while the certificate waits for its batch
    index: int = 0
    size: int = 0
    path: tuple[bytes, ...] = ()
    sm3_root: bytes | None = None  # the SM3 batch root and the SM3 audit path (batches anchored with both roots)
    sm3_path: tuple[bytes, ...] = ()
    seal: SealedCopy | None = None  # a sealed certificate's sealed signature
    # a bound certificate's holder key id (issue 15): what a grant or a presentation is checked against on another
    # node. A pseudonymous key digest, already in the document every grantee sees; no holder data.
    holder_key_digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "identifier": self.identifier, "type_code": self.type_code, "issuer_uscc": self.issuer_uscc,
            "digest": {"sha256": self.digest_sha256.hex(), "sm3": self.digest_sm3.hex()},
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "anchor": None, "seal": self.seal.to_json() if self.seal else None,
            "holder_key_digest": self.holder_key_digest,
        }
        if self.batch_root is not None:
            out["anchor"] = {"batch_root": "0x" + self.batch_root.hex(), "index": self.index, "size": self.size,
                             "path": ["0x" + p.hex() for p in self.path]}
            if self.sm3_root is not None:
                out["anchor"] |= {"sm3_root": "0x" + self.sm3_root.hex(), "sm3_path": ["0x" + p.hex() for p in self.sm3_path]}
        return out

    @classmethod
    def from_json(cls, obj: Any, *, identifier: CertificateId) -> PublicRecord:
        """Parse an answer strictly; it must be about `identifier`."""
        def bad(what: str) -> PayloadFormatError:
            return PayloadFormatError(f"the issuing node's record is malformed: {what}", code="invalid_remote_record")

        def hex32(value: Any, what: str) -> bytes:
            text = value.removeprefix("0x") if isinstance(value, str) else ""
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raw = b""
            if len(raw) != 32:
                raise bad(f"{what} must be 32 bytes of hex")
            return raw

        def date(value: Any, what: str) -> dt.date | None:
            if value is None:
                return None
            try:
                return dt.date.fromisoformat(value)
            except (TypeError, ValueError):
                raise bad(f"{what} must be an ISO date") from None

        def count(value: Any, what: str) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
                raise bad(f"{what} must be a non-negative integer")
            return value

        if not isinstance(obj, Mapping) or obj.get("identifier") != str(identifier):
            raise bad(f"it is not about {identifier}")
        digest = obj.get("digest")
        if not isinstance(digest, Mapping):
            raise bad("digest missing")
        if obj.get("issuer_uscc") != identifier.issuer_uscc or obj.get("type_code") != identifier.type_code:
            raise bad("its issuer or type differs from the identifier's")
        anchor = obj.get("anchor")
        root: bytes | None = None
        sm3_root: bytes | None = None
        index = size = 0
        path: tuple[bytes, ...] = ()
        sm3_path: tuple[bytes, ...] = ()
        if anchor is not None:
            if not isinstance(anchor, Mapping) or not isinstance(anchor.get("path"), list) \
                    or len(anchor["path"]) > MAX_PATH:
                raise bad("anchor must have batch_root, index, size and a path of at most 64 hashes")
            root, index, size = hex32(anchor.get("batch_root"), "anchor.batch_root"), \
                count(anchor.get("index"), "anchor.index"), count(anchor.get("size"), "anchor.size")
            path = tuple(hex32(p, "anchor.path[]") for p in anchor["path"])
            if anchor.get("sm3_root") is not None:
                if not isinstance(anchor.get("sm3_path"), list) or len(anchor["sm3_path"]) > MAX_PATH:
                    raise bad("anchor.sm3_path must be a list of at most 64 hashes")
                sm3_root = hex32(anchor["sm3_root"], "anchor.sm3_root")
                sm3_path = tuple(hex32(p, "anchor.sm3_path[]") for p in anchor["sm3_path"])
        sm3 = hex32(digest.get("sm3"), "digest.sm3")
        bound = obj.get("holder_key_digest")
        if bound is not None and not (isinstance(bound, str) and len(bound) == 64
                                      and all(c in "0123456789abcdef" for c in bound)):
            raise bad("holder_key_digest must be a holder key id (64 lower-case hex digits) or null")
        return cls(str(identifier), identifier.type_code, identifier.issuer_uscc,
                   hex32(digest.get("sha256"), "digest.sha256"), sm3,
                   date(obj.get("valid_from"), "valid_from"), date(obj.get("valid_until"), "valid_until"),
                   root, index, size, path, sm3_root, sm3_path, _sealed(obj.get("seal"), sm3, bad), bound)

    def anchor(self) -> dict[str, Any]:
        """The anchor in the shape registry.certificates.verification checks."""
        if self.batch_root is None:
            return {"pending": True}
        sm3: dict[str, Any] = {}
        if self.sm3_root is not None:
            sm3 = {"sm3_root": self.sm3_root, "sm3_path": list(self.sm3_path), "sm3_digest": self.digest_sm3}
        return {"batch_root": self.batch_root, "index": self.index, "size": self.size, "path": list(self.path),
                "source": "issuer_node", **sm3}


def _sealed(obj: Any, sm3: bytes, bad: Any) -> SealedCopy | None:
    """The record's ``seal`` member (None: not sealed), parsed strictly; its contents are checked by the seal
    check, not here."""
    if obj is None:
        return None
    if not isinstance(obj, Mapping) or set(obj) != {"id", "format", "signature"}:
        raise bad("seal must be {id, format, signature}")
    seal_id, fmt, text = obj["id"], obj["format"], obj["signature"]
    if not isinstance(seal_id, str) or not 1 <= len(seal_id) <= 64 or not seal_id.isalnum() or not seal_id.isascii():
        raise bad("seal.id must be a seal id (ES...)")
    if fmt not in SEALED_FORMATS:
        raise bad(f"seal.format must be one of {', '.join(SEALED_FORMATS)}")
    if not isinstance(text, str) or len(text) > (MAX_SEALED_BYTES * 4) // 3 + 4:
        raise bad(f"seal.signature must be base64 of at most {MAX_SEALED_BYTES} bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad("seal.signature must be base64") from None
    return SealedCopy(seal_id, fmt, data, sm3)


def stored_seal(s: Any, identifier: str, digest_sm3: bytes) -> SealedCopy | None:
    """The sealed signature this node stored for a certificate it issued (None: not sealed)."""
    row = s.scalars(select(SealedSignature).where(SealedSignature.record_kind == "certificate",
                                                  SealedSignature.record_id == identifier)).first()
    return None if row is None else SealedCopy(row.seal_id, row.format, bytes(row.signature), digest_sm3)


def public_record(node: Node, identifier: str) -> PublicRecord:
    """The public record of a certificate issued on this node (NotFoundError if it was not)."""
    cid = CertificateId.parse(identifier)
    with node.db.session() as s:
        row = s.get(Certificate, str(cid))
        if row is None:
            raise NotFoundError(f"no certificate {cid} was issued on this node", code="certificate_not_found")
        batch = s.get(Batch, row.batch_id) if row.batch_id else None
        sm3 = hex_or_empty(row.digest_sm3)
        rec = PublicRecord(row.identifier, row.type_code, row.issuer_uscc, hex_or_empty(row.digest_sha256),
                           sm3, row.valid_from, row.valid_until, None, seal=stored_seal(s, row.identifier, sm3),
                           holder_key_digest=row.holder_key_digest)
        if batch is None or batch.state != "anchored" or row.proof is None or row.leaf_index is None:
            return rec
        path = tuple(row.proof[i:i + 32] for i in range(0, len(row.proof), 32))
        rec = dataclasses.replace(rec, batch_root=bytes.fromhex(batch.root[2:]), index=row.leaf_index,
                                  size=batch.size, path=path)
        sm3_root = hex_or_empty(batch.root_sm3)  # an edited column: the record goes out without SM3 (the audit reports it)
        if len(sm3_root) == 32 and row.proof_sm3 is not None:
            rec = dataclasses.replace(rec, sm3_root=sm3_root,
                                      sm3_path=tuple(row.proof_sm3[i:i + 32] for i in range(0, len(row.proof_sm3), 32)))
        return rec




class RemoteCertificates:
    """Asks issuing agencies' nodes (found on chain) for public records and by-reference blobs."""

    def __init__(self, node: Node, *, timeout: float = 5.0, endpoint_ttl: float = 60.0,
                 cache_size: int = 10_000, retry_after: float = 15.0) -> None:
        self.node = node
        self.timeout = timeout
        self.endpoint_ttl = endpoint_ttl
        self.cache_size = cache_size
        # a node that did not answer is not asked again for this long: each verification would otherwise wait
        # out the timeout (a presented document asks for its seal, and verifies without it)
        self.retry_after = retry_after
        self._down: dict[str, float] = {}
        self._endpoints: dict[str, tuple[float, str]] = {}
        self._records: OrderedDict[str, PublicRecord] = OrderedDict()  # anchored records never change
        self._lock = threading.Lock()
        # entered around each request to another node: the API hands back the bounded verification slot a
        # verification holds while it waits (api/lanes.py `outside_the_lane`); nothing by default
        self.waiting: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext

    def endpoint(self, uscc: str) -> str:
        """The issuing agency's published base URL (RemoteUnavailableError if it published none)."""
        now = time.monotonic()
        with self._lock:
            cached = self._endpoints.get(uscc)
        if cached is None or now - cached[0] > self.endpoint_ttl:
            with chain_boundary(f"cannot read the endpoint of {uscc}"):
                url = self.node.consortium.endpoint_of(uscc)
            cached = (now, url)
            with self._lock:
                self._endpoints[uscc] = cached
        if not cached[1]:
            raise RemoteUnavailableError(f"agency {uscc} published no node endpoint on chain",
                                         code="issuer_node_unknown")
        return cached[1].rstrip("/")

    def _get(self, url: str, limit: int) -> bytes:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise RemoteUnavailableError(f"refusing a non-http(s) endpoint {url[:100]!r}")
        origin = urllib.parse.urlsplit(url).netloc
        with self._lock:
            down = self._down.get(origin, 0.0) - time.monotonic()
        if down > 0:
            raise RemoteUnavailableError(f"the issuing agency's node {origin} did not answer; retrying in {down:.0f} s")
        req = urllib.request.Request(url, headers={"Accept": "application/json, application/octet-stream"})
        try:
            with self.waiting(), urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (http(s) above)
                data: bytes = resp.read(limit + 1)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise NotFoundError(f"the issuing agency's node has no certificate at {url}",
                                    code="certificate_not_found") from None
            raise RemoteUnavailableError(f"the issuing agency's node answered HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            with self._lock:
                self._down[origin] = time.monotonic() + self.retry_after
            raise RemoteUnavailableError(f"the issuing agency's node is unreachable: {exc}") from None
        if len(data) > limit:
            raise RemoteUnavailableError(f"the issuing agency's node answered more than {limit} bytes")
        return data

    def record(self, identifier: CertificateId) -> PublicRecord:
        key = str(identifier)
        with self._lock:
            hit = self._records.get(key)
            if hit is not None:
                self._records.move_to_end(key)
                return hit
        base = self.endpoint(identifier.issuer_uscc)
        data = self._get(f"{base}/api/v1/certificates/{urllib.parse.quote(key, safe='')}/record", MAX_RECORD_BYTES)
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise PayloadFormatError("the issuing node's record is not JSON", code="invalid_remote_record") from None
        rec = PublicRecord.from_json(obj, identifier=identifier)
        if rec.batch_root is not None:
            with self._lock:
                self._records[key] = rec
                while len(self._records) > self.cache_size:
                    self._records.popitem(last=False)
        return rec

    def blob(self, identifier: CertificateId) -> bytes:
        """The encrypted by-reference document, from the issuing node (ciphertext: useless without the QR's key)."""
        base = self.endpoint(identifier.issuer_uscc)
        return self._get(f"{base}/api/v1/certificates/{urllib.parse.quote(str(identifier), safe='')}/blob",
                         MAX_BLOB_BYTES)
