"""Building an issuing request's documents in worker processes (registry/certificates/parallel.py) gives
what building them in the API process gives: the same documents byte for byte for the same random
generator, and the same refusal of bad rows."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.devtools.samples import sample_values
from registry.certificates.documents import Document
from registry.certificates.parallel import BuildContext, ChunkJob, DocumentBuilder
from registry.certificates.timing import StageTimer
from registry.consortium.mac_key import MacKey
from registry.errors import ValidationError
from registry.formats import envelope
from registry.seeds import load_seeds

SEEDS = load_seeds(Path(__file__).resolve().parents[3] / "seeds")
CONTEXT = BuildContext(SEEDS, MacKey(bytes(range(32))))
TYPE = SEEDS.certificate_types[0]
ISSUER = SEEDS.member(TYPE.issuers[0])
COUNT = 250  # above the pool threshold below: two chunks in one worker process


@pytest.fixture(scope="module")
def pooled() -> Iterator[DocumentBuilder]:
    builder = DocumentBuilder(CONTEXT, processes=1, threshold=100)
    try:
        yield builder
    finally:
        builder.close()


def _job(values: list[Any], **overrides: Any) -> ChunkJob:
    fields: dict[str, Any] = {
        "agency": ISSUER.uscc, "type_code": TYPE.code, "values": values, "first_serial": 7001,
        "today": dt.date(2026, 3, 25), "public_base": "http://127.0.0.1:8000",
        "algorithm": envelope.EnvelopeAlgorithm.SM4_CTR_HMAC_SM3, "seed": b"parallel-build-test-seed"}
    return ChunkJob(**{**fields, **overrides})


def test_the_pool_builds_the_documents_of_the_api_process_byte_for_byte(pooled: DocumentBuilder) -> None:
    values = sample_values(TYPE, COUNT, issuer=ISSUER, seed=11)
    timer = StageTimer()
    in_pool = pooled.build(_job(values), timer=timer)
    here = DocumentBuilder(CONTEXT, processes=0).build(_job(values))
    assert timer.processes == 1 and set(timer.seconds) == {"validate", "build", "seal"}
    assert len(in_pool) == COUNT
    assert in_pool == here  # every field: identifiers, digests, envelopes, keys, QR URLs, JSON, MACs
    assert [b.serial for b in in_pool] == [f"{7001 + i:012d}" for i in range(COUNT)]
    # what was built is the document: its JSON opens from the envelope and checks out
    last = in_pool[-1]
    opened = envelope.open_(last.blob, envelope.decode_key(last.key), aad=envelope.aad_for(last.identifier))
    assert opened == last.document_json
    doc = Document.from_json(json.loads(opened))
    assert doc.integrity_errors() == [] and doc.identifier == last.identifier
    # without a seed every document has its own random salts and keys
    fresh = pooled.build(_job(values, seed=None))
    assert {b.key for b in fresh}.isdisjoint({b.key for b in in_pool})
    assert [b.identifier for b in fresh] == [b.identifier for b in in_pool]


def test_bad_rows_refuse_the_request_with_the_same_error_in_the_pool(pooled: DocumentBuilder) -> None:
    values = sample_values(TYPE, COUNT, issuer=ISSUER, seed=12)
    values[3] = {**values[3], "持证主体代码": "not a code"}
    values[200] = "not an object"  # in the second chunk
    errors = []
    for builder in (pooled, DocumentBuilder(CONTEXT, processes=0)):
        with pytest.raises(ValidationError) as caught:
            builder.build(_job(values))
        errors.append((type(caught.value), caught.value.code, caught.value.message, caught.value.details))
    assert errors[0] == errors[1]
    _, code, message, details = errors[0]
    assert message.startswith("document 3: ") and "and 1 more invalid documents" in message
    assert details["invalid_documents"] == 2
    assert [e["index"] for e in details["errors"]] == [3, 200]
    assert details["errors"][1]["code"] == "invalid_document"


def test_small_requests_stay_in_the_api_process(pooled: DocumentBuilder) -> None:
    timer = StageTimer()
    built = pooled.build(_job(sample_values(TYPE, 5, issuer=ISSUER, seed=13)), timer=timer)
    assert len(built) == 5 and timer.processes == 0


def test_a_closed_builder_builds_in_the_api_process() -> None:
    builder = DocumentBuilder(CONTEXT, processes=1, threshold=1)
    builder.close()
    timer = StageTimer()
    assert len(builder.build(_job(sample_values(TYPE, 3, issuer=ISSUER, seed=14)), timer=timer)) == 3
    assert timer.processes == 0


def test_the_batch_answer_splices_the_encoded_documents_as_the_model_would_encode_them() -> None:
    from api.routes.certificates import BatchPublic, _batch_json, _issued
    from registry.certificates.issued import IssuedCertificate

    built = DocumentBuilder(CONTEXT, processes=0).build(_job(sample_values(TYPE, 3, issuer=ISSUER, seed=15)))
    spliced = [IssuedCertificate(b.identifier, "pending", None, b.key, b.qr_url, document_json=b.document_json)
               for b in built]
    replayed = IssuedCertificate(built[0].identifier, "issued", None, None, None, replayed=True)
    content = _batch_json([*spliced, replayed])
    parsed = [IssuedCertificate(i.identifier, i.status, i.body(), i.key, i.qr_url, i.replayed)
              for i in [*spliced, replayed]]
    expected = BatchPublic(count=4, status="pending", certificates=[_issued(i) for i in parsed]).model_dump_json()
    assert content == expected.encode()  # byte for byte: the document's compact JSON is what pydantic writes


def test_a_killed_worker_costs_one_request_its_pool_not_its_documents() -> None:
    import os
    import signal

    builder = DocumentBuilder(CONTEXT, processes=1, threshold=1)
    try:
        values = sample_values(TYPE, 4, issuer=ISSUER, seed=16)
        first = StageTimer()
        assert len(builder.build(_job(values), timer=first)) == 4 and first.processes == 1
        pool = builder._pool
        assert pool is not None
        for pid in list(pool._processes):  # type: ignore[attr-defined]
            os.kill(pid, signal.SIGKILL)
        fallback = StageTimer()
        assert builder.build(_job(values), timer=fallback) == DocumentBuilder(CONTEXT).build(_job(values))
        assert fallback.processes == 0  # built in this process; the broken pool is replaced
        again = StageTimer()
        assert len(builder.build(_job(values), timer=again)) == 4 and again.processes == 1
    finally:
        builder.close()


_API_PROCESS = """
import os, sys
from pathlib import Path
from registry.certificates.parallel import BuildContext, DocumentBuilder, _ready
from registry.consortium.mac_key import MacKey
from registry.seeds import load_seeds

