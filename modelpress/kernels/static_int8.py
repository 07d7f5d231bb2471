"""Static W8A8 for ``nn.Linear``: int8 weights (per output channel, symmetric) and int8 inputs with a range fixed by
calibration.

:class:`StaticInt8Linear`: inputs quantized with one calibrated symmetric scale (int8, [-127, 127]), product by
:func:`~modelpress.kernels.int8_dynamic.int8_matmul` (``torch._int_mm``, exact int32), one rescale per output.

There is no integer convolution here. The only integer conv path that paid on this CPU was torch's quantized engine
(``torch.ops.quantized.conv2d`` on ``quint8``/``qint8`` tensors), which torch 2.13 deprecates, so modelpress does not
build on it; ``torch._int_mm`` over unfolded patches was 3-4x *slower* than the float32 convolution (measured on
LeNet-5's layers, not used). Convolutions of a static W8A8 model are stored as integers by
:class:`~modelpress.kernels.quantized_conv.QuantizedConv2d` and computed in float32.

Example:
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> linear = torch.nn.Linear(16, 4)
    >>> x = torch.randn(2, 16)
    >>> q = StaticInt8Linear.from_linear(linear, (x.min(), x.max()))
    >>> float((q(x) - linear(x)).abs().max()) < 0.05
    True
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from modelpress.kernels.int8_dynamic import int8_matmul, quantize_per_channel
from modelpress.quantize.primitives import qparams_from_min_max

__all__ = ["StaticInt8Linear"]

QMAX = 127


def _symmetric_scale(lo: Tensor, hi: Tensor) -> Tensor:
    """One symmetric int8 scale covering ``[lo, hi]`` (float32 scalar)."""
    return qparams_from_min_max(torch.as_tensor(lo), torch.as_tensor(hi), bits=8, symmetric=True).scale.float()


class StaticInt8Linear(nn.Module):
    """``nn.Linear`` as int8 x int8 -> int32 with a calibrated (static) input scale.

    State: ``weight_int8`` int8 ``[out, in]``, ``weight_scale`` float32 ``[out]``, ``input_scale`` float32 ``[]``,
    ``bias`` float32 ``[out]``.

    Example:
        >>> linear = torch.nn.Linear(8, 3)
        >>> q = StaticInt8Linear.from_linear(linear, (torch.tensor(-1.0), torch.tensor(1.0)))
        >>> x = torch.rand(4, 8) * 2 - 1
        >>> float((q(x) - linear(x)).abs().max()) < 0.05
        True
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_features))
        self.register_buffer("input_scale", torch.ones(()))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)

    @classmethod
    def from_linear(cls, linear: nn.Linear, input_range: tuple[Tensor, Tensor]) -> StaticInt8Linear:
        """Quantize ``linear``'s weight per channel; the input scale covers the calibrated ``input_range``."""
        module = cls(linear.in_features, linear.out_features, linear.bias is not None)
        q, scale = quantize_per_channel(linear.weight)
        module.weight_int8.copy_(q)
        module.weight_scale.copy_(scale)
        module.input_scale.copy_(_symmetric_scale(*input_range))
        if linear.bias is not None:
            module.bias.copy_(linear.bias.detach().float())
        return module

    def dequantized_weight(self) -> Tensor:
        """``weight_scale * weight_int8`` as float32 ``[out, in]`` (what the integer product represents).

        Example:
            >>> StaticInt8Linear(4, 2).dequantized_weight().shape
            torch.Size([2, 4])
        """
        return self.weight_int8.float() * self.weight_scale[:, None]

    def forward(self, x: Tensor) -> Tensor:
        """``[..., in]`` -> ``[..., out]``: inputs outside the calibrated range saturate at +-127 steps."""
        rows = x.reshape(-1, self.in_features).float()  # [M, K]
        qx = torch.div(rows, self.input_scale).round_().clamp_(-QMAX, QMAX).to(torch.int8)  # [M, K]
        acc = int8_matmul(qx, self.weight_int8)  # int32 [M, N]
        out = acc.float() * (self.weight_scale * self.input_scale)  # [M, N] * [N]
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
