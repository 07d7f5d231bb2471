"""Each criterion orders hand-made tensors as its definition says, and the statistics behind them are right."""

from __future__ import annotations

import torch
from torch import nn

from modelpress.prune import (
    Criterion,
    Gradient,
    Magnitude,
    PruneConfig,
    RandomImportance,
    SecondOrder,
    Taylor,
    Wanda,
    compute_masks,
    importance_for,
)
from modelpress.prune.statistics import LayerStats, gradient_statistics, input_norms
from modelpress.prune.targets import find_targets
from modelpress.task import ClassificationTask

W = torch.tensor([[0.1, -3.0, 2.0, -0.5]])
G = torch.tensor([[5.0, 0.01, -0.2, 1.0]])
F = torch.tensor([[100.0, 0.001, 0.1, 2.0]])
X = torch.tensor([1.0, 0.1, 10.0, 3.0])


def _order(scores: torch.Tensor) -> list[int]:
    """Indices from least to most important."""
    return torch.argsort(scores.flatten()).tolist()


def test_magnitude_orders_by_absolute_value() -> None:
    assert _order(Magnitude().scores("l", W, LayerStats())) == [0, 3, 2, 1]


def test_gradient_orders_by_absolute_gradient() -> None:
    assert _order(Gradient().scores("l", W, LayerStats(gradient=G))) == [1, 2, 3, 0]


def test_taylor_orders_by_weight_times_gradient() -> None:
    # |w*g| = [0.5, 0.03, 0.4, 0.5]: ties keep input order
    scores = Taylor().scores("l", W, LayerStats(gradient=G))
    assert torch.allclose(scores, torch.tensor([[0.5, 0.03, 0.4, 0.5]]))
    assert _order(scores)[:2] == [1, 2]


def test_second_order_orders_by_squared_weight_times_fisher() -> None:
    # w^2 F / 2 = [0.5, 0.0045, 0.2, 0.25]
    scores = SecondOrder().scores("l", W, LayerStats(squared_gradient=F))
    assert torch.allclose(scores, torch.tensor([[0.5, 0.0045, 0.2, 0.25]]))
    assert _order(scores) == [1, 2, 3, 0]


def test_wanda_orders_by_weight_times_input_norm_within_rows() -> None:
    # |w| * ||x|| = [0.1, 0.3, 20, 1.5]
    scores = Wanda().scores("l", W, LayerStats(input_norm=X))
    assert _order(scores) == [0, 1, 3, 2]
    assert Wanda.per_row and not Magnitude.per_row
    # two rows with very different scales: Wanda prunes the same count in each row
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0], [100.0, 200.0, 300.0, 400.0]])
    model = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(w)
    x = torch.ones(8, 4)
    task = ClassificationTask("ones", x, torch.zeros(8), x, torch.zeros(8), 2)
    result = compute_masks(model, PruneConfig(sparsity=0.5, criterion="wanda"), task)
    assert result.masks["weight"].int().tolist() == [[0, 0, 1, 1], [0, 0, 1, 1]]
    magnitude = compute_masks(model, PruneConfig(sparsity=0.5), task)
    assert magnitude.masks["weight"].int().tolist() == [[0, 0, 0, 0], [1, 1, 1, 1]]


def test_random_is_seeded_and_differs_across_layers_and_seeds() -> None:
    a = RandomImportance(seed=0).scores("fc1", torch.zeros(100), LayerStats())
    assert torch.equal(a, RandomImportance(seed=0).scores("fc1", torch.zeros(100), LayerStats()))
    assert not torch.equal(a, RandomImportance(seed=0).scores("fc2", torch.zeros(100), LayerStats()))
    assert not torch.equal(a, RandomImportance(seed=1).scores("fc1", torch.zeros(100), LayerStats()))
    assert float(a.min()) >= 0.0 and float(a.max()) < 1.0


def test_importance_for_maps_every_criterion() -> None:
    names = {c: type(importance_for(c)).__name__ for c in Criterion}
    assert names == {Criterion.magnitude: "Magnitude", Criterion.gradient: "Gradient", Criterion.taylor: "Taylor",
                     Criterion.second_order: "SecondOrder", Criterion.random: "RandomImportance",
                     Criterion.wanda: "Wanda"}


def test_gradient_statistics_match_the_loss_gradient() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = (x[:, 0] > 0).long()
    task = ClassificationTask("t", x, y, x, y, 2)
    model = nn.Linear(3, 2)
    mean, square = gradient_statistics(model, find_targets(model)[0], task, batches=2, batch_size=32)[""]
    order = torch.randperm(64, generator=torch.Generator().manual_seed(0))
    grads = []
    for idx in (order[:32], order[32:]):
        model.zero_grad()
        task.loss(model(x[idx]), y[idx]).backward()
        grads.append(model.weight.grad.clone())
    assert torch.allclose(mean, (grads[0] + grads[1]) / 2, atol=1e-6)
    assert torch.allclose(square, (grads[0] ** 2 + grads[1] ** 2) / 2, atol=1e-6)
    assert model.weight.grad is not None  # the user's gradients are put back


def test_conv_input_norms_are_norms_of_the_unfolded_patches() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1, groups=2)
    x = torch.randn(5, 4, 7, 7)
    norms = input_norms(conv, find_targets(conv)[0], [(x,)])[""]
    unfolded = nn.functional.unfold(x, 3, padding=1)  # [5, 36, 49]
    assert torch.allclose(norms, unfolded.pow(2).sum(dim=(0, 2)).sqrt(), atol=1e-5)
    scores = Wanda(groups=2).scores("c", conv.weight, LayerStats(input_norm=norms))
    # output channels 0-2 see group 0's features (channels 0-1), 3-5 group 1's (channels 2-3)
    per_group = norms.reshape(2, 18)
    assert torch.allclose(scores[0].flatten(), conv.weight[0].abs().flatten() * per_group[0])
    assert torch.allclose(scores[5].flatten(), conv.weight[5].abs().flatten() * per_group[1])
