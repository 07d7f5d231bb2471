"""Import every built-in technique module once, so their stages are registered.

Example:
    >>> load_builtin_stages()
"""

from __future__ import annotations

import importlib

__all__ = ["BUILTIN_STAGE_MODULES", "load_builtin_stages"]

BUILTIN_STAGE_MODULES = ("modelpress.quantize.cast", "modelpress.quantize.integer",
                         "modelpress.quantize.mixed",
                         "modelpress.quantize.qat",
                         "modelpress.quantize.static",
                         "modelpress.prune.oneshot", "modelpress.prune.gradual",
                         "modelpress.prune.lottery", "modelpress.share.cluster",
                         "modelpress.share.hash_share",
                         "modelpress.distill.stage",
                         "modelpress.lowrank.stage",
                         "modelpress.structured.stage",
                         "modelpress.structured.bert_stage")


def load_builtin_stages() -> None:
    """Register the built-in stages (idempotent)."""
    for name in BUILTIN_STAGE_MODULES:
        importlib.import_module(name)
