"""Callback protocol of the fine-tuning loop.

The loop calls, in order: ``on_train_begin``; per step ``on_step_begin`` → forward/loss/backward →
``after_backward`` (gradients exist: mask them here) → optimizer step → ``on_step`` (re-apply masks, update
schedules here); ``on_epoch_end`` after each pass; ``on_train_end``. A callback overrides only what it needs.

Example:
    >>> class CountSteps(Callback):
    ...     def __init__(self) -> None:
    ...         self.steps = 0
    ...     def on_step(self, state: TrainState) -> None:
    ...         self.steps += 1
    >>> CountSteps().steps
    0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import torch
    from torch import nn

    from modelpress.config import FinetuneConfig
    from modelpress.task import Task

__all__ = ["Callback", "TrainState", "find_or_add"]


@dataclass
class TrainState:
    """What a callback sees: the model, optimizer, progress counters and the last loss."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    task: Task
    config: FinetuneConfig
    total_steps: int
    steps_per_epoch: int
    step: int = 0  # optimizer steps taken so far
    epoch: int = 0  # completed passes
    loss: float = float("nan")
    logs: dict[str, Any] = field(default_factory=dict)  # per-epoch figures callbacks may add

    @property
    def progress(self) -> float:
        """Fraction of the run done, in [0, 1]."""
        return self.step / self.total_steps if self.total_steps else 1.0


class Callback:
    """Base class with no-op hooks."""

    def on_train_begin(self, state: TrainState) -> None:
        """Before the first step."""

    def on_step_begin(self, state: TrainState) -> None:
        """Before a batch's forward pass."""

    def after_backward(self, state: TrainState) -> None:
        """Gradients are computed, the optimizer has not stepped yet."""

    def on_step(self, state: TrainState) -> None:
        """After the optimizer step."""

    def on_epoch_end(self, state: TrainState) -> None:
        """After each full pass over the training data."""

    def on_train_end(self, state: TrainState) -> None:
        """After the last step."""


C = TypeVar("C", bound=Callback)


def find_or_add(callbacks: list[Callback], kind: type[C]) -> C:
    """The callback of type ``kind`` in ``callbacks`` (a stage context's persistent list), appended if there is
    none: one mask keeper, one centroid trainer, … per run, shared by every stage that needs it.

    Example:
        >>> callbacks: list[Callback] = []
        >>> find_or_add(callbacks, Callback) is find_or_add(callbacks, Callback), len(callbacks)
        (True, 1)
    """
    for callback in callbacks:
        if isinstance(callback, kind):
            return callback
    found = kind()
    callbacks.append(found)
    return found
