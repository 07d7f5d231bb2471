"""W8A8 dynamic quantization: int8 weights (per output channel, symmetric) times int8 activations (per token,
symmetric, quantized on the fly), multiplied by torch's integer GEMM ``torch._int_mm`` (int8 x int8 -> int32).

``y[m, n] = sx[m] * sw[n] * sum_k qx[m, k] * qw[n, k] + b[n]``: the int32 accumulator is exact, the scales are
applied once per output. On this CPU (AVX-512 VNNI) ``_int_mm`` is several times faster than an fp32 GEMM of the
same shape (``benchmarks/quant_linear_kernels.py``); the activation quantization and the dequantization cost a few
elementwise passes on top.

Where ``_int_mm`` cannot be used (:func:`int_mm_supported`: an empty batch, a reduction so long that the int32
accumulator could overflow, or a non-CPU device whose kernel needs m > 16 and k, n multiples of 8) the same integer
product is computed in float64, which is exact for it (|acc| < 2^53), so both paths give the same result.
Activation quantization and rescaling are memory-bound elementwise passes that cost more than the integer GEMM
itself, so they are kept few (two reductions and three passes each way) and run on blocks of ``CHUNK_ROWS`` rows
whose intermediates stay in cache (1.3-1.9x faster than one pass over 4096 rows, see
docs/benchmarks/quantization.md).

Example:
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> linear = torch.nn.Linear(64, 32)
    >>> q = Int8DynamicLinear.from_linear(linear)
    >>> x = torch.randn(20, 64)
    >>> float((q(x) - linear(x)).abs().max()) < 0.05
    True
    >>> {k: v.dtype for k, v in q.state_dict().items()}
    {'weight_int8': torch.int8, 'weight_scale': torch.float32, 'bias': torch.float32}
"""

from __future__ import annotations

from typing import Self

import torch
from torch import Tensor, nn

__all__ = ["Int8DynamicLinear", "Int8LinearWeights", "int8_matmul", "int_mm_supported", "quantize_per_channel",
           "quantize_per_token"]

QMAX = 127  # symmetric restricted range [-127, 127]: -x quantizes to -q, and |acc| <= 127^2 * k
_TINY = torch.finfo(torch.float32).tiny
CHUNK_ROWS = 512  # rows per block: the activations, int32 accumulator and output of a block stay in cache (measured)
MAX_EXACT_K = (2**31 - 1) // (QMAX * QMAX)  # longest reduction whose int32 accumulator cannot overflow (133,143)


def quantize_per_token(x: Tensor) -> tuple[Tensor, Tensor]:
    """Rows of ``x`` ``[M, K]`` to int8 ``[M, K]`` with one symmetric scale per row ``[M, 1]`` (absmax / 127).

    Example:
        >>> q, s = quantize_per_token(torch.tensor([[1.0, -0.5], [0.0, 0.0]]))
        >>> q, s
        (tensor([[127, -64],
                [  0,   0]], dtype=torch.int8), tensor([[0.0079],
                [1.0000]]))
    """
    # max |x| per row from two reductions (no |x| temporary): [M, 1]
    scale = torch.maximum(x.amax(-1, keepdim=True), x.amin(-1, keepdim=True).neg_()).float().div_(QMAX)
    scale = torch.where(scale >= _TINY, scale, torch.ones((), dtype=scale.dtype))  # all-zero row: any scale
    # no clamp needed: |x| <= 127 s up to two roundings, so |x / s| <= 127 * (1 + 2^-23) and rounds to at most 127
    q = torch.div(x, scale).round_().to(torch.int8)  # [M, K]
    return q, scale


def quantize_per_channel(weight: Tensor) -> tuple[Tensor, Tensor]:
    """A weight ``[N, K]`` to int8 ``[N, K]`` and one symmetric scale per output channel ``[N]``.

    Example:
        >>> quantize_per_channel(torch.tensor([[2.0, -1.0]]))
        (tensor([[127, -64]], dtype=torch.int8), tensor([0.0157]))
    """
    q, scale = quantize_per_token(weight.detach().float())
    return q, scale.reshape(-1)


def int_mm_supported(m: int, k: int, n: int, device: torch.device) -> bool:
    """Whether ``torch._int_mm`` computes this ``[m, k] x [k, n]`` product exactly.

    On CPU every shape measured works except a reduction of length 1 with two or more outputs (torch 2.13 returns
    uninitialized values for ``k == 1, n >= 2``: found by a property test, checked against an int64 product for k in
    1..69); elsewhere (CUDA) the kernel needs m > 16 and k, n multiples of 8.

    Example:
        >>> int_mm_supported(1, 384, 384, torch.device("cpu")), int_mm_supported(4, 200_000, 8, torch.device("cpu"))
        (True, False)
        >>> int_mm_supported(4, 1, 8, torch.device("cpu"))
        False
    """
    if m == 0 or k == 0 or k > MAX_EXACT_K or (k == 1 and n > 1):
        return False
    if device.type == "cpu":
        return True
    return m > 16 and k % 8 == 0 and n % 8 == 0


