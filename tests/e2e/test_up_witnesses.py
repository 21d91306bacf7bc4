"""`lianzheng up` starts the seed consortium's three witnesses as processes of their own (data dirs under
<data dir>/witnesses/<USCC>/, their own Backbone accounts), supervises them (a killed witness is restarted on
the same port) and stops them with everything else; the API's gateway asks them with quorum 2, and the
Backbone's cosignatures come from their accounts, none of which the gateway's data dir holds."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from chain.devnet import free_port
from tests.e2e.test_hardening_up import ROOT, alive, wait_until
from tests.support import plain_http

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

WITNESSES = {"11230000MB1A00036G", "12230100MB1B00029D", "11230100MB1B00037B"}  # 省司法厅, 哈尔滨中院, 哈尔滨公证处


def _events(log: Path, name: str) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("event") == name:
            out.append(value)
    return out


def _get(url: str) -> Any:
    try:
        r = plain_http.get(url, timeout=3)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def test_up_runs_three_supervised_witness_processes_with_their_own_accounts(tmp_path: Path) -> None:
    data_dir, api_port = tmp_path / "var", free_port()
    url = f"http://127.0.0.1:{api_port}"
    log = tmp_path / "up.log"
    env = {**os.environ, "LIANZHENG_PORT": str(api_port), "LIANZHENG_DEVNET_PORT": str(free_port()),
           "LIANZHENG_ENV": "dev", "LIANZHENG_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT),
           "LIANZHENG_CHECKPOINT_INTERVAL": "0.5"}
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "up"], env=env, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        started = wait_until(lambda: len(_events(log, "witness_started")) == 3 and _events(log, "witness_started"),
                             "three witnesses to start", timeout=120)
        assert {e["agency"] for e in started} == WITNESSES
        for e in started:
            assert (data_dir / "witnesses" / e["agency"] / "witness.json").exists()
        vkeys = {e["agency"]: wait_until(lambda e=e: _get(e["url"] + "/vkey"), f"witness {e['agency']}", timeout=120)
                 for e in started}
        accounts = {v["account"] for v in vkeys.values()}

        # the gateway asks them (quorum 2); all three cosign the consortium log's checkpoint, on the Backbone too
        status = wait_until(lambda: (s := _get(url + "/logs/consortium/status")) and s["latest"]
                            and s["latest"]["cosignatures"] == 3 and s, "a checkpoint cosigned by 3", timeout=180)
        assert status["quorum"] == 2 and {w["url"] for w in status["witnesses"]} == {e["url"] for e in started}

        def backbone_cosigners() -> Any:
            body = _get(url + "/api/v1/proofs/checkpoints?ledger=consortium")
            cps = body["checkpoints"] if body else []
            return cps and {c["account"] for c in cps[-1]["cosigners"]} == accounts and cps[-1]
        wait_until(backbone_cosigners, "the Backbone cosignatures of the three witness processes", timeout=60)
        with sqlite3.connect(data_dir / "lianzheng.db") as db:
            held = {row[0].lower() for row in db.execute("SELECT address FROM agency_keys")}
        assert not held & {a.lower() for a in accounts}  # the gateway's data dir holds no witness key

        # a killed witness is restarted, on the same port
        victim = started[0]
        os.kill(victim["pid"], signal.SIGKILL)
        exited = wait_until(lambda: _events(log, "witness_exited"), "the supervisor to see the witness die")
        assert exited[0]["pid"] == victim["pid"] and exited[0]["agency"] == victim["agency"]
        again = wait_until(lambda: [e for e in _events(log, "witness_started") if e["agency"] == victim["agency"]
                                    and e["pid"] != victim["pid"]], "the witness to be restarted")
        assert again[0]["url"] == victim["url"]
        wait_until(lambda: (v := _get(victim["url"] + "/vkey")) and v["account"] == vkeys[victim["agency"]]["account"],
                   "the restarted witness to answer with the same account", timeout=120)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    pids = [again[0]["pid"], *(e["pid"] for e in started[1:])]
    wait_until(lambda: not any(alive(p) for p in pids), "every witness to be stopped", timeout=30)
    assert len(_events(log, "witness_stopped")) == 3
