"""``low_rank_(model, config, task)``: the public low-rank factorization verb, through the one stage path.

Example:
    >>> import torch
    >>> from modelpress.lowrank.config import LowRankConfig
    >>> model = low_rank_(torch.nn.Sequential(torch.nn.Linear(64, 64)), LowRankConfig(rank=8))
    >>> [tuple(m.weight.shape) for m in model[0]]
    [(8, 64), (64, 8)]
"""

from __future__ import annotations

from torch import nn

from modelpress.errors import ConfigError
from modelpress.lowrank.config import LowRankConfig
from modelpress.recipe.registry import StageContext
from modelpress.task import Task

__all__ = ["low_rank_"]


def low_rank_(model: nn.Module, config: LowRankConfig, task: Task | None = None,
              ctx: StageContext | None = None) -> nn.Module:
    """Factorize the layers of ``model`` as ``config`` says (in place); fine-tune on ``task`` if the config has a
    ``finetune`` section, exactly as a recipe run would. Use the returned model (a lone layer is replaced).

    Example:
        >>> import torch
        >>> ctx = StageContext()
        >>> _ = low_rank_(torch.nn.Sequential(torch.nn.Linear(32, 32)), LowRankConfig(ratio=0.25), ctx=ctx)
        >>> ctx.notes["layers"]["0"]["ranks"]
        [8]
    """
    from modelpress.recipe.run import run_stage

    if not isinstance(config, LowRankConfig):
        raise ConfigError("low_rank_: config", "a LowRankConfig", f"<{type(config).__name__}>",
                          "use prune_, quantize_ etc. for other stages")
    ctx = ctx or StageContext(task=task)
    if ctx.task is None:
        ctx.task = task
    return run_stage(model, config, ctx)
