"""The Task: the one bridge between modelpress and the user's world.

A task supplies example inputs (for FLOPs and latency), calibration batches (inputs only, from the training split),
training batches and a loss (for fine-tuning), and an evaluation on the held-out split returning named metrics.

Conventions every technique relies on:

* a model is called as ``model(*inputs)`` where ``inputs`` is a tuple of tensors;
* a training batch is ``(inputs, targets)``;
* calibration and training data come from the training split only; :meth:`Task.evaluate` uses the held-out split
  only (accuracy is never measured on data used to train, calibrate or search).

Example:
    >>> import torch
    >>> task = ClassificationTask("toy", torch.randn(40, 4), torch.arange(40) % 2, torch.randn(10, 4),
    ...                           torch.arange(10) % 2, num_classes=2)
    >>> model = torch.nn.Linear(4, 2)
    >>> sorted(task.evaluate(model))
    ['accuracy', 'loss']
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from modelpress.errors import TaskError

__all__ = ["Batch", "ClassificationTask", "Task", "check_model_runs"]

Batch = tuple[tuple[Tensor, ...], Tensor]


class Task(ABC):
    """Base class of tasks. Subclasses set ``name``, ``primary_metric`` and implement the abstract methods."""

    name: str = "task"
    primary_metric: str = "accuracy"
    higher_is_better: bool = True

    @abstractmethod
    def example_inputs(self, batch_size: int = 1) -> tuple[Tensor, ...]:
        """A batch of real inputs of the given size, for tracing, FLOPs and latency."""

    @abstractmethod
    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """One shuffled epoch over the training split, as ``(inputs, targets)`` batches."""

    @abstractmethod
    def num_train_examples(self) -> int:
        """How many examples one epoch of :meth:`train_batches` holds."""

    @abstractmethod
    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """The scalar training loss of a batch."""

    @abstractmethod
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Named metrics of ``model`` on the held-out split (the model is put in eval mode)."""

    def calibration_batches(self, num_batches: int = 8, batch_size: int = 64,
                            seed: int = 0) -> Iterator[tuple[Tensor, ...]]:
        """Input tuples from the training split (never the held-out one), for activation statistics."""
        generator = torch.Generator().manual_seed(seed)
        for i, (inputs, _) in enumerate(self.train_batches(batch_size, generator)):
            if i >= num_batches:
                break
            yield inputs

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary for reports."""
        return {"name": self.name, "primary_metric": self.primary_metric}


class ClassificationTask(Task):
    """Classification on in-memory tensors: cross-entropy loss, accuracy on the held-out split.

    ``x_*`` are float inputs of any shape ``[N, ...]``; ``y_*`` are int64 labels ``[N]``.
    """

    def __init__(self, name: str, x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor,
                 num_classes: int, eval_batch_size: int = 500) -> None:
        if len(x_train) != len(y_train) or len(x_test) != len(y_test):
            raise TaskError(f"task {name!r}", "as many labels as inputs",
                            f"<{len(x_train)}/{len(y_train)} train, {len(x_test)}/{len(y_test)} test>",
                            "pass matching input and label tensors")
        self.name = name
        self.x_train, self.y_train = x_train.float(), y_train.long()
        self.x_test, self.y_test = x_test.float(), y_test.long()
        self.num_classes = num_classes
        self.eval_batch_size = eval_batch_size
        self.input_shape = tuple(x_train.shape[1:])

    def example_inputs(self, batch_size: int = 1) -> tuple[Tensor, ...]:
        """The first ``batch_size`` held-out inputs, repeated if the split is smaller."""
        reps = math.ceil(batch_size / len(self.x_test))
        return (self.x_test.repeat(reps, *[1] * (self.x_test.dim() - 1))[:batch_size],)

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """One shuffled epoch over the training split."""
        order = torch.randperm(len(self.x_train), generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            yield (self.x_train[idx],), self.y_train[idx]

    def num_train_examples(self) -> int:
        """Size of the training split."""
        return len(self.x_train)

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """Cross-entropy of logits ``[B, C]`` against labels ``[B]``."""
        return nn.functional.cross_entropy(outputs.float(), targets)

    @torch.inference_mode()
    def predict_logits(self, model: nn.Module) -> Tensor:
        """Logits ``[N_test, C]`` of the model on the held-out split."""
        was_training = model.training
        model.eval()
        try:
            parts = [model(self.x_test[i:i + self.eval_batch_size]).float()
                     for i in range(0, len(self.x_test), self.eval_batch_size)]
        finally:
            model.train(was_training)
        return torch.cat(parts)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Accuracy and mean cross-entropy on the held-out split."""
        check_model_runs(model, self)
        logits = self.predict_logits(model)
        return {
            "accuracy": float((logits.argmax(1) == self.y_test).float().mean()),
            "loss": float(nn.functional.cross_entropy(logits, self.y_test)),
        }

    def describe(self) -> dict[str, Any]:
        """Name, metric, split sizes and input shape."""
        return {**super().describe(), "train": len(self.x_train), "test": len(self.x_test),
                "input_shape": list(self.input_shape), "classes": self.num_classes}


def check_model_runs(model: nn.Module, task: Task) -> None:
    """Run the model on two of the task's inputs; a failure becomes a :class:`TaskError` saying what went wrong.

    Example:
        >>> import torch
        >>> task = ClassificationTask("toy", torch.randn(8, 4), torch.zeros(8), torch.randn(4, 4), torch.zeros(4), 2)
        >>> check_model_runs(torch.nn.Linear(5, 2), task)
        Traceback (most recent call last):
        ...
        modelpress.errors.TaskError: model on task 'toy': expected a model that accepts inputs of shape [2, 4], \
got <RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x4 and 5x2)>. Fix: pick a model built for this task's \
inputs, or a task that matches the model
    """
    inputs = task.example_inputs(2)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(*inputs)
    except Exception as e:  # any failure of user code on the task's inputs is reported, not re-raised raw
        shapes = ", ".join(str(list(t.shape)) for t in inputs)
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise TaskError(f"model on task {task.name!r}", f"a model that accepts inputs of shape {shapes}",
                        f"<{type(e).__name__}: {first_line}>",
                        "pick a model built for this task's inputs, or a task that matches the model") from e
    finally:
        model.train(was_training)
