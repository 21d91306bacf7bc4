"""py_ecc's BLS code stays unimported in a process that imports web3 through the chain layer, and works the same
the first time something uses it (chain/_bls_deferred.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def _run(code: str) -> dict[str, object]:
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_a_node_process_imports_web3_and_eth_account_without_the_bls_pairing_tables() -> None:
    seen = _run("""
        import json, sys
        import registry.node, web3, eth_account, eth_keyfile
        print(json.dumps({"tables": "py_ecc.optimized_bls12_381" in sys.modules,
                          "pairing": "py_ecc.bls12_381.bls12_381_pairing" in sys.modules,
                          "bls": type(sys.modules["py_ecc.bls"]).__name__,
                          "curve": type(sys.modules["py_ecc.bls12_381"]).__name__,
                          "keyfile_bls": repr(eth_keyfile.keyfile.bls),
                          "max_v4_key": eth_keyfile.keyfile.MAX_V4_PRIVATE_KEY}))
    """)
    # the order of BLS12-381's prime subgroup (draft-irtf-cfrg-pairing-friendly-curves, 4.2.1: r)
    r = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
    assert seen == {"tables": False, "pairing": False, "bls": "_StandIn", "curve": "_StandIn",
                    "keyfile_bls": "<deferred py_ecc.bls.G2ProofOfPossession>", "max_v4_key": r - 1}


def test_a_bls_key_file_made_through_the_proxy_holds_the_key_py_ecc_computes() -> None:
    seen = _run("""
        import json, sys
        import chain, eth_keyfile
        secret = bytes(range(1, 33))
        made = eth_keyfile.create_keyfile_json(secret, b"password", version=4, kdf="pbkdf2", iterations=2)
        real = sys.modules["py_ecc.bls"]
        from py_ecc.bls import G2ProofOfPossession, G2Basic
        import py_ecc.bls.hash
        print(json.dumps({"pubkey": made["pubkey"],
                          "expected": G2ProofOfPossession.SkToPk(int.from_bytes(secret, "big")).hex(),
                          "real_after_use": type(real).__name__, "same_module": sys.modules["py_ecc.bls"] is real,
                          "submodule": py_ecc.bls.hash.__name__, "other_name": G2Basic.__name__,
                          "decoded": eth_keyfile.decode_keyfile_json(made, b"password").hex()}))
    """)
    assert seen["pubkey"] == seen["expected"] and len(str(seen["pubkey"])) == 96  # a compressed G1 point
    assert seen["real_after_use"] == "module" and seen["same_module"] is True
    assert seen["submodule"] == "py_ecc.bls.hash" and seen["other_name"] == "G2Basic"
    assert seen["decoded"] == bytes(range(1, 33)).hex()


def test_any_other_name_of_the_stand_in_imports_the_real_module() -> None:
    seen = _run("""
        import json, sys
        import chain, web3
        import py_ecc.bls as stand_in
        name = stand_in.G2Basic.__name__
        print(json.dumps({"stand_in": type(stand_in).__name__, "name": name,
                          "now": type(sys.modules["py_ecc.bls"]).__name__,
                          "tables": "py_ecc.optimized_bls12_381" in sys.modules}))
    """)
    assert seen == {"stand_in": "_StandIn", "name": "G2Basic", "now": "module", "tables": True}


def test_any_other_name_of_the_curve_stand_in_imports_the_real_package_with_its_submodules() -> None:
    seen = _run("""
        import json, sys
        import chain, eth_keyfile
        import py_ecc.bls12_381 as stand_in
        from py_ecc.bls12_381 import G1, pairing, curve_order
        real = sys.modules["py_ecc.bls12_381"]
        print(json.dumps({"stand_in": type(stand_in).__name__, "now": type(real).__name__,
                          "parent_attr": sys.modules["py_ecc"].bls12_381 is real,
                          "curve_submodule": real.bls12_381_curve is sys.modules["py_ecc.bls12_381.bls12_381_curve"],
                          "pairing": pairing.__module__, "order": curve_order == real.curve_order,
                          "g1_on_curve": real.is_on_curve(G1, real.b)}))
    """)
    assert seen == {"stand_in": "_StandIn", "now": "module", "parent_attr": True, "curve_submodule": True,
                    "pairing": "py_ecc.bls12_381.bls12_381_pairing", "order": True, "g1_on_curve": True}
