"""Committed artifacts never drift from the sources: recompiling gives byte-identical files."""

from __future__ import annotations

from chain.artifacts import CONTRACT_NAMES, ErrorDecoder, load_artifact
from chain.compile import BUILD_DIR, EVM_VERSION, compile_contracts, render_artifact


def test_committed_artifacts_match_a_fresh_compile() -> None:
    artifacts = compile_contracts()
    assert set(CONTRACT_NAMES) <= set(artifacts)
    for name, artifact in artifacts.items():
        committed = (BUILD_DIR / f"{name}.json").read_text(encoding="utf-8")
        assert committed == render_artifact(artifact), f"contracts/build/{name}.json is stale: run `lianzheng compile`"
        assert artifact["compiler"]["settings"]["evmVersion"] == EVM_VERSION
        assert artifact["compiler"]["settings"]["optimizer"]["enabled"] is True
    stale = {p.stem for p in BUILD_DIR.glob("*.json")} - set(artifacts)
    assert not stale, f"artifacts without a source: {stale}"


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
