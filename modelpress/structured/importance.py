"""Importance of each unit (channel or head) of a group, aggregated over every parameter slice the unit owns.

The per-weight criteria of :mod:`modelpress.prune.criteria` score each weight; a unit's score gathers the scores of
all its slices (the conv rows it produces, the columns of the layers reading it, its BN scale and shift):

============  =================================================================================================
criterion     unit score
============  =================================================================================================
l1            sum of ``|w|`` (the Magnitude criterion) over the unit's slices
l2            ``sqrt(sum w^2)`` over the unit's slices
fpgm          sum of Euclidean distances to the group's other units (He et al. 2019, filter pruning via the
              geometric median: units close to all others are redundant)
bn-scale      ``|gamma|`` of the BatchNorm layers in the group (network slimming, Liu et al. 2017); groups without a
              BatchNorm fall back to l2
taylor        sum of ``|w * g|`` (the Taylor criterion; ``g``: mean gradient of the task loss on training batches)
random        seeded uniform scores: the control
============  =================================================================================================

Example:
    >>> import torch
    >>> from modelpress.structured.trace import trace_channels
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    >>> with torch.no_grad():
    ...     _ = model[0].weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 0.0], [3.0, 0.0]]))
    ...     _ = model[0].bias.zero_(); _ = model[1].weight.fill_(1.0)
    >>> group = next(g for g in trace_channels(model, (torch.randn(1, 2),)).groups if not g.blocked)
    >>> group_scores(model, group, ChannelCriterion.l1).tolist()
    [3.0, 1.0, 4.0]
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from enum import StrEnum

import torch
from torch import Tensor, nn

from modelpress.prune.criteria import Magnitude, RandomImportance, Taylor
from modelpress.prune.statistics import LayerStats
from modelpress.structured.graph import Group
from modelpress.task import Task

__all__ = ["ChannelCriterion", "group_scores", "mean_gradients", "unit_matrix"]


class ChannelCriterion(StrEnum):
    """How a unit of a group is scored (higher: kept). See the module docstring."""

    l1 = "l1"
    l2 = "l2"
    fpgm = "fpgm"
    bn_scale = "bn-scale"
    taylor = "taylor"
    random = "random"


def unit_matrix(model: nn.Module, group: Group, values: Callable[[str, Tensor], Tensor] | None = None,
                slots: tuple[tuple[str, str, int], ...] | None = None) -> Tensor:
    """``[units, L]``: each unit's parameter slices, flattened and concatenated (buffers left out). ``values``
    maps a parameter (its ``module.tensor`` name and value) to a same-shaped tensor, e.g. per-weight scores.

    Example:
        >>> from modelpress.structured.graph import Group
        >>> model = nn.Sequential(nn.Linear(2, 2, bias=False))
        >>> group = Group([[("0", "weight", 0, 0)], [("0", "weight", 0, 1)]], ("0",), slots=(("0", "weight", 0),))
        >>> unit_matrix(model, group).shape
        torch.Size([2, 2])
    """
    columns = []
    for module_name, attr, dim in slots if slots is not None else group.slots:
        module = model.get_submodule(module_name)
        if attr not in module._parameters:
            continue
        full = f"{module_name}.{attr}" if module_name else attr
        tensor = module._parameters[attr].detach()
        tensor = (values(full, tensor) if values is not None else tensor).float()
        index = [[i for m, t, d, i in unit if (m, t, d) == (module_name, attr, dim)] for unit in group.units]
        idx = torch.tensor(index, dtype=torch.long)  # [units, k]: the same k for every unit of a group
        picked = tensor.index_select(dim, idx.flatten()).movedim(dim, 0)  # [units * k, ...]
        columns.append(picked.reshape(len(group.units), -1))
    return torch.cat(columns, dim=1) if columns else torch.zeros(len(group.units), 1)


def mean_gradients(model: nn.Module, task: Task, batches: int, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
    """Mean gradient of the task loss over ``batches`` training batches, per parameter name (eval mode, so BN
    uses running statistics; gradients the model had are restored)."""
    params = dict(model.named_parameters())
    saved = {name: p.grad for name, p in params.items()}
    sums = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in params.items()}
    was_training, count = model.training, 0
    model.eval()
    try:
        generator = torch.Generator().manual_seed(seed)
        for inputs, labels in task.train_batches(batch_size, generator):
            if count >= batches:
                break
            model.zero_grad(set_to_none=True)
            task.loss(model(*inputs), labels).backward()
            for name, p in params.items():
                if p.grad is not None:
                    sums[name] += p.grad.float()
            count += 1
    finally:
        for name, p in params.items():
            p.grad = saved[name]
        model.train(was_training)
    return {name: s / max(count, 1) for name, s in sums.items()}


def group_scores(model: nn.Module, group: Group, criterion: ChannelCriterion,
                 gradients: dict[str, Tensor] | None = None, seed: int = 0) -> Tensor:
    """One score per unit of ``group`` (float32, ``[units]``); ``gradients`` (from :func:`mean_gradients`) are
    needed by ``taylor`` only."""
    if criterion is ChannelCriterion.random:
        key = zlib.crc32(",".join(group.layers).encode() + group.kind.encode())
        return RandomImportance(seed + key).scores("group", torch.zeros(group.size), LayerStats())
    if criterion is ChannelCriterion.bn_scale:
        bn = tuple(s for s in group.slots if s[1] == "weight"
                   and isinstance(model.get_submodule(s[0]), nn.BatchNorm1d | nn.BatchNorm2d))
        if bn:
            return unit_matrix(model, group, slots=bn).abs().sum(1)
        criterion = ChannelCriterion.l2
    if criterion is ChannelCriterion.fpgm:
        matrix = unit_matrix(model, group)  # [units, L]
        return torch.cdist(matrix[None], matrix[None])[0].sum(1)
    if criterion is ChannelCriterion.taylor:
        if gradients is None:
            raise ValueError("the taylor criterion needs gradients (modelpress.structured.importance.mean_gradients)")
        names = {id(p): name for name, p in model.named_parameters()}  # a tied weight's gradient is its first name's
        params = dict(model.named_parameters(remove_duplicate=False))

        def taylor(name: str, weight: Tensor) -> Tensor:
            return Taylor().scores(name, weight, LayerStats(gradient=gradients[names[id(params[name])]]))

        return unit_matrix(model, group, taylor).sum(1)
    matrix = unit_matrix(model, group, lambda name, weight: Magnitude().scores(name, weight, LayerStats()))
    return matrix.sum(1) if criterion is ChannelCriterion.l1 else matrix.pow(2).sum(1).sqrt()
