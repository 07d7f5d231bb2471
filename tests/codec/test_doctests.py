"""Every docstring example in modelpress.codec and modelpress.format runs and shows what it claims."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import modelpress.codec
import modelpress.format

MODULES = sorted(
    [m.name for m in pkgutil.iter_modules(modelpress.codec.__path__, "modelpress.codec.")]
    + [m.name for m in pkgutil.iter_modules(modelpress.format.__path__, "modelpress.format.")]
)


def test_every_module_is_checked():
    assert {"modelpress.codec.huffman", "modelpress.codec.ans", "modelpress.codec.sparse",
            "modelpress.format.reader", "modelpress.format.writer"} <= set(MODULES)


@pytest.mark.parametrize("name", ["modelpress.codec", "modelpress.format", *MODULES])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0
    assert result.attempted > 0
