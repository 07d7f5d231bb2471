"""The data the data-driven criteria need, collected from the task's training split in one pass each.

* gradient statistics (:func:`gradient_statistics`): the gradient of the task loss averaged over batches
  (``g``) and the average of the squared per-batch gradients (the diagonal empirical Fisher, ``F``);
* activation statistics (:func:`input_norms`): the L2 norm of each input feature of a layer over all calibration
  tokens/positions (Wanda's ``||x_j||_2``), collected with forward pre-hooks.

A criterion declares which it needs (:class:`Statistic`); :func:`collect` gathers exactly those.

Example:
    >>> import torch
    >>> from modelpress.task import ClassificationTask
    >>> from modelpress.prune.targets import find_targets
    >>> x = torch.randn(32, 4); task = ClassificationTask("toy", x, (x[:, 0] > 0).long(), x, x[:, 0] > 0, 2)
    >>> model = torch.nn.Linear(4, 2)
    >>> stats = collect(model, find_targets(model)[0], task, {Statistic.input_norm}, batches=2, batch_size=16)
    >>> stats[""].input_norm.shape
    torch.Size([4])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

import torch
from torch import Tensor, nn

from modelpress.errors import ConfigError, UnsupportedLayerError
from modelpress.eval_mode import evaluating
from modelpress.prune.targets import Target
from modelpress.task import Task

__all__ = ["LayerStats", "Statistic", "activation_support", "collect", "gradient_statistics", "input_norms"]


class Statistic(StrEnum):
    """A statistic a criterion may need."""

    gradient = "gradient"  # mean gradient over batches, weight-shaped
    squared_gradient = "squared_gradient"  # mean of squared per-batch gradients, weight-shaped
    input_norm = "input_norm"  # L2 norm per input feature, [in * prod(kernel) * groups]


@dataclass
class LayerStats:
    """Statistics of one target layer (None where not collected)."""

    gradient: Tensor | None = None
    squared_gradient: Tensor | None = None
    input_norm: Tensor | None = None


def gradient_statistics(model: nn.Module, targets: list[Target], task: Task, batches: int, batch_size: int,
                        seed: int = 0) -> dict[str, tuple[Tensor, Tensor]]:
    """Per target: (mean gradient, mean squared gradient) of the task loss over ``batches`` training batches.

    The model is put in eval mode (BN uses running statistics, dropout off) so the statistics are deterministic;
    existing ``.grad`` fields are restored afterwards.

    Example:
        >>> import torch
        >>> from modelpress.task import ClassificationTask
        >>> from modelpress.prune.targets import find_targets
        >>> x = torch.randn(32, 4); task = ClassificationTask("toy", x, (x[:, 0] > 0).long(), x, x[:, 0] > 0, 2)
        >>> model = torch.nn.Linear(4, 2)
        >>> g, f = gradient_statistics(model, find_targets(model)[0], task, batches=2, batch_size=16)[""]
        >>> bool((f >= g ** 2 - 1e-9).all())  # a mean of squares is at least the square of the mean
        True
    """
    saved = {t.name: t.weight.grad for t in targets}
    sums = {t.name: torch.zeros_like(t.weight, dtype=torch.float32) for t in targets}
    squares = {t.name: torch.zeros_like(t.weight, dtype=torch.float32) for t in targets}
    requires = {t.name: t.weight.requires_grad for t in targets}
    was_training = model.training
    model.eval()
    count = 0
    try:
        for t in targets:
            t.weight.requires_grad_(True)
        generator = torch.Generator().manual_seed(seed)
        for inputs, labels in task.train_batches(batch_size, generator):
            if count >= batches:
                break
            for t in targets:
                t.weight.grad = None
            loss = task.loss(model(*inputs), labels)
            loss.backward()
            for t in targets:
                grad = t.weight.grad
                if grad is not None:  # a layer the loss does not reach has zero gradient
                    sums[t.name] += grad.float()
                    squares[t.name] += grad.float() ** 2
            count += 1
    finally:
        for t in targets:
            t.weight.grad = saved[t.name]
            t.weight.requires_grad_(requires[t.name])
        model.train(was_training)
    if count == 0:
        raise ConfigError("calibration", "at least one training batch", "<an empty training split>",
                          "use a task with training data")
    return {name: (sums[name] / count, squares[name] / count) for name in sums}


def activation_support(module: nn.Module) -> str | None:
    """Why input norms cannot be collected for ``module`` (None: they can).

    Example:
        >>> activation_support(torch.nn.Conv3d(1, 1, 1))
        'input norms need a Linear, Conv1d or Conv2d layer, got Conv3d'
    """
    if isinstance(module, nn.Linear):
        return None
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        if isinstance(module.padding, str) and module.padding != "valid":
            return f"input norms need numeric padding, got padding={module.padding!r}"
        if module.padding_mode != "zeros":
            return f"input norms need zero padding, got padding_mode={module.padding_mode!r}"
        return None
    return f"input norms need a Linear, Conv1d or Conv2d layer, got {type(module).__name__}"


def _input_columns(module: nn.Module, x: Tensor) -> Tensor:
    """The input of one call as rows of the weight's input features: ``[rows, in * prod(kernel) * groups]``."""
    reason = activation_support(module)
    if reason is not None:
        raise UnsupportedLayerError(type(module).__name__, "a layer whose input norms can be collected",
                                    f"<{reason}>", "exclude the layer or use a criterion without input norms")
    if isinstance(module, nn.Linear):
        return x.reshape(-1, x.shape[-1])  # [B*T, in]
    else:
        conv2d = x.unsqueeze(2) if isinstance(module, nn.Conv1d) else x  # Conv1d as a Conv2d of height 1
        pair = (lambda v: (1, v[0])) if isinstance(module, nn.Conv1d) else (lambda v: tuple(v))
        padding = (0,) * len(module.kernel_size) if module.padding == "valid" else module.padding
        # unfold: [B, C * prod(kernel), L] with channels slowest, like weight.reshape(out, -1) for groups=1
        cols = nn.functional.unfold(conv2d, pair(module.kernel_size), dilation=pair(module.dilation),
                                    padding=pair(padding), stride=pair(module.stride))
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])  # [B*L, C * prod(kernel)]


