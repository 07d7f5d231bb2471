"""The ``prune-gradual`` stage: sparsity rises along a schedule during the stage's own fine-tuning.

The handler adds a :class:`GradualPruner` callback (and the context's mask keeper) to ``ctx.callbacks``; the
fine-tuning the stage's ``finetune`` section asks for then drives it. With ``T`` optimizer steps in the run, masks
are recomputed at steps ``t0 = round(start * T)``, ``t0 + frequency``, … up to ``t1 = round(end * T)``, where the
final sparsity is reached; the remaining steps fine-tune at that sparsity. Each update prunes the weights the keeper
already holds at zero first, so masks only grow. After its run the pruner goes quiet; the keeper stays and keeps
the zeros through later stages.

Example:
    >>> import torch
    >>> from modelpress.task import ClassificationTask
    >>> from modelpress.prune.config import GradualPruneConfig
    >>> from modelpress.prune.verb import prune_
    >>> x = torch.randn(256, 8); task = ClassificationTask("toy", x, (x[:, 0] > 0).long(), x, x[:, 0] > 0, 2)
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    >>> config = GradualPruneConfig(sparsity=0.8, frequency=2, finetune={"epochs": 2, "batch_size": 32})
    >>> model = prune_(model, config, task)
    >>> weights = [model[0].weight, model[2].weight]
    >>> round(sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights), 2)
    0.8
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from modelpress.config import StageConfig
from modelpress.prune.config import GradualPruneConfig, LotteryTicketConfig
from modelpress.prune.masks import mask_keeper
from modelpress.prune.oneshot import prune_now
from modelpress.prune.schedules import sparsity_at
from modelpress.recipe.registry import StageContext, rule, stage
from modelpress.train.callbacks import Callback, TrainState

__all__ = ["GradualPruner", "apply_gradual"]


class GradualPruner(Callback):
    """Raises the sparsity of ``ctx``'s model along ``config``'s schedule during one fine-tuning run.

    ``updates`` lists ``(step, sparsity reached)`` of each mask update.
    """

    def __init__(self, config: GradualPruneConfig, ctx: StageContext) -> None:
        self.config = config
        self.ctx = ctx
        self.done = False
        self.updates: list[tuple[int, float]] = []
        self._first = self._last = 0

    def on_train_begin(self, state: TrainState) -> None:
        """Place the pruning window on this run's steps."""
        if self.done:
            return
        self._first = round(self.config.start * state.total_steps)
        self._last = max(self._first, round(self.config.end * state.total_steps))

    def _prune_to(self, state: TrainState, sparsity: float) -> None:
        result = prune_now(state.model, self.config, self.ctx, sparsity)
        mask_keeper(self.ctx.callbacks).zero_optimizer_state(state.optimizer)
        self.updates.append((state.step, result.overall))
        self.ctx.skipped.extend(s for s in result.skipped if s not in self.ctx.skipped)
        self.ctx.notes.update(result.notes(self.config))

    def on_step_begin(self, state: TrainState) -> None:
        """At the window's update steps, prune to the scheduled sparsity before the batch."""
        if self.done or state.step < self._first:
            return
        final = self.config.target_sparsity()
        if state.step >= self._last:
            self._prune_to(state, final)
            self.done = True
            return
        if (state.step - self._first) % self.config.frequency:
            return
        t = (state.step - self._first) / (self._last - self._first)
        self._prune_to(state, sparsity_at(self.config.schedule, t, self.config.initial_sparsity, final,
                                          self.config.power))

    def on_train_end(self, state: TrainState) -> None:
        """If the window reaches the run's end, the final sparsity is applied now; the pruner then goes quiet."""
        if not self.done:
            self._prune_to(state, self.config.target_sparsity())
            self.done = True
        self.ctx.notes["gradual_updates"] = len(self.updates)


@stage(GradualPruneConfig)
def apply_gradual(model: nn.Module, config: GradualPruneConfig, ctx: StageContext) -> nn.Module:
    """Stage handler of ``prune-gradual``: installs the keeper and the pruner; the fine-tuning does the pruning."""
    mask_keeper(ctx.callbacks)
    ctx.callbacks.append(GradualPruner(config, ctx))
    return model


@rule
def _training_stages_need_finetune(stages: Sequence[StageConfig]) -> list[str]:
    problems = []
    for i, s in enumerate(stages):
        if isinstance(s, GradualPruneConfig | LotteryTicketConfig) and s.finetune is None:
            what = "gradual pruning happens during it" if isinstance(s, GradualPruneConfig) else \
                "it trains the final ticket"
            problems.append(f"stages[{i}].finetune: expected a finetune section ({what}), got none. "
                            f"Fix: add e.g. `finetune: {{epochs: 10}}` to the {s.tag} stage")
    return problems
