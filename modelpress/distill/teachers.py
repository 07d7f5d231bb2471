"""Teachers: one model, or an ensemble whose outputs are combined per batch.

For logits (``kl``), each teacher's ``softmax(z / T)`` is combined:

* ``average`` — a weighted average with fixed weights (default equal);
* ``confidence`` — per sample, each teacher's fixed weight times its confidence (its top class probability at
  ``T = 1``), renormalized over the teachers: a teacher that is unsure about an example counts less there.

For embeddings (``mse``/``cosine``) the teachers' outputs are averaged with the fixed weights. Teachers run in eval
mode without gradients. Online (mutual) learning has no teacher: see :mod:`modelpress.distill.mutual`; a
progressive chain (teacher → assistant → student) is a sequence of one-teacher runs: see
:mod:`modelpress.distill.stage`.

Example:
    >>> import torch
    >>> a, b = torch.tensor([[10.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    >>> ensemble_probs([a, b], 1.0, mode="confidence")[0, 0] > ensemble_probs([a, b], 1.0)[0, 0]
    tensor(True)
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import torch
from torch import Tensor, nn

from modelpress.errors import ConfigError
from modelpress.task import Task

__all__ = ["Ensemble", "TeacherSet", "check_output_shapes", "ensemble_probs"]


class Ensemble(StrEnum):
    """How several teachers' softened outputs are combined.

    Example:
        >>> Ensemble("confidence").value
        'confidence'
    """

    average = "average"  # fixed weights
    confidence = "confidence"  # fixed weights times each teacher's per-sample top-class probability


def ensemble_probs(teacher_logits: Sequence[Tensor], temperature: float, weights: Sequence[float] | None = None,
                   mode: Ensemble | str = Ensemble.average) -> Tensor:
    """Combined soft targets ``[B, C]`` from each teacher's logits ``[B, C]`` at temperature ``T``.

    Example:
        >>> import torch
        >>> ensemble_probs([torch.zeros(1, 2), torch.tensor([[100.0, 0.0]])], 1.0, weights=[1, 3]).tolist()
        [[0.875, 0.125]]
    """
    weights = [1.0] * len(teacher_logits) if weights is None else list(weights)
    if len(weights) != len(teacher_logits) or not teacher_logits:
        raise ConfigError("distill: teacher_weights", f"one weight per teacher ({len(teacher_logits)})",
                          f"<{len(weights)} weights>", "give as many weights as teachers, or none")
    probs = torch.stack([torch.softmax(z.detach().float() / temperature, dim=-1) for z in teacher_logits])  # [K, B, C]
    w = torch.tensor(weights, dtype=probs.dtype)[:, None]  # [K, 1]
    if Ensemble(mode) is Ensemble.confidence:
        confidence = torch.stack([torch.softmax(z.detach().float(), dim=-1).amax(dim=-1)
                                  for z in teacher_logits])  # [K, B]: top-class probability at T = 1
        w = w * confidence
    w = w / w.sum(dim=0, keepdim=True).clamp_min(1e-12)  # [K, B]: weights of each sample sum to 1
    return (w[:, :, None] * probs).sum(dim=0)  # [B, C]


def check_output_shapes(student: nn.Module, teachers: Sequence[nn.Module], task: Task) -> None:
    """Run everything on two of the task's inputs; a teacher whose output shape differs is a ConfigError.

    Example:
        >>> import torch
        >>> from modelpress.task import ClassificationTask
        >>> task = ClassificationTask("toy", torch.randn(8, 4), torch.zeros(8), torch.randn(4, 4), torch.zeros(4), 2)
        >>> check_output_shapes(torch.nn.Linear(4, 2), [torch.nn.Linear(4, 3)], task)
        Traceback (most recent call last):
        ...
        modelpress.errors.ConfigError: distill: teacher 1 output: expected the student's output shape [2, 2], got \
<[2, 3]>. Fix: distil between models with the same outputs (classes, embedding width)
    """
    inputs = task.example_inputs(2)
    with torch.no_grad():
        expected = _output(student, inputs).shape
        for index, teacher in enumerate(teachers, start=1):
            shape = _output(teacher, inputs).shape
            if shape != expected:
                raise ConfigError(f"distill: teacher {index} output", f"the student's output shape {list(expected)}",
                                  f"<{list(shape)}>", "distil between models with the same outputs (classes, "
                                  "embedding width)")


def _output(model: nn.Module, inputs: tuple[Tensor, ...]) -> Tensor:
    was_training = model.training
    model.eval()
    try:
        return model(*inputs)
    finally:
        model.train(was_training)


class TeacherSet:
    """One or more frozen teachers with fixed ``weights`` and an ensemble ``mode``.

    Example:
        >>> import torch
        >>> teachers = TeacherSet([torch.nn.Identity(), torch.nn.Identity()], weights=[1, 1])
        >>> teachers.outputs((torch.ones(1, 2),))[0].tolist()
        [[1.0, 1.0]]
    """

    def __init__(self, models: Sequence[nn.Module], weights: Sequence[float] | None = None,
                 mode: Ensemble | str = Ensemble.average) -> None:
        if not models:
            raise ConfigError("distill: teachers", "at least one teacher", "<none>", "list a teacher")
        self.models = list(models)
        self.weights = [1.0] * len(models) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(self.models):
            raise ConfigError("distill: teacher_weights", f"one weight per teacher ({len(self.models)})",
                              f"<{len(self.weights)} weights>", "give as many weights as teachers, or none")
        self.mode = Ensemble(mode)

    @torch.no_grad()
    def outputs(self, inputs: tuple[Tensor, ...]) -> list[Tensor]:
        """Each teacher's output on ``inputs`` (eval mode, no gradients; the teachers are left as they were)."""
        return [_output(model, inputs) for model in self.models]

    def soft_targets(self, outputs: Sequence[Tensor], temperature: float) -> Tensor:
        """Combined softened probabilities ``[B, C]`` of the teachers' logits ``outputs``."""
        return ensemble_probs(outputs, temperature, self.weights, self.mode)

    def mean_output(self, outputs: Sequence[Tensor]) -> Tensor:
        """Weighted average of the teachers' outputs (embeddings ``[B, D]``)."""
        total = sum(self.weights)
        return sum(w / total * o.float() for w, o in zip(self.weights, outputs, strict=True))  # type: ignore[return-value]
