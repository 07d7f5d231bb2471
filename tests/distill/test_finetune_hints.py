"""Hidden-state hints in a stage's fine-tuning (``finetune: {distill: ..., hints: [...]}``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modelpress.config import FeaturePair, FinetuneConfig, KDConfig
from modelpress.distill.objective import DistillObjective, finetune_objective
from modelpress.errors import ConfigError
from modelpress.recipe.registry import StageContext
from modelpress.recipe.run import run_stage
from modelpress.structured.config import PruneChannelsConfig
from modelpress.task import ClassificationTask


def _task() -> ClassificationTask:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 8, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return ClassificationTask("toy", x, y, x[:32], y[:32], num_classes=2)


def _mlp(width: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, 16), nn.ReLU(), nn.Linear(16, 2))


def test_hints_without_distill_are_rejected() -> None:
    with pytest.raises(ValueError, match="expected a distill section with hints"):
        FinetuneConfig(hints=[{"student": "2", "teacher": "2"}])


def test_hints_are_left_out_of_dicts_when_off() -> None:
    # the zoo's weight-cache keys are built from these dicts: a config without hints keeps its old key
    assert "hints" not in FinetuneConfig(distill={}).to_dict()
    assert FinetuneConfig(distill={}, hints=[{"student": "2", "teacher": "2"}]).to_dict()["hints"] == [
        {"student": "2", "teacher": "2", "weight": 1.0}]


def test_hint_adds_the_feature_mse_of_equal_width_layers() -> None:
    task = _task()
    student, teacher = _mlp(32, 0), _mlp(32, 1)
    config = FinetuneConfig(distill=KDConfig(loss="mse", alpha=1.0), hints=[FeaturePair(student="2", teacher="2")])
    objective = finetune_objective(config, teacher, student, task)
    assert isinstance(objective, DistillObjective)
    x, y = task.x_train[:16], task.y_train[:16]
    with torch.no_grad():
        loss = objective(student, (x,), y)
        # by hand: MSE of the outputs + MSE of the outputs of layer "2" (Linear(32, 16)), same width, no adapter
        # by hand: MSE of the outputs + MSE of layer "2"'s outputs (Linear(32, 16): same width, no adapter)
        expected = nn.functional.mse_loss(student(x), teacher(x)) + nn.functional.mse_loss(student[:3](x),
                                                                                           teacher[:3](x))
    assert torch.allclose(loss, expected, atol=1e-6)
    objective.remove_hooks()


def test_hint_between_layers_of_different_width_is_rejected_and_leaves_no_hooks() -> None:
    task = _task()
    student, teacher = _mlp(16, 0), _mlp(32, 1)
    config = FinetuneConfig(distill={}, hints=[FeaturePair(student="0", teacher="0")])
    with pytest.raises(ConfigError, match=r"finetune.hints\[0\].*as wide as the teacher's '0'.*Linear\(in_features=16"):
        finetune_objective(config, teacher, student, task)
    assert not student[0]._forward_hooks and not teacher[0]._forward_hooks


def test_stage_finetune_with_hints_trains_and_removes_its_hooks() -> None:
    task = _task()
    teacher = _mlp(32, 0).eval()
    finetune = {"epochs": 5, "lr": 1e-2, "batch_size": 32, "distill": {"loss": "mse", "alpha": 1.0},
                "hints": [{"student": "2", "teacher": "2"}]}
    pruned_only = run_stage(_mlp(32, 0), PruneChannelsConfig(ratio=0.5, exclude=["2"]),
                            StageContext(task=task, quiet=True))
    pruned = run_stage(_mlp(32, 0), PruneChannelsConfig(ratio=0.5, exclude=["2"], finetune=finetune),
                       StageContext(task=task, teacher=teacher, quiet=True))
    assert pruned[0].out_features == pruned_only[0].out_features < 32  # layer "2" keeps its 16 outputs
    with torch.no_grad():
        x = task.x_test
        hidden = [nn.functional.mse_loss(m[:3](x), teacher[:3](x)).item() for m in (pruned_only, pruned)]
    assert hidden[1] < 0.5 * hidden[0]  # the hint pulled layer "2"'s outputs towards the teacher's
    assert all(not m._forward_hooks for m in list(pruned.modules()) + list(teacher.modules()))
