"""Trained centroids (Han et al. 2016, section 3.3): fine-tune the shared values, never the individual weights.

A clustered layer holds, for its ``m`` nonzero weights, their flat ``positions`` ``(m,)`` and cluster ``labels``
``(m,)`` (both fixed), and the ``centroids`` ``(k,)``. The model's weight is always ``centroids[labels]`` at
``positions`` and exactly zero elsewhere, so a layer holds at most ``k`` distinct nonzero values at every moment of
training; that is what lets the ``codebook`` codec store it losslessly as ``k`` values plus small indices.

How a step works (:class:`CentroidTrainer`, a training callback):

1. ``after_backward``: the gradient of each centroid is the sum of its members' gradients (the chain rule through
   ``w_i = c_{label(i)}``): ``grad_c[j] = sum_{i: label(i) = j} dL/dw_i``, one ``index_add_``. The weight's own
   gradient is then set to ``None``, so the loop's optimizer skips the raw weight entirely (torch optimizers skip
   parameters without a gradient: no Adam moments, no momentum, no weight decay on it).
2. ``on_step``: the centroids take a step of their *own* optimizer, of the kind, learning rate, momentum and weight
   decay the fine-tuning config names, at the learning rate the loop's schedule gave the step; then the weights are
   rewritten from the centroids.

With SGD (no momentum, no weight decay) this is exactly Han et al.'s rule ``c_j <- c_j - lr * sum_i dL/dw_i``. With
Adam the update is Adam on the centroid with its summed gradient: Adam is invariant to the gradient's scale, so the
fine-tune's learning rate means the same step size as for raw weights, whatever the cluster sizes.

A centroid that would land on exactly 0.0 is moved to the smallest normal number of its previous sign: pruned zeros
are never a cluster and a cluster never becomes zeros (the mask keeper's zeros and the codec's sparse positions stay
what pruning made them).

The trainer lives in the stage context's persistent callbacks, so later fine-tuning keeps the sharing. At the start
of every run it re-derives each layer's positions and labels from the model's current values (a later pruning stage
may have zeroed some members); a layer whose nonzero values are no longer all centroids (another technique changed
them), or that no longer exists, is released.

Example:
    >>> import torch
    >>> layer = torch.nn.Linear(2, 2, bias=False)
    >>> trainer = CentroidTrainer()
    >>> trainer.set_layer("weight", torch.tensor([0, 1, 3]), torch.tensor([0, 1, 1]), torch.tensor([-0.5, 0.25]))
    >>> trainer.apply(layer)
    >>> layer.weight.tolist()
    [[-0.5, 0.25], [0.0, 0.25]]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from modelpress.train.callbacks import Callback, TrainState, find_or_add
from modelpress.train.loop import make_optimizer

__all__ = ["CentroidTrainer", "SharedLayer", "centroid_trainer", "guard_zeros"]


@dataclass
class SharedLayer:
    """One clustered parameter: flat ``positions`` ``(m,)`` int64 of its nonzero weights, their cluster ``labels``
    ``(m,)`` int64, and the shared values ``centroids`` ``(k,)`` (a leaf tensor the trainer optimizes)."""

    positions: Tensor
    labels: Tensor
    centroids: Tensor

    @property
    def clusters(self) -> int:
        """How many shared values the layer has."""
        return int(self.centroids.numel())


@torch.no_grad()
def guard_zeros(centroids: Tensor, previous: Tensor) -> Tensor:
    """``centroids`` with every exact 0.0 replaced by the smallest normal number of ``previous``'s sign.

    Example:
        >>> guard_zeros(torch.tensor([0.0, 0.5, 0.0]), torch.tensor([-1.0, 0.4, 2.0])).tolist()
        [-1.1754943508222875e-38, 0.5, 1.1754943508222875e-38]
    """
    zero = centroids == 0
    if not bool(zero.any()):
        return centroids
    tiny = torch.finfo(centroids.dtype).tiny
    sign = torch.where(previous < 0, -1.0, 1.0).to(centroids.dtype)
    return torch.where(zero, sign * tiny, centroids)


class CentroidTrainer(Callback):
    """Keeps clustered layers at ``centroids[labels]`` and trains the centroids with summed gradients.

    ``layers`` maps a parameter name (``fc1.weight``) to its :class:`SharedLayer`.

    Example:
        >>> import torch
        >>> lin = torch.nn.Linear(3, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = lin.weight.copy_(torch.tensor([[0.5, 0.0, 0.5]]))
        >>> trainer = CentroidTrainer()
        >>> trainer.set_layer("weight", torch.tensor([0, 2]), torch.tensor([0, 0]), torch.tensor([0.5]))
        >>> trainer.layers["weight"].clusters
        1
    """

    def __init__(self) -> None:
        self.layers: dict[str, SharedLayer] = {}
        self._params: dict[str, nn.Parameter] = {}
        self._optimizer: torch.optim.Optimizer | None = None
        self._lr: float | None = None

    def set_layer(self, name: str, positions: Tensor, labels: Tensor, centroids: Tensor) -> None:
        """Register (or replace) a clustered parameter: flat positions ``(m,)``, labels ``(m,)``, centroids
        ``(k,)``."""
        self.layers[name] = SharedLayer(positions.long().reshape(-1), labels.long().reshape(-1),
                                        centroids.detach().clone().reshape(-1))

    @torch.no_grad()
    def _write(self, param: Tensor, layer: SharedLayer) -> None:
        """Set ``param`` to its centroids at its positions and exactly +0.0 elsewhere."""
        flat = torch.zeros(param.numel(), dtype=param.dtype)
        flat[layer.positions] = layer.centroids.to(param.dtype)[layer.labels]
        param.copy_(flat.view_as(param))

    @torch.no_grad()
    def _resync(self, param: Tensor, layer: SharedLayer) -> SharedLayer | None:
        """The layer as the parameter now holds it (members zeroed since are dropped), or None if its nonzero
        values are not all centroids any more."""
        flat = param.detach().reshape(-1)
        positions = torch.nonzero(flat).reshape(-1)  # (m',) current nonzero positions
        if torch.equal(positions, layer.positions):
            values = flat[positions]
            if torch.equal(values, layer.centroids.to(param.dtype)[layer.labels]):
                return layer
        book, order = torch.sort(layer.centroids.to(param.dtype))
        values = flat[positions]
        found = torch.searchsorted(book, values).clamp_(max=book.numel() - 1)  # (m',) exact-match candidates
        if not torch.equal(book[found], values):
            return None
        return SharedLayer(positions, order[found], layer.centroids)

    @torch.no_grad()
    def apply(self, model: nn.Module) -> None:
        """Write each layer's centroids into its weight of ``model`` (a layer whose parameter is gone or too small
        for its positions is released)."""
        params = dict(model.named_parameters())
        for name in list(self.layers):
            param, layer = params.get(name), self.layers[name]
            if param is None or (layer.positions.numel() and int(layer.positions.max()) >= param.numel()):
                del self.layers[name]
                continue
            self._write(param, layer)
        self._params = {name: params[name] for name in self.layers}

    @torch.no_grad()
    def resync(self, model: nn.Module) -> None:
        """Re-derive every layer from ``model``'s current weights (members zeroed since are dropped), release the
        layers whose nonzero values are no longer all centroids, then :meth:`apply`."""
        params = dict(model.named_parameters())
        for name in list(self.layers):
            param = params.get(name)
            layer = self._resync(param, self.layers[name]) if param is not None else None
            if layer is None:
                del self.layers[name]
            else:
                self.layers[name] = layer
        self.apply(model)

    def on_train_begin(self, state: TrainState) -> None:
        """Bind to the model being trained (see :meth:`resync`) and build the centroids' optimizer from the
        fine-tuning config."""
        self.resync(state.model)
        leaves = []
        for layer in self.layers.values():
            layer.centroids = layer.centroids.detach().clone().requires_grad_(True)
            leaves.append(layer.centroids)
        self._optimizer = make_optimizer(leaves, state.config) if leaves else None

    @torch.no_grad()
    def after_backward(self, state: TrainState) -> None:
        """Sum each cluster's gradients into its centroid; take the raw weights' gradients away from the optimizer.

        Members another callback zeroed since the last step (a pruner in the same fine-tuning) leave their cluster
        first: their gradients are not summed and the weights are no longer written (centroids are never zero, so a
        zero member can only come from outside).
        """
        self._lr = float(state.optimizer.param_groups[0]["lr"])  # the rate the loop's schedule gives this step
        for name, param in self._params.items():
            layer = self.layers[name]
            live = param.detach().reshape(-1)[layer.positions] != 0  # (m,)
            if not bool(live.all()):
                layer = self.layers[name] = SharedLayer(layer.positions[live], layer.labels[live], layer.centroids)
            if param.grad is None:
                layer.centroids.grad = None
                continue
            grads = param.grad.reshape(-1)[layer.positions].to(layer.centroids.dtype)  # (m,)
            summed = torch.zeros_like(layer.centroids).index_add_(0, layer.labels, grads)  # (k,)
            layer.centroids.grad = summed
            param.grad = None  # the loop's optimizer skips this weight: only the centroids move

    @torch.no_grad()
    def on_step(self, state: TrainState) -> None:
        """Step the centroids, keep them off zero, and rewrite the weights from them."""
        if self._optimizer is None:
            return
        if self._lr is not None:
            for group in self._optimizer.param_groups:
                group["lr"] = self._lr
        previous = [layer.centroids.detach().clone() for layer in self.layers.values()]
        self._optimizer.step()
        for (name, layer), before in zip(self.layers.items(), previous, strict=True):
            layer.centroids.copy_(guard_zeros(layer.centroids, before))
            self._write(self._params[name], layer)

    def on_train_end(self, state: TrainState) -> None:
        """Drop the optimizer (its state is per run) and keep plain centroid tensors."""
        self._optimizer = None
        for layer in self.layers.values():
            layer.centroids = layer.centroids.detach()

    def codebooks(self) -> dict[str, list[float]]:
        """Each layer's shared values, sorted (for reports).

        Example:
            >>> trainer = CentroidTrainer()
            >>> trainer.set_layer("w", torch.tensor([0]), torch.tensor([0]), torch.tensor([0.25]))
            >>> trainer.codebooks()
            {'w': [0.25]}
        """
        return {name: sorted(float(c) for c in layer.centroids) for name, layer in self.layers.items()}


def centroid_trainer(callbacks: list[Callback]) -> CentroidTrainer:
    """The centroid trainer in ``callbacks`` (a stage context's persistent list), appended if there is none.

    Example:
        >>> callbacks = []
        >>> centroid_trainer(callbacks) is centroid_trainer(callbacks)
        True
    """
    return find_or_add(callbacks, CentroidTrainer)
