"""Pruning: importance criteria, scopes, patterns, schedules, lottery tickets, sensitivity, sparse inference.

The pieces, each in its own module:

* :mod:`~modelpress.prune.config` — the stage configs (``prune``, ``prune-gradual``, ``lottery-ticket``) and choices;
* :mod:`~modelpress.prune.targets` — which layers (Linear/Conv weights by name; the rest skipped with a reason);
* :mod:`~modelpress.prune.statistics` / :mod:`~modelpress.prune.criteria` — data the criteria need, and the
  criteria (magnitude, gradient, Taylor, second-order, random, Wanda) as :class:`Importance` objects;
* :mod:`~modelpress.prune.allocation` / :mod:`~modelpress.prune.patterns` — how many per layer (global, layer-wise,
  overrides, min density), and which (unstructured, N:M, blocks);
* :mod:`~modelpress.prune.masks` — the mask keeper that holds zeros through every later fine-tuning;
* :mod:`~modelpress.prune.oneshot`, :mod:`~modelpress.prune.gradual`, :mod:`~modelpress.prune.lottery` — the stages;
* :mod:`~modelpress.prune.sensitivity` — per-layer sensitivity sweeps and allocation from them;
* :mod:`~modelpress.prune.sparse_linear` — a Linear that runs a sparse kernel where that was measured faster.

Example:
    >>> import torch
    >>> model = prune_(torch.nn.Linear(64, 64), PruneConfig(sparsity=0.9))
    >>> round(float((model.weight == 0).float().mean()), 3)
    0.9
"""

from modelpress.prune.config import (
    Calibration,
    Criterion,
    GradualPruneConfig,
    Initialization,
    LayerOverride,
    LotteryTicketConfig,
    Pattern,
    PatternKind,
    PruneConfig,
    PruneSpec,
    Reinit,
    ScheduleKind,
    Scope,
    SensitivityConfig,
)
from modelpress.prune.criteria import (
    Gradient,
    Importance,
    Magnitude,
    RandomImportance,
    SecondOrder,
    Taylor,
    Wanda,
    importance_for,
)
from modelpress.prune.gradual import GradualPruner
from modelpress.prune.lottery import Ticket, apply_ticket, find_ticket
from modelpress.prune.masks import MaskKeeper, mask_keeper, sparsity_of
from modelpress.prune.pruner import PruneResult, apply_masks, compute_masks
from modelpress.prune.schedules import sparsity_at
from modelpress.prune.sensitivity import SensitivityRow, sensitivity_sweep, sparsities_from_sensitivity
from modelpress.prune.verb import prune_

__all__ = [
    "Calibration",
    "Criterion",
    "Gradient",
    "GradualPruneConfig",
    "GradualPruner",
    "Importance",
    "Initialization",
    "LayerOverride",
    "LotteryTicketConfig",
    "Magnitude",
    "MaskKeeper",
    "Pattern",
    "PatternKind",
    "PruneConfig",
    "PruneResult",
    "PruneSpec",
    "RandomImportance",
    "Reinit",
    "ScheduleKind",
    "Scope",
    "SecondOrder",
    "SensitivityConfig",
    "SensitivityRow",
    "Taylor",
    "Ticket",
    "Wanda",
    "apply_masks",
    "apply_ticket",
    "compute_masks",
    "find_ticket",
    "importance_for",
    "mask_keeper",
    "prune_",
    "sensitivity_sweep",
    "sparsities_from_sensitivity",
    "sparsity_at",
    "sparsity_of",
]
