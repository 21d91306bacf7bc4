"""SM2 signatures and signed JSON against OpenSSL, the GB/T 32918.5 example, and tampering."""

from __future__ import annotations

import base64
import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from registry.crypto import sm2
from registry.crypto.proofs import ES256KSigner, ProofAlgorithm, sign_json, signed_bytes, verify_json
from registry.errors import SignatureError, ValidationError
from tests.unit.crypto._openssl import SM2_ID, needs_openssl, openssl, write

# GB/T 32918.5-2017 appendix A (also OpenSSL's test/sm2_internal_test.c), on the recommended curve.
STD_PRIVATE = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
STD_X = "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
STD_Y = "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
STD_R = int("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3", 16)
STD_S = int("B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA", 16)
STD_MESSAGE = b"message digest"

OBJECT = {"kind": "trust-list", "issuer": "黑龙江省市场监督管理局", "n": 3, "items": [{"a": 1.5}, "é"]}


def _der(r: int, s: int) -> bytes:
    return encode_dss_signature(r, s)


def test_standard_example_key_and_signature_verify() -> None:
    signer = sm2.SM2Signer.from_private_key(STD_PRIVATE)
    point = sm2.load_public_key(signer.public_key_pem).public_numbers()
    assert (f"{point.x:064X}", f"{point.y:064X}") == (STD_X, STD_Y)
    sm2.verify_sm2(STD_MESSAGE, _der(STD_R, STD_S), signer.public_key_pem)
    with pytest.raises(SignatureError):
        sm2.verify_sm2(STD_MESSAGE, _der(STD_R, STD_S + 1), signer.public_key_pem)


@needs_openssl
def test_standard_example_verifies_in_openssl_with_explicit_distid(tmp_path: Path) -> None:
    key = write(tmp_path / "k.pem", sm2.SM2Signer.from_private_key(STD_PRIVATE).public_key_pem)
    sig = write(tmp_path / "s.der", _der(STD_R, STD_S))
    msg = write(tmp_path / "m", STD_MESSAGE)
    out = openssl("pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt", SM2_ID, "-pubin", "-inkey", key,
                  "-sigfile", sig, "-in", msg)
    assert b"Signature Verified Successfully" in out.stdout


@needs_openssl
def test_json_signed_by_lianzheng_verifies_in_openssl(tmp_path: Path) -> None:
    signed = sign_json(OBJECT, sm2.SM2Signer.generate())
    proof = signed["proof"]
    assert proof["alg"] == "SM2-SM3"
    key = write(tmp_path / "key.pem", proof["key"].encode())
    sig = write(tmp_path / "sig.der", base64.b64decode(proof["signature"]))
    canonical = write(tmp_path / "canonical.json", signed_bytes(signed))
    args = ["pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt", SM2_ID, "-pubin", "-inkey", key,
            "-sigfile", sig, "-in", canonical]
    assert b"Signature Verified Successfully" in openssl(*args).stdout
    write(canonical, signed_bytes({**signed, "n": 4}))
    assert openssl(*args, check=False).returncode != 0


@needs_openssl
@pytest.mark.skipif(shutil.which("jq") is None or shutil.which("base64") is None, reason="needs jq and base64")
def test_the_documented_shell_recipe_verifies(tmp_path: Path) -> None:
    """docs/CRYPTO.md's recipe (jq shortcut) on a signed object, run as a shell would."""
    signed = sign_json(OBJECT | {"count": 12}, sm2.SM2Signer.generate())
    write(tmp_path / "signed.json", json.dumps(signed, ensure_ascii=False, indent=1).encode())
    script = """set -e
jq -r .proof.key signed.json > key.pem
jq -r .proof.signature signed.json | base64 -d > sig.der
jq -cS 'del(.proof)' signed.json | tr -d '\\n' > canonical.json
openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678 \\
    -pubin -inkey key.pem -sigfile sig.der -in canonical.json"""
    out = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, timeout=30)
    assert out.returncode == 0 and b"Signature Verified Successfully" in out.stdout, out.stderr
    assert (tmp_path / "canonical.json").read_bytes() == signed_bytes(signed)


