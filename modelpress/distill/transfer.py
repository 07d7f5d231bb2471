"""Transfer sets: the training data, randomly perturbed on every pass, for the teacher to label.

A teacher that fits its training data almost perfectly gives near one-hot outputs on exactly that data, so distilling
on it teaches little beyond the labels. On perturbed copies (digits shifted and rotated; sentences cropped and with
some tokens masked) the teacher's outputs are informative again. :class:`TransferTask` wraps a task so that its
training batches are perturbed; everything else (evaluation, loss, example inputs) is the wrapped task's. The
perturbations are drawn from the training loop's seeded generator after the batch order, so two runs with the same
seed see exactly the same stream: the label-only arm of a comparison trains on the same perturbed data.

With ``mixup`` (images only) each perturbed image is also blended with another of its batch and its label becomes
the same blend of one-hot rows (soft targets): the label arm learns the blend, the teacher labels the blended image
("function matching", Beyer et al. 2022).

In a recipe: ``augment: {kind: affine, shift: 2, degrees: 12}`` (images ``[B, C, H, W]``) or
``augment: {kind: tokens, crop: 0.5, mask: 0.1}`` (``(input_ids, attention_mask)`` token batches) on a ``distill``
stage or in any stage's ``finetune`` section with ``distill``; the held-out evaluation never sees perturbed data.

Example:
    >>> import torch
    >>> from modelpress.task import ClassificationTask
    >>> x = torch.randn(8, 1, 6, 6); task = ClassificationTask("toy", x, torch.zeros(8).long(), x, torch.zeros(8), 2)
    >>> wrapped = TransferTask(task, AugmentConfig(kind="affine", shift=1, degrees=10))
    >>> (inputs,), targets = next(wrapped.train_batches(8, torch.Generator().manual_seed(0)))
    >>> inputs.shape, bool(torch.equal(inputs, x))
    (torch.Size([8, 1, 6, 6]), False)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from modelpress.config import AugmentConfig
from modelpress.errors import ConfigError
from modelpress.task import Batch, Task

__all__ = ["AugmentConfig", "TransferTask", "augment_images", "augment_tokens", "mixup_batch"]


def _uniform(n: int, limit: float, generator: torch.Generator) -> Tensor:
    return (torch.rand(n, generator=generator) * 2 - 1) * limit  # [n] in [-limit, limit]


def augment_images(x: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """Randomly shifted, rotated and zoomed copies of images ``[B, C, H, W]`` (bilinear, zero padding).

    Zero padding is the standardized background of the caller's data only if it was zero; MNIST-5k's background is
    ``-mean/std``, so the border is filled with each image's minimum (its background) instead.

    Example:
        >>> x = torch.zeros(2, 1, 5, 5); x[:, :, 2, 2] = 1
        >>> augment_images(x, AugmentConfig(kind="affine", shift=0, degrees=0, scale=0), torch.Generator()).equal(x)
        True
    """
    b, _, h, w = x.shape
    angle = _uniform(b, math.radians(config.degrees), generator)  # [B]
    zoom = 1 + _uniform(b, config.scale, generator)  # [B]
    tx, ty = _uniform(b, 2 * config.shift / w, generator), _uniform(b, 2 * config.shift / h, generator)  # [B]
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # [B, 2, 3]
    keep = torch.rand(b, generator=generator) >= config.probability  # [B] examples left as they are
    background = x.amin(dim=(1, 2, 3), keepdim=True)  # [B, 1, 1, 1]
    grid = nn.functional.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    moved = nn.functional.grid_sample(x - background, grid, align_corners=False) + background
    return torch.where(keep[:, None, None, None], x, moved)


def mixup_batch(x: Tensor, labels: Tensor, num_classes: int, concentration: float,
                generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Mixup: images ``[B, ...]`` blended pairwise, ``lam x + (1 - lam) x[perm]``, with ``lam ~ Beta(c, c)`` per
    example, and labels ``[B]`` turned into the same blend of one-hot rows, soft targets ``[B, num_classes]``.

    The permutation and the Beta draws come from ``generator`` (the Beta through a seed drawn from it: torch's
    Beta sampler takes no generator), so a seeded stream is the same in both arms of a comparison.

    Example:
        >>> x = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)]); y = torch.tensor([0, 1])
        >>> mixed, soft = mixup_batch(x, y, 2, 1.0, torch.Generator().manual_seed(0))
        >>> torch.allclose(mixed[:, 0, 0, 0], soft[:, 1]), torch.allclose(soft.sum(1), torch.ones(2))
        (True, True)
    """
    b = x.shape[0]
    perm = torch.randperm(b, generator=generator)  # [B] each example's partner
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    lam = torch.from_numpy(np.random.default_rng(seed).beta(concentration, concentration, size=b)).to(x.dtype)  # [B]
    weight = lam.view(b, *([1] * (x.dim() - 1)))  # [B, 1, ...] broadcast over the image
    one_hot = nn.functional.one_hot(labels.long(), num_classes).to(x.dtype)  # [B, C]
    soft = lam[:, None] * one_hot + (1 - lam[:, None]) * one_hot[perm]  # [B, C], rows sum to 1
    return weight * x + (1 - weight) * x[perm], soft


