"""Pure integer-quantization primitives: quantization parameters from a range, quantize, dequantize.

A ``bits``-bit uniform quantizer maps ``x`` to ``q = clamp(round(x / scale) + zero_point, qmin, qmax)`` and back to
``scale * (q - zero_point)``. Two schemes:

- **symmetric**: ``zero_point = 0``, ``q`` in ``[-(2^(b-1) - 1), 2^(b-1) - 1]`` (the restricted range, so ``-x``
  quantizes to ``-q``; int8 uses [-127, 127]), ``scale = max(|min|, |max|) / qmax``, stored as signed ``int8``;
- **asymmetric**: ``q`` in ``[0, 2^b - 1]``, the range widened to contain 0 (so 0 is exact, which zero padding
  and ReLU outputs need), integer ``zero_point``, stored as ``uint8``.

Granularity (shapes of ``scale``/``zero_point``): per tensor ``[]``; per channel along ``axis`` ``[C]``; per group
``[..., K / group_size]``: groups of ``group_size`` consecutive elements along the last (input) dimension.

Example:
    >>> import torch
    >>> w = torch.tensor([[-1.0, 0.5], [2.0, 4.0]])
    >>> lo, hi = reduce_min_max(w, axis=0)
    >>> qp = qparams_from_min_max(lo, hi, bits=8, symmetric=True, axis=0)
    >>> q = quantize(w, qp)
    >>> q
    tensor([[-127,   64],
            [  64,  127]], dtype=torch.int8)
    >>> dequantize(q, qp)
    tensor([[-1.0000,  0.5039],
            [ 2.0157,  4.0000]])
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import torch
from torch import Tensor

from modelpress.errors import ConfigError

__all__ = ["QParams", "Rounding", "check_bits", "dequantize", "fake_quantize", "qparams_from_min_max", "qrange",
           "quantize", "reduce_min_max", "storage_dtype"]

_TINY = torch.finfo(torch.float32).tiny  # a scale below this (an all-zero channel) is replaced by 1


class Rounding(StrEnum):
    """How ``x / scale`` becomes an integer."""

    nearest = "nearest"  # round half to even: error at most half a step inside the range
    stochastic = "stochastic"  # floor(v + u), u ~ U[0, 1): unbiased, E[q] = v; error below one step


def check_bits(bits: int, symmetric: bool = False) -> int:
    """``bits`` if it is a supported width (1 to 8; 2 to 8 for symmetric), else a :class:`ConfigError`.

    Example:
        >>> check_bits(4)
        4
        >>> check_bits(9)
        Traceback (most recent call last):
        ...
        modelpress.errors.ConfigError: bits: expected an integer in [1, 8], got 9. Fix: use 8 bits or fewer \
(int8 storage)
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
        raise ConfigError("bits", "an integer in [1, 8]", bits, "use 8 bits or fewer (int8 storage)")
    if symmetric and bits == 1:
        raise ConfigError("bits", "at least 2 for a symmetric quantizer (1 symmetric bit has the single level 0)",
                          bits, "use bits >= 2, or an asymmetric quantizer for 1 bit")
    return bits


def qrange(bits: int, symmetric: bool) -> tuple[int, int]:
    """The integer range ``(qmin, qmax)`` of a ``bits``-bit quantizer.

    Example:
        >>> qrange(8, True), qrange(4, False)
        ((-127, 127), (0, 15))
    """
    check_bits(bits, symmetric)
    if symmetric:
        return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def storage_dtype(symmetric: bool) -> torch.dtype:
    """The integer dtype holding quantized values: ``int8`` (symmetric) or ``uint8`` (asymmetric).

    Example:
        >>> storage_dtype(True), storage_dtype(False)
        (torch.int8, torch.uint8)
    """
    return torch.int8 if symmetric else torch.uint8


@dataclass(frozen=True)
class QParams:
    """Quantization parameters. ``scale`` float32 and ``zero_point`` int32 share one shape: ``[]`` (per tensor),
    ``[C]`` (per channel along ``axis``) or ``[..., K / group_size]`` (per group along the last dimension).

    Example:
        >>> QParams(torch.tensor(0.5), torch.tensor(0, dtype=torch.int32), 8, True).qrange
        (-127, 127)
    """

    scale: Tensor
    zero_point: Tensor
    bits: int
    symmetric: bool
    axis: int | None = None
    group_size: int | None = None

    @property
    def qrange(self) -> tuple[int, int]:
        """``(qmin, qmax)``."""
        return qrange(self.bits, self.symmetric)


def _check_group(x: Tensor, group_size: int) -> None:
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ConfigError("group_size", "a positive integer", group_size, "use e.g. 32, 64 or 128")
    if x.dim() == 0 or x.shape[-1] % group_size:
        last = x.shape[-1] if x.dim() else 0
        raise ConfigError("group_size", f"a divisor of the last (input) dimension {last}", group_size,
                          "pick a group size that divides the input features, or quantize per channel")


def _check_axis(x: Tensor, axis: int) -> int:
    if not -x.dim() <= axis < x.dim():
        raise ConfigError("axis", f"a dimension of a {x.dim()}-d tensor", axis, "use the channel dimension (0 for "
                          "a Linear weight [out, in])")
    return axis % x.dim()


