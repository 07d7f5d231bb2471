"""Pruned weights stay exactly zero through fine-tuning (SGD with momentum, Adam, AdamW with weight decay), the
optimizer's moments are zero at pruned positions, and the keeper carries the zeros into later stages."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modelpress.config import FinetuneConfig
from modelpress.prune import MaskKeeper, PruneConfig, mask_keeper, prune_
from modelpress.recipe.registry import StageContext
from modelpress.task import ClassificationTask
from modelpress.train import Callback, TrainState, fit


def _task() -> ClassificationTask:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 12, generator=g)
    y = (x[:, :3].sum(1) > 0).long()
    return ClassificationTask("toy", x[:192], y[:192], x[192:], y[192:], num_classes=2)


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 2))


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p for n, p in model.named_parameters() if n.endswith("weight")}


class _Moments(Callback):
    """Records, after each step, the largest optimizer-state value at pruned positions."""

    def __init__(self, keeper: MaskKeeper) -> None:
        self.keeper = keeper
        self.worst = 0.0
        self.seen = 0

    def on_step(self, state: TrainState) -> None:
        params = dict(state.model.named_parameters())
        for name, mask in self.keeper.masks.items():
            for value in state.optimizer.state.get(params[name], {}).values():
                if isinstance(value, torch.Tensor) and value.shape == mask.shape:
                    self.worst = max(self.worst, float(value[~mask].abs().max()))
                    self.seen += 1


@pytest.mark.parametrize("optimizer,weight_decay", [("adam", 0.0), ("adam", 1e-2), ("adamw", 1e-2), ("sgd", 1e-3)])
def test_pruned_weights_stay_exact_zeros_through_finetuning(optimizer: str, weight_decay: float) -> None:
    task, model = _task(), _mlp()
    ctx = StageContext(task=task)
    prune_(model, PruneConfig(sparsity=0.7, min_density=0.2), task, ctx=ctx)
    zeros_before = {n: (w == 0) for n, w in _weights(model).items()}
    keeper = mask_keeper(ctx.callbacks)
    moments = _Moments(keeper)
    before = {n: w.detach().clone() for n, w in _weights(model).items()}
    fit(model, task, FinetuneConfig(epochs=3, lr=0.05, batch_size=32, optimizer=optimizer, weight_decay=weight_decay),
        callbacks=[*ctx.callbacks, moments], quiet=True)
    for name, weight in _weights(model).items():
        assert torch.equal(weight == 0, zeros_before[name]), name  # the same positions, exactly zero
        assert not torch.equal(weight, before[name])  # the survivors did train
    assert moments.seen > 0 and moments.worst == 0.0


def test_without_the_keeper_the_zeros_would_not_survive() -> None:
    task, model = _task(), _mlp()
    prune_(model, PruneConfig(sparsity=0.7, scope="layer"), task)  # its keeper is dropped with the throwaway context
    zeros = sum(int((w == 0).sum()) for w in _weights(model).values())
    fit(model, task, FinetuneConfig(epochs=1, lr=0.05, batch_size=32), quiet=True)
    assert sum(int((w == 0).sum()) for w in _weights(model).values()) < zeros // 10


def test_keeper_persists_into_a_later_stage_finetuning() -> None:
    task, model = _task(), _mlp()
    ctx = StageContext(task=task)
    prune_(model, PruneConfig(sparsity=0.5, scope="layer", finetune={"epochs": 1, "batch_size": 32}), task, ctx=ctx)
    zeros = {n: (w == 0) for n, w in _weights(model).items()}
    # a later stage (any kind) fine-tunes with the same persistent callbacks, as the recipe runner does
    fit(model, task, FinetuneConfig(epochs=2, lr=0.05, batch_size=32), callbacks=ctx.callbacks, quiet=True)
    for name, weight in _weights(model).items():
        assert torch.equal(weight == 0, zeros[name])


def test_a_second_prune_stage_keeps_the_first_stage_zeros() -> None:
    task, model = _task(), _mlp()
    ctx = StageContext(task=task)
    prune_(model, PruneConfig(sparsity=0.5, criterion="random"), task, ctx=ctx)
    first = {n: (w == 0) for n, w in _weights(model).items()}
    prune_(model, PruneConfig(sparsity=0.8, criterion="random", seed=7), task, ctx=ctx)
    for name, weight in _weights(model).items():
        assert bool((weight[first[name]] == 0).all())  # masks only grow
    total = sum(w.numel() for w in _weights(model).values())
    assert sum(int((w == 0).sum()) for w in _weights(model).values()) == round(0.8 * total)
    assert len([c for c in ctx.callbacks if isinstance(c, MaskKeeper)]) == 1


def test_masks_come_back_from_zeros_after_a_reload() -> None:
    task, model = _task(), _mlp()
    prune_(model, PruneConfig(sparsity=0.6, scope="layer"), task)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert set(state) == {"0.weight", "0.bias", "2.weight", "2.bias"}  # no mask tensors are stored
    reloaded = _mlp()
    reloaded.load_state_dict(state)
    keeper = MaskKeeper.from_zeros(reloaded)
    assert sorted(keeper.masks) == ["0.weight", "2.weight"]
    fit(reloaded, task, FinetuneConfig(epochs=1, lr=0.05, batch_size=32), callbacks=[keeper], quiet=True)
    for name, weight in _weights(reloaded).items():
        assert torch.equal(weight == 0, state[name] == 0)


def test_keeper_adapts_when_a_layer_changes_shape() -> None:
    model = nn.Linear(4, 3)
    keeper = MaskKeeper({"weight": torch.ones(3, 4, dtype=torch.bool), "gone.weight": torch.ones(2, dtype=torch.bool)})
    with torch.no_grad():
        model.weight = nn.Parameter(torch.tensor([[0.0, 1.0], [2.0, 0.0]]))
    keeper.apply(model)
    assert "gone.weight" not in keeper.masks
    assert keeper.masks["weight"].tolist() == [[False, True], [True, False]]