def input_norms(model: nn.Module, targets: list[Target], batches: Iterable[tuple[Tensor, ...]]) -> dict[str, Tensor]:
    """Per target, the L2 norm of each input feature over all calibration rows, ``[in * prod(kernel) * groups]``.

    Example:
        >>> import torch
        >>> from modelpress.prune.targets import find_targets
        >>> model = torch.nn.Linear(2, 1)
        >>> input_norms(model, find_targets(model)[0], [(torch.tensor([[3.0, 0.0], [4.0, 1.0]]),)])[""].tolist()
        [5.0, 1.0]
    """
    sums: dict[str, Tensor] = {}

    def hook_for(target: Target) -> Callable[[nn.Module, tuple[Tensor, ...]], None]:
        def hook(module: nn.Module, args: tuple[Tensor, ...]) -> None:
            rows = _input_columns(module, args[0].detach().float())
            squares = (rows ** 2).sum(dim=0)  # [features]
            sums[target.name] = sums[target.name] + squares if target.name in sums else squares
        return hook

    handles = [t.module.register_forward_pre_hook(hook_for(t)) for t in targets]
    with evaluating(model, handles), torch.inference_mode():
        for inputs in batches:
            model(*inputs)
    return {name: value.sqrt() for name, value in sums.items()}


def collect(model: nn.Module, targets: list[Target], task: Task | None, needs: set[Statistic], batches: int,
            batch_size: int, seed: int = 0) -> dict[str, LayerStats]:
    """The statistics in ``needs`` for every target (empty :class:`LayerStats` when nothing is needed)."""
    stats = {t.name: LayerStats() for t in targets}
    if not needs:
        return stats
    if task is None:
        raise ConfigError("prune", "a task (the criterion needs training data)", "<none>",
                          "pass task= to prune_, or use criterion 'magnitude' or 'random'")
    if needs & {Statistic.gradient, Statistic.squared_gradient}:
        for name, (mean, square) in gradient_statistics(model, targets, task, batches, batch_size, seed).items():
            stats[name].gradient, stats[name].squared_gradient = mean, square
    if Statistic.input_norm in needs:
        norms = input_norms(model, targets, task.calibration_batches(batches, batch_size, seed))
        for name, norm in norms.items():
            stats[name].input_norm = norm
    return stats
