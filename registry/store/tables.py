"""The Core table of an ORM model, typed as a `Table`: hot paths insert and update thousands of rows with one
``executemany`` on the table, without the ORM's bookkeeping per row (registry/certificates/service.py).

    >>> from registry.store.db import Certificate
    >>> table_of(Certificate).name
    'certificates'
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

__all__ = ["table_of"]


def table_of(model: type) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]
