"""Trained centroids: after clustering and fine-tuning, every clustered layer still has at most 2^bits distinct
nonzero values, pruned zeros stay zero, assignments are fixed, and the centroids move by their summed gradients."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from modelpress.config import FinetuneConfig
from modelpress.prune.config import PruneConfig
from modelpress.recipe.registry import StageContext, apply_stage
from modelpress.share.centroids import CentroidTrainer
from modelpress.share.config import ClusterConfig
from modelpress.task import ClassificationTask
from modelpress.train import fit
from modelpress.zoo.models import LeNet5, LeNet300

BITS = {"fc1": 3, "fc2": 3, "fc3": 5}


def _nonzero_values(weight: torch.Tensor) -> torch.Tensor:
    return weight.detach()[weight.detach() != 0]


def _partition(weight: torch.Tensor) -> dict[float, frozenset[int]]:
    """Each distinct nonzero value -> the flat positions holding it."""
    flat = weight.detach().reshape(-1)
    groups: dict[float, set[int]] = {}
    for position in torch.nonzero(flat).reshape(-1).tolist():
        groups.setdefault(float(flat[position]), set()).add(position)
    return {value: frozenset(members) for value, members in groups.items()}


@pytest.fixture(scope="module")
def pruned_and_clustered(digits_task: ClassificationTask) -> tuple[nn.Module, nn.Module, StageContext]:
    """LeNet-300-100 on 8x8 digits, trained briefly, 80% pruned (global magnitude), clustered (fc 3 bits, fc3 5)."""
    torch.manual_seed(0)
    model = LeNet300(in_shape=(1, 8, 8))
    fit(model, digits_task, FinetuneConfig(epochs=2, lr=3e-3), quiet=True)
    ctx = StageContext(task=digits_task, quiet=True)
    model = apply_stage(model, PruneConfig(sparsity=0.8, criterion="magnitude", scope="global"), ctx)
    pruned = copy.deepcopy(model)
    model = apply_stage(model, ClusterConfig(linear_bits=3, overrides=[{"layers": ["fc3"], "bits": 5}]), ctx)
    return pruned, model, ctx


def test_clustering_keeps_zeros_and_limits_distinct_values(pruned_and_clustered) -> None:
    pruned, model, ctx = pruned_and_clustered
    for name, bits in BITS.items():
        before, after = getattr(pruned, name).weight, getattr(model, name).weight
        assert torch.equal(before == 0, after == 0), name  # pruned zeros stay, no survivor becomes zero
        assert 1 < _nonzero_values(after).unique().numel() <= 2 ** bits, name
        assert ctx.notes["layers"][name]["bits"] == bits
        assert 0 < ctx.notes["layers"][name]["relative_error"] < 0.2


def test_finetuning_trains_centroids_and_keeps_the_sharing(pruned_and_clustered,
                                                           digits_task: ClassificationTask) -> None:
    _, clustered, ctx = pruned_and_clustered
    model = copy.deepcopy(clustered)
    callbacks = copy.deepcopy(ctx.callbacks)
    before = {name: _partition(getattr(model, name).weight) for name in BITS}
    fc1_bias = model.fc1.bias.detach().clone()
    fit(model, digits_task, FinetuneConfig(epochs=1, lr=1e-3, batch_size=128), callbacks=callbacks, quiet=True)
    for name, bits in BITS.items():
        after = _partition(getattr(model, name).weight)
        assert len(after) <= 2 ** bits, name
        # assignments fixed: the same groups of positions share a value, and no position joined or left the nonzeros
        assert set(after.values()) == set(before[name].values()), name
        # every centroid moved
        old_value = {members: value for value, members in before[name].items()}
        moved = [after_value != old_value[members] for after_value, members in after.items()]
        assert all(moved), f"{name}: {moved.count(False)} centroids did not move"
    assert not torch.equal(model.fc1.bias, fc1_bias)  # unclustered parameters still train as usual
    trainer = next(cb for cb in callbacks if isinstance(cb, CentroidTrainer))
    assert sorted(float(v) for v in _nonzero_values(model.fc3.weight).unique()) == trainer.codebooks()["fc3.weight"]


def test_one_sgd_step_moves_each_centroid_by_its_summed_gradient() -> None:
    # Han et al.'s rule: c_j <- c_j - lr * sum over the cluster's members of dL/dw_i (plain SGD, constant rate).
    torch.manual_seed(0)
    x = torch.randn(32, 1, 6, 6)
    y = torch.randint(0, 3, (32,))
    task = ClassificationTask("toy", x, y, x, y, num_classes=3)
    model = LeNet300(in_shape=(1, 6, 6), num_classes=3)
    ctx = StageContext(task=task, quiet=True)
    model = apply_stage(model, ClusterConfig(linear_bits=2, include=["fc2"]), ctx)
    reference = copy.deepcopy(model)
    task.loss(reference(x), y).backward()
    grad = reference.fc2.weight.grad  # [100, 300]
    weight = reference.fc2.weight.detach()
    lr = 0.5
    expected = weight.clone()
    for value in weight.unique():
        members = weight == value
        expected[members] = value - lr * grad[members].sum()
    fc1_before = model.fc1.weight.detach().clone()
    fit(model, task, FinetuneConfig(epochs=1, lr=lr, batch_size=32, optimizer="sgd", momentum=0.0,
                                    schedule="constant"), callbacks=ctx.callbacks, quiet=True)
    torch.testing.assert_close(model.fc2.weight.detach(), expected, rtol=1e-5, atol=1e-6)
    assert not torch.equal(model.fc1.weight, fc1_before)  # the unclustered layer took an ordinary step


def test_a_later_pruning_drops_members_and_keeps_the_rest_shared() -> None:
    torch.manual_seed(1)
    model = LeNet5(in_shape=(1, 16, 16), num_classes=10)
    ctx = StageContext(quiet=True)
    model = apply_stage(model, ClusterConfig(conv_bits=4, linear_bits=2), ctx)
    assert ctx.notes["layers"]["conv1"]["bits"] == 4 and ctx.notes["layers"]["fc1"]["bits"] == 2
    with torch.no_grad():
        model.fc1.weight[:, :10] = 0.0  # another stage zeroes some members
    trainer = next(cb for cb in ctx.callbacks if isinstance(cb, CentroidTrainer))
    trainer.resync(model)
    assert "fc1.weight" in trainer.layers
    assert int(trainer.layers["fc1.weight"].positions.numel()) == int((model.fc1.weight != 0).sum())
    with torch.no_grad():
        model.fc2.weight.add_(0.001)  # another technique rewrote the values: the layer is released
    trainer.resync(model)
    assert "fc2.weight" not in trainer.layers and "conv2.weight" in trainer.layers


def test_pruning_after_clustering_keeps_the_sharing_and_the_new_zeros(digits_task: ClassificationTask) -> None:
    from modelpress.prune.config import GradualPruneConfig

    torch.manual_seed(2)
    model = LeNet300(in_shape=(1, 8, 8))
    ctx = StageContext(task=digits_task, quiet=True)
    model = apply_stage(model, ClusterConfig(linear_bits=3), ctx)
    # the pruner zeroes members in the middle of a fine-tuning the centroid trainer also runs in
    pruning = GradualPruneConfig(sparsity=0.7, criterion="magnitude", scope="global", frequency=3)
    model = apply_stage(model, pruning, ctx)
    fit(model, digits_task, FinetuneConfig(epochs=1, batch_size=64), callbacks=ctx.callbacks, quiet=True)
    weights = [model.fc1.weight, model.fc2.weight, model.fc3.weight]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(0.7, abs=0.01)
    trainer = next(cb for cb in ctx.callbacks if isinstance(cb, CentroidTrainer))
    for name, weight in zip(("fc1", "fc2", "fc3"), weights, strict=True):
        assert _nonzero_values(weight).unique().numel() <= 8, name
        layer = trainer.layers[f"{name}.weight"]
        assert torch.equal(layer.positions, torch.nonzero(weight.detach().reshape(-1)).reshape(-1)), name
