"""The fine-tuning loop: seeded, with callbacks, a learning-rate schedule and a progress bar on stderr.

Example:
    >>> import torch
    >>> from modelpress.config import FinetuneConfig
    >>> from modelpress.task import ClassificationTask
    >>> x = torch.randn(64, 4); y = (x[:, 0] > 0).long()
    >>> task = ClassificationTask("toy", x, y, x, y, num_classes=2)
    >>> model = torch.nn.Linear(4, 2)
    >>> state = fit(model, task, FinetuneConfig(epochs=20, lr=0.05, batch_size=16), quiet=True)
    >>> task.evaluate(model)["accuracy"] > 0.9
    True
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from modelpress.config import FinetuneConfig
from modelpress.progress import progress_bar
from modelpress.task import Task
from modelpress.train.callbacks import Callback, TrainState

__all__ = ["Objective", "fit", "make_optimizer", "seed_everything"]

# An objective replaces the task's loss (distillation): (model, inputs, targets) -> scalar loss.
Objective = Callable[[nn.Module, tuple[Tensor, ...], Tensor], Tensor]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch Generator seeded the same for data order.

    Example:
        >>> int(seed_everything(0).initial_seed())
        0
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def make_optimizer(params: Sequence[nn.Parameter], config: FinetuneConfig) -> torch.optim.Optimizer:
    """The optimizer a FinetuneConfig names.

    Example:
        >>> type(make_optimizer([torch.nn.Parameter(torch.zeros(1))], FinetuneConfig(optimizer="sgd"))).__name__
        'SGD'
    """
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def fit(model: nn.Module, task: Task, config: FinetuneConfig, callbacks: Sequence[Callback] = (),
        objective: Objective | None = None, seed: int = 0, quiet: bool = False,
        description: str = "fine-tune") -> TrainState:
    """Train ``model`` in place on ``task``'s training split for ``config.epochs`` passes.

    Fractional epochs stop part-way through the last pass. Only parameters with ``requires_grad`` are optimized.
    Returns the final :class:`TrainState` (its ``logs`` hold the per-epoch mean loss).
    """
    generator = seed_everything(seed)
    steps_per_epoch = math.ceil(task.num_train_examples() / config.batch_size)
    total_steps = max(1, round(config.epochs * steps_per_epoch))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, config)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
                 if config.schedule == "cosine" else None)
    state = TrainState(model=model, optimizer=optimizer, task=task, config=config,
                       total_steps=total_steps, steps_per_epoch=steps_per_epoch)
    loss_fn = objective or (lambda m, inputs, targets: task.loss(m(*inputs), targets))
    model.train()
    for cb in callbacks:
        cb.on_train_begin(state)
    with progress_bar(description, total=total_steps, quiet=quiet) as advance:
        while state.step < total_steps:
            epoch_losses: list[float] = []
            for inputs, targets in task.train_batches(config.batch_size, generator):
                for cb in callbacks:
                    cb.on_step_begin(state)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model, inputs, targets)
                loss.backward()
                for cb in callbacks:
                    cb.after_backward(state)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                state.step += 1
                state.loss = float(loss.detach())
                epoch_losses.append(state.loss)
                for cb in callbacks:
                    cb.on_step(state)
                advance(1, loss=state.loss)
                if state.step >= total_steps:
                    break
            state.epoch += 1
            state.logs.setdefault("epoch_loss", []).append(float(np.mean(epoch_losses)) if epoch_losses else None)
            for cb in callbacks:
                cb.on_epoch_end(state)
    for cb in callbacks:
        cb.on_train_end(state)
    model.eval()
    return state
