"""The C2SP tlog-witness ``add-checkpoint`` call (c2sp.org/tlog-witness), without HTTP: the request body, the
checks in the spec's order with the spec's status codes, the witness's durable record of the latest checkpoint
it cosigned per origin, and the answer (its ``cosignature/v1`` line).

Beyond the spec's checks, a Lianzheng witness rebuilds the log itself from the chain (`RootSource`: its own
chain connection and registry/logs/log.py) and cosigns only a root it computed itself for that size.

    >>> witness = TlogWitness(key, {origin: LogTrust("certificates", [log_vkey])}, state, roots)  # doctest: +SKIP
    >>> witness.add_checkpoint(body).lines                                                        # doctest: +SKIP
"""

from __future__ import annotations

import base64
import enum
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from registry.crypto.merkle import verify_consistency
from registry.errors import RegistryError
from registry.logs.note import CheckpointBody, Note, NoteError, NoteKey, Verifier, verify_note

__all__ = [
    "MAX_PROOF_LINES", "AddCheckpoint", "JsonWitnessState", "LogTrust", "RootSource", "TlogWitness", "WitnessRefusal",
    "WitnessStatus", "Cosigned", "WitnessState",
]

MAX_PROOF_LINES = 63  # the spec: a client MUST NOT send more


class WitnessStatus(enum.IntEnum):
    """The HTTP statuses the spec assigns to each refusal (and 503 for a chain the witness cannot read yet)."""

    BAD_REQUEST = 400
    FORBIDDEN = 403
    NOT_FOUND = 404
    CONFLICT = 409
    UNPROCESSABLE = 422
    UNAVAILABLE = 503


class WitnessRefusal(RegistryError):
    """A checkpoint the witness does not cosign; `status` is the spec's HTTP status, `latest_size` is set for a
    409 on the old size (the body the spec asks for, ``text/x.tlog.size``)."""

    default_code = "witness_refused"

    def __init__(self, status: WitnessStatus, message: str, *, latest_size: int | None = None) -> None:
        super().__init__(message, code=f"witness_{status.name.lower()}")
        self.status = status
        self.latest_size = latest_size


@dataclass(frozen=True)
class AddCheckpoint:
    """An add-checkpoint request body: ``old <size>``, consistency proof lines, an empty line, the checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: Note

    def encode(self) -> bytes:
        lines = [f"old {self.old_size}\n", *(base64.b64encode(h).decode() + "\n" for h in self.proof), "\n"]
        return ("".join(lines) + self.checkpoint.text_with_signatures()).encode()

    @classmethod
    def parse(cls, body: bytes) -> AddCheckpoint:
        def bad(why: str) -> WitnessRefusal:
            return WitnessRefusal(WitnessStatus.BAD_REQUEST, f"malformed add-checkpoint body: {why}")

        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise bad("not UTF-8") from exc
        head, sep, rest = text.partition("\n\n")
        if not sep:
            raise bad("no empty line before the checkpoint")
        lines = head.split("\n")
        old = lines[0].removeprefix("old ")
        if not lines[0].startswith("old ") or not old.isascii() or not old.isdigit() or (old != "0" and old[0] == "0"):
            raise bad(f"first line must be 'old <size>': {lines[0][:40]!r}")
        if len(lines) - 1 > MAX_PROOF_LINES:
            raise bad(f"more than {MAX_PROOF_LINES} consistency proof lines")
        proof = []
        for line in lines[1:]:
            try:
                raw = base64.b64decode(line.encode("ascii"), validate=True)
            except (ValueError, UnicodeEncodeError) as exc:
                raise bad(f"proof line is not base64: {line[:60]!r}") from exc
            if len(raw) != 32:
                raise bad("a proof hash is 32 bytes")
            proof.append(raw)
        try:
            note = Note.parse(rest)
        except NoteError as exc:
            raise bad(exc.message) from exc
        return cls(int(old), tuple(proof), note)


@dataclass(frozen=True)
class LogTrust:
    """A log the witness follows: the ledger it rebuilds for it, and the log's public keys."""

    ledger: str
    keys: tuple[Verifier, ...]


@dataclass(frozen=True)
class Cosigned:
    size: int
    root: bytes


