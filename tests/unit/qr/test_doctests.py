"""The runnable examples in the module docstrings stay true."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

import registry.envelope
import registry.images
import registry.qr
import tests.support.photos


@pytest.mark.parametrize("module", [registry.qr, registry.envelope, registry.images, tests.support.photos])
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
