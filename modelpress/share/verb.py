"""``share_weights_(model, config, task)``: the public weight-sharing verb (in place), for ``cluster`` and
``hash-share`` configs.

It dispatches on the config's type through the stage registry and, when the config has a ``finetune`` section,
trains on ``task`` exactly as a recipe run would (trained centroids for ``cluster``, the shared values for
``hash-share``).

Example:
    >>> import torch
    >>> from modelpress.share.config import HashShareConfig
    >>> model = share_weights_(torch.nn.Sequential(torch.nn.Linear(16, 8)), HashShareConfig(fraction=0.25))
    >>> type(model[0]).__name__, model[0].values.numel()
    ('HashedLinear', 32)
"""

from __future__ import annotations

from torch import nn

from modelpress.errors import ConfigError
from modelpress.recipe.registry import StageContext
from modelpress.share.config import ClusterConfig, HashShareConfig
from modelpress.task import Task

__all__ = ["share_weights_"]


def share_weights_(model: nn.Module, config: ClusterConfig | HashShareConfig, task: Task | None = None,
                   ctx: StageContext | None = None) -> nn.Module:
    """Share the weights of ``model`` as ``config`` says; train on ``task`` if the config has a ``finetune`` section.

    ``ctx`` (optional) carries callbacks of earlier stages (e.g. a pruning mask keeper) and receives notes and skips.
    ``hash-share`` replaces layers, so use the returned model.

    Example:
        >>> import torch
        >>> ctx = StageContext()
        >>> _ = share_weights_(torch.nn.Linear(64, 8), ClusterConfig(linear_bits=3), ctx=ctx)
        >>> ctx.notes["mean_bits"]
        3.0
    """
    from modelpress.recipe.run import run_stage

    if not isinstance(config, ClusterConfig | HashShareConfig):
        raise ConfigError("share_weights_: config", "a weight-sharing config (ClusterConfig, HashShareConfig)",
                          f"<{type(config).__name__}>", "use prune_, quantize_ etc. for other stages")
    ctx = ctx or StageContext(task=task)
    if ctx.task is None:
        ctx.task = task
    return run_stage(model, config, ctx)
