"""The runnable examples in the module docstrings stay true."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

import registry.crypto.signing
import registry.formats.base45
import registry.formats.envelope
import registry.formats.images
import registry.formats.lz2
import registry.formats.qr
import tests.support.photos


@pytest.mark.parametrize("module", [registry.formats.qr, registry.formats.lz2, registry.formats.base45,
                                    registry.formats.envelope, registry.formats.images, registry.crypto.signing,
                                    tests.support.photos])
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
