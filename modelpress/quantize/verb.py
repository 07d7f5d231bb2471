"""``quantize_(model, config, task)``: the public quantization verb (in place where the stage allows), for every
quantization config: ``cast``, ``quantize``, ``quantize-static``, ``qat``.

It dispatches on the config's type through the stage registry and, when the config has a ``finetune`` section (QAT
trains with fake quantization, then converts to integer layers), trains on ``task`` exactly as a recipe run would.
Stages that replace layers return a new top-level object only when the model itself is replaced: use the result.

Example:
    >>> import torch
    >>> from modelpress.quantize.cast import CastConfig
    >>> quantize_(torch.nn.Linear(2, 2), CastConfig(dtype="float16")).weight.dtype
    torch.float16
"""

from __future__ import annotations

from torch import nn

from modelpress.config import StageConfig
from modelpress.errors import ConfigError
from modelpress.recipe.registry import StageContext
from modelpress.task import Task

__all__ = ["QUANTIZE_TAGS", "quantize_"]

QUANTIZE_TAGS = ("cast", "quantize", "quantize-static", "qat", "quantize-mixed")


def quantize_(model: nn.Module, config: StageConfig, task: Task | None = None,
              ctx: StageContext | None = None) -> nn.Module:
    """Quantize ``model`` as ``config`` says; calibrate or train on ``task`` where the stage needs data.

    Example:
        >>> import torch
        >>> from modelpress.quantize.integer import QuantizeConfig
        >>> type(quantize_(torch.nn.Sequential(torch.nn.Linear(32, 16)), QuantizeConfig(mode="dynamic-int8"))[0])
        <class 'modelpress.kernels.int8_dynamic.Int8DynamicLinear'>
    """
    from modelpress.recipe.run import run_stage

    if getattr(config, "tag", None) not in QUANTIZE_TAGS:
        raise ConfigError("quantize_: config", f"a quantization config (tags {', '.join(QUANTIZE_TAGS)})",
                          f"<{type(config).__name__}>", "use prune_, share_weights_ etc. for other stages")
    ctx = ctx or StageContext(task=task)
    if ctx.task is None:
        ctx.task = task
    return run_stage(model, config, ctx)