if __name__ == "__main__":
    builder = DocumentBuilder(BuildContext(load_seeds(Path(sys.argv[1])), MacKey(bytes(32))), processes=1)
    worker = builder._executor().submit(_ready).result(timeout=120)
    print(worker, flush=True)
    sys.stdin.read()  # until killed
"""


def test_a_sigkilled_api_process_leaves_no_build_worker_or_forkserver(tmp_path: Path) -> None:
    """`up` restarts a killed API process: its build worker and the forkserver must not outlive it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "api_process.py"
    script.write_text(_API_PROCESS)
    root = Path(__file__).resolve().parents[3]
    api = subprocess.Popen([sys.executable, str(script), str(root / "seeds")], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True, cwd=root,
                           env={**os.environ, "PYTHONPATH": str(root)})
    try:
        assert api.stdout is not None
        worker = int(api.stdout.readline())
        forkserver = int(Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert forkserver not in (api.pid, 1)  # the worker is the forkserver's child, not the API process's
    finally:
        api.send_signal(signal.SIGKILL)
        api.wait(timeout=30)

    def gone(pid: int) -> bool:
        stat = Path(f"/proc/{pid}/stat")
        try:  # a zombie has exited: only its parent's wait is left
            return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    deadline = time.monotonic() + 60  # a condition, not a pause: the worker exits as soon as it sees the pidfd
    while not (gone(worker) and gone(forkserver)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(worker), f"build worker {worker} outlived its SIGKILLed API process"
    assert gone(forkserver), f"forkserver {forkserver} outlived its SIGKILLed API process"


def test_a_build_process_imports_neither_the_database_layer_nor_web3() -> None:
    """What the forkserver preloads for the workers (each API process starts one): the seeds, the document
    builders and the envelope, not the node, the key store, SQLAlchemy or web3 (~1.4 s of CPU and ~50 MB each)."""
    code = ("import json, sys; import registry.certificates.parallel; "
            "print(json.dumps(sorted(m for m in ('web3', 'eth_account', 'sqlalchemy', 'registry.node', "
            "'registry.consortium.keys', 'alembic') if m in sys.modules)))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == []
