"""Which weights a pruning stage touches: Linear and Conv weights selected by name; every other layer that holds
parameters is reported as skipped, with the reason.

Each target is viewed as a 2-D matrix ``[out, in]`` (a Conv weight ``[out, in/groups, *kernel]`` flattens its
input dimensions), so patterns and criteria treat both alike.

Example:
    >>> from modelpress.zoo.models import LeNet5
    >>> targets, skipped = find_targets(LeNet5(), exclude=["conv1"])
    >>> [t.name for t in targets], [s.layer for s in skipped]
    (['conv2', 'fc1', 'fc2'], ['conv1'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from modelpress.history import Skip
from modelpress.select import matches

__all__ = ["PRUNABLE_TYPES", "Target", "find_targets"]

# Layers whose ``weight`` is a matrix (or a kernel stack) multiplied with the input: pruning zeros in it removes
# multiply-adds. Norm layers, embeddings and the like are left alone (their weights scale or look up, not multiply).
PRUNABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class Target:
    """One prunable layer: its module name, the module, and the name of its weight parameter."""

    name: str
    module: nn.Module

    @property
    def param_name(self) -> str:
        """The weight's name in ``model.named_parameters()`` (``fc1.weight``)."""
        return f"{self.name}.weight" if self.name else "weight"

    @property
    def weight(self) -> Tensor:
        """The weight parameter (``[out, in]`` or ``[out, in/groups, *kernel]``)."""
        return self.module.weight

    @property
    def groups(self) -> int:
        """Convolution groups (1 for Linear)."""
        return int(getattr(self.module, "groups", 1))

    def matrix(self, tensor: Tensor) -> Tensor:
        """A weight-shaped tensor viewed as ``[out, in * prod(kernel)]``."""
        return tensor.reshape(tensor.shape[0], -1)


def find_targets(model: nn.Module, include: Sequence[str] | None = None,
                 exclude: Sequence[str] = ()) -> tuple[list[Target], list[Skip]]:
    """Prunable layers of ``model`` matching ``include`` (all when None) and no ``exclude`` pattern, plus the skips.

    Every leaf module that owns parameters but is not selected appears in the skips with the reason.

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
        >>> targets, skipped = find_targets(model)
        >>> [t.name for t in targets], skipped[0].reason
        (['0'], 'LayerNorm is not a Linear or Conv layer')
    """
    targets: list[Target] = []
    skipped: list[Skip] = []
    for name, module in model.named_modules():
        if not any(True for _ in module.parameters(recurse=False)):
            continue
        kind = type(module).__name__
        if not isinstance(module, PRUNABLE_TYPES) or not isinstance(getattr(module, "weight", None), nn.Parameter):
            if include is None or any(matches(name, p) for p in include):
                skipped.append(Skip(name, f"{kind} is not a Linear or Conv layer"))
            continue
        if include is not None and not any(matches(name, p) for p in include):
            continue
        if any(matches(name, p) for p in exclude):
            skipped.append(Skip(name, "excluded by the stage's exclude patterns"))
            continue
        targets.append(Target(name, module))
    return targets, skipped
