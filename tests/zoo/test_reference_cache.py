"""The zoo's reference-weight cache is keyed by the task's data, not only its name and sizes.

Bug fixed in session 8: two tasks with the same name and split sizes but different training digits (the pruned-KD
benchmark's validation tasks for --train-digits 250 and 1000) shared one cache entry, so the second silently got
weights trained on the first one's digits.
"""

from __future__ import annotations

import pytest
import torch

from modelpress import zoo
from modelpress.task import ClassificationTask


def test_same_name_and_sizes_but_other_digits_train_their_own_weights(
        digits_task: ClassificationTask, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPRESS_CACHE", str(tmp_path))
    x, y = digits_task.x_train, digits_task.y_train
    first = ClassificationTask("same-name", x[:600], y[:600], digits_task.x_test, digits_task.y_test, 10)
    second = ClassificationTask("same-name", x[600:1200], y[600:1200], digits_task.x_test, digits_task.y_test, 10)
    assert first.describe() == second.describe()  # what the key held before the fix
    a, b = zoo.load("lenet300", first), zoo.load("lenet300", second)
    assert len(list((tmp_path / "zoo").glob("lenet300-same-name-*.safetensors"))) == 2
    assert not torch.equal(a.fc1.weight, b.fc1.weight)
    again = zoo.load("lenet300", first)  # the first task's entry is still found and reused
    assert torch.equal(a.fc1.weight, again.fc1.weight)
    assert len(list((tmp_path / "zoo").glob("*.safetensors"))) == 2
