"""Deploying contracts and remembering where they are (deployment.json in the data dir).

    >>> deployment = deploy_contracts(sender, [("ConsortiumRegistry", genesis_args), ...])   # doctest: +SKIP
    >>> deployment.save(data_dir / "deployment.json")                                      # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3.types import TxParams

from chain.artifacts import load_artifact
from chain.backends import ChainBackend
from chain.errors import DeploymentError
from chain.sender import TransactionSender


@dataclass(frozen=True)
class DeployedContract:
    name: str
    address: str
    block: int
    tx_hash: str
    artifact_digest: str


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    deployer: str
    contracts: dict[str, DeployedContract]
    created_at: int = field(default_factory=lambda: int(time.time()))

    def address(self, name: str) -> str:
        try:
            return self.contracts[name].address
        except KeyError as exc:
            raise DeploymentError(f"contract {name} is not in this deployment") from exc

    @property
    def first_block(self) -> int:
        return min(c.block for c in self.contracts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "deployer": self.deployer,
            "created_at": self.created_at,
            "contracts": {n: asdict(c) for n, c in self.contracts.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        try:
            return cls(
                chain_id=int(data["chain_id"]),
                deployer=str(data["deployer"]),
                created_at=int(data.get("created_at", 0)),
                contracts={n: DeployedContract(**c) for n, c in data["contracts"].items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DeploymentError(f"deployment.json is malformed: {exc}") from exc

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Deployment:
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError as exc:
            raise DeploymentError(f"no deployment at {path}; run `lianzheng deploy`") from exc
        except json.JSONDecodeError as exc:
            raise DeploymentError(f"{path} is not valid JSON: {exc}") from exc

    def check(self, backend: ChainBackend) -> None:
        """Raise DeploymentError unless this deployment is live on `backend` (same chain, code present)."""
        chain_id = int(backend.w3.eth.chain_id)
        if chain_id != self.chain_id:
            raise DeploymentError(f"deployment is for chain {self.chain_id}, the node is chain {chain_id}")
        for c in self.contracts.values():
            if len(backend.w3.eth.get_code(to_checksum_address(c.address))) == 0:
                raise DeploymentError(
                    f"{c.name} has no code at {c.address} (block {c.block}): the chain was reset; redeploy"
                )


def deploy_contract(sender: TransactionSender, name: str, *args: Any, gas: int | None = None) -> DeployedContract:
    artifact = load_artifact(name)
    factory = sender.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    data = factory.constructor(*args).data_in_transaction
    params: dict[str, Any] = {"from": sender.address, "data": data}
    if gas is None:
        gas = int(sender.w3.eth.estimate_gas(cast(TxParams, params)) * 1.2) + 50_000
    pending = sender.send_raw_params({"to": None, "data": data, "gas": gas})
    receipt = sender.wait(pending)
    raw = sender.w3.eth.get_transaction_receipt(HexBytes(receipt.tx_hash))
    address = raw["contractAddress"]
    if not address:
        raise DeploymentError(f"deploying {name} produced no contract address (tx {receipt.tx_hash})")
    return DeployedContract(name, to_checksum_address(address), receipt.block_number, receipt.tx_hash, artifact.digest)


ArgsFn = Callable[[dict[str, DeployedContract]], Sequence[Any]]


def deploy_contracts(sender: TransactionSender, plan: Sequence[tuple[str, ArgsFn]]) -> Deployment:
    """Deploy in order; each step's constructor args may use the addresses deployed before it."""
    deployed: dict[str, DeployedContract] = {}
    for name, args_fn in plan:
        deployed[name] = deploy_contract(sender, name, *args_fn(deployed))
    return Deployment(chain_id=int(sender.w3.eth.chain_id), deployer=sender.address, contracts=deployed)
