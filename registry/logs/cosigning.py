"""The gateway's side of C2SP checkpoints (registry/logs/note.py, registry/logs/witness_protocol.py): it signs
each ledger log's checkpoint as a signed note with its Ed25519 log key, asks the witnesses for cosignatures with
the tlog-witness ``add-checkpoint`` call, and keeps the latest checkpoint that reached the quorum.

Witnesses are processes of their own (``lianzheng witness serve``) reached over HTTP, `k` of which must
cosign before the gateway submits the checkpoint to the Backbone. A witness's vkey is read from its
``GET /vkey`` on first contact and pinned in the database (a deployment may pin them in advance the same way).
With no witness URLs configured (a single dev node), the witness keys this data dir holds cosign in process,
over the same protocol, and never hold the Backbone back (the behaviour before witness processes existed).

    >>> cosigning = CheckpointCosigning(node, logs, witness_urls=["http://127.0.0.1:9001"], quorum=2)  # doctest: +SKIP
    >>> cosigning.cosign("certificates", size, root).text_with_signatures()                            # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from sqlalchemy import BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.errors import ConflictError
from registry.logs.backbone import gateway_uscc, witness_usccs
from registry.logs.log import LEDGERS, LedgerLogs
from registry.logs.note import CheckpointBody, Note, NoteError, NoteSignature, SignatureType, Verifier, verify_note
from registry.logs.note_keys import NoteKeys
from registry.logs.witness_protocol import AddCheckpoint, Cosigned, LogTrust, TlogWitness, WitnessRefusal
from registry.node import Node
from registry.store.db import Base, KeyValue, utcnow

__all__ = ["CheckpointCosigning", "CheckpointNoteRow", "HttpTransport", "QuorumError", "Transport", "WitnessInfo",
           "log_origin", "log_vkeys", "witness_name"]

log = structlog.get_logger(__name__)

ORIGIN_HOST = "lianzheng.hl.gov.cn"


def log_origin(chain_id: int, ledger: str) -> str:
    """The checkpoint origin (and the log key's name) of a ledger log: ``lianzheng.hl.gov.cn/<chain id>/<ledger>``."""
    return f"{ORIGIN_HOST}/{chain_id}/{ledger}"


def witness_name(uscc: str) -> str:
    return f"witness.{ORIGIN_HOST}/{uscc}"


def log_vkeys(node: Node) -> list[str]:
    """The gateway's log key (a C2SP vkey) of every ledger log: what a witness process is told to trust."""
    chain_id = node.require_deployment().chain_id
    keys = NoteKeys(node)
    return [keys.key(gateway_uscc(node), SignatureType.ED25519, log_origin(chain_id, ledger)).verifier.vkey()
            for ledger in LEDGERS]


class CheckpointNoteRow(Base):
    """The latest checkpoint note of each ledger that reached its witness quorum (what /logs/<ledger>/checkpoint
    serves)."""

    __tablename__ = "checkpoint_notes"
    ledger: Mapped[str] = mapped_column(String(32), primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text)
    cosignatures: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class QuorumError(ConflictError):
    """Fewer witnesses than the quorum cosigned: the checkpoint is not published nor submitted."""

    default_code = "witness_quorum"


class Transport(Protocol):
    def post(self, url: str, body: bytes) -> tuple[int, str]: ...

    def get_json(self, url: str) -> dict[str, str]: ...


class HttpTransport:
    """HTTP with the standard library (registry/ does not use requests); a short timeout, so one dead witness
    does not hold a checkpoint back longer than that."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout

    def post(self, url: str, body: bytes) -> tuple[int, str]:
        req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (configured http(s) URLs)
                return int(resp.status), resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode("utf-8", "replace")

    def get_json(self, url: str) -> dict[str, str]:
        with urllib.request.urlopen(url, timeout=self.timeout) as resp:  # noqa: S310
            data = json.loads(resp.read())
        if not isinstance(data, dict):
            raise ValueError(f"{url} did not answer a JSON object")
        return {str(k): str(v) for k, v in data.items()}


@dataclass
class WitnessInfo:
    """One witness as the gateway sees it: where it is, whose it is, its key, and how the last request went."""

    url: str  # "" for a witness cosigning in this process
    agency: str
    verifier: Verifier | None
    sizes: dict[str, int] = field(default_factory=dict)  # origin -> the latest size it cosigned, as far as known
    last_error: str | None = None
    local: TlogWitness | None = None


class _KvState:
    """An in-process witness's record of what it cosigned, in the node's key-value table."""

    def __init__(self, node: Node, uscc: str) -> None:
        self.node, self.uscc = node, uscc

    def get(self, origin: str) -> Cosigned | None:
        with self.node.db.session() as s:
            row = s.get(KeyValue, f"c2sp-witness:{self.uscc}:{origin}")
            if row is None:
                return None
            d = json.loads(row.value)
        return Cosigned(int(d["size"]), bytes.fromhex(d["root"]))

    def put(self, origin: str, cosigned: Cosigned) -> None:
        with self.node.db.session() as s:
            s.merge(KeyValue(key=f"c2sp-witness:{self.uscc}:{origin}",
                             value=json.dumps({"size": cosigned.size, "root": cosigned.root.hex()})))


class LogRoots:
    """A RootSource over ledger logs (the gateway's own, for in-process witnesses; a witness process's own)."""

    def __init__(self, logs: LedgerLogs) -> None:
        self.logs = logs

    def root_at(self, ledger: str, size: int) -> bytes | None:
        with self.logs.lock:
            if self.logs.log(ledger).size < size:
                self.logs.sync()
            lg = self.logs.log(ledger)
            return lg.root(size) if lg.size >= size else None


class CheckpointCosigning:
    """See the module docstring."""

    def __init__(self, node: Node, logs: LedgerLogs, *, witness_urls: Sequence[str] = (), quorum: int = 2,
                 transport: Transport | None = None) -> None:
        self.node = node
        self.logs = logs
        self.quorum = quorum
        self.transport = transport or HttpTransport()
        self.remote = bool(witness_urls)
        self.notes = NoteKeys(node)
        self.witnesses = [WitnessInfo(url.rstrip("/"), "", None) for url in witness_urls]
        self.last_error: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self._local_ready = self.remote  # in-process witnesses are set up on first use (it writes their keys)

    # -- keys ----------------------------------------------------------------------------------------
    def log_key_verifier(self, ledger: str) -> Verifier:
        name = log_origin(self.logs.chain_id, ledger)
        return self.notes.key(gateway_uscc(self.node), SignatureType.ED25519, name).verifier

    def _local_witnesses(self) -> None:
        trust = {log_origin(self.logs.chain_id, ledger): LogTrust(ledger, (self.log_key_verifier(ledger),))
                 for ledger in self.logs.logs}
        for uscc in witness_usccs(self.node):
            if self.node.keys.has_signing_key(uscc):
                key = self.notes.key(uscc, SignatureType.COSIGNATURE_V1, witness_name(uscc))
                witness = TlogWitness(key, trust, _KvState(self.node, uscc), LogRoots(self.logs))
                self.witnesses.append(WitnessInfo("", uscc, key.verifier, local=witness))

    def _ready(self) -> list[WitnessInfo]:
        if not self._local_ready:
            self._local_witnesses()
            self._local_ready = True
        return self.witnesses

    def _resolve(self, w: WitnessInfo) -> Verifier:
        """The witness's vkey, pinned in the database on first contact."""
        if w.verifier is not None:
            return w.verifier
        pin = f"c2sp-witness-vkey:{w.url}"
        with self.node.db.session() as s:
            row = s.get(KeyValue, pin)
            stored = json.loads(row.value) if row is not None else None
        if stored is None:
            stored = self.transport.get_json(w.url + "/vkey")
            with self.node.db.session() as s:
                s.merge(KeyValue(key=pin, value=json.dumps({"vkey": stored["vkey"], "agency": stored["agency"]})))
        verifier = Verifier.from_vkey(stored["vkey"])
        if verifier.sig_type is not SignatureType.COSIGNATURE_V1:
            raise NoteError(f"witness {w.url} does not have a cosignature/v1 key", code="invalid_vkey")
        w.verifier, w.agency = verifier, stored["agency"]
        return verifier

    def verifiers(self) -> list[tuple[Verifier, str]]:
        """Every witness key known so far, with its agency."""
        out = []
        for w in self._ready():
            try:
                out.append((self._resolve(w), w.agency))
            except (OSError, ValueError, KeyError, NoteError) as exc:
                w.last_error = f"cannot read its vkey: {exc}"
        return out

    # -- cosigning -----------------------------------------------------------------------------------
    def _ask(self, w: WitnessInfo, ledger: str, note: Note, size: int) -> NoteSignature:
        verifier = self._resolve(w)
        origin = log_origin(self.logs.chain_id, ledger)
        for _attempt in range(2):  # a 409 tells the witness's size: one retry with a proof from there
            old = w.sizes.get(origin, 0)
            if old > size:
                raise ConflictError(f"witness has cosigned size {old}, beyond this checkpoint's {size}")
            with self.logs.lock:
                proof = tuple(self.logs.log(ledger).consistency_proof(old, size)) if 0 < old < size else ()
            body = AddCheckpoint(old, proof, note).encode()
            if w.local is not None:
                try:
                    status, text = 200, w.local.add_checkpoint(body)
                except WitnessRefusal as exc:
                    status = int(exc.status)
                    text = f"{exc.latest_size}\n" if exc.latest_size is not None else exc.message
            else:
                status, text = self.transport.post(w.url + "/add-checkpoint", body)
            if status == 409 and text.strip().isdigit():
                w.sizes[origin] = int(text.strip())
                continue
            if status != 200:
                raise ConflictError(f"HTTP {status}: {text.strip()[:200]}")
            cosigned = Note(note.text, tuple(NoteSignature.parse_line(line) for line in text.splitlines() if line))
            sigs = [s for s in cosigned.signatures if verifier.matches(s) and verifier.verify(note.text, s)]
            if not sigs:
                raise ConflictError("answered without a valid cosignature from its key")
            w.sizes[origin] = size
            return sigs[0]
        raise ConflictError("its size kept changing")

    def cosign(self, ledger: str, size: int, root: bytes) -> Note:
        """The checkpoint note of `ledger` at (size, root), signed by the log key and cosigned by the witnesses
        that accept it; QuorumError (with each witness's reason) when fewer than the quorum do and the
        witnesses are processes of their own."""
        with self._lock:
            origin = log_origin(self.logs.chain_id, ledger)
            key = self.notes.key(gateway_uscc(self.node), SignatureType.ED25519, origin)
            text = CheckpointBody(origin, size, root).text()
            note = Note(text, (key.sign(text),))
            cosigs = []
            for w in self._ready():
                try:
                    cosigs.append(self._ask(w, ledger, note, size))
                    w.last_error = None
                except (OSError, ValueError, KeyError, NoteError, ConflictError) as exc:
                    w.last_error = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                    log.warning("witness did not cosign", witness=w.url or w.agency, ledger=ledger, size=size,
                                error=w.last_error)
            note = note.with_signatures(tuple(cosigs))
            needed = self.quorum if self.remote else min(self.quorum, len(self.witnesses))
            if len(cosigs) < needed:
                why = "; ".join(f"{w.url or w.agency}: {w.last_error}" for w in self.witnesses if w.last_error)
                message = (f"{len(cosigs)} of {len(self.witnesses)} witnesses cosigned {ledger} at size {size}, "
                           f"quorum is {needed}: {why}")
                self.last_error[ledger] = message
                if self.remote:
                    raise QuorumError(message, details={"ledger": ledger, "size": size, "cosigned": len(cosigs),
                                                        "quorum": needed})
                return note
            self.last_error[ledger] = None
            self.publish(ledger, note, len(cosigs))
            return note

    def publish(self, ledger: str, note: Note, cosignatures: int) -> None:
        size = CheckpointBody.parse(note.text).size
        with self.node.db.session() as s:
            s.merge(CheckpointNoteRow(ledger=ledger, tree_size=size, note=note.text_with_signatures(),
                                      cosignatures=cosignatures))

    def latest(self, ledger: str) -> CheckpointNoteRow | None:
        with self.node.db.session() as s:
            return s.get(CheckpointNoteRow, ledger)

    def check(self, note: Note, ledger: str) -> list[Verifier]:
        """The keys (log and witnesses) whose signatures on `note` verify."""
        return verify_note(note, [self.log_key_verifier(ledger), *(v for v, _ in self.verifiers())])
