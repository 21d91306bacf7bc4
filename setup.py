"""The two compiled modules: the per-field work of certificate documents in C (registry/certificates/_leaves.c;
registry/certificates/fields.py is its specification and fallback), linked to the system's OpenSSL libcrypto,
the library hashlib uses; and the common case of decoding an offline payload (registry/formats/_lz2.c;
registry/formats/lz2.py decides everything else). Everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("registry.certificates._leaves", sources=["registry/certificates/_leaves.c"],
                             libraries=["crypto"], extra_compile_args=["-O2", "-Wall", "-Werror"]),
                   Extension("registry.formats._lz2", sources=["registry/formats/_lz2.c"],
                             extra_compile_args=["-O2", "-Wall", "-Werror"])])
