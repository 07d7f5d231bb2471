"""Transfer sets: perturbed training batches are seeded (both arms of a comparison see the same stream), keep shapes,
special tokens and labels, never touch evaluation, and a perturbation of the wrong kind is rejected clearly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from modelpress.distill import AugmentConfig, DistillConfig, TransferTask, augment_images, augment_tokens, distill
from modelpress.errors import ConfigError
from modelpress.task import Batch, ClassificationTask, Task

AFFINE = AugmentConfig(kind="affine", shift=2, degrees=12, scale=0.1)


def _images() -> ClassificationTask:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 1, 8, 8, generator=g)
    return ClassificationTask("toy", x, torch.arange(16) % 2, x[:4], torch.arange(4) % 2, num_classes=2)


def test_same_seed_same_stream_and_labels_unchanged() -> None:
    task = TransferTask(_images(), AFFINE)
    first = list(task.train_batches(8, torch.Generator().manual_seed(3)))
    second = list(task.train_batches(8, torch.Generator().manual_seed(3)))
    other = list(task.train_batches(8, torch.Generator().manual_seed(4)))
    assert all(torch.equal(a[0][0], b[0][0]) and torch.equal(a[1], b[1]) for a, b in zip(first, second, strict=True))
    assert not torch.equal(first[0][0][0], other[0][0][0])
    plain = list(_images().train_batches(8, torch.Generator().manual_seed(3)))  # same order, unperturbed
    assert all(torch.equal(a[1], b[1]) for a, b in zip(first, plain, strict=True))
    assert not torch.equal(first[0][0][0], plain[0][0][0])


def test_no_perturbation_is_identity_and_border_is_background() -> None:
    x = torch.full((1, 1, 6, 6), -0.5)
    x[0, 0, 2, 2] = 3.0
    config = AugmentConfig(kind="affine", shift=0, degrees=0, scale=0)
    assert torch.equal(augment_images(x, config, torch.Generator()), x)
    out = augment_images(x.repeat(50, 1, 1, 1), AFFINE, torch.Generator().manual_seed(0))
    assert out.shape == (50, 1, 6, 6) and float(out.min()) >= -0.5 - 1e-6  # background stays the background


def test_tokens_keep_special_tokens_and_spans() -> None:
    ids = torch.tensor([[101, 11, 12, 13, 14, 15, 16, 17, 102], [101, 21, 22, 102, 0, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    config = AugmentConfig(kind="tokens", crop=0.5, mask=0.0)
    for seed in range(20):
        new_ids, new_mask = augment_tokens(ids, mask, config, torch.Generator().manual_seed(seed))
        for row, row_mask, source in zip(new_ids.tolist(), new_mask.tolist(), ids.tolist(), strict=True):
            n = sum(row_mask)
            body, src = row[1:n - 1], [t for t in source[1:] if t not in (0, 102)]
            assert row[0] == 101 and row[n - 1] == 102 and all(t == 0 for t in row[n:])
            assert len(body) >= (len(src) + 1) // 2
            assert any(src[i:i + len(body)] == body for i in range(len(src)))  # a contiguous span
    masked, _ = augment_tokens(ids, mask, AugmentConfig(kind="tokens", crop=1.0, mask=0.99),
                               torch.Generator().manual_seed(0))
    assert (masked[0, 1:8] == 103).sum() >= 5 and masked[0, 0] == 101 and masked[0, 8] == 102


def test_wrong_kind_is_rejected_and_evaluation_is_untouched() -> None:
    task = TransferTask(_images(), AugmentConfig(kind="tokens"))
    with pytest.raises(ConfigError) as err:
        next(task.train_batches(8, torch.Generator()))
    assert str(err.value) == ("distill: augment.kind: expected (input_ids, attention_mask) batches for tokens, got "
                              "<1 inputs>. Fix: use kind: affine for images")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    assert task.evaluate(model) == _images().evaluate(model)


def test_distill_stage_trains_on_the_transfer_set() -> None:
    task = _images()
    student = {"ref": "modelpress.distill.students:TinyMLP",
               "kwargs": {"in_shape": [1, 8, 8], "num_classes": 2, "hidden": 8}}
    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    config = DistillConfig(student=student, augment={"kind": "affine"}, train={"epochs": 1, "batch_size": 8})
    plain = DistillConfig(student=student, train={"epochs": 1, "batch_size": 8})
    a, b = distill(teacher, config, task), distill(teacher, plain, task)
    assert not torch.equal(a.fc1.weight, b.fc1.weight)  # the perturbed stream changed what it learned


# ----------------------------------------------------------------------------------------------------- mixup

MIXUP = AugmentConfig(kind="affine", shift=0, degrees=0, scale=0, mixup=1.0)


def test_mixup_blends_images_and_labels_alike() -> None:
    # each class is a constant image (class 0: 0, class 1: 1), so a blend's pixel value is its class-1 weight
    y = torch.arange(16) % 2
    x = y.float().view(16, 1, 1, 1).expand(16, 1, 4, 4).clone()
    task = ClassificationTask("const", x, y, x[:4], y[:4], num_classes=2)
    (mixed,), soft = next(TransferTask(task, MIXUP).train_batches(16, torch.Generator().manual_seed(0)))
    assert soft.shape == (16, 2) and soft.dtype == torch.float32
    assert torch.allclose(soft.sum(1), torch.ones(16))
    assert torch.allclose(mixed[:, 0, 0, 0], soft[:, 1], atol=1e-6)
    assert torch.allclose(mixed, mixed[:, :, :1, :1].expand_as(mixed))  # each blend is still a constant image
    assert int(((soft[:, 1] > 0.01) & (soft[:, 1] < 0.99)).sum()) > 0  # real blends, not just copies


def test_mixup_stream_is_seeded_and_trains_with_soft_targets() -> None:
    task = TransferTask(_images(), AugmentConfig(kind="affine", mixup=0.2))
    first = list(task.train_batches(8, torch.Generator().manual_seed(3)))
    second = list(task.train_batches(8, torch.Generator().manual_seed(3)))
    assert all(torch.equal(a[0][0], b[0][0]) and torch.equal(a[1], b[1]) for a, b in zip(first, second, strict=True))
    logits = torch.tensor([[2.0, 0.0]])
    soft = torch.tensor([[0.25, 0.75]])
    expected = -(0.25 * torch.log_softmax(logits, 1)[0, 0] + 0.75 * torch.log_softmax(logits, 1)[0, 1])
    assert torch.allclose(task.loss(logits, soft), expected)  # cross-entropy against the blended label


class _Embeddings(Task):
    """Image inputs with embedding targets [B, 3] (no classes): mixup has no labels to blend."""

    name, primary_metric = "embeddings", "loss"

    def example_inputs(self, batch_size: int = 1) -> tuple[torch.Tensor, ...]:
        return (torch.zeros(batch_size, 1, 4, 4),)

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        yield (torch.zeros(batch_size, 1, 4, 4),), torch.zeros(batch_size, 3)

    def num_train_examples(self) -> int:
        return 4

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs - targets).pow(2).mean()

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        return {}


def test_mixup_is_rejected_where_it_cannot_apply() -> None:
    with pytest.raises(ConfigError) as err:
        next(TransferTask(_Embeddings(), MIXUP).train_batches(4, torch.Generator()))
    assert str(err.value) == ("distill: augment.mixup: expected a classification task with class-index labels, got "
                              "<_Embeddings, targets [4, 3]>. Fix: set mixup: 0 for this task")
    ids = torch.tensor([[101, 5, 6, 102]])
    tokens = ClassificationTask("tokens", ids, torch.zeros(1), ids, torch.zeros(1), num_classes=2)
    tokens.train_batches = lambda b, g: iter([((ids, torch.ones_like(ids)), torch.zeros(1))])  # type: ignore[method-assign]
    with pytest.raises(ConfigError, match=r"augment\.mixup: expected 0 for token batches \(mixup blends images\), "
                                          r"got 0\.5"):
        next(TransferTask(tokens, AugmentConfig(kind="tokens", mixup=0.5)).train_batches(1, torch.Generator()))
