"""C2SP checkpoints on a single dev node (no witness processes configured): the gateway signs each ledger's
checkpoint note and the witnesses whose keys the node holds cosign in process; /logs/<ledger>/checkpoint
verifies with /logs/<ledger>/keys by the independent verifier; note keys are encrypted at rest."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from registry.logs.backbone import gateway_uscc, witness_usccs
from registry.logs.log import LedgerLogs
from registry.logs.note import SignatureType
from registry.logs.note_keys import NoteKeys
from registry.node import Node
from tests.conftest import make_api
from tests.support.audit import issue
from tests.support.c2sp_verifier import independent_verify
from tests.support.postgres import stored_bytes

pytestmark = pytest.mark.anvil


def _wait(what: str, check: Callable[[], Any], deadline: float = 90.0) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.2)  # polling a condition, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}")


def test_a_single_node_serves_checkpoints_cosigned_in_process(anvil_node: Node, tmp_path: Path) -> None:
    node = anvil_node
    with contextmanager(make_api)(node, tmp_path / "api", checkpoint_interval=0.2) as api:
        assert api.client.get("/logs/evidence/checkpoint").status_code in (200, 404)
        assert api.client.get("/logs/nosuchledger/checkpoint").status_code in (404, 422)
        issue(node, 2)
        logs = LedgerLogs(node.backend, node.require_deployment())
        logs.sync()
        size = logs.log("certificates").size

        def served() -> Any:
            r = api.client.get("/logs/certificates/checkpoint")
            return r if r.status_code == 200 and r.text.split("\n")[1] == str(size) else None

        note = _wait("the checkpoint of the issued batch", served)
        vkeys = [line for line in api.client.get("/logs/certificates/keys").text.splitlines()
                 if line and not line.startswith("#")]
        result = independent_verify(note.text, vkeys)
        assert result["size"] == size and result["root"] == logs.log("certificates").root(size)
        assert len(result["verified"]) == 1 + len(witness_usccs(node))  # the log and every witness
        # one changed byte of the body: the verifier refuses
        with pytest.raises(AssertionError):
            independent_verify(note.text.replace(f"\n{size}\n", f"\n{size + 1}\n", 1), vkeys)
        status = api.client.get("/logs/certificates/status").json()
        assert status["state"] == "ok" and status["latest"]["tree_size"] == size


def test_note_keys_are_encrypted_at_rest(anvil_node: Node) -> None:
    keys = NoteKeys(anvil_node)
    key = keys.key(gateway_uscc(anvil_node), SignatureType.ED25519, "lianzheng.hl.gov.cn/1/certificates")
    raw = stored_bytes(anvil_node.db.engine)
    assert key.verifier.public_key in raw and key.seed not in raw
    assert NoteKeys(anvil_node).key(gateway_uscc(anvil_node), SignatureType.ED25519, key.name) == key
