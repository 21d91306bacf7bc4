"""`lianzheng bench crypto`: the SM2 libraries we tried, side by side with secp256k1 in the same run.

For each candidate: correctness first (the GB/T 32918.5-2017 appendix A example on the recommended curve;
OpenSSL signs and the library verifies; the library signs and OpenSSL verifies, all with the default
distinguishing id), then signatures and verifications per second in one process on one key and a 200-byte
message. The registry uses the winner (tongsuopy, registry/crypto/sm2.py); docs/CRYPTO.md records the figures
and why. Candidates that are not installed are listed as such: only tongsuopy is a dependency, the others are
installed by hand to rerun the comparison (`pip install gmssl gmalg snowland-smx`).

    $ lianzheng bench crypto                # about 1 s per measurement
    $ lianzheng bench crypto --seconds 0.2 --json
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli._common import console, print_json
from api.cli.options import JsonOpt
from registry.errors import SignatureError


# The other candidates are optional (the `gm-bench` extra): measured when installed, listed as missing otherwise.
# Each is imported only when the bench runs, so they never slow down the start of every `lianzheng` command.
def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


ID = b"1234567812345678"
STD_KEY = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
STD_MESSAGE = b"message digest"
STD_RS = (0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3,  # the example signature's r, s
          0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA)
MESSAGE = bytes(range(200))


@dataclass(frozen=True)
class Impl:
    """One library bound to one key: sign a message to DER, verify DER over a message."""

    sign: Callable[[bytes], bytes]
    verify: Callable[[bytes, bytes], bool]


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    standard_example: str
    openssl_to_lib: str
    lib_to_openssl: str
    sign_per_s: float | None
    verify_per_s: float | None


def register(app: typer.Typer) -> None:
    app.command("crypto")(bench_crypto)


def bench_crypto(
    seconds: Annotated[float, typer.Option(help="time per measurement", min=0.05, max=30)] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """SM2 sign/s and verify/s of each candidate library beside secp256k1, with correctness checks."""
    rows = [_measure_sm2(name, kind, make, seconds) for name, kind, make in _candidates()]
    rows.append(Row("cryptography (pyca)", "OpenSSL binding", *_pyca_sm2()))
    rows += _baselines(seconds)
    if as_json:
        print_json({"benchmark": "crypto", "seconds": seconds, "results": [asdict(r) for r in rows]})
        return
    table = Table(title="lianzheng bench crypto (one process, one key, 200-byte message)")
    for column in ("library", "kind", "GB/T 32918.5 A", "OpenSSL→lib", "lib→OpenSSL", "sign/s", "verify/s"):
        table.add_column(column, justify="right" if column.endswith("/s") else "left")
    for r in rows:
        table.add_row(r.name, r.kind, r.standard_example, r.openssl_to_lib, r.lib_to_openssl, _rate(r.sign_per_s),
                      _rate(r.verify_per_s))
    console.print(table)


def _candidates() -> list[tuple[str, str, Callable[[bytes], Impl] | None]]:
    return [
        ("tongsuopy 1.0 (chosen)", "Tongsuo binding", _tongsuopy),
        ("gmssl 3.2", "pure Python", _gmssl if _installed("gmssl") else None),
        ("gmalg 1.1", "pure Python", _gmalg if _installed("gmalg") else None),
        ("snowland-smx 1.1 (pysmx)", "pure Python", _pysmx if _installed("pysmx") else None),
        ("gmalglib 0.5", "C extension", _gmalglib if _installed("gmalglib") else None),
        ("gmssl-pyx 2.1", "GmSSL binding", _gmssl_pyx if _installed("gmssl_pyx") else None),
        ("gmssl-fast 0.1", "GmSSL binding", _gmssl_fast if _installed("gmssl_fast") else None),
    ]


def _measure_sm2(name: str, kind: str, make: Callable[[bytes], Impl] | None, seconds: float) -> Row:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    if make is None:
        return Row(name, kind, "not installed", "-", "-", None, None)
    std, std_signature = make(STD_KEY), encode_dss_signature(*STD_RS)
    example = _verdict(lambda: std.verify(STD_MESSAGE, std_signature) and not std.verify(b"other", std_signature))
    key = os.urandom(32)
    impl = make(key)
    from_openssl, to_openssl = _openssl_interop(key, impl)
    signature = impl.sign(MESSAGE)
    return Row(name, kind, example, from_openssl, to_openssl, _rate_of(lambda: impl.sign(MESSAGE), seconds),
               _rate_of(lambda: impl.verify(MESSAGE, signature), seconds))


def _tongsuopy(key: bytes) -> Impl:
    from registry.crypto import sm2

    signer = sm2.SM2Signer.from_private_key(key)
    public = signer.public_key

    def verify(message: bytes, der: bytes) -> bool:
        try:
            sm2.verify_with_key(message, der, public)  # the key parsed once, as for the other candidates
        except SignatureError:
            return False
        return True

    return Impl(signer.sign, verify)


def _gmssl(key: bytes) -> Impl:
    from gmssl import sm2 as gmssl_sm2  # lazy: an optional bench candidate

    crypt = gmssl_sm2.CryptSM2(private_key=key.hex(), public_key=_public_point(key).hex()[2:])
    return Impl(lambda m: _der(bytes.fromhex(crypt.sign_with_sm3(m))),
                lambda m, der: bool(crypt.verify_with_sm3(_raw(der).hex(), m)))


def _gmalg(key: bytes) -> Impl:
    import gmalg  # lazy: an optional bench candidate
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    sm2_key = gmalg.SM2(key, ID, _public_point(key))
    return Impl(lambda m: encode_dss_signature(*(int.from_bytes(x, "big") for x in sm2_key.sign(m))),
                lambda m, der: bool(sm2_key.verify(m, *_raw_pair(der))))


def _pysmx(key: bytes) -> Impl:
    from pysmx import SM2 as pysmx_sm2  # lazy: an optional bench candidate (the snowland-smx distribution)

    public = _public_point(key)[1:].hex()
    # its Sign takes the nonce k from the caller: a fresh random one per signature, as GB/T 32918.2 requires
    return Impl(lambda m: _der(pysmx_sm2.Sign(m, key.hex(), os.urandom(32).hex(), 64, uid=ID)),
                lambda m, der: bool(pysmx_sm2.Verify(_raw(der).hex(), m, public, 64, uid=ID)))


def _gmalglib(key: bytes) -> Impl:
    from gmalglib import sm2 as gmalglib_sm2  # lazy: an optional bench candidate

    sm2_key = gmalglib_sm2.SM2(sk=key, uid=ID, pk=_public_point(key))
    return Impl(lambda m: _der(sm2_key.sign(m)), lambda m, der: bool(sm2_key.verify(m, _raw(der))))


def _gmssl_pyx(key: bytes) -> Impl:
    import gmssl_pyx  # lazy: an optional bench candidate

    public = _public_point(key)[1:]
    return Impl(lambda m: bytes(gmssl_pyx.sm2_sign(key, public, m, signer_id=ID)),
                lambda m, der: bool(gmssl_pyx.sm2_verify(public, m, der, signer_id=ID)))


def _gmssl_fast(key: bytes) -> Impl:
    import gmssl_fast  # lazy: an optional bench candidate

    sm2_key = gmssl_fast.SM2(private_key=key.hex(), public_key=_public_point(key)[1:].hex())
    return Impl(lambda m: _der(sm2_key.sign(m)), lambda m, der: bool(sm2_key.verify(m, _raw(der))))


def _pyca_sm2() -> tuple[str, str, str, float | None, float | None]:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    from registry.crypto import sm2

    pem = sm2.SM2Signer.from_private_key(STD_KEY).public_key_pem
    try:
        serialization.load_pem_public_key(pem)
    except UnsupportedAlgorithm as exc:
        return (f"no SM2 ({exc})"[:40], "-", "-", None, None)
    return ("loads SM2 keys", "-", "-", None, None)


def _baselines(seconds: float) -> list[Row]:
    """secp256k1 as the registry signs today, and the signed-JSON path of both profiles end to end."""
    import coincurve

    from registry.crypto import sm2
    from registry.crypto.proofs import ES256KSigner, sign_json, verify_json
    from registry.crypto.signing import SignatureScheme, Signer, recover

    key = os.urandom(32)
    k1 = coincurve.PrivateKey(key)
    der = k1.sign(MESSAGE)  # SHA-256, DER
    signer = Signer.from_private_key(key)
    digest = hashlib.sha256(MESSAGE).digest()
    recoverable = signer.sign(digest, SignatureScheme.RECOVERABLE)
    obj = {"kind": "bench", "items": list(range(20)), "issuer": "黑龙江省市场监督管理局"}
    gm, intl = sm2.SM2Signer.from_private_key(key), ES256KSigner.from_private_key(key)
    gm_signed, intl_signed = sign_json(obj, gm), sign_json(obj, intl)
    return [
        Row("secp256k1 ECDSA (coincurve)", "baseline", "-", "-", "-", _rate_of(lambda: k1.sign(MESSAGE), seconds),
            _rate_of(lambda: k1.public_key.verify(der, MESSAGE), seconds)),
        Row("secp256k1 recoverable (today's QR)", "baseline", "-", "-", "-",
            _rate_of(lambda: signer.sign(digest, SignatureScheme.RECOVERABLE), seconds),
            _rate_of(lambda: recover(digest, recoverable, SignatureScheme.RECOVERABLE), seconds)),
        Row("sign_json/verify_json SM2-SM3", "registry, PEM key", "-", "-", "-",
            _rate_of(lambda: sign_json(obj, gm), seconds), _rate_of(lambda: verify_json(gm_signed), seconds)),
        Row("sign_json/verify_json ES256K", "registry, PEM key", "-", "-", "-",
            _rate_of(lambda: sign_json(obj, intl), seconds), _rate_of(lambda: verify_json(intl_signed), seconds)),
    ]


def _openssl_interop(key: bytes, impl: Impl) -> tuple[str, str]:
    from registry.crypto import sm2

    openssl = shutil.which("openssl")
    if openssl is None:
        return "no openssl", "no openssl"
    signer = sm2.SM2Signer.from_private_key(key)
    with tempfile.TemporaryDirectory(prefix="lianzheng-bench-crypto-") as tmp:
        d = Path(tmp)
        (d / "k.pem").write_bytes(signer.private_key_pem())
        (d / "p.pem").write_bytes(signer.public_key_pem)
        (d / "m").write_bytes(MESSAGE)
        (d / "s").write_bytes(impl.sign(MESSAGE))
        sm3_args = ["-rawin", "-digest", "sm3", "-pkeyopt", f"distid:{ID.decode()}"]
        signed = subprocess.run([openssl, "pkeyutl", "-sign", *sm3_args, "-inkey", d / "k.pem", "-in", d / "m"],
                                capture_output=True, timeout=30)
        from_openssl = _verdict(lambda: signed.returncode == 0 and impl.verify(MESSAGE, signed.stdout))
        verified = subprocess.run([openssl, "pkeyutl", "-verify", *sm3_args, "-pubin", "-inkey", d / "p.pem",
                                   "-sigfile", d / "s", "-in", d / "m"], capture_output=True, timeout=30)
        return from_openssl, "ok" if verified.returncode == 0 else "FAILED"


def _verdict(check: Callable[[], bool]) -> str:
    try:
        return "ok" if check() else "FAILED"
    except Exception as exc:  # a candidate library's own error is a failed check, reported in the table
        return f"error: {type(exc).__name__}"


def _rate_of(operation: Callable[[], Any], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        operation()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _public_point(key: bytes) -> bytes:
    """0x04 || x || y of the SM2 key (from tongsuopy, so every candidate is handed the same public key)."""
    from registry.crypto import sm2

    numbers = sm2.SM2Signer.from_private_key(key).public_key.public_numbers()
    return b"\x04" + numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


def _der(raw: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def _raw_pair(der: bytes) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big"), s.to_bytes(32, "big")


def _raw(der: bytes) -> bytes:
    return b"".join(_raw_pair(der))