def int8_matmul(qx: Tensor, qw: Tensor) -> Tensor:
    """The exact integer product ``qx @ qw.T`` of int8 ``[M, K]`` and ``[N, K]``: int32 ``[M, N]`` from
    ``torch._int_mm``, or int64 (computed exactly in float64) when :func:`int_mm_supported` says no.

    Example:
        >>> a = torch.tensor([[1, -2]], dtype=torch.int8); b = torch.tensor([[3, 4], [127, 127]], dtype=torch.int8)
        >>> int8_matmul(a, b)
        tensor([[  -5, -127]], dtype=torch.int32)
    """
    m, k = qx.shape
    if int_mm_supported(m, k, qw.shape[0], qx.device):
        return torch._int_mm(qx, qw.t())  # [M, K] x [K, N] (a transposed view: no copy) -> int32 [M, N]
    return (qx.double() @ qw.double().t()).long()  # exact: |acc| <= 127^2 * K < 2^53


class Int8LinearWeights(nn.Module):
    """The weights shared by the int8 Linear runtime modules: per-output-channel symmetric int8 values and scales.

    State: ``weight_int8`` int8 ``[out, in]``, ``weight_scale`` float32 ``[out]``, ``bias`` float32 ``[out]`` (or
    None). Subclasses add ``forward`` (how the product is computed).

    Example:
        >>> Int8LinearWeights.from_linear(torch.nn.Linear(4, 2)).weight_int8.dtype
        torch.int8
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_features))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Self:
        """Quantize ``linear``'s weight per output channel (symmetric int8, absmax / 127); the bias stays float32."""
        module = cls(linear.in_features, linear.out_features, linear.bias is not None)
        q, scale = quantize_per_channel(linear.weight)
        module.weight_int8.copy_(q)
        module.weight_scale.copy_(scale)
        if linear.bias is not None:
            module.bias.copy_(linear.bias.detach().float())
        return module

    def dequantized_weight(self) -> Tensor:
        """The weight the layer computes with, float32 ``[out, in]``."""
        return self.weight_int8.float() * self.weight_scale[:, None]

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Int8DynamicLinear(Int8LinearWeights):
    """``nn.Linear`` computed as int8 x int8 -> int32 with dynamic per-token activation scales (inference only).

    State: ``weight_int8`` int8 ``[out, in]``, ``weight_scale`` float32 ``[out]``, ``bias`` float32 ``[out]``.

    Example:
        >>> Int8DynamicLinear(8, 4)(torch.ones(2, 3, 8)).shape
        torch.Size([2, 3, 4])
    """

    def forward(self, x: Tensor) -> Tensor:
        """``[..., in]`` -> ``[..., out]`` in ``x``'s dtype, in blocks of at most ``CHUNK_ROWS`` rows (eager), or in
        one pass that inductor fuses (under ``torch.compile``, see :meth:`fused_forward`)."""
        if torch.compiler.is_compiling():
            return self.fused_forward(x)
        rows = x.reshape(-1, self.in_features).float()  # [M, K]
        out = torch.empty(rows.shape[0], self.out_features, dtype=torch.float32, device=rows.device)  # [M, N]
        for start in range(0, rows.shape[0], CHUNK_ROWS):
            # rows are independent (per-token scales, exact integer sums), so blocking changes no bit of the result
            block = rows[start:start + CHUNK_ROWS]
            qx, sx = quantize_per_token(block)  # int8 [m, K], [m, 1]
            acc = int8_matmul(qx, self.weight_int8)  # int32 (int64 from the fallback) [m, N]
            scaled = acc.float().mul_(sx)  # [m, N] * [m, 1] (a mixed int * float mul is 3x slower)
            if self.bias is not None:
                torch.addcmul(self.bias, scaled, self.weight_scale, out=out[start:start + CHUNK_ROWS])
            else:
                torch.mul(scaled, self.weight_scale, out=out[start:start + CHUNK_ROWS])
        return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def fused_forward(self, x: Tensor) -> Tensor:
        """The same product as :meth:`forward`, without row blocks: one reduction and one elementwise pass before
        ``_int_mm`` and one after it, which inductor (``torch.compile``) fuses into a kernel each, together with the
        neighbouring LayerNorm / GELU / residual ops. Eager, it equals :meth:`forward` up to float rounding.

        Example:
            >>> layer = Int8DynamicLinear.from_linear(torch.nn.Linear(16, 4))
            >>> x = torch.randn(3, 16)
            >>> torch.allclose(layer.fused_forward(x), layer(x), atol=1e-6)
            True
        """
        rows = x.reshape(-1, self.in_features).float()  # [M, K]
        scale = rows.abs().amax(-1, keepdim=True).div(QMAX)  # [M, 1] per-token symmetric scale
        scale = torch.where(scale >= _TINY, scale, torch.ones((), dtype=scale.dtype))  # all-zero row: any scale
        qx = torch.div(rows, scale).round().to(torch.int8)  # [M, K], |q| <= 127 (see quantize_per_token)
        if int_mm_supported(rows.shape[0], self.in_features, self.out_features, rows.device):
            acc = torch._int_mm(qx, self.weight_int8.t())  # int32 [M, N]
        else:
            acc = int8_matmul(qx, self.weight_int8)
        out = acc.float() * scale * self.weight_scale  # [M, N] * [M, 1] * [N]
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)
