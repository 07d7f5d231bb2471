"""The fine-tuning loop: callbacks fire in order, seeds make runs repeatable, fractional epochs stop early."""

from __future__ import annotations

import torch

from modelpress.config import FinetuneConfig
from modelpress.task import ClassificationTask
from modelpress.train import Callback, TrainState, fit


def _toy_task() -> ClassificationTask:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 6, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return ClassificationTask("toy", x[:150], y[:150], x[150:], y[150:], num_classes=2)


class _Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_train_begin(self, state: TrainState) -> None:
        self.events.append("begin")

    def after_backward(self, state: TrainState) -> None:
        assert all(p.grad is not None for p in state.model.parameters())
        self.events.append("backward")

    def on_step(self, state: TrainState) -> None:
        self.events.append("step")

    def on_epoch_end(self, state: TrainState) -> None:
        self.events.append(f"epoch{state.epoch}")

    def on_train_end(self, state: TrainState) -> None:
        self.events.append("end")


def test_callbacks_fire_in_order_and_counts() -> None:
    task, rec = _toy_task(), _Recorder()
    state = fit(torch.nn.Linear(6, 2), task, FinetuneConfig(epochs=2, batch_size=50), callbacks=[rec], quiet=True)
    assert state.steps_per_epoch == 3 and state.step == 6
    assert rec.events[0] == "begin" and rec.events[-1] == "end"
    assert rec.events.count("step") == 6 and rec.events.count("backward") == 6
    assert rec.events[1:4] == ["backward", "step", "backward"]
    assert "epoch1" in rec.events and "epoch2" in rec.events


def test_same_seed_same_weights_and_it_learns() -> None:
    task = _toy_task()
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        model = torch.nn.Linear(6, 2)
        fit(model, task, FinetuneConfig(epochs=10, lr=0.05, batch_size=25), seed=7, quiet=True)
        models.append(model)
    assert torch.equal(models[0].weight, models[1].weight)
    assert task.evaluate(models[0])["accuracy"] >= 0.9


def test_fractional_epochs() -> None:
    state = fit(torch.nn.Linear(6, 2), _toy_task(), FinetuneConfig(epochs=0.5, batch_size=25), quiet=True)
    assert state.step == 3


def test_objective_replaces_task_loss() -> None:
    seen = []

    def objective(model, inputs, targets):
        seen.append(inputs[0].shape[0])
        return model(*inputs).pow(2).mean()

    model = torch.nn.Linear(6, 2)
    fit(model, _toy_task(), FinetuneConfig(epochs=1, batch_size=50, lr=0.1), objective=objective, quiet=True)
    assert seen == [50, 50, 50]
