"""C2SP tlog-witness processes (`lianzheng witness serve`, real subprocesses on free ports) and the gateway's
C2SP checkpoints: the spec's status codes, a fork refused, 409 with the witness's size, the quorum of 2 of 3
surviving one dead witness and stopping (with the reason in the API) at two, and resuming on restart.

The checkpoint served at /logs/<ledger>/checkpoint is verified with the vkeys from /logs/<ledger>/keys by a
verifier written here from the C2SP texts (signed-note, tlog-checkpoint, tlog-cosignature), using hashlib and
cryptography's Ed25519 only."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from registry.logs.backbone import gateway_uscc, witness_usccs
from registry.logs.cosigning import log_origin
from registry.logs.log import LedgerLogs
from registry.logs.note import SignatureType
from registry.logs.note_keys import NoteKeys
from registry.node import Node
from tests.conftest import make_api
from tests.support.audit import issue
from tests.support.c2sp_verifier import DASH, independent_verify
from tests.support.witnesses import WitnessProcess, log_vkeys

pytestmark = pytest.mark.anvil


# -- helpers ------------------------------------------------------------------------------------------------

def _wait(what: str, check: Callable[[], Any], deadline: float = 90.0) -> Any:
    end = time.monotonic() + deadline
    last: Any = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(0.2)  # polling a condition, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def _post(url: str, body: bytes) -> tuple[int, str, str]:
    req = urllib.request.Request(url + "/add-checkpoint", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def _witness(node: Node, tmp: Path, uscc: str, name: str) -> WitnessProcess:
    return WitnessProcess(uscc, tmp / name, node.backend.urls[0], node.deployment_file,  # type: ignore[attr-defined]
                          log_vkeys(node))


@pytest.fixture
def started() -> Iterator[list[WitnessProcess]]:
    procs: list[WitnessProcess] = []
    yield procs
    for p in procs:
        p.kill()


def _signed(node: Node, body: str) -> str:
    ledger = body.split("\n")[0].rsplit("/", 1)[1]
    key = NoteKeys(node).key(gateway_uscc(node), SignatureType.ED25519, log_origin(node.require_deployment().chain_id,
                                                                                    ledger))
    return body + "\n" + key.sign(body).line()


def test_the_witness_process_speaks_the_tlog_witness_protocol(anvil_node: Node, tmp_path: Path,
                                                              started: list[WitnessProcess]) -> None:
    node = anvil_node
    for seed in (1, 2, 3):  # one batch, one log entry each
        issue(node, 1, seed=seed)
    logs = LedgerLogs(node.backend, node.require_deployment())
    logs.sync()
    lg = logs.log("certificates")
    n = lg.size
    assert n >= 3
    origin = log_origin(node.require_deployment().chain_id, "certificates")
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    w = _witness(node, tmp_path, witness_usccs(node)[0], "w")
    started.append(w.start())

    # a root the chain does not give: the witness rebuilt the log itself and refuses (nothing recorded)
    forged = _signed(node, f"{origin}\n{n}\n{b64(hashlib.sha256(b'forged').digest())}\n")
    assert _post(w.url, f"old 0\n\n{forged}".encode())[0] == 422
    # unknown origin: 404; a checkpoint signed by a key the witness does not trust: 403
    other = NoteKeys(node).key("91230000MA000000XX", SignatureType.ED25519, origin)
    unknown = f"{origin}x\n{n}\n{b64(lg.root(n))}\n"
    assert _post(w.url, f"old 0\n\n{unknown}\n{other.sign(unknown).line()}".encode())[0] == 404
    body = f"{origin}\n{n - 1}\n{b64(lg.root(n - 1))}\n"
    assert _post(w.url, f"old 0\n\n{body}\n{other.sign(body).line()}".encode())[0] == 403
    # old size beyond the checkpoint: 400
    assert _post(w.url, f"old {n}\n\n{_signed(node, body)}".encode())[0] == 400

    # the real checkpoint at n-1: cosigned; the line is a cosignature/v1 from the witness's vkey
    status, _ctype, text = _post(w.url, f"old 0\n\n{_signed(node, body)}".encode())
    assert status == 200 and text.startswith(DASH + " ")
    with urllib.request.urlopen(w.url + "/vkey") as r:
        vkey = json.loads(r.read())["vkey"]
    assert independent_verify(_signed(node, body) + text, [vkey])["verified"] == [vkey.split("+")[0]]

    # the caller is behind: 409 with the witness's size as text/x.tlog.size
    full = _signed(node, f"{origin}\n{n}\n{b64(lg.root(n))}\n")
    status, ctype, text = _post(w.url, f"old 0\n\n{full}".encode())
    assert (status, ctype, text) == (409, "text/x.tlog.size", f"{n - 1}\n")
    # a fork from what it cosigned: another root at size n with a proof that cannot hold: 422
    fork = _signed(node, f"{origin}\n{n}\n{b64(hashlib.sha256(b'fork').digest())}\n")
    proof = "".join(b64(h) + "\n" for h in lg.consistency_proof(n - 1, n))
    assert _post(w.url, f"old {n - 1}\n{proof}\n{fork}".encode())[0] == 422
    # a different root at the size it cosigned: 409
    same_size_fork = _signed(node, f"{origin}\n{n - 1}\n{b64(hashlib.sha256(b'fork').digest())}\n")
    assert _post(w.url, f"old {n - 1}\n\n{same_size_fork}".encode())[0] == 409
    # the consistent successor: cosigned; and the state survives a restart (409 says n)
    assert _post(w.url, f"old {n - 1}\n{proof}\n{full}".encode())[0] == 200
    w.kill()
    w.start()
    assert _post(w.url, f"old 0\n\n{full}".encode())[1:] == ("text/x.tlog.size", f"{n}\n")
    assert oct((w.data_dir / "witness-state.json").stat().st_mode & 0o777) == "0o600"


def _status(api: Any) -> dict[str, Any]:
    r = api.client.get("/logs/certificates/status")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_checkpoints_need_two_of_three_witnesses_and_verify_independently(anvil_node: Node, tmp_path: Path,
                                                                           started: list[WitnessProcess]) -> None:
    node = anvil_node
    ws = [_witness(node, tmp_path, uscc, f"w{i}") for i, uscc in enumerate(witness_usccs(node))]
    assert len(ws) == 3
    for w in ws:
        started.append(w.start())
    urls = ",".join(w.url for w in ws)
    logs = LedgerLogs(node.backend, node.require_deployment())

    def covered(api: Any, min_cosigs: int = 2) -> Callable[[], Any]:
        logs.sync()
        size = logs.log("certificates").size

        def check() -> Any:
            latest = _status(api)["latest"]
            return latest if latest and latest["tree_size"] >= size and latest["cosignatures"] >= min_cosigs else None
        return check

    with contextmanager(make_api)(node, tmp_path / "api", witness_urls=urls, witness_quorum=2,
                                  checkpoint_interval=0.2) as api:
        issue(node, 2)
        assert _wait("a checkpoint cosigned by all three", covered(api, 3))["cosignatures"] == 3

        # the independent verifier: the note from /checkpoint, the vkeys from /keys
        note = api.client.get("/logs/certificates/checkpoint")
        assert note.status_code == 200 and note.headers["content-type"] == "text/plain; charset=utf-8"
        keys = api.client.get("/logs/certificates/keys")
        vkeys = [line for line in keys.text.splitlines() if line and not line.startswith("#")]
        comments = [line for line in keys.text.splitlines() if line.startswith("#")]
        assert len(vkeys) == 4 and all(any(u in c for c in comments) for u in witness_usccs(node))
        result = independent_verify(note.text, vkeys)
        logs.sync()
        assert result["origin"] == log_origin(node.require_deployment().chain_id, "certificates")
        assert result["root"] == logs.log("certificates").root(result["size"])
        assert len(result["verified"]) == 4  # the log and three witnesses
        as_json = api.client.get("/logs/certificates/keys", headers={"Accept": "application/json"}).json()
        assert [s["vkey"] for s in as_json["signers"]] == vkeys

        # one witness down: checkpoints go on with two cosignatures
        ws[0].kill()
        issue(node, 1, seed=2)
        assert _wait("a checkpoint with 2 cosignatures", covered(api, 2))["cosignatures"] == 2
        assert _status(api)["state"] == "ok"

        # two down: no new checkpoint, and the API says why
        ws[1].kill()
        before = _status(api)["latest"]["tree_size"]
        issue(node, 1, seed=3)
        stalled = _wait("the stall to be reported", lambda: (s := _status(api))["state"] == "stalled" and s)
        assert "quorum is 2" in stalled["error"] and stalled["latest"]["tree_size"] == before
        assert sum(1 for w in stalled["witnesses"] if w["error"]) == 2

        # one comes back (same data dir, same port): checkpoints resume
        ws[1].start()
        assert _wait("checkpoints to resume", covered(api, 2))["tree_size"] > before
        assert _wait("the state to be ok again", lambda: _status(api)["state"] == "ok")
