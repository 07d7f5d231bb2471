"""How many units each layer loses: one global threshold, or a sparsity per layer, with overrides and a floor.

* :func:`allocate_layerwise`: each layer prunes its own sparsity (the stage's, or an override's) of its units.
* :func:`allocate_global`: one score threshold across layers, chosen so the overall sparsity of all selected layers
  equals the target. Layers with an override keep exactly their own sparsity and the threshold of the rest moves
  to make up the difference. With ``min_density`` every layer keeps at least that fraction: a layer the threshold
  would empty further is clamped at its floor and the threshold is recomputed over the others (water-filling), so
  the overall target still holds.

Counts are exact (``round(sparsity * units)``), so a 90% target over 266,200 weights prunes 239,580 of them.

Example:
    >>> import torch
    >>> scores = {"a": torch.tensor([1.0, 2.0, 3.0, 4.0]), "b": torch.tensor([10.0, 20.0, 30.0, 40.0])}
    >>> allocate_global(scores, target=0.5)
    {'a': 4, 'b': 0}
    >>> allocate_global(scores, target=0.5, min_density=0.25)
    {'a': 3, 'b': 1}
    >>> allocate_layerwise({"a": 4, "b": 4}, {"a": 0.5, "b": 0.25})
    {'a': 2, 'b': 1}
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from modelpress.errors import ConfigError

__all__ = ["allocate_global", "allocate_layerwise"]


def allocate_layerwise(units: dict[str, int], sparsity: dict[str, float]) -> dict[str, int]:
    """Units to prune per layer when each layer has its own sparsity.

    Example:
        >>> allocate_layerwise({"fc": 10}, {"fc": 0.33})
        {'fc': 3}
    """
    return {name: round(sparsity[name] * count) for name, count in units.items()}


def _keep_counts(scores: dict[str, Tensor], names: list[str], budget: int) -> dict[str, int]:
    """How many units of each named layer are among the ``budget`` highest scores of those layers together."""
    if budget <= 0:
        return dict.fromkeys(names, 0)
    pool = torch.cat([scores[n].flatten().float() for n in names])  # [sum of units]
    owner = torch.cat([torch.full((scores[n].numel(),), i, dtype=torch.long) for i, n in enumerate(names)])
    # stable descending order: among equal scores the earlier layer/position is kept first (deterministic)
    kept = torch.argsort(pool, descending=True, stable=True)[:budget]
    counts = torch.bincount(owner[kept], minlength=len(names))
    return {n: int(counts[i]) for i, n in enumerate(names)}


def allocate_global(scores: dict[str, Tensor], target: float, fixed: dict[str, float] | None = None,
                    min_density: float | None = None) -> dict[str, int]:
    """Units to prune per layer under one global threshold (see the module docstring).

    ``scores``: flat unit scores per layer (comparable across layers); ``fixed``: per-layer sparsities that
    override the threshold; ``min_density``: the fraction of units every non-fixed layer keeps at least.

    Example:
        >>> allocate_global({"a": torch.arange(4.0), "b": torch.arange(4.0) + 4}, 0.5, fixed={"b": 0.25})
        {'a': 3, 'b': 1}
    """
    fixed = fixed or {}
    units = {name: s.numel() for name, s in scores.items()}
    total = sum(units.values())
    total_keep = total - round(target * total)
    fixed_keep = {name: units[name] - round(s * units[name]) for name, s in fixed.items() if name in units}
    free = [name for name in scores if name not in fixed_keep]
    free_units = sum(units[n] for n in free)
    budget = total_keep - sum(fixed_keep.values())
    floor = {n: math.ceil(min_density * units[n]) if min_density else 0 for n in free}
    if budget < sum(floor.values()) or budget > free_units:
        reachable_lo = 1 - (sum(fixed_keep.values()) + free_units) / total
        reachable_hi = 1 - (sum(fixed_keep.values()) + sum(floor.values())) / total
        raise ConfigError("sparsity", f"a target the overrides and min_density allow (between {reachable_lo:.4g} "
                          f"and {reachable_hi:.4g} overall)", target,
                          "change the target, the overrides or min_density")
    clamped: set[str] = set()
    while True:
        open_layers = [n for n in free if n not in clamped]
        keep = _keep_counts(scores, open_layers, budget - sum(floor[n] for n in clamped))
        short = [n for n in open_layers if keep[n] < floor[n]]
        if not short:
            break
        clamped.update(short)  # each pass clamps at least one layer, so this ends within len(free) passes
    keeps = {**fixed_keep, **keep, **{n: floor[n] for n in clamped}}
    return {name: units[name] - keeps[name] for name in scores}
