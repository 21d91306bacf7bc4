"""Validating, building and sealing the documents of an issuing request, in this process or, for a large
request, in chunks across a small pool of worker processes (issue 16: building is GIL-bound Python; the API
process's threads cannot use a second core for it).

One function does the work either way (`build_chunk`), so a pooled request gives the documents an
in-process one gives, byte for byte for the same random generator (tests/unit/test_parallel_build.py), and
refuses the same bad rows with the same error: every chunk reports its invalid documents by their index in
the whole request, and `building.raise_invalid` merges them as for one chunk. What comes back per document
is compact and ready to insert (`BuiltDocument`: strings and bytes, the document's JSON encoded once — the
same bytes are sealed in the envelope and sent in the answer), not rich objects.

The workers start from a fresh interpreter (multiprocessing's ``forkserver`` context: the API process runs
threads, and a plain fork of a threaded process may inherit a held lock); each receives what it needs once,
as bytes (`BuildContext`: the seeds and the node's lookup MAC key), and nothing else of the node: no
database, no chain, no signing key. Storing, numbering (the serial range is reserved before), the
Idempotency-Key checks and the commit stay in the API process, so nothing is answered before it is
committed.

    >>> builder = DocumentBuilder(BuildContext(node.seeds, node.keys.mac_key), processes=1)   # doctest: +SKIP
    >>> built = builder.build(ChunkJob(agency, type_code, values, first_serial=1, ...))        # doctest: +SKIP
    >>> builder.close()                                                                         # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import gc
import math
import multiprocessing
import os
import pickle
import random
import select
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import structlog

from registry.certificates import building, number_macs
from registry.certificates.timing import StageTimer
from registry.consortium.mac_key import MacKey
from registry.errors import ValidationError
from registry.formats import envelope
from registry.seeds import Seeds

__all__ = ["BuildContext", "BuiltDocument", "ChunkJob", "DocumentBuilder", "build_chunk", "default_processes"]

log = structlog.get_logger(__name__)

POOL_THRESHOLD = 200  # documents: smaller requests are built in the API process (a round trip costs more)
MIN_CHUNK = 100


def default_processes() -> int:
    """cpu_count, at least 1. The API process's own share of a large issue (parse, store, anchor, answer) keeps
    ~0.6 of a core busy while it waits on the workers in turn, so a worker per core fills the machine better than
    leaving it a core: on 2 cores, 10,000 documents at 2,848-3,018 docs/s with 1 worker, 3,364-3,415 with 2
    (docs/PERFORMANCE.md, "Quiet machine, session 5")."""
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class BuildContext:
    """What a worker needs to build documents, sent once when it starts."""

    seeds: Seeds
    mac_key: MacKey


@dataclass(frozen=True)
class ChunkJob:
    """Documents ``offset`` .. of one request: their values, serials and what the request fixes for all."""

    agency: str
    type_code: str
    values: Sequence[Mapping[str, Any]]
    first_serial: int
    today: dt.date
    public_base: str
    algorithm: envelope.EnvelopeAlgorithm
    version: int = 1
    serials: Sequence[str] | None = None
    offset: int = 0
    # 16+ bytes: every random draw of document i (salt seed, envelope key and nonce) comes from
    # random.Random(seed + i): reproducible builds for tests only; None: the system's CSPRNG
    seed: bytes | None = None


class BuiltDocument(NamedTuple):
    """One document, ready to insert and to answer with (pickles as a plain tuple)."""

    identifier: str
    serial: str
    version: int
    digest_sha256: str  # as in the document's "digest" (0x-prefixed hex)
    digest_sm3: str
    valid_from: dt.date | None
    valid_until: dt.date | None
    holder_key_digest: str | None
    blob: bytes  # the sealed by-reference envelope of document_json
    key: str  # the envelope key, base64url: returned once, never stored
    qr_url: str
    document_json: bytes  # the document, compact JSON (UTF-8), encoded once
    number_mac: str  # number_macs.document_macs
    values_mac: str

    @property
    def raw_digests(self) -> tuple[bytes, bytes]:
        return bytes.fromhex(self.digest_sha256.removeprefix("0x")), bytes.fromhex(self.digest_sm3.removeprefix("0x"))


class ChunkResult(NamedTuple):
    built: list[BuiltDocument]
    invalid: list[tuple[type[ValidationError], str, str, dict[str, Any]]]  # class, message, code, details
    seconds: dict[str, float]  # validate, build, seal in the process that built the chunk


def build_chunk(ctx: BuildContext, job: ChunkJob) -> ChunkResult:
    """Validate, build and seal one chunk (in whichever process runs it). Nothing is sealed when a document
    of the chunk is invalid: the request will be refused."""
    timer = StageTimer()
    cert_type = ctx.seeds.certificate_type(job.type_code)
    seed = job.seed
    rngs: dict[int, random.Random] = {}

    def rng_for(i: int) -> random.Random:
        assert seed is not None
        return rngs.setdefault(i, random.Random(seed + i.to_bytes(8, "big")))

    encoded: list[bytes] = []
    docs, invalid = building.build_each(
        ctx.seeds, job.agency, cert_type, job.values, first_serial=job.first_serial, today=job.today,
        version=job.version, serials=job.serials, offset=job.offset, rng_for=None if seed is None else rng_for,
        timer=timer, encoded=encoded)
    if invalid:
        return ChunkResult([], [(type(e), e.message, e.code, e.details) for e in invalid], timer.seconds)
    built = []
    mac = ctx.mac_key.mac
    with timer.stage("seal"):
        for k, (doc, given, document_json) in enumerate(zip(docs, job.values, encoded, strict=True)):
            ident = doc.identifier
            draw = os.urandom if seed is None else rng_for(job.offset + k).randbytes
            key, blob = envelope.seal(document_json, aad=envelope.aad_for(ident), algorithm=job.algorithm,
                                      randbytes=draw)
            nmac, vmac = number_macs.document_macs(mac, job.agency, job.type_code, doc, given)
            built.append(BuiltDocument(
                ident, building.serial_at(k, job.first_serial, job.serials), job.version,
                doc.digest_sha256.hex(), doc.digest_sm3.hex(), doc.valid_from,
                doc.valid_until, doc.holder_key_digest, blob, envelope.encode_key(key),
                envelope.build_ref_url(job.public_base, ident, key), document_json, nmac, vmac))
    return ChunkResult(built, [], timer.seconds)


# -- the worker processes ---------------------------------------------------------------------------------

_context: BuildContext | None = None  # in a worker: set once by _start


def _start(context: bytes, api_pid: int) -> None:
    global _context
    _context = pickle.loads(context)  # noqa: S301 (our own bytes, from the API process that started us)
    _exit_with(api_pid)
    gc.collect()
    gc.freeze()  # the modules and the context live as long as the worker: the collector stops walking them


def _exit_with(api_pid: int) -> None:
    """End this worker when the API process that started it ends. A SIGKILLed API process (`up` restarts it)
    closes nothing: its workers would wait for work forever on a queue whose pipe they hold both ends of, and
    keep the forkserver alive with them. A pidfd (Linux 5.3+) becomes readable when that process exits."""
    try:
        pidfd = os.pidfd_open(api_pid)
    except ProcessLookupError:
        os._exit(0)
    except (AttributeError, OSError):  # no pidfd here: look every second
        pidfd = None

    def watch() -> None:
        if pidfd is not None:
            select.select([pidfd], [], [])
        else:
            while _alive(api_pid):
                time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="api-process-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run(job: ChunkJob) -> ChunkResult:
    if _context is None:
        raise RuntimeError("the build worker was not initialised")
    return build_chunk(_context, job)


def _ready() -> int:
    return os.getpid()


class DocumentBuilder:
    """Builds a request's documents: in this process below ``threshold`` documents or with ``processes=0``,
    else in chunks across ``processes`` worker processes (started on first use or by `start`, stopped by
    `close`). A broken pool (a worker killed) is replaced; that request is built in this process."""

    def __init__(self, ctx: BuildContext, *, processes: int = 0, threshold: int = POOL_THRESHOLD) -> None:
        if processes < 0:
            raise ValueError(f"processes must be >= 0, got {processes}")
        self.ctx = ctx
        self.processes = processes
        self.threshold = threshold
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Start the worker processes now (they import the registry once), not on the first large request."""
        pool = self._executor()
        try:
            for _ in range(self.processes if pool is not None else 0):
                pool.submit(_ready)  # type: ignore[union-attr]
        except (OSError, RuntimeError) as exc:  # e.g. a main module that starts a server when imported
            log.error("cannot start the document build processes: building in the API process", error=str(exc))
            self.processes = 0
            self.close()
            self._closed = False

    def _executor(self) -> ProcessPoolExecutor | None:
        if self.processes == 0:
            return None
        with self._lock:
            if self._closed:
                return None
            if self._pool is None:
                mp = multiprocessing.get_context("forkserver")
                mp.set_forkserver_preload([__name__])
                self._pool = ProcessPoolExecutor(max_workers=self.processes, mp_context=mp, initializer=_start,
                                                 initargs=(pickle.dumps(self.ctx), os.getpid()))
            return self._pool

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def build(self, job: ChunkJob, *, timer: StageTimer | None = None) -> list[BuiltDocument]:
        """Every document of ``job`` (a whole request) in order; ValidationError (`building.raise_invalid`)
        when any is invalid. ``timer`` gets validate/build/seal (summed over the processes that built) and
        ``processes``, the worker processes used (0: this process)."""
        n = len(job.values)
        pool = self._executor() if n >= self.threshold else None
        results: list[ChunkResult] | None = None
        if pool is not None:
            results = self._in_pool(pool, job)
        used = 0 if results is None else min(self.processes, len(results))
        if results is None:
            results = [build_chunk(self.ctx, job)]
        if timer is not None:
            timer.processes = max(timer.processes, used)
            for result in results:
                for stage, seconds in result.seconds.items():
                    timer.add(stage, seconds)
        invalid = [cls(message, code=code, details=details)
                   for result in results for cls, message, code, details in result.invalid]
        building.raise_invalid(invalid)
        return [b for result in results for b in result.built]

    def _in_pool(self, pool: ProcessPoolExecutor, job: ChunkJob) -> list[ChunkResult] | None:
        n = len(job.values)
        # two chunks per process: concurrent requests interleave, and a slow chunk does not hold the rest
        size = max(MIN_CHUNK, math.ceil(n / (2 * self.processes)))
        futures: list[Future[ChunkResult]] = []
        try:
            for start in range(0, n, size):
                end = min(n, start + size)
                futures.append(pool.submit(_run, replace(
                    job, values=list(job.values[start:end]), first_serial=job.first_serial + start, offset=job.offset + start,
                    serials=None if job.serials is None else list(job.serials[start:end]))))
            return [f.result() for f in futures]
        except BrokenProcessPool as exc:
            log.error("document build pool broken: building in the API process", error=str(exc))
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            return None

