"""Contract unit tests on the in-process eth-tester backend (py-evm).

Every test gets a chain at its genesis (`w3`: the test process's one in-process chain, reverted for each test) and
builds what it needs with factory fixtures:

    def test_example(make_world, transact):
        world = make_world()                      # registry + agencies A..E + all four ledgers
        receipt = transact(world.certificates.functions.anchorBatch(ROOT, SM3_ROOT, 10), world.a)
        assert_reverts(world.certificates.functions.anchorBatch(ROOT, SM3_ROOT, 10), world.a,
                       "CertificateLedgerRootExists", root=ROOT)

Reusable helpers (importable from `tests.unit.contracts.conftest`): `SM3_ROOT`, `load_artifact`, `uscc`,
`revert_data`, `decode_custom_error`, `assert_reverts`, `events`, `event`, `encode_action_data`, and the enums
`Role`, `Action`, `MemberStatus`, `DocStatus`, `Step`. The RFC 6962 reference trees the ledgers are checked
against are in `tests/unit/contracts/rfc6962.py`.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_tester import EthereumTester
from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

BUILD_DIR = Path(__file__).resolve().parents[3] / "contracts" / "build"
CONTRACT_NAMES = ("ConsortiumRegistry", "CertificateLedger", "EvidenceLedger", "ExchangeLedger", "Backbone",
                  "SealRegistry", "GrantRegistry", "UsageLedger")
DAY = 24 * 3600
SETUP_GAS = 6_000_000  # explicit gas skips eth_estimateGas (half the time) on transactions expected to succeed


# ---------------------------------------------------------------- domain constants (docs/CONTRACTS.md)


# The Python side's enums are the ones the contracts are tested against, so a drift between chain/ and
# the Solidity enums fails here.

from chain.contracts import Action as Action  # noqa: E402  (re-exported for the tests)
from chain.contracts import DocStatus as DocStatus  # noqa: E402
from chain.contracts import MemberStatus as MemberStatus  # noqa: E402
from chain.contracts import Role as Role  # noqa: E402
from chain.ledgers import ExchangeStep as Step  # noqa: E402, F401  (the tests import it as Step)

ALL_ROLES = Role.ADMIN | Role.ISSUER | Role.REVOKER | Role.EVIDENCE | Role.EXCHANGE | Role.AUDITOR | Role.GATEWAY


def uscc(code: str) -> bytes:
    """A member key: the USCC's ASCII characters right-padded with zero bytes to 32 (docs/CONTRACTS.md)."""
    return code.encode().ljust(32, b"\0")


def b32(label: str) -> bytes:
    """A deterministic 32-byte value for ids and digests in tests."""
    return hashlib.sha256(label.encode()).digest()


# Real-looking USCCs (统一社会信用代码, 18 chars) of the test agencies.
# an SM3 batch root for anchorBatch(root, sm3Root, count): the contract only records it (no SM3 on chain)
SM3_ROOT = bytes.fromhex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")  # SM3("abc")
USCC_A = uscc("11230000MB0000001A")  # 省数据局 (genesis admin)
USCC_B = uscc("11230000MB0000002B")  # 省市场监督管理局
USCC_C = uscc("11230000MB0000003C")  # 省公安厅
USCC_D = uscc("11230000MB0000004D")  # 省司法厅
USCC_E = uscc("11230000MB0000005E")  # 哈尔滨市人民检察院


# ---------------------------------------------------------------- artifacts and encoding


@functools.cache
def load_artifact(name: str) -> dict[str, Any]:
    """contracts/build/<name>.json (abi, bytecode, ...), read once per session."""
    return json.loads((BUILD_DIR / f"{name}.json").read_text(encoding="utf-8"))


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param["components"]) + ")" + param["type"][len("tuple") :]
    return str(param["type"])


@functools.cache
def _error_table() -> dict[bytes, dict[str, Any]]:
    """4-byte selector -> error ABI entry, over every compiled contract."""
    table: dict[bytes, dict[str, Any]] = {}
    for name in CONTRACT_NAMES:
        for entry in load_artifact(name)["abi"]:
            if entry["type"] == "error":
                signature = f"{entry['name']}({','.join(_abi_type(p) for p in entry['inputs'])})"
                table[bytes(Web3.keccak(text=signature)[:4])] = entry
    return table


