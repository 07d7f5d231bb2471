"""Importance criteria: a score per weight (higher: more important, kept), apart from how masks are drawn.

An :class:`Importance` declares the statistics it needs (collected by :mod:`modelpress.prune.statistics` from the
task's training split) and whether its scores are comparable only within an output row (``per_row``: Wanda).

========================  ============================================  ============================
criterion                 score of weight ``w[i, j]``                    statistics
========================  ============================================  ============================
magnitude                 ``|w|``                                        none
gradient                  ``|g|``, ``g`` = mean gradient over batches    gradient
taylor                    ``|w * g|`` (first-order loss change)          gradient
second-order (OBD)        ``w^2 * F / 2``, ``F`` = mean squared grad     squared gradient
random                    uniform in [0, 1), seeded per layer            none
wanda                     ``|w| * ||x_j||_2`` within each output row     input norms
========================  ============================================  ============================

Example:
    >>> import torch
    >>> w = torch.tensor([[1.0, -3.0], [0.5, 2.0]])
    >>> Magnitude().scores("fc", w, LayerStats()).tolist()
    [[1.0, 3.0], [0.5, 2.0]]
    >>> Wanda().scores("fc", w, LayerStats(input_norm=torch.tensor([10.0, 1.0]))).tolist()
    [[10.0, 3.0], [5.0, 2.0]]
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor

from modelpress.errors import ConfigError
from modelpress.prune.config import Criterion
from modelpress.prune.statistics import LayerStats, Statistic

__all__ = ["Gradient", "Importance", "Magnitude", "RandomImportance", "SecondOrder", "Taylor", "Wanda",
           "importance_for"]


@runtime_checkable
class Importance(Protocol):
    """Scores per weight tensor. ``needs``: statistics to collect; ``per_row``: compare only within output rows."""

    needs: ClassVar[frozenset[Statistic]]
    per_row: ClassVar[bool]

    def scores(self, name: str, weight: Tensor, stats: LayerStats) -> Tensor:
        """Scores shaped like ``weight`` (float32, >= 0)."""
        ...


def _require(stat: Tensor | None, what: str, name: str) -> Tensor:
    if stat is None:
        raise ConfigError(f"criterion on layer {name!r}", f"the {what} statistic", "<not collected>",
                          "collect it with modelpress.prune.statistics.collect before scoring")
    return stat


class Magnitude:
    """``|w|``: small weights matter least (Han et al., 2015).

    Example:
        >>> Magnitude().scores("l", torch.tensor([-2.0, 1.0]), LayerStats()).tolist()
        [2.0, 1.0]
    """

    needs: ClassVar[frozenset[Statistic]] = frozenset()
    per_row: ClassVar[bool] = False

    def scores(self, name: str, weight: Tensor, stats: LayerStats) -> Tensor:
        """Absolute values of the weights."""
        return weight.detach().float().abs()


class Gradient:
    """``|g|``: the mean gradient of the loss over training batches; large gradients mark sensitive weights.

    Example:
        >>> Gradient().scores("l", torch.ones(2), LayerStats(gradient=torch.tensor([-0.1, 0.3]))).tolist()
        [0.10000000149011612, 0.30000001192092896]
    """

    needs: ClassVar[frozenset[Statistic]] = frozenset({Statistic.gradient})
    per_row: ClassVar[bool] = False

    def scores(self, name: str, weight: Tensor, stats: LayerStats) -> Tensor:
        """Absolute mean gradient."""
        return _require(stats.gradient, "gradient", name).float().abs()


class Taylor:
    """``|w * g|``: the first-order Taylor estimate of the loss change when ``w`` is set to zero.

    Example:
        >>> Taylor().scores("l", torch.tensor([2.0, -4.0]), LayerStats(gradient=torch.tensor([1.0, 0.25]))).tolist()
        [2.0, 1.0]
    """

    needs: ClassVar[frozenset[Statistic]] = frozenset({Statistic.gradient})
    per_row: ClassVar[bool] = False

    def scores(self, name: str, weight: Tensor, stats: LayerStats) -> Tensor:
        """Absolute product of weight and mean gradient."""
        return (weight.detach().float() * _require(stats.gradient, "gradient", name).float()).abs()


class SecondOrder:
    """Optimal Brain Damage with the diagonal empirical Fisher: ``w^2 * F / 2``, ``F`` = mean squared gradient.

    The loss change of removing ``w`` at a minimum is ``H_ii w^2 / 2``; the Fisher diagonal stands in for ``H_ii``.

    Example:
        >>> SecondOrder().scores("l", torch.tensor([1.0, 2.0]),
        ...                      LayerStats(squared_gradient=torch.tensor([4.0, 0.5]))).tolist()
        [2.0, 1.0]
    """

    needs: ClassVar[frozenset[Statistic]] = frozenset({Statistic.squared_gradient})
    per_row: ClassVar[bool] = False

    def scores(self, name: str, weight: Tensor, stats: LayerStats) -> Tensor:
        """Half the squared weight times the Fisher diagonal."""
        fisher = _require(stats.squared_gradient, "squared gradient", name).float()
        return 0.5 * weight.detach().float() ** 2 * fisher


class RandomImportance:
    """Uniform random scores, seeded from ``seed`` and the layer name: the baseline every criterion must beat.

    Example:
        >>> a = RandomImportance(seed=1).scores("fc1", torch.zeros(3), LayerStats())
        >>> torch.equal(a, RandomImportance(seed=1).scores("fc1", torch.zeros(3), LayerStats()))
        True
    """

    needs: ClassVar[frozenset[Statistic]] = frozenset()
    per_row: ClassVar[bool] = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def scores(self, name: str, weight: Tensor, stats: LayerStats) -> Tensor:
        """Uniform scores in [0, 1), the same for the same seed and layer name."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(name.encode()))
        return torch.rand(weight.shape, generator=generator)


