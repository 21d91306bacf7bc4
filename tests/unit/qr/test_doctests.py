"""The runnable examples in the module docstrings stay true."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

import registry.formats.envelope
import registry.formats.images
import registry.formats.qr
import tests.support.photos


@pytest.mark.parametrize("module", [registry.formats.qr, registry.formats.envelope, registry.formats.images,
                                    tests.support.photos])
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