def encode_action_data(action: Action, *values: Any) -> bytes:
    """The `data` of a proposal: abi.encode of the action's payload (docs/CONTRACTS.md)."""
    types = {
        Action.ADMIT: ["string", "string", "address[]", "uint64", "bytes"],
        Action.SET_ROLES: ["uint64"],
        Action.SUSPEND: [],
        Action.REINSTATE: [],
        Action.REMOVE: [],
        Action.ROTATE_KEY: ["address", "address", "string"],
        Action.ADD_ACCOUNT: ["address"],
        Action.SET_THRESHOLD: ["uint8"],
        Action.ROTATE_SM2_KEY: ["bytes", "string"],
    }[action]
    if action is Action.ADMIT and len(values) == 4:  # an admission without an SM2 key
        values = (*values, b"")
    return abi_encode(types, list(values)) if types else b""


# ---------------------------------------------------------------- reverts


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert data carried by a web3 / eth-tester exception, if any.

    eth-tester raises `TransactionFailed("execution reverted: b'...'")` whose message is the repr of the
    revert bytes; anvil/web3 raise `ContractLogicError`/`ContractCustomError` with `data` as a hex string.
    """
    if isinstance(exc, ContractLogicError) and exc.data:
        data = exc.data if isinstance(exc.data, str) else exc.data.get("data", "")
        return bytes.fromhex(data.removeprefix("0x")) if data else None
    if isinstance(exc, TransactionFailed):
        message = str(exc.args[0]) if exc.args else ""
        payload = message.removeprefix("execution reverted: ")
        if payload.startswith(("b'", 'b"')):
            value = ast.literal_eval(payload)
            return bytes(value)
    return None


def decode_custom_error(data: bytes) -> tuple[str, dict[str, Any]]:
    """(name, {param: value}) for revert data of a custom error of any Lianzheng contract.

    Solidity's built-ins come out as ("Error", {"message": ...}) and ("Panic", {"code": ...}); empty data
    as ("Revert", {}).
    """
    if not data:
        return "Revert", {}
    selector, body = data[:4], data[4:]
    if selector == bytes(Web3.keccak(text="Error(string)")[:4]):
        return "Error", {"message": abi_decode(["string"], body)[0]}
    if selector == bytes(Web3.keccak(text="Panic(uint256)")[:4]):
        return "Panic", {"code": abi_decode(["uint256"], body)[0]}
    entry = _error_table().get(selector)
    if entry is None:
        return "Unknown", {"selector": selector.hex(), "data": body.hex()}
    values = abi_decode([_abi_type(p) for p in entry["inputs"]], body)
    return entry["name"], {p["name"]: v for p, v in zip(entry["inputs"], values, strict=True)}


def assert_reverts(call: Any, sender: str, error: str, **expected: Any) -> dict[str, Any]:
    """Sends `call` (a bound contract function or constructor) from `sender` and asserts it reverts with
    the custom error named `error`, and with the given argument values when passed as keywords.

    Returns the decoded error arguments. The transaction goes through eth_estimateGas, which reverts
    before anything is mined, so a refused call leaves the chain unchanged.
    """
    try:
        tx_hash = call.transact({"from": sender})
    except (TransactionFailed, ContractLogicError) as exc:
        data = revert_data(exc)
        if data is None:
            raise AssertionError(f"expected {error}, got a revert without data: {exc!r}") from exc
        name, args = decode_custom_error(data)
    else:
        w3 = call.w3
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
        raise AssertionError(f"expected {error}, but the transaction succeeded (status {receipt.status})")
    assert name == error, f"expected {error}, got {name}({args})"
    for key, value in expected.items():
        assert key in args, f"{error} has no argument {key!r} (has {sorted(args)})"
        actual = args[key]
        if isinstance(actual, str) and isinstance(value, str) and actual.startswith("0x"):
            actual, value = actual.lower(), value.lower()
        assert actual == value, f"{error}.{key}: expected {value!r}, got {actual!r}"
    return args


# ---------------------------------------------------------------- events


def events(receipt: Any, contract: Contract, name: str) -> list[dict[str, Any]]:
    """Decoded arguments of every `name` event that `contract` emitted in the transaction."""
    found = getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)
    return [dict(e["args"]) for e in found if e["address"] == contract.address]


def event(receipt: Any, contract: Contract, name: str) -> dict[str, Any]:
    """The arguments of the single `name` event of the transaction (asserts there is exactly one)."""
    found = events(receipt, contract, name)
    assert len(found) == 1, f"expected one {name} event, got {len(found)}"
    return found[0]


# ---------------------------------------------------------------- chain fixtures


class _Chain:
    """The test process's in-process chain (py-evm), reverted to a snapshot for each test.

    Each test starts at the genesis block with the 10 prefunded accounts, as on a new chain. The standard world
    (`make_world()`: 12 transactions, half the time of the contract tests on py-evm) is built once and, for the
    next test that asks for it on a chain at genesis, reverted to: the same blocks, addresses and receipts. What a
    test does after that is gone at the next revert; the pending block's time is the clock's, as on a new chain.
    """

    def __init__(self) -> None:
        self.tester: EthereumTester | None = None
        self.genesis = 0
        # the standard world: its snapshot, the registry's and WORLD_LEDGERS' addresses, the registry's deploy receipt
        self.world: tuple[int, tuple[str, ...], Any] | None = None

    def at_genesis(self) -> EthereumTester:
        if self.tester is None:
            self.tester = EthereumTester()
            self.genesis = self.tester.take_snapshot()
        self.tester.revert_to_snapshot(self.genesis)
        return self.tester


_CHAIN = _Chain()
ACCOUNTS = 10  # the prefunded ones; `new_account` adds more to the shared tester's keys


@pytest.fixture
def w3() -> Iterator[Web3]:
    """An in-process chain at its genesis with 10 prefunded accounts (`_Chain`)."""
    yield Web3(EthereumTesterProvider(_CHAIN.at_genesis()))


@pytest.fixture
def accounts(w3: Web3) -> list[str]:
    return list(w3.eth.accounts)[:ACCOUNTS]


@pytest.fixture
def new_account(w3: Web3) -> Callable[[], str]:
    """Factory: a new funded account (beyond the 10 prefunded ones)."""
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    counter = iter(range(1, 10_000))

    def make() -> str:
        key = hashlib.sha256(b"lianzheng-test-account-%d" % next(counter)).hexdigest()
        address = Account.from_key(key).address
        if address not in tester.get_accounts():  # an earlier test of this process added its key already
            tester.add_account("0x" + key)
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": address, "value": 10**18})
        return Web3.to_checksum_address(address)

    return make


@pytest.fixture
def transact(w3: Web3) -> Callable[..., Any]:
    """transact(call, sender, gas=None) -> receipt; asserts the transaction succeeded.

    Without `gas` an explicit limit is used (no eth_estimateGas round trip); receipt.gasUsed is exact anyway.
    """

    def send(call: Any, sender: str, gas: int | None = None) -> Any:
        tx_hash = call.transact({"from": sender, "gas": gas or SETUP_GAS})
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt.status == 1, f"transaction failed: {call}"
        return receipt

    return send


@pytest.fixture
def deploy(w3: Web3, transact: Callable[..., Any]) -> Callable[..., tuple[Contract, Any]]:
    """deploy(name, *args, sender=accounts[0]) -> (contract, receipt)."""

    def make(name: str, *args: Any, sender: str | None = None) -> tuple[Contract, Any]:
        artifact = load_artifact(name)
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = transact(factory.constructor(*args), sender or w3.eth.accounts[0], gas=SETUP_GAS)
        return w3.eth.contract(address=receipt.contractAddress, abi=artifact["abi"]), receipt

    return make


@pytest.fixture
def contract_factory(w3: Web3) -> Callable[[str], Any]:
    """contract_factory(name) -> an undeployed web3 contract class (for constructor reverts)."""

    def make(name: str) -> Any:
        artifact = load_artifact(name)
        return w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])

    return make


@pytest.fixture
def deploy_consortium(accounts: list[str], deploy: Callable[..., tuple[Contract, Any]]) -> Callable[..., Contract]:
    """deploy_consortium(**overrides) -> ConsortiumRegistry with genesis member A (accounts[0], all roles).

    Overrides: uscc, name, bid, accounts, roles, sm2_key, threshold, ttl, sender. The deployment receipt is
    available as `registry.deploy_receipt`.
    """

    def make(**overrides: Any) -> Contract:
        params: dict[str, Any] = {
            "uscc": USCC_A,
            "name": "黑龙江省政务服务和数据管理局",
            "bid": "did:bid:efA1111111111111111111111111",
            "accounts": [accounts[0]],
            "roles": int(ALL_ROLES),
            "sm2_key": b"",
            "threshold": 1,
            "ttl": 7 * DAY,
            "sender": accounts[0],
        }
        unknown = set(overrides) - set(params)
        assert not unknown, f"unknown overrides {unknown}"
        params.update(overrides)
        registry, receipt = deploy(
            "ConsortiumRegistry",
            params["uscc"],
            params["name"],
            params["bid"],
            params["accounts"],
            params["roles"],
            params["sm2_key"],
            params["threshold"],
            params["ttl"],
            sender=params["sender"],
        )
        registry.deploy_receipt = receipt  # type: ignore[attr-defined]
        return registry

    return make


@pytest.fixture
def govern(transact: Callable[..., Any]) -> Callable[..., Any]:
    """govern(registry, action, uscc, *payload, proposer, approvers=(), executor=None) -> execute receipt.

    Proposes, has each approver approve, then executes (by `executor`, default the proposer).
    """

    def run(
        registry: Contract,
        action: Action,
        member: bytes,
        *payload: Any,
        proposer: str,
        approvers: Sequence[str] = (),
        executor: str | None = None,
    ) -> Any:
        data = encode_action_data(action, *payload)
        transact(registry.functions.propose(int(action), member, data), proposer)
        proposal_id = registry.functions.proposalCount().call()
        for approver in approvers:
            transact(registry.functions.approve(proposal_id), approver)
        return transact(registry.functions.execute(proposal_id), executor or proposer)

    return run


@dataclass
class World:
    """A consortium of five agencies with the four ledgers deployed against it.

    A (accounts[0]): genesis, all roles. B (accounts[1], accounts[2]): issuer + evidence + exchange.
    C (accounts[3]): revoker + evidence + exchange. D (accounts[4]): evidence + exchange.
    E (accounts[5]): auditor only. accounts[6..9] belong to nobody.
    """

    w3: Web3
    accounts: list[str]
    registry: Contract
    certificates: Contract
    evidence: Contract
    exchanges: Contract

    @property
    def a(self) -> str:
        return self.accounts[0]

    @property
    def b(self) -> str:
        return self.accounts[1]

    @property
    def b2(self) -> str:
        return self.accounts[2]

    @property
    def c(self) -> str:
        return self.accounts[3]

    @property
    def d(self) -> str:
        return self.accounts[4]

    @property
    def e(self) -> str:
        return self.accounts[5]

    @property
    def outsider(self) -> str:
        return self.accounts[9]


WORLD_MEMBERS = (
    # uscc, name, bid, account indices, roles
    (
        USCC_B,
        "黑龙江省市场监督管理局",
        "did:bid:efB2222222222222222222222222",
        (1, 2),
        Role.ISSUER | Role.EVIDENCE | Role.EXCHANGE,
    ),
    (USCC_C, "黑龙江省公安厅", "did:bid:efC3333333333333333333333333", (3,), Role.REVOKER | Role.EVIDENCE | Role.EXCHANGE),
    (USCC_D, "黑龙江省司法厅", "did:bid:efD4444444444444444444444444", (4,), Role.EVIDENCE | Role.EXCHANGE),
    (USCC_E, "哈尔滨市人民检察院", "did:bid:efE5555555555555555555555555", (5,), Role.AUDITOR),
)


WORLD_LEDGERS = ("CertificateLedger", "EvidenceLedger", "ExchangeLedger")  # in World's order, after the registry


@pytest.fixture
def make_world(
    w3: Web3,
    accounts: list[str],
    deploy: Callable[..., tuple[Contract, Any]],
    deploy_consortium: Callable[..., Contract],
    govern: Callable[..., Any],
) -> Callable[..., World]:
    """make_world(**consortium_overrides) -> World (see `World` for who is who)."""

    def make(**overrides: Any) -> World:
        standard = not overrides and w3.eth.block_number == 0  # the standard world on a chain at genesis
        if standard and _CHAIN.world is not None:
            snapshot, addresses, receipt = _CHAIN.world
            w3.provider.ethereum_tester.revert_to_snapshot(snapshot)  # type: ignore[attr-defined]
            registry, *ledgers = (w3.eth.contract(address=address, abi=load_artifact(name)["abi"])
                                  for name, address in zip(("ConsortiumRegistry", *WORLD_LEDGERS), addresses, strict=True))
            registry.deploy_receipt = receipt  # type: ignore[attr-defined]
            return World(w3, accounts, registry, *ledgers)
        registry = deploy_consortium(**overrides)
        for member, name, bid, indices, roles in WORLD_MEMBERS:
            govern(
                registry,
                Action.ADMIT,
                member,
                name,
                bid,
                [accounts[i] for i in indices],
                int(roles),
                proposer=accounts[0],
            )
        ledgers = [deploy(name, registry.address)[0] for name in WORLD_LEDGERS]
        if standard:
            _CHAIN.world = (w3.provider.ethereum_tester.take_snapshot(),  # type: ignore[attr-defined]
                            tuple(c.address for c in (registry, *ledgers)), registry.deploy_receipt)
        return World(w3, accounts, registry, *ledgers)

    return make


@pytest.fixture
def advance_time(w3: Web3) -> Callable[[int], int]:
    """advance_time(seconds) -> the new timestamp; the next block is mined at or after it."""
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]

    def travel(seconds: int) -> int:
        target = int(w3.eth.get_block("latest").timestamp) + seconds
        tester.time_travel(target)
        return target

    return travel
