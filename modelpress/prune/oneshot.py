"""The ``prune`` stage: one-shot pruning to the target sparsity, then (optionally) fine-tuning with zeros held.

The handler computes masks once (:func:`modelpress.prune.pruner.compute_masks`), zeros the weights, and hands the
masks to the context's mask keeper, so the stage's ``finetune`` section and every later stage keep the zeros.
Per-layer sparsities go to ``ctx.notes["layer_sparsity"]``, skipped layers to ``ctx.skipped``.

Example:
    >>> import torch
    >>> from modelpress.recipe.registry import StageContext
    >>> from modelpress.prune.config import PruneConfig
    >>> model = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.ReLU(), torch.nn.Linear(10, 2))
    >>> ctx = StageContext()
    >>> model = apply_prune(model, PruneConfig(sparsity=0.5), ctx)
    >>> ctx.notes["sparsity"], type(ctx.callbacks[0]).__name__
    (0.5, 'MaskKeeper')
"""

from __future__ import annotations

from torch import nn

from modelpress.prune.config import PruneConfig, PruneSpec
from modelpress.prune.masks import mask_keeper
from modelpress.prune.pruner import PruneResult, apply_masks, compute_masks
from modelpress.recipe.registry import StageContext, stage

__all__ = ["apply_prune", "prune_now"]


def prune_now(model: nn.Module, spec: PruneSpec, ctx: StageContext, sparsity: float | None = None) -> PruneResult:
    """Prune ``model`` in place to ``sparsity`` (default: the spec's target) and register the masks with the
    context's mask keeper; weights the keeper already holds at zero are pruned first.

    Example:
        >>> import torch
        >>> from modelpress.prune.config import PruneConfig
        >>> lin = torch.nn.Linear(8, 8)
        >>> round(prune_now(lin, PruneConfig(sparsity=0.25), StageContext()).overall, 2)
        0.25
    """
    keeper = mask_keeper(ctx.callbacks)
    result = compute_masks(model, spec, ctx.task, sparsity, existing=keeper.masks)
    apply_masks(model, result.masks)
    for name, mask in result.masks.items():
        keeper.set_mask(name, mask)
    keeper.apply(model)
    return result


@stage(PruneConfig)
def apply_prune(model: nn.Module, config: PruneConfig, ctx: StageContext) -> nn.Module:
    """Stage handler of ``prune``: one-shot masks, zeros applied, keeper registered, notes and skips recorded."""
    result = prune_now(model, config, ctx)
    ctx.skipped.extend(result.skipped)
    ctx.notes.update(result.notes(config))
    return model
