"""Feature hooks of a distillation objective never outlive training: not after a stage's fine-tuning, not after the
distill stage, not when the objective is rejected while being built; a removed objective attaches them again."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from modelpress.config import FinetuneConfig, KDConfig
from modelpress.distill import DistillConfig, DistillObjective, FeaturePair, StudentWithAdapters, TeacherSet, distill
from modelpress.errors import ConfigError
from modelpress.recipe import parse_recipe, run_stage
from modelpress.recipe.registry import StageContext
from modelpress.task import ClassificationTask
from modelpress.train import fit
from modelpress.zoo import load


def _hooked(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if module._forward_hooks]


def test_finetuning_with_a_hint_objective_leaves_no_hooks(digits_task: ClassificationTask) -> None:
    model = load("lenet300", digits_task)
    teacher = copy.deepcopy(model).eval()
    config = parse_recipe({"stages": [{"type": "prune", "sparsity": 0.5, "finetune": {"epochs": 0.2}}]}).stages[0]
    objective = DistillObjective(model, TeacherSet([teacher]), KDConfig(), digits_task,
                                 hints=[FeaturePair(student="fc2", teacher="fc2")])
    assert _hooked(model) == ["fc2"] and _hooked(teacher) == ["fc2"]  # the taps exist while training
    before = objective.adapters  # identity adapter (same widths): nothing to train but the model
    ctx = StageContext(task=digits_task, quiet=True, teacher=teacher, objective=objective)
    pruned = run_stage(model, config, ctx)
    assert _hooked(pruned) == [] and _hooked(teacher) == []
    assert objective.adapters is before


def test_distill_stage_with_hints_leaves_no_hooks_on_teacher_or_student(digits_task: ClassificationTask) -> None:
    teacher = load("lenet300", digits_task)
    config = DistillConfig(student={"ref": "modelpress.distill.students:TinyMLP",
                                    "kwargs": {"in_shape": [1, 8, 8], "hidden": 16}},
                           hints=[{"student": "fc1", "teacher": "fc2"}], attention=(), train={"epochs": 0.2})
    student = distill(teacher, config, digits_task, StageContext(task=digits_task, quiet=True))
    assert _hooked(student) == [] and _hooked(teacher) == []


def test_a_rejected_objective_leaves_no_hooks() -> None:
    x = torch.randn(8, 2, 6, 6)
    task = ClassificationTask("toy", x, torch.arange(8) % 3, x, torch.arange(8) % 3, num_classes=3)
    student = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    teacher = nn.Sequential(nn.Conv2d(2, 8, 1), nn.ReLU(), nn.Flatten(), nn.Linear(288, 3))
    with pytest.raises(ConfigError, match="teacher layer"):  # the student's tap is made before the teacher's fails
        DistillObjective(student, TeacherSet([teacher]), KDConfig(), task, hints=[FeaturePair(student="0",
                                                                                              teacher="conv9")])
    assert _hooked(student) == [] and _hooked(teacher) == []
    with pytest.raises(ConfigError, match="feature shapes"):  # both taps exist when the probe pass fails
        DistillObjective(student, TeacherSet([teacher]), KDConfig(), task, hints=[FeaturePair(student="0",
                                                                                              teacher="0")])
    assert _hooked(student) == [] and _hooked(teacher) == []


def test_removed_hooks_are_attached_again_by_the_next_call(digits_task: ClassificationTask) -> None:
    teacher = load("lenet300", digits_task)
    student = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    objective = DistillObjective(student, TeacherSet([teacher]), KDConfig(), digits_task,
                                 hints=[FeaturePair(student="1", teacher="fc2")])
    x, y = digits_task.x_train, digits_task.y_train
    expected = float(objective(student, (x[:16],), y[:16]))
    float(objective(student, (x[16:32],), y[16:32]))  # the taps now hold features of other digits
    objective.remove_hooks()
    assert _hooked(student) == [] and _hooked(teacher) == []
    assert float(objective(student, (x[:16],), y[:16])) == pytest.approx(expected)  # fresh features, not stale ones
    adapter = objective.adapters[0].weight.detach().clone()
    fit(StudentWithAdapters(student, objective.adapters), digits_task, FinetuneConfig(epochs=0.1), objective=objective,
        quiet=True)
    objective.remove_hooks()
    assert not torch.equal(adapter, objective.adapters[0].weight) and _hooked(teacher) == []
