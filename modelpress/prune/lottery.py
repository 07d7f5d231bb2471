"""The ``lottery-ticket`` stage: iterative magnitude pruning with rewinding (Frankle & Carbin, 2019), late
rewinding (Frankle et al., 2020), and the random re-initialization control.

:func:`find_ticket` runs the rounds: (re-)initialize (``initialization: fresh`` draws new seeded weights; ``given``
takes the model's current weights as the initialization), then per round: train with ``train`` while the mask keeper
holds the zeros, prune to ``1 - keep ** (round + 1)`` by magnitude (``keep`` = :meth:`per_round_keep`), and rewind
the survivors to the initialization, or to their values after ``rewind_step`` steps of the first round.
:func:`apply_ticket` sets the model to the ticket: the rewound weights (``reinit: rewind``) or new random ones
(``reinit: random``, seed ``init_seed + 1``), masked. The stage's ``finetune`` section then trains the ticket.

Example:
    >>> import torch
    >>> from modelpress.task import ClassificationTask
    >>> from modelpress.prune.config import LotteryTicketConfig
    >>> x = torch.randn(128, 8); task = ClassificationTask("toy", x, (x[:, 0] > 0).long(), x, x[:, 0] > 0, 2)
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    >>> config = LotteryTicketConfig(sparsity=0.75, rounds=2, train={"epochs": 1, "batch_size": 32})
    >>> ticket = find_ticket(model, config, task, quiet=True)
    >>> [round(r["sparsity"], 2) for r in ticket.rounds]
    [0.5, 0.75]
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from modelpress.errors import ConfigError
from modelpress.prune.config import Initialization, LotteryTicketConfig, Reinit
from modelpress.prune.masks import MaskKeeper, mask_keeper
from modelpress.prune.pruner import apply_masks, compute_masks
from modelpress.recipe.registry import StageContext, stage
from modelpress.task import Task
from modelpress.train import Callback, TrainState, fit

__all__ = ["Ticket", "apply_lottery", "apply_ticket", "find_ticket", "reinitialize"]


@dataclass
class Ticket:
    """A winning-ticket candidate: masks by parameter name, the weights to rewind to, and per-round figures."""

    masks: dict[str, Tensor]
    rewind_state: dict[str, Tensor]
    rounds: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Any] = field(default_factory=list)


def reinitialize(model: nn.Module, seed: int) -> None:
    """Draw fresh weights for every module that has ``reset_parameters``, in module order, from ``seed``.

    Example:
        >>> a, b = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
        >>> reinitialize(a, 5); reinitialize(b, 5)
        >>> torch.equal(a.weight, b.weight)
        True
    """
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    finally:
        torch.random.set_rng_state(state)


class _Snapshot(Callback):
    """Copies the model's state after ``step`` optimizer steps (for late rewinding)."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.state: dict[str, Tensor] | None = None

    def on_step(self, state: TrainState) -> None:
        if state.step == self.step and self.state is None:
            self.state = copy.deepcopy(state.model.state_dict())


def _rewind(model: nn.Module, state: dict[str, Tensor], masks: dict[str, Tensor]) -> None:
    model.load_state_dict(state)
    apply_masks(model, masks)


def find_ticket(model: nn.Module, config: LotteryTicketConfig, task: Task, quiet: bool = False,
                seed: int = 0) -> Ticket:
    """Run the pruning rounds on ``model`` (in place) and return the ticket; the model ends rewound and masked."""
    if config.initialization is Initialization.fresh:
        reinitialize(model, config.init_seed)
    init_state = copy.deepcopy(model.state_dict())
    keeper = MaskKeeper()
    rewind_state = init_state
    ticket_rounds: list[dict[str, Any]] = []
    skipped: list[Any] = []
    keep = config.per_round_keep()
    for index in range(config.rounds):
        snapshot = _Snapshot(config.rewind_step) if index == 0 and config.rewind_step is not None else None
        callbacks: list[Callback] = [keeper] + ([snapshot] if snapshot else [])
        state = fit(model, task, config.train, callbacks=callbacks, seed=seed + index, quiet=quiet,
                    description=f"lottery round {index + 1}/{config.rounds}")
        if snapshot is not None:
            if snapshot.state is None:
                raise ConfigError("rewind_step", f"a step within the first round ({state.total_steps} steps)",
                                  config.rewind_step, "lower rewind_step or train longer per round")
            rewind_state = snapshot.state
        sparsity = 1.0 - keep ** (index + 1) if index + 1 < config.rounds else config.target_sparsity()
        result = compute_masks(model, config, task, sparsity, existing=keeper.masks)
        skipped = result.skipped
        for name, mask in result.masks.items():
            keeper.set_mask(name, mask)
        ticket_rounds.append({"round": index + 1, "sparsity": result.overall, "final_loss": state.loss})
        _rewind(model, rewind_state, keeper.masks)
    return Ticket(dict(keeper.masks), rewind_state, ticket_rounds, skipped)


def apply_ticket(model: nn.Module, ticket: Ticket, reinit: Reinit, init_seed: int = 0) -> None:
    """Set ``model`` to the ticket: rewound weights, or (the control) new random weights, with the ticket's masks.

    Example:
        >>> lin = torch.nn.Linear(2, 2)
        >>> ticket = Ticket({"weight": torch.tensor([[True, False], [False, True]])}, lin.state_dict())
        >>> apply_ticket(lin, ticket, Reinit.random, init_seed=3)
        >>> int((lin.weight == 0).sum())
        2
    """
    if reinit is Reinit.rewind:
        _rewind(model, ticket.rewind_state, ticket.masks)
    else:
        reinitialize(model, init_seed + 1)  # a different draw than the initialization the ticket was found from
        apply_masks(model, ticket.masks)


@stage(LotteryTicketConfig)
def apply_lottery(model: nn.Module, config: LotteryTicketConfig, ctx: StageContext) -> nn.Module:
    """Stage handler of ``lottery-ticket``: find the ticket, set the model to it, keep its masks from now on."""
    task = ctx.require_task("lottery-ticket")
    ticket = find_ticket(model, config, task, quiet=ctx.quiet, seed=ctx.seed)
    apply_ticket(model, ticket, config.reinit, config.init_seed)
    keeper = mask_keeper(ctx.callbacks)
    for name, mask in ticket.masks.items():
        keeper.set_mask(name, mask)
    keeper.apply(model)
    ctx.skipped.extend(ticket.skipped)
    density = {name: float(mask.float().mean()) for name, mask in ticket.masks.items()}
    ctx.notes.update({
        "sparsity": round(ticket.rounds[-1]["sparsity"], 6),
        "layer_sparsity": {name.removesuffix(".weight"): round(1 - d, 6) for name, d in density.items()},
        "criterion": config.criterion.value, "pattern": config.pattern.describe(), "scope": config.scope.value,
        "rounds": ticket.rounds, "reinit": config.reinit.value, "rewind_step": config.rewind_step,
    })
    return model
