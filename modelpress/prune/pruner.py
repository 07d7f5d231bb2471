"""One pruning step: scores → per-layer counts (scope) → masks (pattern) → zeros in the weights.

Every pruning stage (one-shot, each gradual update, each lottery round) goes through :func:`compute_masks` and
:func:`apply_masks`. :class:`PruneResult` carries what the report shows: per-layer and overall sparsity, the
skipped layers, and (for ``scope: sensitivity``) the sweep's rows.

Example:
    >>> import torch
    >>> from modelpress.prune.config import PruneConfig
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    >>> result = compute_masks(model, PruneConfig(sparsity=0.75, scope="layer"), task=None)
    >>> apply_masks(model, result.masks)
    >>> result.layer_sparsity, round(result.overall, 4)
    ({'0': 0.75, '2': 0.75}, 0.75)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from modelpress.errors import ConfigError
from modelpress.history import Skip
from modelpress.prune.allocation import allocate_global, allocate_layerwise
from modelpress.prune.config import PatternKind, PruneSpec, Scope
from modelpress.prune.patterns import build_mask, unit_count, unit_scores
from modelpress.prune.scoring import Scored, score_targets
from modelpress.prune.sensitivity import SensitivityRow, sensitivity_sweep, sparsities_from_sensitivity
from modelpress.select import matches
from modelpress.task import Task

__all__ = ["PruneResult", "apply_masks", "compute_masks"]


@dataclass
class PruneResult:
    """Masks by parameter name (True = kept), achieved sparsity per layer and overall, skips, sensitivity rows."""

    masks: dict[str, Tensor]
    layer_sparsity: dict[str, float]
    overall: float
    skipped: list[Skip] = field(default_factory=list)
    sensitivity: list[SensitivityRow] = field(default_factory=list)

    def notes(self, spec: PruneSpec) -> dict[str, Any]:
        """Figures for the report (JSON-able)."""
        notes: dict[str, Any] = {
            "sparsity": round(self.overall, 6),
            "layer_sparsity": {name: round(s, 6) for name, s in self.layer_sparsity.items()},
            "criterion": spec.criterion.value,
            "pattern": spec.pattern.describe(),
            "scope": spec.scope.value,
        }
        if self.sensitivity:
            notes["sensitivity"] = [{"layer": r.layer, "sparsity": r.sparsity, "loss": round(r.loss, 6),
                                     **{k: round(v, 6) for k, v in r.metrics.items()}} for r in self.sensitivity]
        return notes


def _override_for(name: str, spec: PruneSpec) -> float | None:
    """The sparsity of the first override whose patterns match layer ``name`` (None: no override)."""
    for override in spec.overrides:
        if any(matches(name, pattern) for pattern in override.layers):
            return override.sparsity
    return None


def _prune_counts(model: nn.Module, scored: list[Scored], spec: PruneSpec, task: Task | None,
                  sparsity: float) -> tuple[dict[str, int], list[SensitivityRow]]:
    """Units to prune per layer under the spec's scope, for an overall ``sparsity``."""
    units = {s.target.name: unit_count(s.scores.shape, spec.pattern) for s in scored}
    fixed = {s.target.name: o for s in scored if (o := _override_for(s.target.name, spec)) is not None}
    if spec.pattern.kind is PatternKind.n_m:
        return dict.fromkeys(units, 0), []  # the pattern decides
    if spec.scope is Scope.layer:
        return allocate_layerwise(units, {name: fixed.get(name, sparsity) for name in units}), []
    if spec.scope is Scope.sensitivity:
        if task is None:
            raise ConfigError("prune: scope 'sensitivity'", "a task (the sweep measures the training loss)",
                              "<none>", "pass task= to prune_, or use scope 'global' or 'layer'")
        rows = sensitivity_sweep(model, spec, task, held_out=spec.sensitivity.report_metrics)
        per_layer = sparsities_from_sensitivity(rows, units, sparsity, spec.min_density, fixed)
        return allocate_layerwise(units, per_layer), rows
    flat = {s.target.name: unit_scores(s.scores, spec.pattern) for s in scored}
    return allocate_global(flat, sparsity, fixed, spec.min_density), []


def compute_masks(model: nn.Module, spec: PruneSpec, task: Task | None, sparsity: float | None = None,
                  existing: dict[str, Tensor] | None = None) -> PruneResult:
    """Masks that prune ``model``'s selected weights to ``sparsity`` (default: the spec's target) as ``spec`` says.

    ``existing`` masks (by parameter name) mark weights already pruned; they are pruned first. The model is not
    changed (see :func:`apply_masks`).
    """
    target = spec.target_sparsity() if sparsity is None else sparsity
    scored, skipped = score_targets(model, spec, task, existing)
    counts, rows = _prune_counts(model, scored, spec, task, target)
    masks: dict[str, Tensor] = {}
    layer_sparsity: dict[str, float] = {}
    pruned = total = 0
    for item in scored:
        per_row = item.per_row and spec.pattern.kind is PatternKind.unstructured
        mask = build_mask(item.scores, spec.pattern, counts[item.target.name], per_row)
        masks[item.target.param_name] = mask
        zeros = int(mask.numel() - mask.sum())
        layer_sparsity[item.target.name] = zeros / mask.numel()
        pruned, total = pruned + zeros, total + mask.numel()
    return PruneResult(masks, layer_sparsity, pruned / total if total else 0.0, skipped, rows)


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, Tensor]) -> None:
    """Set the masked-out entries of the named parameters to exactly zero.

    Example:
        >>> lin = torch.nn.Linear(2, 1, bias=False)
        >>> apply_masks(lin, {"weight": torch.tensor([[True, False]])})
        >>> lin.weight[0, 1].item()
        0.0
    """
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        params[name].masked_fill_(~mask.to(params[name].device), 0.0)
