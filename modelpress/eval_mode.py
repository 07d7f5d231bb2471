"""One calibration/inspection pass over a model: eval mode for the block, then hooks removed and the training flag
restored, even if the forward raises.

Every stage that hooks layers to collect activation statistics (GPTQ Hessians, observers, Wanda norms, whitening
Grams, captured inputs) runs the same try/finally; this is that one place.

Example:
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5)).train()
    >>> seen = []
    >>> handles = [model[0].register_forward_hook(lambda m, a, out: seen.append(out.shape))]
    >>> with evaluating(model, handles):
    ...     _ = model(torch.ones(3, 2))
    ...     model.training
    False
    >>> model.training, len(model[0]._forward_hooks), seen
    (True, 0, [torch.Size([3, 2])])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from torch import nn
from torch.utils.hooks import RemovableHandle

__all__ = ["evaluating"]


@contextmanager
def evaluating(model: nn.Module, handles: Iterable[RemovableHandle] = ()) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block; on exit ``handles`` are removed and ``model.training`` restored.

    Example:
        >>> import torch
        >>> m = torch.nn.Linear(1, 1)
        >>> with evaluating(m):
        ...     m.training
        False
        >>> m.training
        True
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
