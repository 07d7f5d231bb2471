"""Structured pruning with a dependency graph: remove whole channels and attention heads, physically.

The pieces, each in its own module:

* :mod:`~modelpress.structured.trace` / :mod:`~modelpress.structured.layers` — run the model once and find which
  channels are coupled (residual adds, concat, split, depthwise and grouped convs, norms, flatten into Linear,
  embeddings, tied weights); :mod:`~modelpress.structured.graph` — the union-find and the printable groups;
* :mod:`~modelpress.structured.importance` — unit scores (L1/L2, FPGM, BN scale, Taylor, random) per group;
* :mod:`~modelpress.structured.allocate` — uniform/global ratios, overrides, rounding to a multiple;
* :mod:`~modelpress.structured.surgery` — smaller layers, the provenance record and its rebuilder;
* :mod:`~modelpress.structured.attention` — attention whose heads can be removed;
* :mod:`~modelpress.structured.config` / :mod:`~modelpress.structured.stage` — the ``prune-channels`` stage.

Example:
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.ReLU(), torch.nn.Conv2d(16, 4, 3))
    >>> model = prune_channels(model, PruneChannelsConfig(ratio=0.5), (torch.randn(1, 3, 8, 8),))
    >>> model[0].out_channels, model[2].in_channels
    (8, 8)
"""

from modelpress.structured.attention import PrunedMultiheadAttention
from modelpress.structured.config import (
    AttentionUnits,
    ChannelOverride,
    ChannelScope,
    PruneChannelsConfig,
    TargetConfig,
    TargetMetric,
)
from modelpress.structured.graph import ChannelGraph, Group
from modelpress.structured.importance import ChannelCriterion, group_scores
from modelpress.structured.stage import apply_prune_channels, prune_channels
from modelpress.structured.trace import Trace, trace_channels

__all__ = [
    "AttentionUnits",
    "ChannelCriterion",
    "ChannelGraph",
    "ChannelOverride",
    "ChannelScope",
    "Group",
    "PruneChannelsConfig",
    "PrunedMultiheadAttention",
    "TargetConfig",
    "TargetMetric",
    "Trace",
    "apply_prune_channels",
    "group_scores",
    "prune_channels",
    "trace_channels",
]
