"""The ``cluster`` stage: per-layer k-means weight sharing of the nonzero weights, then trained centroids.

For each selected Linear/Conv weight, the nonzero values (pruned zeros are left out: they stay exactly zero and are
not a cluster) are clustered into at most ``2^bits`` groups by exact 1-D k-means (:func:`kmeans_1d`), and every
weight is replaced by its cluster's mean, rounded to the weight's dtype. The layer then holds at most ``2^bits``
distinct nonzero values, which the ``codebook`` codec stores as a small table plus entropy-coded indices when the
model is packed. The positions, labels and centroids go to the context's :class:`CentroidTrainer`, so the stage's
``finetune`` section (and every later fine-tuning) trains the centroids and keeps the sharing.

Values only change (no structure): nothing is recorded in the provenance, and a packed model unpacks as usual.
Per-layer figures go to ``ctx.notes["layers"]`` (bits, clusters used, weights shared, relative error); layers not
clustered go to ``ctx.skipped`` with the reason.

Example:
    >>> import torch
    >>> from modelpress.recipe.registry import StageContext
    >>> model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    >>> ctx = StageContext()
    >>> model = apply_cluster(model, ClusterConfig(linear_bits=3), ctx)
    >>> model[0].weight.unique().numel() <= 8, ctx.notes["layers"]["2"]["bits"]
    (True, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from modelpress.errors import ConfigError
from modelpress.history import Skip
from modelpress.prune.targets import Target, find_targets
from modelpress.recipe.registry import StageContext, stage
from modelpress.select import matches
from modelpress.share.centroids import centroid_trainer, guard_zeros
from modelpress.share.config import ClusterConfig
from modelpress.share.kmeans import kmeans_1d

__all__ = ["LayerClusters", "apply_cluster", "cluster_targets", "select_cluster_targets"]

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class LayerClusters:
    """One clustered layer: its module and parameter names, bits, clusters used, nonzero weights shared, Lloyd
    iterations and the relative error ``||W - W_shared|| / ||W||`` over the layer.

    Example:
        >>> LayerClusters("fc1", "fc1.weight", 5, 32, 1000, 12, 0.01).notes()["clusters"]
        32
    """

    layer: str
    param_name: str
    bits: int
    clusters: int
    weights: int
    iterations: int
    relative_error: float

    def notes(self) -> dict[str, Any]:
        """JSON-able figures for the report."""
        return {"bits": self.bits, "clusters": self.clusters, "weights": self.weights,
                "iterations": self.iterations, "relative_error": round(self.relative_error, 6)}


def select_cluster_targets(model: nn.Module, config: ClusterConfig) -> tuple[list[Target], list[Skip]]:
    """The Linear/Conv layers ``config`` selects, and the skipped layers with reasons; a :class:`ConfigError` if
    the selection is empty or an override's patterns match none of the selected layers.

    Example:
        >>> from modelpress.zoo.models import LeNet5
        >>> [t.name for t in select_cluster_targets(LeNet5(), ClusterConfig(include=["fc*"]))[0]]
        ['fc1', 'fc2']
    """
    targets, skipped = find_targets(model, config.include, config.exclude)
    if not targets:
        available = ", ".join(t.name or "<root>" for t in find_targets(model)[0])
        if not available:
            raise ConfigError(f"{config.tag}: model", "a model with at least one Linear or Conv layer",
                              f"<{type(model).__name__} without one>", "weight sharing applies to Linear/Conv weights")
        key, patterns = ("exclude", config.exclude) if config.include is None else ("include", config.include)
        raise ConfigError(f"{config.tag}: {key}", "patterns that leave at least one Linear or Conv layer selected",
                          list(patterns), f"use names of this model's Linear/Conv layers: {available}")
    names = [t.name for t in targets]
    for i, override in enumerate(config.overrides):
        if not any(matches(name, pattern) for name in names for pattern in override.layers):
            raise ConfigError(f"{config.tag}: overrides[{i}].layers", "patterns matching a selected layer",
                              list(override.layers), f"use names among the selected layers: {', '.join(names)}")
    return targets, skipped


@torch.no_grad()
def cluster_targets(model: nn.Module, config: ClusterConfig, ctx: StageContext) -> list[LayerClusters]:
    """Cluster every selected layer in place and register it with the context's centroid trainer.

    Example:
        >>> layer = torch.nn.Linear(16, 16)
        >>> [c.clusters <= 4 for c in cluster_targets(layer, ClusterConfig(linear_bits=2), StageContext())]
        [True]
    """
    targets, skipped = select_cluster_targets(model, config)
    ctx.skipped.extend(skipped)
    trainer = centroid_trainer(ctx.callbacks)
    done: list[LayerClusters] = []
    for target in targets:
        weight = target.weight
        bits = config.bits_for(target.name, isinstance(target.module, _CONV_TYPES))
        flat = weight.detach().reshape(-1)
        positions = torch.nonzero(flat).reshape(-1)  # (m,) the surviving weights; zeros are not clustered
        if positions.numel() == 0:
            ctx.skipped.append(Skip(target.name, "every weight is zero (nothing to share)"))
            continue
        values = flat[positions].float()  # (m,) k-means runs in float32/float64 whatever the weight's dtype
        result = kmeans_1d(values.numpy(), 2 ** bits, config.init, config.max_iter, config.seed)
        means = torch.from_numpy(result.centroids).to(weight.dtype)  # (k,) rounded to the weight's dtype
        # a mean of nonzero values is 0.0 only by cancellation: keep it off zero (zeros are the pruned weights)
        sign_hint = torch.from_numpy(np.sign(result.centroids)).to(weight.dtype)
        means = guard_zeros(means, sign_hint)
        labels = torch.from_numpy(result.labels)
        shared = means[labels].float()
        error = float(torch.linalg.vector_norm(values - shared) / torch.linalg.vector_norm(values).clamp_min(1e-30))
        trainer.set_layer(target.param_name, positions, labels, means)
        done.append(LayerClusters(target.name or "<root>", target.param_name, bits, int(means.numel()),
                                  int(positions.numel()), result.iterations, error))
    trainer.apply(model)  # writes centroids[labels] into every registered weight (and +0.0 elsewhere)
    return done


@stage(ClusterConfig)
def apply_cluster(model: nn.Module, config: ClusterConfig, ctx: StageContext) -> nn.Module:
    """Stage handler of ``cluster``: k-means per layer, trainer registered, notes and skips recorded."""
    layers = cluster_targets(model, config, ctx)
    ctx.notes["init"] = config.init.value
    ctx.notes["layers"] = {c.layer: c.notes() for c in layers}
    shared = sum(c.weights for c in layers)
    ctx.notes["shared_weights"] = shared
    ctx.notes["mean_bits"] = round(sum(c.bits * c.weights for c in layers) / shared, 4) if shared else 0.0
    return model
