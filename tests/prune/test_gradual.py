"""Schedules have the right shape, and the gradual pruner follows its schedule inside the fine-tuning loop."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from modelpress.prune import GradualPruneConfig, GradualPruner, ScheduleKind, prune_, sparsity_at
from modelpress.recipe.registry import StageContext
from modelpress.task import ClassificationTask


@pytest.mark.parametrize("kind", list(ScheduleKind))
def test_schedules_start_and_end_where_asked_and_never_fall(kind: ScheduleKind) -> None:
    values = [sparsity_at(kind, t / 100, 0.1, 0.95) for t in range(101)]
    assert values[0] == 0.1 and values[-1] == 0.95
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(values))


def test_cubic_prunes_early_and_linear_evenly() -> None:
    # Zhu & Gupta: halfway through the window the cubic schedule is 7/8 of the way there
    assert sparsity_at(ScheduleKind.cubic, 0.5, 0.0, 0.8) == pytest.approx(0.8 * 7 / 8)
    assert sparsity_at(ScheduleKind.linear, 0.5, 0.0, 0.8) == pytest.approx(0.4)
    assert sparsity_at(ScheduleKind.polynomial, 0.5, 0.0, 0.8, power=2) == pytest.approx(0.6)
    # exponential: the density halves... geometrically: sqrt of the final density at half time
    assert 1 - sparsity_at(ScheduleKind.exponential, 0.5, 0.0, 0.96) == pytest.approx(0.2)


def _task() -> ClassificationTask:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(320, 10, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).long()
    return ClassificationTask("toy", x[:256], y[:256], x[256:], y[256:], num_classes=2)


def test_gradual_pruner_follows_the_schedule_and_holds_the_zeros() -> None:
    task = _task()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    # 256 examples / 32 = 8 steps per epoch, 5 epochs = 40 steps; window [0, 0.5] -> steps 0..20, every 4 steps
    config = GradualPruneConfig(sparsity=0.9, scope="layer", start=0.0, end=0.5, frequency=4,
                                finetune={"epochs": 5, "batch_size": 32, "lr": 0.01})
    ctx = StageContext(task=task)
    prune_(model, config, task, ctx=ctx)
    pruner = next(c for c in ctx.callbacks if isinstance(c, GradualPruner))
    steps = [step for step, _ in pruner.updates]
    assert steps == [0, 4, 8, 12, 16, 20]
    reached = [s for _, s in pruner.updates]
    expected = [sparsity_at(ScheduleKind.cubic, step / 20, 0.0, 0.9) for step in steps]
    assert reached == pytest.approx(expected, abs=0.01)
    assert pruner.done and ctx.notes["gradual_updates"] == 6
    for layer in (model[0], model[2]):
        assert float((layer.weight == 0).float().mean()) == pytest.approx(0.9, abs=0.01)
    assert task.evaluate(model)["accuracy"] > 0.8  # it still learned the task


def test_a_window_reaching_the_end_applies_the_final_sparsity_at_the_end() -> None:
    task = _task()
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 2))
    config = GradualPruneConfig(sparsity=0.5, scope="layer", end=1.0, frequency=3,
                                finetune={"epochs": 1, "batch_size": 32})
    ctx = StageContext(task=task)
    prune_(model, config, task, ctx=ctx)
    pruner = next(c for c in ctx.callbacks if isinstance(c, GradualPruner))
    assert pruner.updates[-1] == (8, pytest.approx(0.5))
    assert float((model[0].weight == 0).float().mean()) == 0.5


def test_data_criteria_work_during_gradual_pruning() -> None:
    task = _task()
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 2))
    config = GradualPruneConfig(sparsity=0.75, criterion="taylor", scope="layer", frequency=4,
                                calibration={"batches": 2, "batch_size": 32},
                                finetune={"epochs": 2, "batch_size": 32})
    prune_(model, config, task)
    assert float((model[0].weight == 0).float().mean()) == 0.75


@pytest.mark.parametrize("kind", [ScheduleKind.linear, ScheduleKind.exponential])
def test_start_end_and_frequency_place_the_updates(kind: ScheduleKind) -> None:
    task = _task()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    # 8 steps per epoch, 5 epochs = 40 steps; window [0.25, 0.75] -> steps 10..30, an update every 5 steps
    config = GradualPruneConfig(sparsity=0.8, scope="layer", schedule=kind, start=0.25, end=0.75, frequency=5,
                                finetune={"epochs": 5, "batch_size": 32, "lr": 0.01})
    ctx = StageContext(task=task)
    prune_(model, config, task, ctx=ctx)
    pruner = next(c for c in ctx.callbacks if isinstance(c, GradualPruner))
    steps = [step for step, _ in pruner.updates]
    assert steps == [10, 15, 20, 25, 30]
    expected = [sparsity_at(kind, (step - 10) / 20, 0.0, 0.8) for step in steps]
    assert [s for _, s in pruner.updates] == pytest.approx(expected, abs=0.01)
