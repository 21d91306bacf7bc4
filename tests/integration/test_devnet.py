"""The managed anvil devnet: lifecycle, zero gas price, and what survives SIGKILL / SIGTERM / a truncated dump."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3

from chain.compile import compile_contracts
from chain.devnet import DEVNET_CHAIN_ID, Devnet, anvil_binary
from chain.errors import DevnetError
from tests.support.anvil import make_devnet, running_anvil

PROJECT_ROOT = Path(__file__).resolve().parents[2]

STAMP_SOL = """\
// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// A storage write and an event per call: enough to check that state, receipts and logs survive restarts.
contract Stamp {
    event Stamped(address indexed by, uint256 indexed n, bytes32 digest);

    uint256 public count;
    mapping(uint256 => bytes32) public digests;

    constructor() {
        emit Stamped(msg.sender, 0, bytes32(0));
    }

    function stamp(bytes32 digest) external {
        count += 1;
        digests[count] = digest;
        emit Stamped(msg.sender, count, digest);
    }
}
"""


@pytest.fixture(scope="module")
def stamp_artifact(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    sources = tmp_path_factory.mktemp("stamp-sol")
    (sources / "Stamp.sol").write_text(STAMP_SOL)
    return compile_contracts(sources)["Stamp"]


class Chain:
    """web3 on a devnet plus a never-funded account that sends at gas price 0."""

    def __init__(self, url: str) -> None:
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10}))
        self.account: LocalAccount = Account.create()
        self.nonce = 0

    def rpc(self, method: str, *params: Any) -> Any:
        response = self.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        assert "error" not in response, response
        return response["result"]

    def send(self, tx: dict[str, Any]) -> dict[str, Any]:
        fees = {} if "maxFeePerGas" in tx else {"gasPrice": 0}
        tx = {"chainId": DEVNET_CHAIN_ID, "nonce": self.nonce, "value": 0, **fees, **tx}
        tx_hash = self.w3.eth.send_raw_transaction(self.account.sign_transaction(tx).raw_transaction)
        self.nonce += 1
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10, poll_latency=0.02)
        assert receipt["status"] == 1
        return self.rpc("eth_getTransactionReceipt", tx_hash.to_0x_hex())  # type: ignore[no-any-return]

    def deploy(self, artifact: dict[str, Any]) -> ChecksumAddress:
        receipt = self.send({"data": artifact["bytecode"], "gas": 500_000})
        return Web3.to_checksum_address(receipt["contractAddress"])

    def stamp(self, artifact: dict[str, Any], address: ChecksumAddress, digest: bytes) -> dict[str, Any]:
        contract = self.w3.eth.contract(address=address, abi=artifact["abi"])
        data = contract.encode_abi("stamp", args=[digest])
        return self.send({"to": address, "data": data, "gas": 120_000})

    def snapshot(self, artifact: dict[str, Any], address: ChecksumAddress, tx_hashes: list[str]) -> dict[str, Any]:
        """Everything an auditor replays, as raw JSON-RPC answers (so equality is exact)."""
        head = int(self.rpc("eth_blockNumber"), 16)
        contract = self.w3.eth.contract(address=address, abi=artifact["abi"])
        count = contract.functions.count().call()
        return {
            "head": head,
            "blocks": [self.rpc("eth_getBlockByNumber", hex(n), True) for n in range(head + 1)],
            "transactions": [self.rpc("eth_getTransactionByHash", h) for h in tx_hashes],
            "receipts": [self.rpc("eth_getTransactionReceipt", h) for h in tx_hashes],
            "logs": self.rpc("eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest"}),
            "count": count,
            "digests": [contract.functions.digests(i).call() for i in range(1, count + 1)],
            "code": self.rpc("eth_getCode", address, "latest"),
            "nonce": self.rpc("eth_getTransactionCount", self.account.address, "latest"),
            "dev_balance": self.rpc("eth_getBalance", "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"),
        }


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[Devnet]:
    with running_anvil(tmp_path) as net:
        yield net


def _stamped_chain(devnet: Devnet, artifact: dict[str, Any], stamps: int) -> tuple[Chain, ChecksumAddress, list[str]]:
    chain = Chain(devnet.url)
    address = chain.deploy(artifact)
    hashes = [chain.stamp(artifact, address, bytes([i]) * 32)["transactionHash"] for i in range(1, stamps + 1)]
    return chain, address, hashes


# -- lifecycle ---------------------------------------------------------------------------------------------------


@pytest.mark.anvil
def test_start_reports_running_with_chain_id_and_height(devnet: Devnet) -> None:
    status = devnet.status()
    assert status.running and devnet.is_running()
    assert status.pid is not None and status.pid > 0
    assert status.url == devnet.url != "http://127.0.0.1:8545"
    assert status.chain_id == DEVNET_CHAIN_ID
    assert status.block_number == 0
    assert status.state_file == devnet.data_dir / "devnet" / "state.json"


@pytest.mark.anvil
def test_second_start_is_a_no_op(devnet: Devnet) -> None:
    pid = devnet.status().pid
    assert devnet.start() is False
    assert devnet.status().pid == pid


@pytest.mark.anvil
def test_stop_leaves_it_not_running_and_a_second_stop_reports_nothing_to_do(tmp_path: Path) -> None:
    with running_anvil(tmp_path) as devnet:
        pid = devnet.status().pid
        assert devnet.stop() is True
        status = devnet.status()
        assert (status.running, status.pid, status.chain_id, status.block_number) == (False, None, None, None)
        assert devnet.stop() is False
        assert not devnet.pid_file.exists()
        assert pid is not None and not Path(f"/proc/{pid}").exists()


@pytest.mark.anvil
def test_devnet_outlives_the_process_that_started_it(tmp_path: Path) -> None:
    devnet = make_devnet(tmp_path)
    starter = (f"from pathlib import Path; from chain.devnet import Devnet; "
               f"print(Devnet(data_dir=Path({str(devnet.data_dir)!r}), port={devnet.port}).start())")
    try:
        out = subprocess.run([sys.executable, "-c", starter], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=60, check=True).stdout
        assert out.strip() == "True"
        again = Devnet.from_data_dir(devnet.data_dir)  # port and chain id come from devnet.json
        assert again.port == devnet.port
        assert again.status().running
        assert again.stop() is True
    finally:
        devnet.kill()


@pytest.mark.anvil
def test_a_port_used_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        devnet = make_devnet(tmp_path, port=squatter.getsockname()[1])
        with pytest.raises(DevnetError, match=r"already in use by another process \(it is not a JSON-RPC node\)"):
            devnet.start()
        assert not devnet.pid_file.exists()


@pytest.mark.anvil
def test_a_port_used_by_another_devnet_names_its_chain_id(devnet: Devnet, tmp_path: Path) -> None:
    other = Devnet(data_dir=tmp_path / "other", port=devnet.port)
    with pytest.raises(DevnetError, match=rf"port {devnet.port} .* already in use .*chain id {DEVNET_CHAIN_ID}"):
        other.start()
    assert devnet.is_running()


def test_anvil_dying_during_start_is_reported_with_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "anvil"
    fake.write_text("#!/bin/sh\necho 'error: something anvil did not like' >&2\nexit 3\n")
    fake.chmod(0o755)
    devnet = make_devnet(tmp_path, binary=fake)
    with pytest.raises(DevnetError, match=r"(?s)exit code 3.*something anvil did not like"):
        devnet.start(timeout=10)
    assert not devnet.pid_file.exists()


@pytest.mark.anvil
@pytest.mark.parametrize(("signum", "raised"), [(signal.SIGTERM, SystemExit), (signal.SIGINT, KeyboardInterrupt)])
def test_a_signal_while_anvil_is_spawned_stops_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  signum: signal.Signals, raised: type[BaseException]) -> None:
    """A SIGTERM (a CLI's handler raises SystemExit) or a Ctrl-C that lands while `subprocess.Popen` still waits
    for the exec would raise out of it with the child running and its pid unknown: the devnet holds both until
    the pid is recorded, then stops the child on the way out."""
    spawned: list[int] = []
    real_popen = subprocess.Popen

    def popen_then_signal(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        child = real_popen(*args, **kwargs)
        spawned.append(child.pid)
        os.kill(os.getpid(), signum)  # its handler runs at once, inside what stands for Popen
        return child

    # a CLI's handlers (an xdist worker ignores SIGINT), put back as they were afterwards
    handlers: dict[signal.Signals, Any] = {signal.SIGTERM: lambda n, _frame: sys.exit(128 + n),
                                           signal.SIGINT: signal.default_int_handler}
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        devnet = make_devnet(tmp_path)
        monkeypatch.setattr(subprocess, "Popen", popen_then_signal)
        with pytest.raises(raised):
            devnet.start(timeout=30)
        after = {signum: signal.getsignal(signum) for signum in handlers}
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        left_running = [pid for pid in spawned if Path(f"/proc/{pid}").exists()]
        for pid in left_running:
            os.kill(pid, signal.SIGKILL)
    assert len(spawned) == 1
    assert not left_running, "the spawned anvil was left running"
    assert not devnet.pid_file.exists()
    assert after == handlers  # the start put the caller's handlers back


def test_missing_anvil_binary_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(DevnetError, match=r"anvil not found at .*nope; run `make install`"):
        anvil_binary(tmp_path / "nope")


@pytest.mark.anvil
def test_the_default_binary_is_the_npm_package_of_this_platform() -> None:
    path = anvil_binary()
    assert path.is_relative_to(PROJECT_ROOT / "hardhat-free-devnet" / "node_modules" / "@foundry-rs")
    assert subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout.startswith("anvil")


# -- gas price 0 ---------------------------------------------------------------------------------------------------


@pytest.mark.anvil
def test_a_never_funded_account_sends_at_gas_price_zero(devnet: Devnet) -> None:
    chain = Chain(devnet.url)
    assert chain.w3.eth.gas_price == 0  # what a sender that asks the node gets
    legacy = chain.send({"to": "0x000000000000000000000000000000000000dEaD", "gas": 21_000})
    eip1559 = chain.send({"to": "0x000000000000000000000000000000000000dEaD", "gas": 21_000,
                          "maxFeePerGas": 0, "maxPriorityFeePerGas": 0})
    assert int(legacy["effectiveGasPrice"], 16) == int(eip1559["effectiveGasPrice"], 16) == 0
    assert chain.w3.eth.get_balance(chain.account.address) == 0


# -- durability ----------------------------------------------------------------------------------------------------


@pytest.mark.anvil
@pytest.mark.parametrize("how", ["sigkill-after-a-state-interval", "sigterm"])
def test_blocks_transactions_receipts_logs_and_state_survive_a_restart(
    tmp_path: Path, stamp_artifact: dict[str, Any], how: str
) -> None:
    with running_anvil(tmp_path) as devnet:
        chain, address, hashes = _stamped_chain(devnet, stamp_artifact, stamps=4)
        before = chain.snapshot(stamp_artifact, address, hashes)
        assert before["head"] == 5 and len(before["logs"]) == 5 and before["count"] == 4
        if how == "sigterm":
            assert devnet.stop() is True  # anvil dumps on SIGTERM: no need to wait for the interval
        else:
            time.sleep(devnet.state_interval + 1.5)  # the periodic dump has run since the last block
            assert devnet.kill() is True
        assert devnet.start() is True

        chain.w3 = Web3(Web3.HTTPProvider(devnet.url))
        assert chain.snapshot(stamp_artifact, address, hashes) == before
        # the chain goes on from the old head, and the sender's nonce is where it was
        receipt = chain.stamp(stamp_artifact, address, b"\x99" * 32)
        new_block = chain.rpc("eth_getBlockByNumber", receipt["blockNumber"], False)
        assert int(new_block["number"], 16) == before["head"] + 1
        assert new_block["parentHash"] == before["blocks"][-1]["hash"]
        assert len(chain.rpc("eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest"})) == 6


@pytest.mark.anvil
def test_a_kill_before_the_first_dump_after_a_restart_keeps_the_loaded_chain(
    tmp_path: Path, stamp_artifact: dict[str, Any]
) -> None:
    with running_anvil(tmp_path) as devnet:
        chain, address, hashes = _stamped_chain(devnet, stamp_artifact, stamps=2)
        before = chain.snapshot(stamp_artifact, address, hashes)
        devnet.stop()
        devnet.start()
        devnet.kill()  # well within the first state interval: this run never wrote state.json
        assert not devnet.state_file.exists() and devnet.previous_state_file.exists()
        devnet.start()
        assert chain.snapshot(stamp_artifact, address, hashes) == before


@pytest.mark.anvil
def test_a_truncated_state_file_falls_back_to_the_previous_snapshot(
    tmp_path: Path, stamp_artifact: dict[str, Any]
) -> None:
    with running_anvil(tmp_path) as devnet:
        chain, address, kept = _stamped_chain(devnet, stamp_artifact, stamps=2)
        devnet.stop()  # state.json: deploy + 2 stamps
        devnet.start()  # ... now state.prev.json, loaded; anvil dumps to a new state.json
        lost = chain.stamp(stamp_artifact, address, b"\x77" * 32)["transactionHash"]
        devnet.stop()
        # What a SIGKILL in the middle of anvil's in-place dump leaves behind (seen with a 10 MB state):
        size = devnet.state_file.stat().st_size
        with open(devnet.state_file, "r+b") as f:
            f.truncate(size // 2)

        devnet.start()
        assert all(chain.rpc("eth_getTransactionReceipt", h) for h in kept)
        assert chain.rpc("eth_getTransactionReceipt", lost) is None
        assert chain.w3.eth.contract(address=address, abi=stamp_artifact["abi"]).functions.count().call() == 2
        recorded = (devnet.directory / "devnet.json").read_text()
        assert "was truncated" in recorded
        assert [p.name.startswith("state.truncated-") for p in devnet.directory.iterdir()].count(True) == 1


def test_a_truncated_state_file_without_an_earlier_snapshot_is_refused(tmp_path: Path) -> None:
    devnet = make_devnet(tmp_path)
    devnet.directory.mkdir(parents=True)
    devnet.state_file.write_text('{"block":{"number":"0x5","benefi')
    with pytest.raises(DevnetError, match=r"state\.json is truncated .* no earlier complete snapshot"):
        devnet.start()
    assert devnet.state_file.exists()  # left in place for the operator
    assert not devnet.pid_file.exists()


@pytest.mark.anvil
def test_reset_is_refused_while_running(devnet: Devnet) -> None:
    with pytest.raises(DevnetError, match="is running; stop it before resetting"):
        devnet.reset()
    assert devnet.is_running()


def test_reset_forgets_the_chain(tmp_path: Path) -> None:
    devnet = make_devnet(tmp_path)
    devnet.directory.mkdir(parents=True)
    devnet.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not this devnet's anvil: treated as stale
    for f in (devnet.state_file, devnet.previous_state_file):
        f.write_text("{}")
    devnet.reset()
    assert not any(f.exists() for f in (devnet.state_file, devnet.previous_state_file, devnet.pid_file))
