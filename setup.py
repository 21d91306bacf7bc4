"""The three compiled modules: the per-field work of certificate documents in C (registry/certificates/_leaves.c;
registry/certificates/fields.py is its specification and fallback), linked to the system's OpenSSL libcrypto,
the library hashlib uses; the common case of decoding an offline payload (registry/formats/_lz2.c;
registry/formats/lz2.py decides everything else); and SM4-CTR with AES-NI, with the version-2 envelope built on
it (registry/crypto/_sm4.c; registry/crypto/sm4.py and registry/formats/envelope.py fall back to OpenSSL's SM4).
Everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("registry.certificates._leaves", sources=["registry/certificates/_leaves.c"],
                             libraries=["crypto"], extra_compile_args=["-O2", "-Wall", "-Werror"]),
                   Extension("registry.formats._lz2", sources=["registry/formats/_lz2.c"],
                             extra_compile_args=["-O2", "-Wall", "-Werror"]),
                   Extension("registry.crypto._sm4", sources=["registry/crypto/_sm4.c"], libraries=["crypto"],
                             extra_compile_args=["-O2", "-Wall", "-Werror"])])
