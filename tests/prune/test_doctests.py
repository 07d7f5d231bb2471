"""Every docstring example in modelpress.prune runs and shows what it claims."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import modelpress.prune

MODULES = sorted(m.name for m in pkgutil.iter_modules(modelpress.prune.__path__, "modelpress.prune."))


def test_every_module_is_checked() -> None:
    assert len(MODULES) >= 15


@pytest.mark.parametrize("name", ["modelpress.prune", *MODULES])
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0
    assert result.attempted > 0
