"""Zoo models: sizes, trained reference accuracy, reproducibility."""

from __future__ import annotations

import pytest
import torch

from modelpress import zoo
from modelpress.errors import ConfigError, TaskError
from modelpress.zoo.models import LeNet5, LeNet300, MobileNetSmall, ResNetSmall


def test_reference_parameter_counts() -> None:
    assert sum(p.numel() for p in LeNet5().parameters()) == 431080
    assert sum(p.numel() for p in LeNet300().parameters()) == 266610


@pytest.mark.parametrize("cls", [LeNet300, LeNet5, ResNetSmall, MobileNetSmall])
def test_forward_shapes(cls) -> None:
    assert cls()(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_lenet5_rejects_tiny_images() -> None:
    with pytest.raises(TaskError, match=r"zoo:lenet5 input: expected images of at least 16x16 pixels, got <8x8>"):
        LeNet5(in_shape=(1, 8, 8))


def test_unknown_zoo_name() -> None:
    with pytest.raises(ConfigError, match=r"zoo model: expected one of lenet300, lenet5, minilm, mobilenet-small, "
                                          r"resnet-small, got 'lenet'"):
        zoo.load("lenet")


def test_trained_lenets_reach_reference_accuracy(mnist) -> None:
    # The figures in docs/BENCHMARKS.md: reproducible because weights are trained with fixed seeds and cached.
    acc300 = mnist.evaluate(zoo.load("lenet300", mnist))["accuracy"]
    acc5 = mnist.evaluate(zoo.load("lenet5", mnist))["accuracy"]
    assert 0.93 <= acc300 <= 0.96
    assert 0.96 <= acc5 <= 0.985
    assert mnist.evaluate(zoo.load("lenet300", mnist))["accuracy"] == acc300


def test_zoo_model_on_digits_uses_task_shape(digits_task) -> None:
    model = zoo.load("lenet300", digits_task)
    assert model.fc1.in_features == 64
    assert digits_task.evaluate(model)["accuracy"] > 0.9
