"""The browser's 国密 library (vendored sm-crypto 0.5.8, api/static/vendor/sm-crypto/) under Node against Python's
SM3, HMAC-SM3 and SM4 (OpenSSL through ``cryptography``) and SM2 signatures (tongsuopy, registry.crypto.sm2),
and the vendored files are the pinned release.

The page's own code over it (gm.js: SM3 trees, SM4-CTR, the version-2 envelope) is checked in a browser by
tests/e2e/test_verifier_page_gm.py.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from registry.crypto.hashing import sm3
from registry.crypto.sm2 import SM2Signer, raw_public_key

ROOT = Path(__file__).resolve().parents[3]
VENDOR = ROOT / "api" / "static" / "vendor"
FILES = ("sm-crypto/sm3.js", "sm-crypto/sm4.js", "sm-crypto/sm2.js")

NODE_SCRIPT = """
const fs = require("fs");
const sm3 = require(process.argv[1]), sm4 = require(process.argv[2]);
const h = (s) => Uint8Array.from(s.match(/../g) || [], (p) => parseInt(p, 16));
const x = (a) => Array.from(a, (v) => v.toString(16).padStart(2, "0")).join("");
const jobs = JSON.parse(fs.readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify({
  sm3: jobs.sm3.map((m) => sm3(h(m))),
  hmac: jobs.hmac.map(([k, m]) => sm3(h(m), { mode: "hmac", key: Array.from(h(k)) })),
  ecb: jobs.ecb.map(([k, m]) => x(sm4.encrypt(h(m), Array.from(h(k)), { padding: "none", output: "array" }))),
}));
"""


def _node(jobs: dict[str, list[object]]) -> dict[str, list[str]]:
    proc = subprocess.run(["node", "-e", NODE_SCRIPT, str(VENDOR / FILES[0]), str(VENDOR / FILES[1])],
                          input=json.dumps(jobs), capture_output=True, text=True, timeout=120, check=True)
    result: dict[str, list[str]] = json.loads(proc.stdout)
    return result


def test_vendored_sm3_hmac_sm3_and_sm4_give_pythons_values() -> None:
    rng = random.Random(32905)
    messages = [b"", b"abc", b"abcd" * 16, *(rng.randbytes(rng.randrange(1, 3000)) for _ in range(40))]
    macs = [(rng.randbytes(k), rng.randbytes(rng.randrange(0, 500))) for k in (1, 16, 32, 64, 65, 200)]
    blocks = [(rng.randbytes(16), rng.randbytes(16 * n)) for n in (1, 2, 7, 64)]
    out = _node({"sm3": [m.hex() for m in messages], "hmac": [[k.hex(), m.hex()] for k, m in macs],
                 "ecb": [[k.hex(), m.hex()] for k, m in blocks]})
    assert out["sm3"] == [sm3(m).hex() for m in messages]
    assert out["sm3"][1] == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"  # GB/T 32905 A.1
    expected_macs = []
    for k, m in macs:
        mac = crypto_hmac.HMAC(k, hashes.SM3())
        mac.update(m)
        expected_macs.append(mac.finalize().hex())
    assert out["hmac"] == expected_macs
    expected_ecb = []
    for k, m in blocks:
        enc = Cipher(algorithms.SM4(k), modes.ECB()).encryptor()
        expected_ecb.append((enc.update(m) + enc.finalize()).hex())
    assert out["ecb"] == expected_ecb
    # GB/T 32907 appendix A.1: the standard's own example
    [example] = _node({"sm3": [], "hmac": [], "ecb": [["0123456789abcdeffedcba9876543210"] * 2]})["ecb"]
    assert example == "681edf34d206965e86b3e94f536e4246"


def test_vendored_sm_crypto_files_are_the_pinned_release() -> None:
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    package = json.loads((ROOT / "hardhat-free-devnet" / "package.json").read_text(encoding="utf-8"))
    for name in FILES:
        row = re.search(rf"\| `{re.escape(name)}` \|.*?\| ([\d.]+) \|.*?\| `([0-9a-f]{{64}})` \|", readme)
        assert row, f"vendor README has no row for {name}"
        version, digest = row.groups()
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
        assert package["devDependencies"]["sm-crypto"] == version == "0.5.8"
    assert "Permission is hereby granted, free of charge" in (VENDOR / "sm-crypto" / "LICENSE").read_text(encoding="utf-8")


SM2_SCRIPT = """
const fs = require("fs");
const sm2 = require(process.argv[1]);
const h = (s) => Array.from(s.match(/../g) || [], (p) => parseInt(p, 16));
const jobs = JSON.parse(fs.readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(jobs.map(([k, m, s]) =>
  sm2.doVerifySignature(h(m), s, "04" + k, { der: true, hash: true }))));
"""


def test_vendored_sm2_verifies_tongsuopy_signatures_with_the_default_id_and_refuses_changes() -> None:
    """What gm.js verifySm2 calls: SM2 with SM3 (Z with id 1234567812345678), DER, as Python signs."""
    rng = random.Random(32918)
    jobs, expected = [], []
    for _ in range(12):
        signer = SM2Signer.generate()
        key = raw_public_key(signer.public_key).hex()
        message = rng.randbytes(rng.randrange(0, 400))
        der = signer.sign(message)
        jobs.append([key, message.hex(), der.hex()])
        expected.append(True)
        changed = bytearray(message + b"x")
        changed[rng.randrange(len(changed))] ^= 1
        jobs.append([key, bytes(changed).hex(), der.hex()])  # another message
        expected.append(False)
        other = raw_public_key(SM2Signer.generate().public_key).hex()
        jobs.append([other, message.hex(), der.hex()])  # another key
        expected.append(False)
    proc = subprocess.run(["node", "-e", SM2_SCRIPT, str(VENDOR / "sm-crypto" / "sm2.js")], input=json.dumps(jobs),
                          capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(proc.stdout) == expected
