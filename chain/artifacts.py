"""Compiled contract artifacts (contracts/build/<Name>.json) and ABI-driven decoding of custom errors."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chain.compile import BUILD_DIR
from chain.errors import ArtifactError, ContractRevertError

CONTRACT_NAMES = ("ConsortiumRegistry", "CertificateLedger", "EvidenceLedger", "ExchangeLedger", "Backbone",
                  "SealRegistry", "GrantRegistry", "UsageLedger")


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    digest: str  # sha256 of the artifact file: deployment.json records it so a changed contract is noticed

    @classmethod
    def load(cls, name: str, build_dir: Path = BUILD_DIR) -> Artifact:
        path = build_dir / f"{name}.json"
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text)
            return cls(
                name=name,
                abi=data["abi"],
                bytecode=data["bytecode"],
                deployed_bytecode=data["deployedBytecode"],
                digest="sha256:" + hashlib.sha256(text.encode()).hexdigest(),
            )
        except FileNotFoundError as exc:
            raise ArtifactError(f"artifact {path} is missing; run `lianzheng compile`") from exc
        except (KeyError, ValueError) as exc:
            raise ArtifactError(f"artifact {path} is malformed: {exc}") from exc


@functools.cache
def load_artifact(name: str) -> Artifact:
    return Artifact.load(name)


def _canonical_type(param: dict[str, Any]) -> str:
    t = str(param["type"])
    if t.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in param["components"])
        return f"({inner}){t[5:]}"
    return t


@dataclass(frozen=True)
class _ErrorSpec:
    name: str
    names: tuple[str, ...]
    types: tuple[str, ...]
    contract: str


class ErrorDecoder:
    """Maps 4-byte selectors of every custom error in the given ABIs to their names and arguments."""

    PANIC = bytes.fromhex("4e487b71")
    ERROR_STRING = bytes.fromhex("08c379a0")

    def __init__(self, abis: Iterable[tuple[str, list[dict[str, Any]]]]) -> None:
        self._errors: dict[bytes, _ErrorSpec] = {}
        for contract, abi in abis:
            for item in abi:
                if item.get("type") != "error":
                    continue
                types = tuple(_canonical_type(i) for i in item["inputs"])
                selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
                names = tuple(i["name"] or f"arg{n}" for n, i in enumerate(item["inputs"]))
                self._errors.setdefault(selector, _ErrorSpec(item["name"], names, types, contract))

    @classmethod
    def for_all_contracts(cls) -> ErrorDecoder:
        return cls((n, load_artifact(n).abi) for n in CONTRACT_NAMES)

    @classmethod
    def for_all_contracts_cached(cls) -> ErrorDecoder:
        return _all_contracts_decoder()

    def decode(self, data: bytes | str | None, *, contract: str = "") -> ContractRevertError:
        raw = _to_bytes(data)
        if len(raw) < 4:
            return ContractRevertError("Revert", {}, contract=contract, raw=raw)
        selector, body = raw[:4], raw[4:]
        if selector == self.ERROR_STRING:
            (message,) = abi_decode(["string"], body)
            return ContractRevertError("Error", {"message": message}, contract=contract, raw=raw)
        if selector == self.PANIC:
            (code,) = abi_decode(["uint256"], body)
            return ContractRevertError("Panic", {"code": code}, contract=contract, raw=raw)
        spec = self._errors.get(selector)
        if spec is None:
            return ContractRevertError("UnknownError", {"selector": selector}, contract=contract, raw=raw)
        try:
            values = abi_decode(list(spec.types), body)
        except Exception:  # malformed revert data: keep the name, drop the arguments
            values = ()
        values = tuple(to_checksum_address(v) if t == "address" else v for t, v in zip(spec.types, values, strict=False))
        return ContractRevertError(spec.name, dict(zip(spec.names, values, strict=False)), contract=spec.contract, raw=raw)


def _to_bytes(data: bytes | str | dict[str, Any] | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, dict):  # some nodes nest it: {"data": "0x..."}
        return _to_bytes(data.get("data"))
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    text = str(data)
    if text.startswith("0x"):
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError:
        return b""


@functools.lru_cache(maxsize=1)
def _all_contracts_decoder() -> ErrorDecoder:
    return ErrorDecoder.for_all_contracts()
