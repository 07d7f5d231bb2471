"""Sensitivity analysis: how the task's loss rises as each layer alone is pruned, and per-layer sparsities from it.

:func:`sensitivity_sweep` prunes one layer at a time to each sparsity of a grid (the stage's criterion and
pattern), measures the task loss on fixed batches of the *training* split (held-out data is never used to choose
sparsities), restores the layer, and returns one :class:`SensitivityRow` per (layer, sparsity). With
``held_out=True`` each row also carries the held-out metrics, for a report only.

:func:`sparsities_from_sensitivity` turns the rows into per-layer sparsities meeting an overall target: for a
tolerance ``delta`` each layer takes the largest sparsity whose loss increase (made monotone, interpolated
linearly between grid points) stays within ``delta``; ``delta`` is bisected until the weighted overall sparsity
equals the target. Robust layers end up sparser, sensitive ones denser.

Example:
    >>> rows = [SensitivityRow("a", 0.0, 1.0), SensitivityRow("a", 0.5, 1.1), SensitivityRow("a", 0.9, 1.3),
    ...         SensitivityRow("b", 0.0, 1.0), SensitivityRow("b", 0.5, 1.0), SensitivityRow("b", 0.9, 1.0)]
    >>> {k: round(v, 3) for k, v in sparsities_from_sensitivity(rows, {"a": 100, "b": 100}, 0.7).items()}
    {'a': 0.5, 'b': 0.9}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from modelpress.errors import ConfigError
from modelpress.prune.config import PruneSpec
from modelpress.prune.patterns import build_mask, unit_count
from modelpress.prune.scoring import score_targets
from modelpress.task import Batch, Task

__all__ = ["SensitivityRow", "sensitivity_sweep", "sparsities_from_sensitivity", "training_loss"]


@dataclass(frozen=True)
class SensitivityRow:
    """The training-split loss with one layer pruned to ``sparsity`` (others intact); optional held-out metrics."""

    layer: str
    sparsity: float
    loss: float
    metrics: dict[str, float] = field(default_factory=dict)


@torch.inference_mode()
def training_loss(model: nn.Module, task: Task, batches: Sequence[Batch]) -> float:
    """Mean task loss of ``model`` (eval mode) over the given training batches.

    Example:
        >>> from modelpress.task import ClassificationTask
        >>> x = torch.randn(8, 2); task = ClassificationTask("t", x, torch.zeros(8), x, torch.zeros(8), 2)
        >>> model = torch.nn.Linear(2, 2)
        >>> training_loss(model, task, list(task.train_batches(4, torch.Generator()))) > 0
        True
    """
    was_training = model.training
    model.eval()
    try:
        losses = [float(task.loss(model(*inputs), targets)) for inputs, targets in batches]
    finally:
        model.train(was_training)
    return sum(losses) / len(losses)


def sensitivity_sweep(model: nn.Module, spec: PruneSpec, task: Task, grid: Sequence[float] | None = None,
                      held_out: bool = False) -> list[SensitivityRow]:
    """Rows of (layer, sparsity, training loss) for each target layer pruned alone to each grid sparsity.

    The first row of each layer is its unpruned loss (sparsity 0). The model is left as it was.
    """
    grid = tuple(grid) if grid is not None else spec.sensitivity.grid
    generator = torch.Generator().manual_seed(spec.seed)
    batches: list[Batch] = []
    for batch in task.train_batches(spec.sensitivity.batch_size, generator):
        if len(batches) >= spec.sensitivity.batches:
            break
        batches.append(batch)
    scored, _ = score_targets(model, spec, task)
    base_loss = training_loss(model, task, batches)
    base_metrics = task.evaluate(model) if held_out else {}
    rows: list[SensitivityRow] = []
    for item in scored:
        weight = item.target.weight
        original = weight.detach().clone()
        rows.append(SensitivityRow(item.target.name, 0.0, base_loss, dict(base_metrics)))
        units = unit_count(weight.shape, spec.pattern)
        try:
            for sparsity in grid:
                mask = build_mask(item.scores, spec.pattern, round(sparsity * units), item.per_row)
                with torch.no_grad():
                    weight.copy_(original * mask)
                rows.append(SensitivityRow(item.target.name, float(sparsity), training_loss(model, task, batches),
                                           task.evaluate(model) if held_out else {}))
        finally:
            with torch.no_grad():
                weight.copy_(original)
    return rows


def _curve(rows: Sequence[SensitivityRow], layer: str) -> tuple[list[float], list[float]]:
    """(sparsities, monotone loss increases) of one layer, starting at (0, 0)."""
    own = sorted((r for r in rows if r.layer == layer), key=lambda r: r.sparsity)
    base = next((r.loss for r in own if r.sparsity == 0.0), own[0].loss)
    xs, ys, worst = [0.0], [0.0], 0.0
    for r in own:
        if r.sparsity == 0.0:
            continue
        worst = max(worst, r.loss - base)  # cumulative max: more pruning never counts as less harmful
        xs.append(r.sparsity)
        ys.append(worst)
    return xs, ys


def _sparsity_at(xs: list[float], ys: list[float], delta: float, cap: float) -> float:
    """The largest sparsity whose (interpolated) loss increase is at most ``delta``, capped at ``cap``."""
    best = 0.0
    for i in range(1, len(xs)):
        if ys[i] <= delta:
            best = xs[i]
            continue
        # the curve crosses delta inside (xs[i-1], xs[i]]: interpolate linearly
        span = ys[i] - ys[i - 1]
        best = xs[i - 1] + (xs[i] - xs[i - 1]) * ((delta - ys[i - 1]) / span if span > 0 else 0.0)
        break
    return min(best, cap)


def sparsities_from_sensitivity(rows: Sequence[SensitivityRow], units: dict[str, int], target: float,
                                min_density: float | None = None,
                                fixed: dict[str, float] | None = None) -> dict[str, float]:
    """Per-layer sparsities from sensitivity rows so that the unit-weighted overall sparsity equals ``target``.

    ``fixed`` layers keep their given sparsity (they count towards the target); ``min_density`` caps every other
    layer at ``1 - min_density``.

    Example:
        >>> rows = [SensitivityRow("a", 0.5, 1.0), SensitivityRow("b", 0.5, 1.0)]
        >>> sparsities_from_sensitivity(rows, {"a": 10, "b": 10}, 0.25)
        {'a': 0.25, 'b': 0.25}
    """
    fixed = dict(fixed or {})
    total = sum(units.values())
    free = [name for name in units if name not in fixed]
    want = target * total - sum(fixed.get(n, 0.0) * units[n] for n in fixed if n in units)  # units to prune
    cap = 1.0 - (min_density or 0.0)
    curves = {name: _curve(rows, name) for name in free}

    def pruned(delta: float) -> float:
        return sum(_sparsity_at(*curves[n], delta, cap) * units[n] for n in free)

    reachable = pruned(float("inf"))
    if want > reachable + 1e-9 or want < 0:
        raise ConfigError("sensitivity allocation", f"a target the grid reaches (at most "
                          f"{(reachable + total * target - want) / total:.4g} overall)", target,
                          "add higher sparsities to sensitivity.grid, lower min_density, or lower the target")
    lo_total = pruned(0.0)
    if lo_total >= want:
        # even the zero-tolerance allocation prunes enough (flat curves): scale it down to the target
        scale = want / lo_total if lo_total else 0.0
        result = {n: _sparsity_at(*curves[n], 0.0, cap) * scale for n in free}
    else:
        lo, hi = 0.0, max(max(ys) for _, ys in curves.values())
        for _ in range(100):  # bisection on the tolerance; pruned(delta) is non-decreasing
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if pruned(mid) < want else (lo, mid)
        result = {n: _sparsity_at(*curves[n], hi, cap) for n in free}
        # bisection leaves a residue of a few units: spread it over the layers pro rata so the total is exact
        residue = want - sum(result[n] * units[n] for n in free)
        room = sum((cap - result[n]) * units[n] for n in free)
        if residue and room > 0:
            result = {n: result[n] + (cap - result[n]) * residue / room for n in free}
    return {**result, **{n: s for n, s in fixed.items() if n in units}}
