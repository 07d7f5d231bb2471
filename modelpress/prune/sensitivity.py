"""Sensitivity analysis: how the task's loss rises as each layer alone is pruned, and per-layer sparsities from it.

:func:`sensitivity_sweep` prunes one layer at a time to each sparsity of a grid (the stage's criterion and
pattern), measures the task loss on fixed batches of the *training* split (held-out data is never used to choose
sparsities), restores the layer, and returns one :class:`SensitivityRow` per (layer, sparsity). With
``held_out=True`` each row also carries the held-out metrics, for a report only.

:func:`sparsities_from_sensitivity` turns the rows into per-layer sparsities meeting an overall target: it treats
each layer's loss increase as additive and piecewise linear in the weights it loses, and spends the target's
budget where the loss rises least *per weight pruned* (greedy over the lower convex hulls of the curves, which is
optimal for convex curves). Large, robust layers end up sparser, small sensitive ones denser.

Example:
    >>> rows = [SensitivityRow("a", 0.0, 1.0), SensitivityRow("a", 0.5, 1.1), SensitivityRow("a", 0.9, 1.3),
    ...         SensitivityRow("b", 0.0, 1.0), SensitivityRow("b", 0.5, 1.0), SensitivityRow("b", 0.9, 1.0)]
    >>> {k: round(v, 3) for k, v in sparsities_from_sensitivity(rows, {"a": 100, "b": 100}, 0.7).items()}
    {'a': 0.5, 'b': 0.9}
"""

from __future__ import annotations

import itertools
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


def _capped(xs: list[float], ys: list[float], cap: float) -> tuple[list[float], list[float]]:
    """The curve cut at sparsity ``cap`` (interpolated there), so no layer is pruned beyond its floor."""
    out_x, out_y = [xs[0]], [ys[0]]
    for i in range(1, len(xs)):
        if xs[i] >= cap:
            span = xs[i] - xs[i - 1]
            out_x.append(cap)
            out_y.append(ys[i - 1] + (ys[i] - ys[i - 1]) * ((cap - xs[i - 1]) / span if span else 1.0))
            break
        out_x.append(xs[i])
        out_y.append(ys[i])
    return out_x, out_y


def _hull(xs: list[float], ys: list[float]) -> list[tuple[float, float]]:
    """The lower convex hull of the points (monotone chain): its segments have rising slopes."""
    hull: list[tuple[float, float]] = []
    for point in zip(xs, ys, strict=True):
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # drop the middle point when it lies on or above the chord from hull[-2] to the new point
            if (y2 - y1) * (point[0] - x1) >= (point[1] - y1) * (x2 - x1):
                hull.pop()
            else:
                break
        hull.append(point)
    return hull


def sparsities_from_sensitivity(rows: Sequence[SensitivityRow], units: dict[str, int], target: float,
                                min_density: float | None = None,
                                fixed: dict[str, float] | None = None) -> dict[str, float]:
    """Per-layer sparsities from sensitivity rows so that the unit-weighted overall sparsity equals ``target``.

    Each layer's loss increase is treated as additive and piecewise linear in the number of units it loses (the
    swept points, made monotone, under their lower convex hull). The allocation minimizes the summed increase for
    the units the target asks for: it takes hull segments across all layers in order of loss increase *per unit
    pruned*, the cheapest first, and the last one in part, so the total is exact. A large layer that tolerates 90%
    gives up many units for little loss; a small, sensitive one (a classifier) is left mostly dense.

    ``fixed`` layers keep their given sparsity (they count towards the target); ``min_density`` caps every other
    layer at ``1 - min_density``.

    Example:
        >>> rows = [SensitivityRow("a", 0.5, 1.0), SensitivityRow("b", 0.5, 1.0)]
        >>> sparsities_from_sensitivity(rows, {"a": 10, "b": 10}, 0.25)
        {'a': 0.5, 'b': 0.0}
    """
    fixed = dict(fixed or {})
    total = sum(units.values())
    free = [name for name in units if name not in fixed]
    want = target * total - sum(fixed.get(n, 0.0) * units[n] for n in fixed if n in units)  # units to prune
    cap = 1.0 - (min_density or 0.0)
    hulls = {name: _hull(*_capped(*_curve(rows, name), cap)) for name in free}
    reachable = sum(hulls[n][-1][0] * units[n] for n in free)
    if want > reachable + 1e-9 or want < -1e-9:
        raise ConfigError("sensitivity allocation", f"a target the grid reaches (at most "
                          f"{(reachable + total * target - want) / total:.4g} overall)", target,
                          "add higher sparsities to sensitivity.grid, lower min_density, or lower the target")
    # every hull segment: (loss increase per unit pruned, layer order, layer, units it prunes); within a layer the
    # slopes rise (convex hull), so taking segments cheapest first takes each layer's in order
    segments = []
    for order, name in enumerate(free):
        hull = hulls[name]
        for (x0, y0), (x1, y1) in itertools.pairwise(hull):
            count = (x1 - x0) * units[name]
            if count > 0:
                segments.append(((y1 - y0) / count, order, name, count))
    segments.sort(key=lambda seg: (seg[0], seg[1]))
    pruned = dict.fromkeys(free, 0.0)
    left = max(want, 0.0)
    for _, _, name, count in segments:
        if left <= 0:
            break
        take = min(count, left)
        pruned[name] += take
        left -= take
    result = {n: min(pruned[n] / units[n], cap) if units[n] else 0.0 for n in free}
    return {**result, **{n: s for n, s in fixed.items() if n in units}}
