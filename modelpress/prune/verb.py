"""``prune_(model, config, task)``: the public pruning verb (in place), for any pruning config.

It dispatches on the config's type through the stage registry (``prune``, ``prune-gradual``, ``lottery-ticket``)
and, when the config has a ``finetune`` section, fine-tunes on ``task`` with the mask keeper (and the gradual
pruner) in the loop, exactly as a recipe run would.

Example:
    >>> import torch
    >>> from modelpress.prune.config import PruneConfig
    >>> model = prune_(torch.nn.Linear(16, 4), PruneConfig(sparsity=0.5))
    >>> float((model.weight == 0).float().mean())
    0.5
"""

from __future__ import annotations

from torch import nn

from modelpress.errors import ConfigError
from modelpress.prune.config import GradualPruneConfig, LotteryTicketConfig, PruneSpec
from modelpress.recipe.registry import StageContext
from modelpress.task import Task

__all__ = ["prune_"]


def prune_(model: nn.Module, config: PruneSpec, task: Task | None = None,
           ctx: StageContext | None = None) -> nn.Module:
    """Prune ``model`` in place as ``config`` says; fine-tune on ``task`` if the config has a ``finetune`` section.

    ``ctx`` (optional) carries callbacks from earlier stages and receives notes and skips; by default a fresh one.

    Example:
        >>> import torch
        >>> from modelpress.prune.config import PruneConfig
        >>> ctx = StageContext()
        >>> _ = prune_(torch.nn.Linear(8, 8), PruneConfig(sparsity=0.75, pattern="1x4"), ctx=ctx)
        >>> ctx.notes["layer_sparsity"]
        {'': 0.75}
    """
    if not isinstance(config, PruneSpec):
        raise ConfigError("prune_: config", "a pruning config (PruneConfig, GradualPruneConfig, "
                          "LotteryTicketConfig)", f"<{type(config).__name__}>", "use quantize_ etc. for other stages")
    if isinstance(config, GradualPruneConfig | LotteryTicketConfig) and config.finetune is None:
        raise ConfigError(f"{config.tag}: finetune", "a finetune section (the stage trains during or after it)",
                          "<none>", "add finetune=FinetuneConfig(epochs=...) to the config")
    from modelpress.recipe.run import run_stage

    ctx = ctx or StageContext(task=task)
    if ctx.task is None:
        ctx.task = task
    return run_stage(model, config, ctx)
