"""Online (deep mutual) learning: peer students trained together, each from the labels and from the others.

No fixed teacher. Peer ``i`` minimizes ``(1 - alpha) * task loss + alpha * mean_{j != i} T^2 KL(p_j || p_i)``
with the other peers' probabilities held constant (detached) in its own term, as in Zhang et al.'s Deep Mutual
Learning. Summing the peers' losses and stepping one optimizer over all their parameters gives each peer exactly
its own gradient (the detached terms carry no gradient across peers), so the one fine-tuning loop trains them all.

``target="ensemble"`` (KDCL, Guo et al. 2020; ONE, Lan et al. 2018) replaces each peer's mean over the others by
the peers' ensemble: every peer mimics the average of *all* peers' softened probabilities (for embedding losses,
the average output), detached. In plain mutual learning the stronger peer is pulled toward the weaker one; the
ensemble of the peers is better than either, so both learn from a target better than themselves.

Example:
    >>> import torch
    >>> from modelpress.config import KDConfig
    >>> from modelpress.task import ClassificationTask
    >>> x = torch.randn(32, 4); y = (x[:, 0] > 0).long()
    >>> task = ClassificationTask("toy", x, y, x, y, num_classes=2)
    >>> peers = Peers([torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)])
    >>> float(MutualObjective(KDConfig(temperature=1, alpha=0.5), task)(peers, (x,), y)) > 0
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import torch
from torch import Tensor, nn

from modelpress.config import KDConfig, KDLoss
from modelpress.distill.losses import embedding_loss, soft_kl
from modelpress.errors import ConfigError
from modelpress.task import Task

__all__ = ["MutualObjective", "MutualTarget", "Peers", "check_peer_outputs"]


class MutualTarget(StrEnum):
    """What each peer mimics in mutual learning (module docstring)."""

    peers = "peers"  # the mean of its loss to every other peer (Deep Mutual Learning)
    ensemble = "ensemble"  # the average of all peers' softened outputs (KDCL / ONE)


class Peers(nn.Module):
    """Two or more peer models trained together; calling it runs the first peer.

    Example:
        >>> Peers([torch.nn.Linear(2, 2)])
        Traceback (most recent call last):
        ...
        modelpress.errors.ConfigError: distill: peers: expected at least 2 peer models, got 1. Fix: set peers: 2
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(models) < 2:
            raise ConfigError("distill: peers", "at least 2 peer models", len(models), "set peers: 2")
        self.peers = nn.ModuleList(models)

    def forward(self, *inputs: Tensor) -> Tensor:
        """The first peer's output."""
        return self.peers[0](*inputs)


def check_peer_outputs(models: Sequence[nn.Module], task: Task) -> None:
    """Run every peer on two of the task's inputs; peers whose output shapes differ are a ConfigError.

    Example:
        >>> from modelpress.task import ClassificationTask
        >>> task = ClassificationTask("toy", torch.randn(8, 4), torch.zeros(8), torch.randn(4, 4), torch.zeros(4), 2)
        >>> check_peer_outputs([torch.nn.Linear(4, 2), torch.nn.Linear(4, 3)], task)
        Traceback (most recent call last):
        ...
        modelpress.errors.ConfigError: distill: peer 1 output: expected the first peer's output shape [2, 2], got \
<[2, 3]>. Fix: use peer_students with the same outputs (classes, embedding width) as the student
    """
    inputs = task.example_inputs(2)
    shapes = []
    with torch.no_grad():
        for model in models:
            was_training = model.training
            model.eval()
            shapes.append(model(*inputs).shape)
            model.train(was_training)
    for index, shape in enumerate(shapes[1:], start=1):
        if shape != shapes[0]:
            raise ConfigError(f"distill: peer {index} output", f"the first peer's output shape {list(shapes[0])}",
                              f"<{list(shape)}>", "use peer_students with the same outputs (classes, embedding "
                              "width) as the student")


class MutualObjective:
    """``(peers, inputs, targets) -> loss``: the sum of every peer's mutual-learning loss (module docstring).

    Example:
        >>> import torch
        >>> from modelpress.task import ClassificationTask
        >>> x = torch.randn(4, 2); task = ClassificationTask("toy", x, torch.zeros(4), x, torch.zeros(4), 2)
        >>> same = torch.nn.Linear(2, 2)
        >>> objective = MutualObjective(KDConfig(temperature=1.0, alpha=1.0), task)
        >>> abs(float(objective(Peers([same, same]), (x,), torch.zeros(4, dtype=torch.long)))) < 1e-6  # identical
        True
    """

    def __init__(self, kd: KDConfig, task: Task, target: MutualTarget = MutualTarget.peers) -> None:
        self.kd, self.task, self.target = kd, task, MutualTarget(target)

    def _soft(self, other: Tensor) -> Tensor:
        """What a peer's output is compared with: softened probabilities ``[B, C]`` for KL, else the output."""
        if self.kd.loss is KDLoss.kl:
            return torch.softmax(other.detach().float() / self.kd.temperature, dim=-1)
        return other.detach()

    def _mimic(self, output: Tensor, soft: Tensor) -> Tensor:
        if self.kd.loss is KDLoss.kl:
            return soft_kl(output, soft, self.kd.temperature)
        return embedding_loss(output, soft, self.kd.loss.value)

    def _targets(self, outputs: list[Tensor]) -> list[list[Tensor]]:
        """For each peer, the targets whose mimic losses are averaged: the other peers, or the ensemble."""
        softs = [self._soft(out) for out in outputs]
        if self.target is MutualTarget.ensemble:
            ensemble = torch.stack(softs).mean(0)  # [B, C]: average softened probabilities (or outputs)
            return [[ensemble] for _ in outputs]
        return [[soft for j, soft in enumerate(softs) if j != i] for i in range(len(outputs))]

    def __call__(self, model: nn.Module, inputs: tuple[Tensor, ...], targets: Tensor) -> Tensor:
        if not isinstance(model, Peers):
            raise ConfigError("mutual learning: model", "a Peers module", f"<{type(model).__name__}>",
                              "wrap the students in modelpress.distill.mutual.Peers")
        outputs = [peer(*inputs) for peer in model.peers]  # K x [B, C]
        total = outputs[0].new_zeros(())
        for out, targets_of_peer in zip(outputs, self._targets(outputs), strict=True):
            mimic = torch.stack([self._mimic(out, soft) for soft in targets_of_peer]).mean()
            total = total + self.kd.alpha * mimic + (1 - self.kd.alpha) * self.task.loss(out, targets)
        return total
