"""Wrong teachers, layer names and settings are rejected before training, each with a message saying how to fix it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modelpress.config import KDConfig
from modelpress.distill import DistillConfig, DistillObjective, FeaturePair, TeacherSet, distill, make_adapter
from modelpress.errors import ConfigError
from modelpress.recipe import parse_recipe
from modelpress.task import ClassificationTask


def _task() -> ClassificationTask:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 2, 6, 6, generator=g)
    return ClassificationTask("toy", x, torch.arange(32) % 3, x[:8], torch.arange(8) % 3, num_classes=3)


def _convnet(width: int, classes: int = 3) -> nn.Module:
    return nn.Sequential(nn.Conv2d(2, width, 3), nn.ReLU(), nn.Flatten(), nn.Linear(width * 16, classes))


def test_teacher_with_other_output_shape_is_rejected() -> None:
    with pytest.raises(ConfigError) as err:
        DistillObjective(_convnet(4), TeacherSet([_convnet(4), _convnet(8, classes=5)]), KDConfig(), _task())
    assert str(err.value) == ("distill: teacher 2 output: expected the student's output shape [2, 3], got <[2, 5]>. "
                              "Fix: distil between models with the same outputs (classes, embedding width)")


def test_unknown_feature_layer_is_rejected_with_close_names() -> None:
    with pytest.raises(ConfigError) as err:
        DistillObjective(_convnet(4), TeacherSet([_convnet(8)]), KDConfig(), _task(),
                         hints=[FeaturePair(student="0", teacher="conv2")])
    assert str(err.value) == ("distill: teacher layer: expected the name of a submodule of the teacher (e.g. 0, 1, "
                              "2), got 'conv2'. Fix: use one of the names model.named_modules() lists")
    with pytest.raises(ConfigError, match=r"^distill: student layer: expected .*got 'fc9'"):
        DistillObjective(_convnet(4), TeacherSet([_convnet(8)]), KDConfig(), _task(),
                         attention=[FeaturePair(student="fc9", teacher="0")])


def test_feature_shapes_an_adapter_cannot_bridge_are_rejected() -> None:
    with pytest.raises(ConfigError) as err:
        make_adapter([2, 4, 4, 4], [2, 8, 2, 2], "hints[0]")
    assert str(err.value) == ("hints[0]: feature shapes: expected a student feature that differs from the teacher's "
                              "[2, 8, 2, 2] in channels (dim 1 of [B, C, H, W]) or width (last dim) only, got "
                              "<[2, 4, 4, 4]>. Fix: pair layers at the same spatial resolution / sequence length")


def test_attention_maps_of_different_sizes_are_rejected() -> None:
    with pytest.raises(ConfigError) as err:
        DistillObjective(_convnet(4), TeacherSet([_convnet(8)]), KDConfig(), _task(),
                         attention=[FeaturePair(student="0", teacher="3")])
    assert str(err.value) == ("attention_map: feature: expected a CNN feature map [B, C, H, W], got <[2, 3]>. "
                              "Fix: pick a convolutional layer's output")
    wide = nn.Sequential(nn.Conv2d(2, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten(), nn.Linear(64, 3))
    with pytest.raises(ConfigError) as err:
        DistillObjective(wide, TeacherSet([_convnet(8)]), KDConfig(), _task(),
                         attention=[FeaturePair(student="0", teacher="0")])
    assert str(err.value) == ("attention_transfer_loss: features: expected the same spatial size as the teacher's "
                              "[4, 4], got <[6, 6]>. Fix: pair layers whose outputs have the same height and width")


def test_recipe_errors_are_located() -> None:
    with pytest.raises(ConfigError) as err:
        parse_recipe({"stages": [{"type": "prune", "sparsity": 0.5, "finetune": {"distill": {"alpha": 2}}}]})
    assert "stages[0].finetune.distill.alpha: expected a number in [0, 1], got 2" in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_recipe({"stages": [{"type": "distill", "student": "zoo:lenet300", "teachers": ["current", "zoo:lenet5"],
                                  "teacher_weights": [1.0], "train": {"epochs": 1}}]})
    assert "expected one teacher weight per teacher (2), got 1" in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_recipe({"stages": [{"type": "distill", "student": "not a ref", "train": {"epochs": 1}}]})
    assert "stages[0].student.ref: expected one of" in str(err.value)


def test_mutual_learning_takes_no_teacher() -> None:
    with pytest.raises(ConfigError) as err:
        parse_recipe({"stages": [{"type": "distill", "student": "zoo:lenet300", "peers": 2, "teachers": ["zoo:lenet5"],
                                  "train": {"epochs": 1}}]})
    assert "expected no teachers, assistants, hints or attention with peers > 1" in str(err.value)


def test_freeze_pattern_must_match_a_parameter(digits_task: ClassificationTask) -> None:
    config = DistillConfig(student={"ref": "modelpress.distill.students:TinyMLP", "kwargs": {"in_shape": [1, 8, 8]}},
                           freeze=["embeddings.*"], train={"epochs": 0.05})
    with pytest.raises(ConfigError) as err:
        distill(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), config, digits_task)
    assert str(err.value) == ("distill: freeze: expected a pattern matching parameters of the student (e.g. "
                              "fc1.weight), got 'embeddings.*'. Fix: use a name, glob or re: pattern from "
                              "named_parameters()")
