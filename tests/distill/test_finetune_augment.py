"""Perturbed training batches in a stage's fine-tuning (``finetune: {distill: ..., augment: {...}}``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modelpress.config import FinetuneConfig
from modelpress.errors import ConfigError
from modelpress.recipe.registry import StageContext
from modelpress.recipe.run import run_stage
from modelpress.structured.config import PruneChannelsConfig
from modelpress.task import ClassificationTask


def _images() -> ClassificationTask:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 8, 8, generator=g)  # [N, C, H, W]
    y = (x.mean(dim=(1, 2, 3)) > 0.5).long()
    return ClassificationTask("toy-images", x, y, x[:16], y[:16], num_classes=2)


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2))


def _training_inputs(finetune: dict) -> list[torch.Tensor]:
    """The batches the model's first layer saw while fine-tuning after a prune-channels stage."""
    task, model, seen = _images(), _mlp(), []
    teacher = _mlp().eval()
    model[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()) if _m.training else None)
    run_stage(model, PruneChannelsConfig(ratio=0.25, finetune=finetune),
              StageContext(task=task, teacher=teacher, quiet=True))
    return seen


def test_augment_without_distill_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected a distill section with augment"):
        FinetuneConfig(augment={"kind": "affine"})


def test_augment_is_left_out_of_dicts_when_off() -> None:
    assert "augment" not in FinetuneConfig(distill={}).to_dict()
    assert FinetuneConfig(distill={}, augment={"kind": "affine"}).to_dict()["augment"]["kind"] == "affine"


def test_finetune_trains_on_perturbed_batches_only_with_augment() -> None:
    train = _images().x_train
    base = {"epochs": 1, "lr": 1e-3, "batch_size": 16, "distill": {"loss": "mse", "alpha": 1.0}}

    def is_training_image(row: torch.Tensor) -> bool:
        return bool((train == row).flatten(1).all(dim=1).any())

    plain = [row for batch in _training_inputs(base) for row in batch]
    perturbed = [row for batch in _training_inputs({**base, "augment": {"kind": "affine"}}) for row in batch]
    assert len(plain) == len(perturbed) == 64  # one epoch of 64 examples either way
    assert all(is_training_image(row) for row in plain)
    assert not any(is_training_image(row) for row in perturbed)  # shift, rotation and zoom move every digit


def test_augment_of_the_wrong_kind_names_the_finetune_field() -> None:
    finetune = {"epochs": 1, "batch_size": 16, "distill": {}, "augment": {"kind": "tokens"}}
    with pytest.raises(ConfigError, match=r"prune-channels: finetune\.augment\.kind: expected \(input_ids"):
        _training_inputs(finetune)
