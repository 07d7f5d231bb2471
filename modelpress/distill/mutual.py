"""Online (deep mutual) learning: peer students trained together, each from the labels and from the others.

No fixed teacher. Peer ``i`` minimizes ``(1 - alpha) * task loss + alpha * mean_{j != i} T^2 KL(p_j || p_i)``
with the other peers' probabilities held constant (detached) in its own term, as in Zhang et al.'s Deep Mutual
Learning. Summing the peers' losses and stepping one optimizer over all their parameters gives each peer exactly
its own gradient (the detached terms carry no gradient across peers), so the one fine-tuning loop trains them all.

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

import torch
from torch import Tensor, nn

from modelpress.config import KDConfig, KDLoss
from modelpress.distill.losses import embedding_loss, soft_kl
from modelpress.errors import ConfigError
from modelpress.task import Task

__all__ = ["MutualObjective", "Peers", "check_peer_outputs"]


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

    def __init__(self, kd: KDConfig, task: Task) -> None:
        self.kd, self.task = kd, task

    def _mimic(self, output: Tensor, other: Tensor) -> Tensor:
        if self.kd.loss is KDLoss.kl:
            probs = torch.softmax(other.detach().float() / self.kd.temperature, dim=-1)  # [B, C]
            return soft_kl(output, probs, self.kd.temperature)
        return embedding_loss(output, other.detach(), self.kd.loss.value)

    def __call__(self, model: nn.Module, inputs: tuple[Tensor, ...], targets: Tensor) -> Tensor:
        if not isinstance(model, Peers):
            raise ConfigError("mutual learning: model", "a Peers module", f"<{type(model).__name__}>",
                              "wrap the students in modelpress.distill.mutual.Peers")
        outputs = [peer(*inputs) for peer in model.peers]  # K x [B, C]
        total = outputs[0].new_zeros(())
        for i, out in enumerate(outputs):
            mimic = torch.stack([self._mimic(out, other) for j, other in enumerate(outputs) if j != i]).mean()
            total = total + self.kd.alpha * mimic + (1 - self.kd.alpha) * self.task.loss(out, targets)
        return total