class WitnessState(Protocol):
    """Where the witness keeps the latest checkpoint it cosigned per origin (it must survive restarts)."""

    def get(self, origin: str) -> Cosigned | None: ...

    def put(self, origin: str, cosigned: Cosigned) -> None: ...


class JsonWitnessState:
    """The witness's state as one JSON file (mode 0600), replaced atomically (write, fsync, rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, dict[str, object]] = json.loads(path.read_text()) if path.exists() else {}

    def get(self, origin: str) -> Cosigned | None:
        d = self._data.get(origin)
        return None if d is None else Cosigned(int(str(d["size"])), base64.b64decode(str(d["root"])))

    def put(self, origin: str, cosigned: Cosigned) -> None:
        self._data[origin] = {"size": cosigned.size, "root": base64.b64encode(cosigned.root).decode()}
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self._data, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class RootSource(Protocol):
    """The witness's own view of a log: the RFC 6962 root of `ledger` at `size`, rebuilt from the chain
    (None while the witness's copy of the chain is shorter than `size`)."""

    def root_at(self, ledger: str, size: int) -> bytes | None: ...


class TlogWitness:
    """One witness key answering add-checkpoint for the logs it trusts (see the module docstring)."""

    def __init__(self, key: NoteKey, logs: dict[str, LogTrust], state: WitnessState, roots: RootSource, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.logs = logs
        self.state = state
        self.roots = roots
        self.clock = clock
        # the spec: checking the old size and persisting the new checkpoint must be atomic
        self._lock = threading.Lock()

    def add_checkpoint(self, body: bytes) -> str:
        """The cosignature line(s) for a request body; WitnessRefusal with the spec's status otherwise."""
        req = AddCheckpoint.parse(body)
        try:
            cp = CheckpointBody.parse(req.checkpoint.text)
        except NoteError as exc:
            raise WitnessRefusal(WitnessStatus.BAD_REQUEST, exc.message) from exc
        trust = self.logs.get(cp.origin)
        if trust is None:
            raise WitnessRefusal(WitnessStatus.NOT_FOUND, f"unknown log origin {cp.origin!r}")
        try:
            verify_note(req.checkpoint, list(trust.keys))
        except NoteError as exc:
            raise WitnessRefusal(WitnessStatus.FORBIDDEN, f"checkpoint signature: {exc.message}") from exc
        if req.old_size > cp.size:
            raise WitnessRefusal(WitnessStatus.BAD_REQUEST, f"old size {req.old_size} exceeds the checkpoint's {cp.size}")
        with self._lock:
            latest = self.state.get(cp.origin)
            latest_size = latest.size if latest else 0
            if req.old_size != latest_size:
                raise WitnessRefusal(WitnessStatus.CONFLICT, f"old size {req.old_size} is not the latest cosigned "
                                     f"size {latest_size}", latest_size=latest_size)
            if latest is not None and req.old_size == cp.size:
                if latest.root != cp.root:
                    raise WitnessRefusal(WitnessStatus.CONFLICT, f"root differs from the cosigned one at size {cp.size}")
            elif req.old_size == 0:
                if req.proof:
                    raise WitnessRefusal(WitnessStatus.UNPROCESSABLE, "the proof must be empty from size 0")
            elif latest is None or not verify_consistency(req.old_size, cp.size, latest.root, cp.root,
                                                          list(req.proof)):
                raise WitnessRefusal(WitnessStatus.UNPROCESSABLE,
                                     f"consistency proof from size {req.old_size} to {cp.size} does not verify")
            own = self.roots.root_at(trust.ledger, cp.size)
            if own is None:
                raise WitnessRefusal(WitnessStatus.UNAVAILABLE,
                                     f"this witness's copy of the chain has fewer than {cp.size} {trust.ledger} entries")
            if own != cp.root:
                raise WitnessRefusal(WitnessStatus.UNPROCESSABLE,
                                     f"root of size {cp.size} differs from the one this witness rebuilt from the chain")
            self.state.put(cp.origin, Cosigned(cp.size, cp.root))
            return self.key.sign(req.checkpoint.text, timestamp=int(self.clock())).line()
