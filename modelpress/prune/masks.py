"""Keeping pruned weights at exactly zero through every later fine-tuning: the mask keeper.

:class:`MaskKeeper` is a training callback holding a bool mask per parameter name (True = kept). In the loop it

* zeros the masked gradients after ``backward`` (``after_backward``), so nothing pushes a pruned weight;
* re-applies the masks to the weights after the optimizer step (``on_step``), which also undoes any update a
  decoupled weight decay or a stale momentum made;
* zeros the optimizer's per-weight state at pruned positions (Adam's ``exp_avg``/``exp_avg_sq``/``max_exp_avg_sq``,
  SGD's ``momentum_buffer``), so no moment carries a pruned weight's history into later steps.

A pruning stage puts one keeper into ``ctx.callbacks`` (:func:`mask_keeper` finds or adds it), so every later
stage's fine-tuning keeps its zeros too. Nothing is stored in the model: a model reloaded from a file gets its
masks back from its zeros (:meth:`MaskKeeper.from_zeros`).

Example:
    >>> import torch
    >>> model = torch.nn.Linear(4, 2)
    >>> keeper = MaskKeeper({"weight": torch.tensor([[True, False] * 2] * 2)})
    >>> keeper.apply(model)
    >>> int((model.weight == 0).sum())
    4
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from modelpress.train.callbacks import Callback, TrainState, find_or_add

__all__ = ["MaskKeeper", "mask_keeper", "sparsity_of"]


class MaskKeeper(Callback):
    """Holds ``{parameter name: bool mask}`` and keeps masked weights, gradients and optimizer state at zero.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(3, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = model.weight.copy_(torch.tensor([[1.0, 0.0, 2.0]]))
        >>> MaskKeeper.from_zeros(model, ["weight"]).masks["weight"].tolist()
        [[True, False, True]]
    """

    def __init__(self, masks: dict[str, Tensor] | None = None) -> None:
        self.masks: dict[str, Tensor] = {name: m.bool() for name, m in (masks or {}).items()}
        self._params: dict[str, nn.Parameter] = {}

    @classmethod
    def from_zeros(cls, model: nn.Module, names: list[str] | None = None) -> MaskKeeper:
        """Masks from the exact zeros of the named parameters (default: every weight with a zero in it).

        This is how a pruned model loaded from a file regains its masks: the file stores only the weights.
        """
        params = dict(model.named_parameters())
        chosen = names if names is not None else [n for n, p in params.items()
                                                  if n.endswith("weight") and bool((p == 0).any())]
        return cls({name: params[name].detach() != 0 for name in chosen})

    def set_mask(self, name: str, mask: Tensor) -> None:
        """Replace (or add) the mask of one parameter."""
        self.masks[name] = mask.bool()

    @torch.no_grad()
    def apply(self, model: nn.Module) -> None:
        """Zero the masked weights of ``model`` now.

        A parameter whose shape no longer matches its mask (a later stage changed the layer's structure) gets a
        new mask from its own zeros; a parameter that no longer exists is forgotten.
        """
        params = dict(model.named_parameters())
        for name in list(self.masks):
            param = params.get(name)
            if param is None:
                del self.masks[name]
                continue
            if param.shape != self.masks[name].shape:
                self.masks[name] = param.detach() != 0
            param.masked_fill_(~self.masks[name].to(param.device), 0.0)
        self._params = {name: params[name] for name in self.masks}

    def on_train_begin(self, state: TrainState) -> None:
        """Bind to the model being trained and zero its masked weights."""
        self.apply(state.model)

    @torch.no_grad()
    def after_backward(self, state: TrainState) -> None:
        """Zero the gradients of pruned weights."""
        for name, param in self._params.items():
            if param.grad is not None:
                param.grad.masked_fill_(~self.masks[name], 0.0)

    @torch.no_grad()
    def zero_optimizer_state(self, optimizer: torch.optim.Optimizer) -> None:
        """Zero the optimizer's per-weight state (moments, momentum) at pruned positions."""
        for name, param in self._params.items():
            pruned = ~self.masks[name]
            for value in optimizer.state.get(param, {}).values():
                if isinstance(value, Tensor) and value.shape == param.shape:
                    value.masked_fill_(pruned, 0.0)  # exp_avg, exp_avg_sq, max_exp_avg_sq, momentum_buffer

    @torch.no_grad()
    def on_step(self, state: TrainState) -> None:
        """Re-zero pruned weights and the optimizer's per-weight state at their positions."""
        for name, param in self._params.items():
            param.masked_fill_(~self.masks[name], 0.0)
        self.zero_optimizer_state(state.optimizer)

    def density(self) -> float:
        """Fraction of the masked parameters' entries that are kept."""
        total = sum(m.numel() for m in self.masks.values())
        return sum(int(m.sum()) for m in self.masks.values()) / total if total else 1.0


def mask_keeper(callbacks: list[Callback]) -> MaskKeeper:
    """The mask keeper in ``callbacks`` (a stage context's persistent list), added first if there is none.

    Example:
        >>> callbacks = []
        >>> mask_keeper(callbacks) is mask_keeper(callbacks)
        True
    """
    return find_or_add(callbacks, MaskKeeper)


def sparsity_of(tensor: Tensor) -> float:
    """Fraction of exact zeros in a tensor.

    Example:
        >>> sparsity_of(torch.tensor([0.0, 1.0, 0.0, 2.0]))
        0.5
    """
    return float((tensor == 0).sum()) / tensor.numel() if tensor.numel() else 0.0
