"""Reference tasks: the fixed MNIST-5k split, digits, and the task conventions."""

from __future__ import annotations

import pytest
import torch

from modelpress.errors import TaskError
from modelpress.task import ClassificationTask, check_model_runs
from modelpress.tasks.registry import resolve_task


def test_mnist5k_split_is_fixed_and_stratified(mnist) -> None:
    assert len(mnist.x_train) == 4000 and len(mnist.x_test) == 1000
    assert torch.bincount(mnist.y_test).tolist() == [100] * 10  # stratified: 10% of each class held out
    again = resolve_task("mnist5k")
    assert torch.equal(again.x_test, mnist.x_test)
    # no test image appears in the training split
    train_rows = {bytes(r.numpy().tobytes()) for r in mnist.x_train.flatten(1)}
    assert not any(bytes(r.numpy().tobytes()) in train_rows for r in mnist.x_test.flatten(1))


def test_digits_task_shapes(digits_task) -> None:
    assert digits_task.x_train.shape[1:] == (1, 8, 8)
    assert len(digits_task.x_train) + len(digits_task.x_test) == 1797


def test_calibration_uses_training_split_only(digits_task) -> None:
    train_rows = {bytes(r.numpy().tobytes()) for r in digits_task.x_train.flatten(1)}
    for (batch,) in digits_task.calibration_batches(num_batches=2, batch_size=16):
        assert all(bytes(r.numpy().tobytes()) in train_rows for r in batch.flatten(1))


def test_unknown_task_lists_known_ones() -> None:
    with pytest.raises(TaskError, match=r"task: expected one of digits, mnist5k, sentences, sentences-large, "
                                        r"sentences-xl or package\.module:factory, got 'mnist'"):
        resolve_task("mnist")


def test_factory_task_must_return_a_task() -> None:
    with pytest.raises(TaskError, match=r"expected a factory returning a modelpress\.Task, got <OrderedDict>"):
        resolve_task("collections:OrderedDict")


def test_model_that_fails_on_inputs_is_reported(digits_task) -> None:
    with pytest.raises(TaskError, match=r"model on task 'digits': expected a model that accepts inputs of shape "
                                        r"\[2, 1, 8, 8\], got <RuntimeError: mat1 and mat2"):
        check_model_runs(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10, 2)), digits_task)


def test_mismatched_labels_rejected() -> None:
    with pytest.raises(TaskError, match="expected as many labels as inputs"):
        ClassificationTask("t", torch.zeros(3, 2), torch.zeros(2), torch.zeros(1, 2), torch.zeros(1), 2)