class Wanda:
    """``|w_ij| * ||x_j||_2`` (Sun et al., 2023): weights times the L2 norm of the input feature they multiply,
    compared within each output row, so no retraining or weight update is needed.

    For a convolution ``[out, in/groups, *kernel]`` the input features are the unfolded patch elements; each output
    channel uses the features of its own group.

    Example:
        >>> w = torch.ones(2, 3)
        >>> Wanda().scores("l", w, LayerStats(input_norm=torch.tensor([1.0, 2.0, 3.0])))[0].tolist()
        [1.0, 2.0, 3.0]
    """

    needs: ClassVar[frozenset[Statistic]] = frozenset({Statistic.input_norm})
    per_row: ClassVar[bool] = True

    def __init__(self, groups: int = 1) -> None:
        self.groups = groups

    def scores(self, name: str, weight: Tensor, stats: LayerStats) -> Tensor:
        """|w| times the input norm of each weight's input feature."""
        norms = _require(stats.input_norm, "input norm", name).float()  # [groups * cols]
        out = weight.shape[0]
        matrix = weight.detach().float().reshape(out, -1)  # [out, cols]
        if norms.numel() != self.groups * matrix.shape[1]:
            raise ConfigError(f"wanda on layer {name!r}", f"{self.groups * matrix.shape[1]} input norms",
                              norms.numel(), "collect input norms from this layer's own inputs")
        # [groups, cols] -> one row of norms per output channel: channel o belongs to group o // (out / groups)
        per_out = norms.reshape(self.groups, -1).repeat_interleave(out // self.groups, dim=0)  # [out, cols]
        return (matrix.abs() * per_out).reshape(weight.shape)


# criterion -> factory(seed, groups); only the random criterion uses the seed, only Wanda the conv groups
_FACTORIES: dict[Criterion, Callable[[int, int], Importance]] = {
    Criterion.magnitude: lambda seed, groups: Magnitude(),
    Criterion.gradient: lambda seed, groups: Gradient(),
    Criterion.taylor: lambda seed, groups: Taylor(),
    Criterion.second_order: lambda seed, groups: SecondOrder(),
    Criterion.random: lambda seed, groups: RandomImportance(seed),
    Criterion.wanda: lambda seed, groups: Wanda(groups),
}


def importance_for(criterion: Criterion, seed: int = 0, groups: int = 1) -> Importance:
    """The criterion object a config names (``groups``: the layer's convolution groups, for Wanda).

    Example:
        >>> type(importance_for(Criterion.taylor)).__name__
        'Taylor'
    """
    return _FACTORIES[criterion](seed, groups)
