"""Every docstring example in modelpress.report runs and shows what it claims."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import modelpress.report

MODULES = sorted(m.name for m in pkgutil.iter_modules(modelpress.report.__path__, "modelpress.report."))


def test_every_module_is_checked():
    assert {"modelpress.report.table", "modelpress.report.html", "modelpress.report.plots",
            "modelpress.report.json_report"} <= set(MODULES)


@pytest.mark.parametrize("name", ["modelpress.report", *MODULES])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0
    if name != "modelpress.report.style":  # the stylesheet module holds a constant only
        assert result.attempted > 0
