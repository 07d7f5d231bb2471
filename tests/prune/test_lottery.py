"""Iterative magnitude pruning: round sparsities, rewinding to the initialization or a later step, the control."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from modelpress.prune import LotteryTicketConfig, Reinit, apply_ticket, find_ticket, prune_
from modelpress.prune.lottery import reinitialize
from modelpress.recipe.registry import StageContext
from modelpress.task import ClassificationTask


def _task() -> ClassificationTask:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    y = (x[:, 0] * x[:, 1] > 0).long()
    return ClassificationTask("toy", x[:192], y[:192], x[192:], y[192:], num_classes=2)


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))


def test_rounds_reach_the_target_and_survivors_rewind_to_their_initial_values() -> None:
    task, model = _task(), _model()
    config = LotteryTicketConfig(sparsity=0.875, rounds=3, init_seed=4, train={"epochs": 2, "batch_size": 32})
    ticket = find_ticket(model, config, task, quiet=True)
    assert [r["sparsity"] for r in ticket.rounds] == pytest.approx([0.5, 0.75, 0.875], abs=0.01)
    fresh = _model()
    reinitialize(fresh, 4)  # the initialization the rounds started from
    for name, mask in ticket.masks.items():
        now, init = dict(model.named_parameters())[name], dict(fresh.named_parameters())[name]
        assert torch.equal(now[mask], init[mask])  # survivors rewound exactly
        assert bool((now[~mask] == 0).all())
    # masks are nested: a later round never revives a weight pruned earlier
    assert ticket.rounds[-1]["sparsity"] == pytest.approx(0.875, abs=0.01)


def test_late_rewinding_uses_the_weights_after_k_steps() -> None:
    task, model = _task(), _model()
    config = LotteryTicketConfig(sparsity=0.5, rounds=1, rewind_step=3, train={"epochs": 1, "batch_size": 32})
    ticket = find_ticket(model, config, task, quiet=True)
    fresh = _model()
    reinitialize(fresh, 0)
    mask = ticket.masks["0.weight"]
    assert not torch.equal(ticket.rewind_state["0.weight"][mask], fresh[0].weight.detach()[mask])
    assert torch.equal(model[0].weight.detach()[mask], ticket.rewind_state["0.weight"][mask])


def test_random_reinit_control_keeps_the_mask_with_new_weights() -> None:
    task, model = _task(), _model()
    config = LotteryTicketConfig(sparsity=0.75, rounds=2, scope="layer", train={"epochs": 1, "batch_size": 32})
    ticket = find_ticket(model, config, task, quiet=True)
    control = copy.deepcopy(model)
    apply_ticket(control, ticket, Reinit.random)
    for name, _mask in ticket.masks.items():
        rewound, random = dict(model.named_parameters())[name], dict(control.named_parameters())[name]
        assert torch.equal(random == 0, rewound == 0)
        assert not torch.equal(random, rewound)


def test_stage_trains_the_ticket_and_records_rounds() -> None:
    task, model = _task(), _model()
    ctx = StageContext(task=task)
    config = LotteryTicketConfig(sparsity=0.75, rounds=2, train={"epochs": 1, "batch_size": 32},
                                 finetune={"epochs": 2, "batch_size": 32})
    prune_(model, config, task, ctx=ctx)
    assert [r["round"] for r in ctx.notes["rounds"]] == [1, 2]
    assert ctx.notes["sparsity"] == pytest.approx(0.75, abs=0.01)
    weights = [model[0].weight, model[2].weight]
    assert sum(int((w == 0).sum()) for w in weights) == round(0.75 * sum(w.numel() for w in weights))
