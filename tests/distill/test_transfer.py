"""Transfer sets: perturbed training batches are seeded (both arms of a comparison see the same stream), keep shapes,
special tokens and labels, never touch evaluation, and a perturbation of the wrong kind is rejected clearly."""

from __future__ import annotations

import pytest
import torch

from modelpress.distill import AugmentConfig, DistillConfig, TransferTask, augment_images, augment_tokens, distill
from modelpress.errors import ConfigError
from modelpress.task import ClassificationTask

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
