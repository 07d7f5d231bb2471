"""Weight-only int8: int8 weights (per output channel, symmetric) with float activations.

Two execution paths, chosen by the number of rows (tokens) ``M`` of the input, because that is what the measurements
on this CPU say (``benchmarks/quant_linear_kernels.py``, docs/benchmarks/quantization.md):

- ``M <= KERNEL_MAX_ROWS`` (and ``in_features`` a multiple of 16, see :func:`kernel_supported`): torch's
  ``_weight_int8pack_mm`` with bf16 activations (memory-bound small batches, where reading 1-byte weights pays).
  Its fp32-activation path in torch 2.13 CPU is a slow reference loop (about 100x slower than an fp32 GEMM), so
  activations go in as bf16 and the output comes back as float32;
- larger ``M``: dequantize the weight to float32 and call ``F.linear`` (GEMM-bound: the fp32 GEMM is faster
  than the bf16 int8-weight kernel here).

The layer is therefore a storage format (a quarter of fp32) with a small-batch fast path, not a large-batch speedup.
Outputs are deterministic for a given input, but a row's result differs slightly between the two paths (bf16
activations in one), so it can depend on the batch size.

Example:
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> linear = torch.nn.Linear(64, 32)
    >>> q = Int8WeightOnlyLinear.from_linear(linear)
    >>> x = torch.randn(40, 64)
    >>> float((q(x) - linear(x)).abs().max()) < 0.02, float((q(x[:1]) - linear(x[:1])).abs().max()) < 0.05
    (True, True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from modelpress.kernels.int8_dynamic import Int8LinearWeights

__all__ = ["KERNEL_MAX_ROWS", "Int8WeightOnlyLinear", "kernel_supported"]

KERNEL_MAX_ROWS = 16  # at most this many rows: the int8-weight kernel; more: dequantize + fp32 GEMM (measured)
KERNEL_K_MULTIPLE = 16  # torch 2.13's bf16 _weight_int8pack_mm returns garbage or crashes for other in_features


def kernel_supported(rows: int, in_features: int, device: torch.device) -> bool:
    """Whether the forward uses ``torch._weight_int8pack_mm`` for ``rows`` rows (else: dequantize + fp32 GEMM).

    The kernel was measured to be exact (to bf16 rounding) only when ``in_features`` is a multiple of 16; for
    other sizes (e.g. 4, 17, 20, 100) it returned NaN/garbage or crashed the process in torch 2.13 CPU.

    Example:
        >>> kernel_supported(1, 384, torch.device("cpu")), kernel_supported(1, 100, torch.device("cpu"))
        (True, False)
    """
    return (0 < rows <= KERNEL_MAX_ROWS and in_features % KERNEL_K_MULTIPLE == 0 and device.type == "cpu")


class Int8WeightOnlyLinear(Int8LinearWeights):
    """``nn.Linear`` with int8 weights (per-channel symmetric scales) and float activations (inference only).

    State: ``weight_int8`` int8 ``[out, in]``, ``weight_scale`` float32 ``[out]``, ``bias`` float32 ``[out]``.

    Example:
        >>> Int8WeightOnlyLinear(16, 4, bias=False)(torch.ones(3, 16)).shape
        torch.Size([3, 4])
    """

    def kernel_matmul(self, rows: Tensor) -> Tensor:
        """``rows [M, in] @ W^T`` by ``torch._weight_int8pack_mm`` (bf16 activations and scales), float32 ``[M, out]``.

        Example:
            >>> m = Int8WeightOnlyLinear(16, 2, bias=False)
            >>> m.kernel_matmul(torch.ones(1, 16))
            tensor([[0., 0.]])
        """
        return torch._weight_int8pack_mm(rows.bfloat16(), self.weight_int8, self.weight_scale.bfloat16()).float()

    def forward(self, x: Tensor) -> Tensor:
        """``[..., in]`` -> ``[..., out]`` in ``x``'s dtype."""
        rows = x.reshape(-1, self.in_features)  # [M, K]
        if kernel_supported(rows.shape[0], self.in_features, rows.device):
            out = self.kernel_matmul(rows)
            if self.bias is not None:
                out.add_(self.bias)
        else:
            out = F.linear(rows.float(), self.dequantized_weight(), self.bias)
        return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

