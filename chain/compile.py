"""Offline Solidity compilation through the npm `solc` package.

py-solc-x cannot download compilers here, so `solc_binary` points at a small Node shim
(hardhat-free-devnet/bin/solc) that answers `--version` and `--standard-json` with npm's solc.
Only `solcx.compile_standard` works with it.

    >>> from chain.compile import compile_contracts
    >>> artifacts = compile_contracts()           # doctest: +SKIP
    >>> sorted(artifacts)                          # doctest: +SKIP
    ['Backbone', 'CertificateLedger', ...]
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from chain.errors import CompileError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
BUILD_DIR = CONTRACTS_DIR / "build"
SOLC_SHIM = PROJECT_ROOT / "hardhat-free-devnet" / "bin" / "solc"

# `paris` (no PUSH0, no transient storage) runs unchanged on anvil, on eth-tester's py-evm and on
# every Besu release in use by consortium chains; newer targets (shanghai/cancun) emit PUSH0/MCOPY,
# which older Besu QBFT networks configured without those forks reject at deployment.
EVM_VERSION = "paris"
OPTIMIZER_RUNS = 200

SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
    "evmVersion": EVM_VERSION,
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


def source_files(contracts_dir: Path = CONTRACTS_DIR) -> dict[str, Path]:
    """Every .sol file below `contracts_dir` (build/ excluded), keyed by its path relative to it."""
    files = sorted(p for p in contracts_dir.rglob("*.sol") if BUILD_DIR not in p.parents)
    return {p.relative_to(contracts_dir).as_posix(): p for p in files}


def _solc_version() -> str:
    import solcx  # lazy: only `lianzheng compile` and its tests run the compiler

    try:
        return str(solcx.wrapper.get_solc_version(SOLC_SHIM, with_commit_hash=True))
    except Exception as exc:  # the shim is missing or node is not installed
        raise CompileError(f"cannot run the solc shim at {SOLC_SHIM}: {exc}") from exc


def compile_contracts(contracts_dir: Path = CONTRACTS_DIR) -> dict[str, dict[str, Any]]:
    """Compile every source and return one artifact per contract (interfaces and libraries without code skipped)."""
    import solcx

    files = source_files(contracts_dir)
    if not files:
        raise CompileError(f"no Solidity sources below {contracts_dir}")
    sources = {name: {"content": path.read_text(encoding="utf-8")} for name, path in files.items()}
    request = {"language": "Solidity", "sources": sources, "settings": SETTINGS}
    try:
        output = solcx.compile_standard(request, solc_binary=SOLC_SHIM, allow_empty=True)
    except solcx.exceptions.SolcError as exc:
        raise CompileError(f"solc failed: {exc}") from exc
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError("solc reported errors:\n" + "\n".join(e.get("formattedMessage", str(e)) for e in errors))
    version = _solc_version()
    artifacts: dict[str, dict[str, Any]] = {}
    for source_name, contracts in output.get("contracts", {}).items():
        digest = hashlib.sha256(sources[source_name]["content"].encode()).hexdigest()
        for name, data in contracts.items():
            bytecode = data["evm"]["bytecode"]["object"]
            if not bytecode:
                continue  # interfaces and abstract contracts
            artifacts[name] = {
                "contractName": name,
                "sourceName": source_name,
                "sourceDigest": "sha256:" + digest,
                "compiler": {"name": "solc", "version": version, "settings": SETTINGS},
                "abi": data["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
            }
    return artifacts


def render_artifact(artifact: dict[str, Any]) -> str:
    """The exact bytes written to contracts/build/<Name>.json (stable, so drift is a text diff)."""
    return json.dumps(artifact, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_artifacts(artifacts: dict[str, dict[str, Any]], build_dir: Path = BUILD_DIR) -> list[Path]:
    """Write artifacts and remove stale ones; returns the files written."""
    build_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in sorted(artifacts.items()):
        path = build_dir / f"{name}.json"
        path.write_text(render_artifact(artifact), encoding="utf-8")
        written.append(path)
    for stale in build_dir.glob("*.json"):
        if stale.stem not in artifacts:
            stale.unlink()
    return written


if __name__ == "__main__":  # python -m chain.compile
    for p in write_artifacts(compile_contracts()):
        print(p.relative_to(PROJECT_ROOT))
