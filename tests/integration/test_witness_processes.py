"""Witness processes with keys of their own (api/witnesses.py, `lianzheng witness init|register|serve`): they
cosign the Backbone's checkpoints from their own accounts after checking them against their own rebuild of
the sub-chain; the gateway holds no witness key; checkpoints go on with 2 of 3 witnesses, stop with 1 (the
status says why, witness by witness) and resume when one returns; the audit finds a checkpoint that lacks its
quorum of Backbone cosignatures by auditor members."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from api.witnesses import PROJECT_ROOT, WitnessProcess, start_witnesses
from chain.contracts import b32
from registry.audit.replay import Auditor, audit_link
from registry.logs.backbone import BackboneLink, connect_backbone, register_witness, registered_witnesses, witness_usccs
from registry.logs.checkpoint_format import Checkpoint, read_checkpoints
from registry.logs.cosigning import log_vkeys
from registry.logs.gateway import CheckpointGateway
from registry.logs.log import LedgerLogs
from registry.logs.note import SignatureType
from registry.logs.note_keys import NoteKeyRow
from registry.logs.witness import LogProofs, local_witnesses
from registry.node import Node
from tests.conftest import MASTER_KEY, make_api
from tests.support.audit import issue
from tests.support.cli import FirstCallReal

pytestmark = pytest.mark.anvil

MARKET = "11230000MB1A00028M"  # 省市场监督管理局: admin, issuer; not an auditor


def _wait(what: str, check: Callable[[], Any], deadline: float = 90.0) -> Any:
    end = time.monotonic() + deadline
    last: Any = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(0.2)  # polling a condition, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def _latest(link: BackboneLink, ledger: str = "certificates") -> Checkpoint | None:
    cps = read_checkpoints(link).get(ledger, [])
    return max(cps, key=lambda c: c.index) if cps else None


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 (a local test server)
        body: dict[str, Any] = json.loads(r.read())
    return body


@pytest.fixture
def witnesses(anvil_node: Node, tmp_path: Path) -> Iterator[tuple[list[WitnessProcess], BackboneLink]]:
    """The three witness agencies as processes, their own accounts registered on the Backbone, started."""
    node = anvil_node
    procs = [WitnessProcess(uscc, tmp_path / f"w{i}", node.backend.urls[0],  # type: ignore[attr-defined]
                            node.deployment_file, poll=0.2) for i, uscc in enumerate(witness_usccs(node))]
    link = connect_backbone(node, witness_accounts={p.agency: p.identity().account for p in procs})
    keys = log_vkeys(node)
    for p in procs:
        p.log_keys = keys
    try:
        yield start_witnesses(procs), link
    finally:
        for p in procs:
            p.kill()


def test_witness_processes_cosign_on_the_backbone_and_checkpoints_need_two_of_three(
        anvil_node: Node, tmp_path: Path, witnesses: tuple[list[WitnessProcess], BackboneLink]) -> None:
    node = anvil_node
    ws, link = witnesses
    accounts = {w.agency: _get(w.url + "/vkey")["account"] for w in ws}
    assert len(set(accounts.values())) == 3
    # the Backbone allows exactly the processes' accounts, none of which is a key the gateway's data dir holds
    assert registered_witnesses(link) == {a: u for u, a in accounts.items()}
    held = {k.address.lower() for k in node.keys.held_keys()}
    assert not held & {a.lower() for a in accounts.values()}
    logs = LedgerLogs(node.backend, node.require_deployment())

    def backbone_covers(cosigners: set[str]) -> Callable[[], Any]:
        logs.sync()
        size = logs.log("certificates").size

        def check() -> Any:
            cp = _latest(link)
            return cp if cp and cp.tree_size >= size and {a for a, _ in cp.cosigners} == cosigners else None
        return check

    with contextmanager(make_api)(node, tmp_path / "api", witness_urls=",".join(w.url for w in ws),
                                  witness_quorum=2, checkpoint_interval=0.2) as api:
        def status() -> dict[str, Any]:
            r = api.client.get("/logs/certificates/status")
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body

        issue(node, 2)
        cp = _wait("a Backbone checkpoint cosigned by the three processes", backbone_covers(set(accounts.values())))
        assert link.client.get_checkpoint(cp.hash).cosignatures == 3
        assert {u for _, u in cp.cosigners} == set(accounts)
        # each witness says so itself
        for w in ws:
            st = _get(w.url + "/status")
            assert st["registered"] and st["account"] == accounts[w.agency] and st["error"] is None
        _wait("every witness to report the checkpoint", lambda: all(
            _get(w.url + "/status")["ledgers"].get("certificates", {}).get("index") == cp.index for w in ws))
        # the gateway's data dir holds no witness key: no cosignature note key, no Backbone witness account
        with node.db.session() as s:
            types = set(s.scalars(select(NoteKeyRow.sig_type)))
        assert int(SignatureType.COSIGNATURE_V1) not in types and int(SignatureType.ED25519) in types
        assert not {k.address for k in node.keys.held_keys()} & set(registered_witnesses(link))
        assert local_witnesses(node, link, LogProofs(logs)) == []

        # one witness killed: checkpoints go on, cosigned on the Backbone by the two that remain
        ws[0].kill()
        issue(node, 1, seed=2)
        two = {accounts[ws[1].agency], accounts[ws[2].agency]}
        cp2 = _wait("a checkpoint cosigned by the two remaining", backbone_covers(two))
        assert cp2.index > cp.index and status()["state"] == "ok"
        on_backbone = _wait("the status to show it", lambda: (b := status()["backbone"]) and b["index"] == cp2.index
                            and b)
        assert {c["account"] for c in on_backbone["cosigners"]} == two

        # two killed: no checkpoint reaches the Backbone, and the status says why, witness by witness
        ws[1].kill()
        issue(node, 1, seed=3)
        stalled = _wait("the stall to be reported", lambda: (s := status())["state"] == "stalled" and s)
        assert "quorum is 2" in stalled["error"]
        errors = {w["url"]: w["error"] for w in stalled["witnesses"]}
        assert errors[ws[0].url] and errors[ws[1].url] and errors[ws[2].url] is None
        assert stalled["backbone"]["index"] == cp2.index  # nothing new reached the Backbone
        latest = _latest(link)
        assert latest is not None and latest.index == cp2.index

        # one comes back (same data dir, same port): checkpoints resume by themselves
        ws[1].start()
        cp3 = _wait("checkpoints to resume", backbone_covers(two))
        assert cp3.index == cp2.index + 1
        _wait("the status to be ok again", lambda: status()["state"] == "ok")


def test_a_witness_process_refuses_a_backbone_checkpoint_that_its_own_rebuild_does_not_give(
        anvil_node: Node, witnesses: tuple[list[WitnessProcess], BackboneLink]) -> None:
    node = anvil_node
    ws, link = witnesses
    issue(node, 2, seed=7)
    logs = LedgerLogs(node.backend, node.require_deployment())
    logs.sync()
    from chain.backbone import CheckpointFields
    from registry.logs.backbone import gateway_uscc
    from registry.logs.log import ledger_id

    block = node.backend.w3.eth.get_block(logs.synced_block)
    forged = CheckpointFields(link.subchain_id, ledger_id("certificates"), logs.log("certificates").size,
                              b"\x44" * 32, b"\0" * 32, node.require_deployment().first_block, logs.synced_block,
                              bytes(block["hash"]))
    link.client.submit_checkpoint(link.sender_for(gateway_uscc(node)), forged)  # a gateway gone rogue
    st = _wait("the witness to refuse", lambda: (s := _get(ws[0].url + "/status"))["error"] and s)
    assert "refused certificates #0" in st["error"] and "differs from the log's" in st["error"]
    assert not any(link.client.has_cosigned(forged.hash, _get(w.url + "/status")["account"]) for w in ws)


def test_the_audit_finds_a_checkpoint_without_its_quorum_of_auditor_cosignatures(anvil_node: Node) -> None:
    node = anvil_node
    link = connect_backbone(node)  # the single-node default: the agency keys here are the witnesses
    issue(node, 2, seed=9)
    logs = LedgerLogs(node.backend, node.require_deployment())
    submitted = CheckpointGateway(node, logs, link_provider=lambda: link).run_once(force=True)  # no witness yet
    hashes = {"0x" + s.fields.hash.hex() for s in submitted}
    assert hashes
    first, second, _third = local_witnesses(node, link, LogProofs(logs))
    first.review()
    # someone the consortium did not make an auditor, registered as a witness by the Backbone owner, cosigns too
    owner = link.sender_for(node.seeds.genesis.uscc)
    market = link.sender_for(MARKET)
    link.client.set_witness(owner, market.address, b32(MARKET), True)
    for s in submitted:
        link.client.cosign(market, s.fields.hash)

    def unwitnessed(deadline: float = 600, **kwargs: Any) -> dict[str, str]:
        report = Auditor(node, link=audit_link(node), witness_quorum=2).run(deadline=deadline, save=False, **kwargs)
        return {f["ref"]: f["detail"] for f in report.findings if f["kind"] == "checkpoint_unwitnessed"}

    # within the deadline the witnesses still have time (a day: the session's devnet clock runs ahead of the wall
    # clock once other tests have mined blocks past an expiry, and a revert does not wind it back)
    assert unwitnessed(deadline=86_400) == {}
    found = unwitnessed(now=time.time() + 3600)
    assert set(found) == hashes
    for detail in found.values():
        assert "1 witness cosignatures" in detail and first.uscc in detail and "the quorum is 2" in detail
        assert f"not counted (not an auditor member, or the gateway's own): {MARKET}" in detail
    second.review()
    assert unwitnessed(now=time.time() + 3600) == {}


# the first witness command runs as the installed entry point, the others in this process (on the test node's
# database, which nothing else uses meanwhile)
CLI = FirstCallReal(idle_sqlite=True)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return CLI(args, env=env, cwd=PROJECT_ROOT)


def test_witness_init_and_register_from_the_command_line(anvil_node: Node, tmp_path: Path) -> None:
    node = anvil_node
    justice = witness_usccs(node)[0]
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), LIANZHENG_ENV="test")
    init = _cli("witness", "init", "--agency", justice, "--data-dir", str(tmp_path / "w"), "--json", env=env)
    assert init.returncode == 0, init.stderr
    identity = json.loads(init.stdout)
    assert identity["agency"] == justice and identity["vkey"].startswith(f"witness.lianzheng.hl.gov.cn/{justice}+")
    again = json.loads(_cli("witness", "init", "--agency", justice, "--data-dir", str(tmp_path / "w"), "--json",
                            env=env).stdout)
    assert again == identity  # generated once, kept (encrypted) in the witness's own data dir
    assert oct((tmp_path / "w" / "lianzheng.db").stat().st_mode & 0o777) == "0o600"

    # on the Backbone owner's node (the gateway's data dir): register, list, and refuse a non-witness agency
    owner_env = dict(env, LIANZHENG_DATA_DIR=str(node.deployment_file.parent), LIANZHENG_MASTER_KEY=MASTER_KEY.hex(),
                     LIANZHENG_RPC_URLS=node.backend.urls[0],  # type: ignore[attr-defined]
                     LIANZHENG_DATABASE_URL=node.db.url)
    reg = _cli("witness", "register", "--agency", justice, "--account", identity["account"], "--json", env=owner_env)
    assert reg.returncode == 0, reg.stderr
    assert json.loads(reg.stdout)["changed"] is True
    listed = json.loads(_cli("witness", "list", "--json", env=owner_env).stdout)
    mine = [w for w in listed if w["agency"] == justice]
    assert mine == [{"account": identity["account"], "agency": justice}]  # the agency key it replaced is gone
    bad = _cli("witness", "register", "--agency", MARKET, "--account", identity["account"], env=owner_env)
    assert bad.returncode != 0 and "not a witness agency" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    link = connect_backbone(node, setup=False)
    assert register_witness(link, justice, identity["account"]) is False  # already so: nothing sent


def test_a_witness_dir_keeps_its_port_and_sets_aside_the_state_of_a_reset_chain(tmp_path: Path) -> None:
    w = WitnessProcess("11230000MB1A00036G", tmp_path / "w", "http://127.0.0.1:1", tmp_path / "deployment.json")
    assert WitnessProcess(w.agency, w.data_dir, w.rpc_url, w.deployment).port == w.port  # its URL stays the same
    w.follow("1337:100:1337:0xB")
    (w.data_dir / "witness-state.json").write_text('{"origin": {"size": 9, "root": ""}}')
    w.follow("1337:100:1337:0xB")  # the same deployment: the state stays
    assert (w.data_dir / "witness-state.json").exists()
    w.follow("1337:200:1337:0xB")  # redeployed after a devnet reset: the old logs' sizes no longer apply
    assert not (w.data_dir / "witness-state.json").exists()
    assert (w.data_dir / "witness-state.1337-100-1337-0xB.json").exists()
    assert oct((w.data_dir / "witness.json").stat().st_mode & 0o777) == "0o600"
    env = w.env()
    assert env["LIANZHENG_DATA_DIR"] == str(w.data_dir) and "LIANZHENG_DATABASE_URL" not in env
