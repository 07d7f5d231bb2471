"""From a model and a pruning spec to a score per weight of every target layer (what the allocators compare).

Targets are chosen by name (:mod:`modelpress.prune.targets`); a layer the pattern or the criterion cannot handle
(an input dimension not divisible by M, a Conv3d for Wanda) is skipped with the reason. The criterion's statistics
are collected once for all targets. Weights a previous mask already removed score ``-inf``, so they are the first to
go again and masks only grow while the sparsity rises (gradual pruning, lottery rounds, stacked stages).

Example:
    >>> import torch
    >>> from modelpress.prune.config import PruneConfig
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    >>> scored, skipped = score_targets(model, PruneConfig(pattern="2:4"), task=None)
    >>> [s.target.name for s in scored], [(s.layer, s.reason) for s in skipped]
    (['0'], [('2', 'the input dimension 6 is not a multiple of M=4')])
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from modelpress.errors import ConfigError
from modelpress.history import Skip
from modelpress.prune.config import PruneSpec
from modelpress.prune.criteria import importance_for
from modelpress.prune.patterns import pattern_support
from modelpress.prune.statistics import Statistic, activation_support, collect
from modelpress.prune.targets import Target, find_targets
from modelpress.task import Task

__all__ = ["Scored", "score_targets"]


@dataclass
class Scored:
    """A target layer and its scores (float32, shaped like its weight; higher = keep)."""

    target: Target
    scores: Tensor
    per_row: bool


def score_targets(model: nn.Module, spec: PruneSpec, task: Task | None,
                  existing: dict[str, Tensor] | None = None) -> tuple[list[Scored], list[Skip]]:
    """Scores of every prunable target of ``model`` under ``spec``, and the layers skipped (with reasons).

    ``existing``: masks by parameter name (True = kept) whose pruned weights must stay pruned.
    """
    targets, skipped = find_targets(model, spec.include, spec.exclude)
    chosen: list[Target] = []
    for target in targets:
        reason = pattern_support(target.weight.shape, spec.pattern)
        if reason is None and Statistic.input_norm in importance_for(spec.criterion).needs:
            reason = activation_support(target.module)
        if reason is not None:
            skipped.append(Skip(target.name, reason))
        else:
            chosen.append(target)
    if not chosen:
        raise ConfigError("prune: include/exclude", "at least one Linear or Conv layer to prune",
                          f"<none among {len(targets)} selected; skipped: "
                          f"{', '.join(s.layer or '<model>' for s in skipped) or 'nothing'}>",
                          "check the layer name patterns (see the model's named_modules())")
    probe = importance_for(spec.criterion)
    stats = collect(model, chosen, task, set(probe.needs), spec.calibration.batches, spec.calibration.batch_size,
                    seed=spec.seed)
    scored: list[Scored] = []
    for target in chosen:
        criterion = importance_for(spec.criterion, seed=spec.seed, groups=target.groups)
        scores = criterion.scores(target.name, target.weight, stats[target.name]).float()
        previous = (existing or {}).get(target.param_name)
        if previous is not None and previous.shape == scores.shape:
            scores = scores.masked_fill(~previous.bool(), float("-inf"))
        scored.append(Scored(target, scores, criterion.per_row))
    return scored, skipped

