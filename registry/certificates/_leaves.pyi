# The compiled module registry/certificates/_leaves.c (its specification: registry/certificates/fields.py).
from collections.abc import Iterable, Sequence

def derive_salts(seed: bytes, label: bytes, paths: Iterable[str], size: int, /) -> list[bytes]: ...
def document_roots(
    paths: Sequence[str], salts: Sequence[bytes | None], values: Sequence[object],
    hidden_sha256: Sequence[bytes | None] | None, hidden_sm3: Sequence[bytes | None] | None,
    sha256: bool, sm3: bool, fields_json: bool, /,
) -> tuple[bytes | None, bytes | None, bytes | None] | None: ...
def batch_root(digest: bytes, index: int, size: int, proof: Sequence[bytes], sm3: bool, /) -> bytes | None: ...
