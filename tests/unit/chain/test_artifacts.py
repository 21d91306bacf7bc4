"""Committed artifacts never drift from the sources: recompiling gives byte-identical files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from chain.artifacts import CONTRACT_NAMES, ErrorDecoder, load_artifact
from chain.compile import BUILD_DIR, EVM_VERSION

LZ = str(Path(sys.executable).parent / "lianzheng")


def test_committed_artifacts_match_a_fresh_compile_by_lianzheng_compile_check() -> None:
    """One compile of every source (solc-js: ~10 s of CPU, so the suite compiles the contracts once, here),
    through the command a developer runs: `--check` compares each contract's artifact with its committed file."""
    done = subprocess.run([LZ, "compile", "--check"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr or done.stdout
    compiled = re.search(r"contracts/build is up to date \((\d+) contracts\)", done.stdout)
    assert compiled is not None, done.stdout
    committed = sorted(BUILD_DIR.glob("*.json"))
    # every compiled contract's file is identical, and there are as many files: none without a source
    assert int(compiled.group(1)) == len(committed)
    assert set(CONTRACT_NAMES) <= {p.stem for p in committed}
    for path in committed:
        artifact = json.loads(path.read_text(encoding="utf-8"))
        assert artifact["contractName"] == path.stem
        assert artifact["compiler"]["settings"]["evmVersion"] == EVM_VERSION
        assert artifact["compiler"]["settings"]["optimizer"]["enabled"] is True


def test_custom_errors_decode_by_name_and_arguments() -> None:
    decoder = ErrorDecoder.for_all_contracts()
    from eth_abi import encode
    from eth_utils import keccak

    selector = keccak(text="ConsortiumUnauthorized(address,uint64)")[:4]
    data = selector + encode(["address", "uint64"], ["0x" + "ab" * 20, 1])
    err = decoder.decode("0x" + data.hex())
    assert err.name == "ConsortiumUnauthorized"
    assert err.args_by_name["role"] == 1
    assert decoder.decode(b"\x01\x02").name == "Revert"
    assert decoder.decode(b"\xde\xad\xbe\xef").name == "UnknownError"
    assert load_artifact("CertificateLedger").abi
