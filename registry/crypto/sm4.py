"""SM4 (GB/T 32907-2016) in CTR mode: the 128-bit counter block starts at ``iv`` and increments big-endian over
all 128 bits, as OpenSSL's ``-sm4-ctr``. Encrypting and decrypting are the same call.

OpenSSL (through `cryptography`) has no SM4 code for x86-64 but its generic table-driven C: ~110 MB/s here, 21 µs
of a certificate envelope's ~35 (registry/formats/envelope.py), every issued document paying it. On CPUs with
AES-NI the compiled module registry/crypto/_sm4.c computes SM4's S-box with the AES instruction between two
affine maps (the two S-boxes are affine-equivalent; its header says why): the same key stream, several times
faster and without secret-indexed table lookups. Elsewhere, or when the module was not built, OpenSSL's.
tests/unit/crypto/test_sm4.py holds the two to each other, to the standard's example and to ``openssl enc``.

`SEAL_V2` is the module's whole version-2 certificate envelope in one call (None where ``ctr`` falls back):
registry/formats/envelope.py specifies the envelope and uses it when it can.

>>> ctr(bytes(16), bytes(16), b"") == b""
True
>>> ctr(bytes(16), bytes(16), ctr(bytes(16), bytes(16), b"secret")) == b"secret"
True
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["ACCELERATED", "SEAL_V2", "ctr", "openssl_ctr"]

try:
    from registry.crypto import _sm4
except ImportError:  # pragma: no cover - the package installed without its C modules
    _sm4 = None  # type: ignore[assignment]

ACCELERATED = _sm4 is not None and _sm4.accelerated()
# (key, iv, aad, plaintext, label) -> the blob: envelope.seal's version 2 with these draws, in C
SEAL_V2: Callable[[bytes, bytes, bytes, bytes, bytes], bytes] | None = _sm4.seal_v2 if ACCELERATED and _sm4.seals() else None


def openssl_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    """The same through OpenSSL's SM4 (the fallback, and the reference the tests compare with)."""
    cipher = Cipher(algorithms.SM4(key), modes.CTR(iv)).encryptor()
    return cipher.update(data) + cipher.finalize()


def ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    """``data`` xor the SM4-CTR key stream of ``key`` (16 bytes) from counter block ``iv`` (16 bytes)."""
    if len(key) != 16 or len(iv) != 16:
        raise ValueError("SM4-CTR takes a 16-byte key and a 16-byte counter block")
    return _sm4.ctr(key, iv, data) if ACCELERATED else openssl_ctr(key, iv, data)
