"""Mutual learning with peers of different architectures (``peer_students``): both train, the first becomes the
model, ``peers: 2`` is the same as listing the student once, and inconsistent settings are rejected."""

from __future__ import annotations

import pytest
import torch

from modelpress.config import KDConfig
from modelpress.distill import DistillConfig, distill
from modelpress.distill.students import TinyMLP
from modelpress.errors import ConfigError
from modelpress.recipe import parse_recipe
from modelpress.recipe.registry import StageContext
from modelpress.task import ClassificationTask

MLP16 = {"ref": "modelpress.distill.students:TinyMLP", "kwargs": {"in_shape": [1, 8, 8], "hidden": 16}}
LENET300 = {"ref": "modelpress.zoo.models:LeNet300", "kwargs": {"in_shape": [1, 8, 8]}}
KD = KDConfig(temperature=2, alpha=0.5)


def test_peers_of_two_architectures_both_learn(digits_task: ClassificationTask) -> None:
    config = DistillConfig(student=MLP16, peer_students=[LENET300], kd=KD, train={"epochs": 3, "lr": 1e-2})
    assert config.peer_count == 2
    ctx = StageContext(task=digits_task, quiet=True, seed=3)
    first = distill(torch.nn.Identity(), config, digits_task, ctx)
    assert isinstance(first, TinyMLP) and ctx.notes["peer_students"] == ["modelpress.zoo.models:LeNet300"]
    assert digits_task.evaluate(first)["accuracy"] > 0.7  # untrained: about 0.1
    assert ctx.notes["peer_metrics"][0]["accuracy"] > 0.7  # the LeNet-300-100 peer was trained too


def test_listing_the_student_as_its_peer_equals_peers_2(digits_task: ClassificationTask) -> None:
    train = {"epochs": 1, "lr": 1e-2}
    listed = distill(torch.nn.Identity(), DistillConfig(student=MLP16, peer_students=[MLP16], kd=KD, train=train),
                     digits_task, StageContext(task=digits_task, quiet=True, seed=5))
    counted = distill(torch.nn.Identity(), DistillConfig(student=MLP16, peers=2, kd=KD, train=train), digits_task,
                      StageContext(task=digits_task, quiet=True, seed=5))
    assert all(torch.equal(a, b) for a, b in zip(listed.state_dict().values(), counted.state_dict().values(),
                                                 strict=True))


def test_peer_count_and_outputs_must_agree(digits_task: ClassificationTask) -> None:
    with pytest.raises(ConfigError) as err:
        parse_recipe({"stages": [{"type": "distill", "student": MLP16, "peers": 3, "peer_students": [LENET300],
                                  "train": {"epochs": 1}}]})
    assert ("expected peers: 2 (the student and 1 peer_students) or no peers, got peers: 3") in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_recipe({"stages": [{"type": "distill", "student": MLP16, "peer_students": [LENET300],
                                  "teachers": ["zoo:lenet5"], "train": {"epochs": 1}}]})
    assert "expected no teachers, assistants, hints or attention with peers > 1" in str(err.value)
    five = {"ref": "modelpress.distill.students:TinyMLP", "kwargs": {"in_shape": [1, 8, 8], "num_classes": 5}}
    with pytest.raises(ConfigError) as err:
        distill(torch.nn.Identity(), DistillConfig(student=MLP16, peer_students=[five], train={"epochs": 1}),
                digits_task)
    assert str(err.value) == ("distill: peer 1 output: expected the first peer's output shape [2, 10], got <[2, 5]>. "
                              "Fix: use peer_students with the same outputs (classes, embedding width) as the student")