@needs_openssl
def test_message_signed_by_openssl_verifies_in_lianzheng(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    openssl("genpkey", "-algorithm", "SM2", "-out", key)
    pub = openssl("pkey", "-in", key, "-pubout").stdout
    msg = write(tmp_path / "m", "链证 interop".encode())
    sig = openssl("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-pkeyopt", SM2_ID, "-inkey", key,
                  "-in", msg).stdout
    assert sm2.public_key_pem(sm2.verify_sm2(msg.read_bytes(), sig, pub)) == sm2.public_key_pem(
        sm2.load_public_key(pub))
    with pytest.raises(SignatureError):
        sm2.verify_sm2(b"other", sig, pub)
    # the private key file itself loads, and what it signs OpenSSL verifies
    signer = sm2.SM2Signer.from_pem(key.read_bytes())
    assert signer.public_key_pem == sm2.public_key_pem(sm2.load_public_key(pub))


@needs_openssl
def test_json_with_openssl_key_and_wrong_distid_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    openssl("genpkey", "-algorithm", "SM2", "-out", key)
    pub = openssl("pkey", "-in", key, "-pubout").stdout
    msg = write(tmp_path / "m", b"x")
    sig = openssl("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-pkeyopt", "distid:another-id", "-inkey", key,
                  "-in", msg).stdout
    with pytest.raises(SignatureError):
        sm2.verify_sm2(b"x", sig, pub)


@needs_openssl
def test_es256k_json_verifies_in_openssl(tmp_path: Path) -> None:
    signed = sign_json(OBJECT, ES256KSigner.from_private_key(bytes(31) + b"\x07"))
    assert verify_json(signed).alg is ProofAlgorithm.ES256K
    key = write(tmp_path / "key.pem", signed["proof"]["key"].encode())
    sig = write(tmp_path / "sig.der", base64.b64decode(signed["proof"]["signature"]))
    canonical = write(tmp_path / "canonical.json", signed_bytes(signed))
    out = openssl("pkeyutl", "-verify", "-rawin", "-digest", "sha256", "-pubin", "-inkey", key, "-sigfile", sig,
                  "-in", canonical)
    assert b"Signature Verified Successfully" in out.stdout


@pytest.mark.parametrize("signer", [sm2.SM2Signer.generate(), ES256KSigner.from_private_key(bytes(31) + b"\x07")],
                         ids=["gm", "intl"])
def test_tampering_is_refused(signer: sm2.SM2Signer | ES256KSigner) -> None:
    signed = sign_json(OBJECT, signer)
    assert verify_json(signed).key_pem == signer.public_key_pem
    sig = base64.b64decode(signed["proof"]["signature"])
    other = sm2.SM2Signer.generate() if isinstance(signer, sm2.SM2Signer) else ES256KSigner.from_private_key(
        bytes(31) + b"\x08")
    cases = {
        "field": {**signed, "n": 4},
        "signature bit": _with_proof(signed, signature=base64.b64encode(sig[:-1] + bytes([sig[-1] ^ 1])).decode()),
        "truncated": _with_proof(signed, signature=base64.b64encode(sig[:-2]).decode()),
        "other key": _with_proof(signed, key=other.public_key_pem.decode()),
        "not base64": _with_proof(signed, signature="*"),
        "alg": _with_proof(signed, alg="ES256K" if signed["proof"]["alg"] == "SM2-SM3" else "SM2-SM3"),
        "unknown alg": _with_proof(signed, alg="RS256"),
        "no proof": {k: v for k, v in signed.items() if k != "proof"},
    }
    for name, obj in cases.items():
        with pytest.raises(SignatureError):
            verify_json(obj)
            pytest.fail(name)


def test_signing_twice_and_bad_private_keys_are_refused() -> None:
    with pytest.raises(ValidationError):
        sign_json(sign_json(OBJECT, sm2.SM2Signer.generate()), sm2.SM2Signer.generate())
    order = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
    for bad in (bytes(32), (order - 1).to_bytes(32, "big"), b"\x01" * 31):
        with pytest.raises(ValidationError):
            sm2.SM2Signer.from_private_key(bad)
    sm2.SM2Signer.from_private_key((order - 2).to_bytes(32, "big"))


def test_private_key_pem_round_trip_with_password() -> None:
    signer = sm2.SM2Signer.generate()
    again = sm2.SM2Signer.from_pem(signer.private_key_pem(b"pw"), b"pw")
    assert again.public_key_pem == signer.public_key_pem
    with pytest.raises(ValidationError):
        sm2.SM2Signer.from_pem(signer.private_key_pem(b"pw"), b"wrong")


def _with_proof(signed: dict[str, object], **changes: str) -> dict[str, object]:
    out = copy.deepcopy(signed)
    out["proof"] = {**signed["proof"], **changes}  # type: ignore[dict-item]
    return out

