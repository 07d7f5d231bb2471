"""Binary and ternary weight quantizers, per output channel, trained with the straight-through estimator.

- **binary** (XNOR-Net, Rastegari et al. 2016): ``w_hat = alpha * sign(w)`` with ``alpha = mean |w|`` per channel
  (``sign(0) = +1``), the scale minimizing ``||w - alpha b||^2`` over ``b`` in ``{-1, 1}``;
- **ternary** (TWN, Li et al. 2016): threshold ``delta = 0.7 mean |w|`` per channel, ``w_hat = alpha * sign(w)``
  where ``|w| > delta`` and 0 elsewhere, ``alpha`` = mean of the ``|w|`` above the threshold.

Backward: the STE, ``d w_hat / d w = 1`` (the full-precision weights keep learning; ``alpha`` and ``delta`` are
recomputed from them every step, not learned). :meth:`integers` gives the levels ``{-1, 1}`` or ``{-1, 0, 1}`` as
int8 and ``alpha`` per channel, so a file stores one or two bits of information per weight.

Example:
    >>> import torch
    >>> w = torch.tensor([[0.9, -0.1, -1.1, 0.2]])
    >>> TernaryQuantizer()(w)
    tensor([[ 1.,  0., -1.,  0.]])
    >>> BinaryQuantizer()(w)
    tensor([[ 0.5750, -0.5750, -0.5750,  0.5750]])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["TWN_THRESHOLD", "BinaryQuantizer", "TernaryQuantizer"]

TWN_THRESHOLD = 0.7  # delta = 0.7 * mean |w|: TWN's approximation of the optimal threshold for Gaussian-like weights


def _channels(w: Tensor) -> Tensor:
    """``w`` as ``[C, rest]`` (output channels along dim 0)."""
    return w.reshape(w.shape[0], -1)


def _shaped(alpha: Tensor, w: Tensor) -> Tensor:
    """Per-channel ``alpha [C]`` shaped ``[C, 1, ...]`` to broadcast against ``w``."""
    return alpha.reshape(-1, *([1] * (w.dim() - 1)))


class BinaryQuantizer(nn.Module):
    """``alpha * sign(w)`` per output channel, ``alpha = mean |w|``; STE backward.

    Example:
        >>> q, alpha = BinaryQuantizer().integers(torch.tensor([[0.5, -1.5], [0.0, 2.0]]))
        >>> q, alpha
        (tensor([[ 1, -1],
                [ 1,  1]], dtype=torch.int8), tensor([1., 1.]))
    """

    bits = 1

    @torch.no_grad()
    def integers(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """Levels in ``{-1, 1}`` (int8, ``w``'s shape) and ``alpha`` float32 ``[C]``."""
        w = w.detach().float()
        q = torch.where(w >= 0, 1, -1).to(torch.int8)
        return q, _channels(w).abs().mean(1)

    def forward(self, w: Tensor) -> Tensor:
        """``alpha * sign(w)`` with the straight-through gradient to ``w``."""
        q, alpha = self.integers(w)
        return q.float() * _shaped(alpha, w) + (w - w.detach())  # value: exactly alpha q


class TernaryQuantizer(nn.Module):
    """TWN: ``alpha * sign(w)`` where ``|w| > 0.7 mean |w|`` (per output channel), else 0; STE backward.

    Example:
        >>> q, alpha = TernaryQuantizer().integers(torch.tensor([[1.0, -0.1, -2.0, 0.0]]))
        >>> q, alpha
        (tensor([[ 1,  0, -1,  0]], dtype=torch.int8), tensor([1.5000]))
    """

    bits = 2

    @torch.no_grad()
    def integers(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """Levels in ``{-1, 0, 1}`` (int8, ``w``'s shape) and ``alpha`` float32 ``[C]`` (1 for an all-zero channel)."""
        w = w.detach().float()
        flat = _channels(w).abs()  # [C, rest]
        delta = TWN_THRESHOLD * flat.mean(1, keepdim=True)  # [C, 1]
        keep = flat > delta  # [C, rest]
        count = keep.sum(1)  # [C]
        alpha = torch.where(count > 0, (flat * keep).sum(1) / count.clamp_min(1), torch.ones(()))
        q = (torch.sign(w) * keep.reshape(w.shape)).to(torch.int8)
        return q, alpha

    def forward(self, w: Tensor) -> Tensor:
        """``alpha * ternary(w)`` with the straight-through gradient to ``w``."""
        q, alpha = self.integers(w)
        return q.float() * _shaped(alpha, w) + (w - w.detach())  # value: exactly alpha q