def augment_tokens(input_ids: Tensor, attention_mask: Tensor, config: AugmentConfig, generator: torch.Generator,
                   pad_id: int = 0) -> tuple[Tensor, Tensor]:
    """Random contiguous spans of padded sentences ``[B, L]`` (``[CLS]``/``[SEP]`` kept), some tokens masked.

    Example:
        >>> ids = torch.tensor([[101, 5, 6, 7, 8, 102]]); mask = torch.ones_like(ids)
        >>> new_ids, new_mask = augment_tokens(ids, mask, AugmentConfig(kind="tokens", crop=1, mask=0),
        ...                                    torch.Generator())
        >>> new_ids.tolist(), new_mask.tolist()
        ([[101, 5, 6, 7, 8, 102]], [[1, 1, 1, 1, 1, 1]])
    """
    rows: list[Tensor] = []
    lengths = attention_mask.sum(1).tolist()
    draws = torch.rand(len(lengths), 3, generator=generator)  # [B, 3]: perturb?, span length, span start
    for i, n in enumerate(int(v) for v in lengths):
        body = input_ids[i, 1:n - 1]  # without [CLS] and [SEP]
        if draws[i, 0] < config.probability and len(body) > 1:
            shortest = max(1, math.ceil(config.crop * len(body)))
            size = shortest + int(draws[i, 1] * (len(body) - shortest + 1))
            start = int(draws[i, 2] * (len(body) - size + 1))
            body = body[start:start + size].clone()
            masked = torch.rand(len(body), generator=generator) < config.mask
            body[masked] = config.mask_id
        rows.append(torch.cat([input_ids[i, :1], body, input_ids[i, n - 1:n]]))
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=input_ids.dtype)
    mask = torch.zeros((len(rows), width), dtype=attention_mask.dtype)
    for i, row in enumerate(rows):
        ids[i, :len(row)], mask[i, :len(row)] = row, 1
    return ids, mask


class TransferTask(Task):
    """``task`` with perturbed training batches (module docstring); evaluation and everything else unchanged.

    Example:
        >>> from modelpress.tasks.mnist import digits
        >>> TransferTask(digits(), AugmentConfig(kind="affine")).num_train_examples()
        1347
    """

    def __init__(self, task: Task, config: AugmentConfig, where: str = "distill: augment") -> None:
        self.task, self.config, self.where = task, config, where  # where: the recipe field named in errors
        self.name, self.primary_metric = task.name, task.primary_metric
        self.higher_is_better = getattr(task, "higher_is_better", True)

    def __getattr__(self, name: str) -> Any:  # attributes of the wrapped task (num_classes, input_shape, ...)
        if name in ("task", "config", "where"):
            raise AttributeError(name)
        return getattr(self.task, name)

    def example_inputs(self, batch_size: int = 1) -> tuple[Tensor, ...]:
        """The wrapped task's example inputs (unperturbed)."""
        return self.task.example_inputs(batch_size)

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """The wrapped task's shuffled epoch, each batch perturbed with draws from ``generator``."""
        for inputs, targets in self.task.train_batches(batch_size, generator):
            if self.config.kind == "affine":
                if len(inputs) != 1 or inputs[0].dim() != 4:
                    raise ConfigError(f"{self.where}.kind", "image batches [B, C, H, W] for affine",
                                      f"<{len(inputs)} inputs of {inputs[0].dim()} dims>", "use kind: tokens")
                images = augment_images(inputs[0], self.config, generator)
                if self.config.mixup > 0:
                    num_classes = getattr(self.task, "num_classes", None)
                    if num_classes is None or targets.dim() != 1 or targets.is_floating_point():
                        raise ConfigError(f"{self.where}.mixup", "a classification task with class-index labels",
                                          f"<{type(self.task).__name__}, targets {list(targets.shape)}>",
                                          "set mixup: 0 for this task")
                    images, targets = mixup_batch(images, targets, int(num_classes), self.config.mixup, generator)
                yield (images,), targets
            else:
                if len(inputs) != 2 or inputs[0].dim() != 2:
                    raise ConfigError(f"{self.where}.kind", "(input_ids, attention_mask) batches for tokens",
                                      f"<{len(inputs)} inputs>", "use kind: affine for images")
                if self.config.mixup > 0:
                    raise ConfigError(f"{self.where}.mixup", "0 for token batches (mixup blends images)",
                                      self.config.mixup, "remove mixup, or use kind: affine on an image task")
                yield augment_tokens(inputs[0], inputs[1], self.config, generator,
                                     getattr(self.task, "pad_id", 0)), targets

    def num_train_examples(self) -> int:
        """The wrapped task's training-set size."""
        return self.task.num_train_examples()

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """The wrapped task's loss."""
        return self.task.loss(outputs, targets)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """The wrapped task's held-out evaluation (never perturbed)."""
        return self.task.evaluate(model)
