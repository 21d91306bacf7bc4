"""The one compiled module: the per-field work of certificate documents in C (registry/certificates/_leaves.c;
registry/certificates/fields.py is its specification and fallback), linked to the system's OpenSSL libcrypto,
the library hashlib uses. Everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("registry.certificates._leaves", sources=["registry/certificates/_leaves.c"],
                             libraries=["crypto"], extra_compile_args=["-O2", "-Wall", "-Werror"])])
