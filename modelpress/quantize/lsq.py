"""Learned Step-size Quantization (LSQ, Esser et al. 2020): a fake quantizer whose step size (scale) is a parameter.

Forward: ``x_hat = round(clamp(x / s, qmin, qmax)) * s``. Backward, as in the paper:

- the straight-through estimator for the input: ``d x_hat / d x = 1`` inside ``[qmin s, qmax s]``, ``0`` outside;
- the step size: ``d x_hat / d s = round(v) - v`` inside the range (``v = x / s``), ``qmin`` below, ``qmax`` above,
  multiplied by the grad-scale factor ``g = 1 / sqrt(N * qmax)`` (``N``: elements one scale covers), so that the
  scale's update is of the same relative size as the weights'.

Both follow from two autograd identities: ``round_ste(v) = v + (round(v) - v).detach()`` and
``grad_scale(s, g) = s * g + (s - s * g).detach()`` (value ``s``, gradient ``g``), as in the paper's code listing.
Weights use the restricted signed range of :func:`modelpress.quantize.primitives.qrange` (``[-(2^(b-1)-1),
2^(b-1)-1]``, so ``-w`` quantizes to ``-q``), per output channel; activations a per-tensor scale over the unsigned
range ``[0, 2^b - 1]`` when the first batch seen is non-negative (after a ReLU), else the signed one.

Example:
    >>> import torch
    >>> quant = LSQQuantizer(bits=4, channels=2)
    >>> w = torch.tensor([[0.1, -0.7], [2.0, 0.5]], requires_grad=True)
    >>> quant.initialize(w)
    >>> quant(w).shape, quant.integers(w)[0].dtype
    (torch.Size([2, 2]), torch.int8)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from modelpress.errors import ConfigError
from modelpress.quantize.primitives import qrange

__all__ = ["LSQQuantizer", "grad_scale", "lsq_fake_quantize", "round_ste"]

_MIN_SCALE = 1e-8  # a step size is kept positive: a zero or negative scale would divide by zero or flip signs


def round_ste(v: Tensor) -> Tensor:
    """``round(v)`` forward, identity backward (the straight-through estimator).

    Example:
        >>> v = torch.tensor([0.4, 1.6], requires_grad=True)
        >>> out = round_ste(v); out.sum().backward()
        >>> out.detach(), v.grad
        (tensor([0., 2.]), tensor([1., 1.]))
    """
    return torch.round(v) + (v - v.detach())  # value exactly round(v); gradient 1


def grad_scale(x: Tensor, factor: float) -> Tensor:
    """Value ``x``, gradient multiplied by ``factor`` (LSQ's grad-scale function).

    Example:
        >>> s = torch.tensor(2.0, requires_grad=True)
        >>> (grad_scale(s, 0.5) * 3).backward(); s.grad
        tensor(1.5000)
    """
    scaled = x * factor
    return x.detach() + (scaled - scaled.detach())  # value exactly x; gradient factor


def lsq_fake_quantize(x: Tensor, scale: Tensor, qmin: int, qmax: int, factor: float) -> Tensor:
    """LSQ fake quantization of ``x`` with step ``scale`` (broadcastable to ``x``), integer range ``[qmin, qmax]``
    and grad-scale ``factor``: gradients flow to ``x`` (STE inside the range) and to ``scale`` (the LSQ gradient).

    Example:
        >>> x = torch.tensor([0.26, 5.0, -0.1], requires_grad=True); s = torch.tensor(0.5, requires_grad=True)
        >>> y = lsq_fake_quantize(x, s, -3, 3, 1.0); y.sum().backward()
        >>> y.detach(), x.grad, s.grad
        (tensor([0.5000, 1.5000, 0.0000]), tensor([1., 0., 1.]), tensor(3.6800))
    """
    s = grad_scale(scale, factor)
    v = torch.clamp(x / s, qmin, qmax)  # [..]: clamp's gradient is 0 outside the range (the STE's cut-off)
    return round_ste(v) * s


class LSQQuantizer(nn.Module):
    """An LSQ fake quantizer: ``bits`` bits, one learned step per channel (``channels`` along dim 0, weights) or one
    per tensor (``channels=None``, activations). Initialized from the first tensor it sees (or :meth:`initialize`)
    to ``2 mean|x| / sqrt(qmax)`` as in the paper.

    Example:
        >>> q = LSQQuantizer(bits=8)
        >>> y = q(torch.rand(4, 3))  # activations: the first batch initializes the step (non-negative: unsigned)
        >>> (q.qmin, q.qmax), bool(q.initialized)
        ((0, 255), True)
    """

    def __init__(self, bits: int, channels: int | None = None, signed: bool | None = None) -> None:
        super().__init__()
        if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
            raise ConfigError("bits", "an integer in [2, 8]", bits, "use 2 to 8 bits (binary: the binary scheme)")
        self.bits, self.channels = bits, channels
        self.signed = signed  # None: decided by the first tensor (weights: always signed)
        self.scale = nn.Parameter(torch.ones(channels if channels is not None else ()))  # [C] or []
        self.register_buffer("initialized", torch.tensor(False))

    @property
    def qmin(self) -> int:
        """Smallest integer level."""
        return qrange(self.bits, self.signed is not False)[0]

    @property
    def qmax(self) -> int:
        """Largest integer level."""
        return qrange(self.bits, self.signed is not False)[1]

    def _shape(self, x: Tensor) -> Tensor:
        """The scale shaped to broadcast against ``x`` (``[C, 1, ...]`` per channel)."""
        if self.channels is None:
            return self.scale
        return self.scale.reshape(-1, *([1] * (x.dim() - 1)))

    def _per_scale(self, x: Tensor) -> int:
        """Elements one scale covers (``N`` of the grad-scale factor): a channel, or a sample for activations."""
        if self.channels is not None:
            return max(1, x[0].numel())
        return max(1, x[0].numel() if x.dim() > 1 else x.numel())

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set the step from ``x``: ``2 mean|x| / sqrt(qmax)`` per channel (or per tensor)."""
        if self.signed is None:
            self.signed = bool(x.min() < 0)
        x = x.detach().float()
        # [] per tensor, [C] per channel
        mean_abs = x.abs().mean() if self.channels is None else x.abs().reshape(x.shape[0], -1).mean(1)
        self.scale.copy_((2 * mean_abs / math.sqrt(self.qmax)).clamp_min(_MIN_SCALE))
        self.initialized.fill_(True)

    def forward(self, x: Tensor) -> Tensor:
        """Fake-quantized ``x`` (same shape), with the STE for ``x`` and LSQ's gradient for the step."""
        if not bool(self.initialized):
            self.initialize(x)
        if self.signed is None:  # loaded from a state dict: the sign of the range is decided again
            self.signed = bool(x.min() < 0)
        factor = 1.0 / math.sqrt(self._per_scale(x) * self.qmax)
        scale = self._shape(x).abs().clamp_min(_MIN_SCALE)
        return lsq_fake_quantize(x, scale, self.qmin, self.qmax, factor)

    @torch.no_grad()
    def integers(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The integers ``x`` fake-quantizes to (int8, same shape) and the steps (float32 ``[C]`` or ``[]``):
        ``integers * steps`` equals :meth:`forward`'s value.

        Example:
            >>> q = LSQQuantizer(bits=2, channels=1); q.initialize(torch.tensor([[1.0, -1.0]]))
            >>> q.integers(torch.tensor([[3.0, -0.2]]))[0]
            tensor([[1, 0]], dtype=torch.int8)
        """
        scale = self.scale.detach().abs().clamp_min(_MIN_SCALE)
        shaped = scale if self.channels is None else scale.reshape(-1, *([1] * (x.dim() - 1)))
        q = torch.clamp(torch.round(x.detach().float() / shaped), self.qmin, self.qmax).to(torch.int8)
        return q, scale.float()

    def extra_repr(self) -> str:
        return f"bits={self.bits}, channels={self.channels}, signed={self.signed}"