def reduce_min_max(x: Tensor, axis: int | None = None, group_size: int | None = None) -> tuple[Tensor, Tensor]:
    """Min and max of ``x`` per tensor ``[]``, per channel along ``axis`` ``[C]`` or per group ``[..., K / G]``.

    Example:
        >>> reduce_min_max(torch.arange(8.0).reshape(2, 4), group_size=2)[1]
        tensor([[1., 3.],
                [5., 7.]])
    """
    x = x.detach().float()
    if group_size is not None:
        _check_group(x, group_size)
        grouped = x.reshape(*x.shape[:-1], x.shape[-1] // group_size, group_size)  # [..., K/G, G]
        return grouped.amin(-1), grouped.amax(-1)
    if axis is not None:
        axis = _check_axis(x, axis)
        flat = x.movedim(axis, 0).reshape(x.shape[axis], -1)  # [C, rest]
        return flat.amin(1), flat.amax(1)
    return x.amin(), x.amax()


def qparams_from_min_max(min_val: Tensor, max_val: Tensor, bits: int, symmetric: bool, axis: int | None = None,
                         group_size: int | None = None) -> QParams:
    """Scale and zero point covering ``[min_val, max_val]`` (elementwise: any shape; see :func:`reduce_min_max`).

    Example:
        >>> qp = qparams_from_min_max(torch.tensor(-1.0), torch.tensor(3.0), bits=2, symmetric=False)
        >>> float(qp.scale), int(qp.zero_point)
        (1.3333333730697632, 1)
    """
    qmin, qmax = qrange(bits, symmetric)
    lo = torch.minimum(min_val.detach().float(), torch.zeros(()))  # widened to contain 0: [..]
    hi = torch.maximum(max_val.detach().float(), torch.zeros(()))
    if symmetric:
        scale = torch.maximum(-lo, hi) / qmax
        scale = torch.where(scale >= _TINY, scale, torch.ones(()))
        zero_point = torch.zeros(scale.shape, dtype=torch.int32)
    else:
        scale = (hi - lo) / (qmax - qmin)
        scale = torch.where(scale >= _TINY, scale, torch.ones(()))
        # lo <= 0 so -round(lo / scale) lies in [0, qmax - qmin]: the zero point is a representable level
        zero_point = (qmin - torch.round(lo / scale)).clamp(qmin, qmax).to(torch.int32)
    return QParams(scale, zero_point, bits, symmetric, axis, group_size)


def _broadcast(param: Tensor, x: Tensor, qp: QParams) -> Tensor:
    """``param`` shaped to broadcast against ``x`` (groups expanded along the last dimension)."""
    if qp.group_size is not None:
        _check_group(x, qp.group_size)
        return param.repeat_interleave(qp.group_size, dim=-1)  # [..., K/G] -> [..., K]
    if qp.axis is not None:
        axis = _check_axis(x, qp.axis)
        shape = [1] * x.dim()
        shape[axis] = -1
        return param.reshape(shape)
    return param


def quantize(x: Tensor, qp: QParams, rounding: Rounding | str = Rounding.nearest,
             generator: torch.Generator | None = None) -> Tensor:
    """Integers of ``x`` (same shape) in :func:`storage_dtype`. Stochastic rounding draws from ``generator``.

    Example:
        >>> qp = qparams_from_min_max(torch.tensor(-1.0), torch.tensor(1.0), bits=4, symmetric=True)
        >>> quantize(torch.tensor([0.1, 0.6, -1.0]), qp)
        tensor([ 1,  4, -7], dtype=torch.int8)
        >>> g = torch.Generator().manual_seed(0)
        >>> quantize(torch.tensor([0.1, 0.6, -1.0]), qp, "stochastic", generator=g)
        tensor([ 1,  4, -7], dtype=torch.int8)
    """
    qmin, qmax = qp.qrange
    scale = _broadcast(qp.scale, x, qp)
    zero_point = _broadcast(qp.zero_point, x, qp)
    v = x.detach().float() / scale
    if Rounding(rounding) is Rounding.stochastic:
        v = torch.floor(v + torch.rand(v.shape, generator=generator, dtype=v.dtype, device=v.device))
    else:
        v = torch.round(v)
    return (v + zero_point).clamp_(qmin, qmax).to(storage_dtype(qp.symmetric))


def dequantize(q: Tensor, qp: QParams) -> Tensor:
    """``scale * (q - zero_point)`` as float32, same shape as ``q``.

    Example:
        >>> qp = qparams_from_min_max(torch.tensor(0.0), torch.tensor(15.0), bits=4, symmetric=False)
        >>> dequantize(torch.tensor([0, 7, 15], dtype=torch.uint8), qp)
        tensor([ 0.,  7., 15.])
    """
    scale = _broadcast(qp.scale, q, qp)
    zero_point = _broadcast(qp.zero_point, q, qp)
    return (q.to(torch.int32) - zero_point).float() * scale


def fake_quantize(x: Tensor, qp: QParams) -> Tensor:
    """``dequantize(quantize(x))`` (round to nearest): the value a quantized model computes with.

    Example:
        >>> qp = qparams_from_min_max(torch.tensor(-1.0), torch.tensor(1.0), bits=2, symmetric=True)
        >>> fake_quantize(torch.tensor([0.4, 0.6, -2.0]), qp)
        tensor([ 0.,  1., -1.])
    """
    return dequantize(quantize(x, qp), qp)
