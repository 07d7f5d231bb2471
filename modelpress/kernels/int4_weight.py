"""Weight-only int4, group-wise: 4-bit weights with one bf16 scale and one 4-bit zero point per group of
``group_size`` consecutive input features (asymmetric: ``w = scale * (u - zero)``, ``u`` in [0, 15]).

The state dict holds the plain values, two per byte (``weight_uint4x2`` ``[out, in / 2]`` uint8: low nibble = even
column, high nibble = odd column), so a file stores 4-bit integers in a layout that does not depend on the machine;
the kernel layout of ``torch._convert_weight_to_int4pack_for_cpu`` is built when the weights are set or loaded.

Execution, as measured on this CPU (``benchmarks/quant_linear_kernels.py``): at most ``KERNEL_MAX_ROWS`` rows go
through ``torch._weight_int4pack_mm_for_cpu`` with bf16 activations (its fp32-activation path in torch 2.13 is a
slow reference, ~100x slower than an fp32 GEMM); larger batches dequantize the weight to float32 and call
``F.linear``. The kernel needs ``out_features`` a multiple of 16 and ``group_size`` in {32, 64, 128, 256}
(:func:`kernel_supported`); other layers always take the dequantize path (still stored as int4).

Example:
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> linear = torch.nn.Linear(128, 32)
    >>> q = Int4WeightOnlyLinear.from_linear(linear, group_size=32)
    >>> x = torch.randn(4, 128)
    >>> float((q(x) - linear(x)).abs().max()) < 0.2
    True
    >>> {k: (v.dtype, tuple(v.shape)) for k, v in q.state_dict().items() if k != "bias"}
    {'weight_uint4x2': (torch.uint8, (32, 64)), 'weight_scale': (torch.bfloat16, (32, 4)), \
'weight_zero': (torch.uint8, (32, 4))}
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modelpress.errors import ConfigError
from modelpress.quantize.observers import MSEObserver
from modelpress.quantize.primitives import QParams, qparams_from_min_max, quantize, reduce_min_max

__all__ = ["KERNEL_GROUP_SIZES", "KERNEL_MAX_ROWS", "Int4WeightOnlyLinear", "kernel_supported", "pack_uint4",
           "quantize_groups_uint4", "unpack_uint4"]

KERNEL_MAX_ROWS = 16  # at most this many rows: the int4 kernel; more: dequantize + fp32 GEMM (measured)
KERNEL_GROUP_SIZES = (32, 64, 128, 256)  # what _weight_int4pack_mm_for_cpu accepts
_INNER_K_TILES = 2  # a layout parameter of torch's CPU int4 packing


def pack_uint4(u: Tensor) -> Tensor:
    """Values in [0, 15] ``[..., K]`` (K even) to bytes ``[..., K / 2]``: low nibble even column, high nibble odd.

    Example:
        >>> pack_uint4(torch.tensor([[1, 2, 15, 0]], dtype=torch.uint8))
        tensor([[33, 15]], dtype=torch.uint8)
    """
    u = u.to(torch.uint8)
    return u[..., 0::2] | (u[..., 1::2] << 4)


def unpack_uint4(packed: Tensor) -> Tensor:
    """Inverse of :func:`pack_uint4`: bytes ``[..., K / 2]`` to uint8 values in [0, 15] ``[..., K]``.

    Example:
        >>> unpack_uint4(torch.tensor([[33, 15]], dtype=torch.uint8))
        tensor([[ 1,  2, 15,  0]], dtype=torch.uint8)
    """
    return torch.stack([packed & 0x0F, packed >> 4], dim=-1).reshape(*packed.shape[:-1], -1)


def quantize_groups_uint4(weight: Tensor, lo: Tensor, hi: Tensor, group_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Asymmetric 4-bit group quantization of ``weight`` ``[N, K]`` covering ``[lo, hi]`` ``[N, K / G]``: values
    uint8 ``[N, K]`` in [0, 15], bf16 scales ``[N, K / G]`` (the values are computed with the bf16-rounded scale,
    so stored integers and stored scales agree) and uint8 zero points ``[N, K / G]``.

    Example:
        >>> u, s, z = quantize_groups_uint4(torch.tensor([[0.0, 1.5, 3.0, -1.5]]), torch.tensor([[-1.5]]),
        ...                                 torch.tensor([[3.0]]), group_size=4)
        >>> u, s, z
        (tensor([[ 5, 10, 15,  0]], dtype=torch.uint8), tensor([[0.3008]], dtype=torch.bfloat16), \
tensor([[5]], dtype=torch.uint8))
    """
    qp = qparams_from_min_max(lo, hi, bits=4, symmetric=False, group_size=group_size)
    scale = qp.scale.bfloat16()  # [N, K / G]: bf16 halves the per-group overhead; the kernel reads bf16 anyway
    qp = QParams(scale.float(), qp.zero_point, 4, False, group_size=group_size)
    return quantize(weight, qp), scale, qp.zero_point.to(torch.uint8)


def kernel_supported(out_features: int, group_size: int) -> bool:
    """Whether torch's CPU int4 kernel can run this layer (else it always dequantizes).

    Example:
        >>> kernel_supported(384, 32), kernel_supported(10, 32), kernel_supported(384, 16)
        (True, False, False)
    """
    return out_features % 16 == 0 and group_size in KERNEL_GROUP_SIZES


class Int4WeightOnlyLinear(nn.Module):
    """``nn.Linear`` with group-wise asymmetric int4 weights and float activations (inference only).

    State: ``weight_uint4x2`` uint8 ``[out, in / 2]``, ``weight_scale`` bfloat16 ``[out, in / G]``, ``weight_zero``
    uint8 ``[out, in / G]`` (values 0..15), ``bias`` float32 ``[out]``.

    Example:
        >>> Int4WeightOnlyLinear(64, 16, group_size=32)(torch.ones(2, 64)).shape
        torch.Size([2, 16])
    """

    def __init__(self, in_features: int, out_features: int, group_size: int = 32, bias: bool = True) -> None:
        super().__init__()
        if group_size < 2 or group_size % 2 or in_features % group_size:
            raise ConfigError("group_size", f"an even divisor of in_features {in_features}", group_size,
                              "pick a group size that divides the input features, e.g. 32, 64 or 128")
        self.in_features, self.out_features, self.group_size = in_features, out_features, group_size
        groups = in_features // group_size
        self.register_buffer("weight_uint4x2", torch.full((out_features, in_features // 2), 0x88, dtype=torch.uint8))
        self.register_buffer("weight_scale", torch.ones(out_features, groups, dtype=torch.bfloat16))
        self.register_buffer("weight_zero", torch.full((out_features, groups), 8, dtype=torch.uint8))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)
        self._packed: tuple[Tensor, Tensor] | None = None
        self.refresh_kernel_weights()

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int = 32, mse_clip: bool = False) -> Int4WeightOnlyLinear:
        """Quantize ``linear``'s weight per group (asymmetric 4-bit, min-max range, or with ``mse_clip`` the
        clip ratio of each group minimizing its squared error, see :class:`MSEObserver`)."""
        module = cls(linear.in_features, linear.out_features, group_size, linear.bias is not None)
        weight = linear.weight.detach().float()  # [N, K]
        if mse_clip:
            observer = MSEObserver(bits=4, symmetric=False, axis=0)
            observer.update(weight.reshape(-1, group_size))  # one channel per group: [N * K / G, G]
            lo, hi = observer.min_max()
            lo, hi = lo.reshape(weight.shape[0], -1), hi.reshape(weight.shape[0], -1)  # [N, K / G]
        else:
            lo, hi = reduce_min_max(weight, group_size=group_size)  # [N, K / G]
        u, scale, zero = quantize_groups_uint4(weight, lo, hi, group_size)
        module.weight_uint4x2.copy_(pack_uint4(u))
        module.weight_scale.copy_(scale)
        module.weight_zero.copy_(zero)
        if linear.bias is not None:
            module.bias.copy_(linear.bias.detach().float())
        module.refresh_kernel_weights()
        return module

    def qparams(self) -> QParams:
        """The group-wise quantization parameters (scale ``[out, in / G]``, zero point int32)."""
        zero = self.weight_zero.to(torch.int32)
        return QParams(self.weight_scale.float(), zero, 4, False, group_size=self.group_size)

    def weight_uint4(self) -> Tensor:
        """The stored 4-bit values, uint8 ``[out, in]`` in [0, 15]."""
        return unpack_uint4(self.weight_uint4x2)

    def dequantized_weight(self) -> Tensor:
        """``scale * (u - zero)`` as float32 ``[out, in]``."""
        u = self.weight_uint4().to(torch.int32)  # [N, K]
        zero = self.weight_zero.to(torch.int32).repeat_interleave(self.group_size, 1)  # [N, K]
        return (u - zero).float() * self.weight_scale.float().repeat_interleave(self.group_size, 1)

    @torch.no_grad()
    def refresh_kernel_weights(self) -> None:
        """Rebuild the kernel's packed layout from the stored values (after they were set or loaded)."""
        if not kernel_supported(self.out_features, self.group_size):
            self._packed = None
            return
        with torch.inference_mode(False):
            packed = torch._convert_weight_to_int4pack_for_cpu(self.weight_uint4().to(torch.int32), _INNER_K_TILES)
            # the kernel computes (u - 8) * scale + z, so z = (8 - zero) * scale gives scale * (u - zero)
            scale = self.weight_scale.float()  # [N, K / G]
            offset = (8 - self.weight_zero.float()) * scale
            scale_and_zero = torch.stack([scale.t(), offset.t()], dim=-1).bfloat16().contiguous()  # [K / G, N, 2]
        self._packed = (packed, scale_and_zero)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args)
        self.refresh_kernel_weights()

    def kernel_matmul(self, rows: Tensor) -> Tensor:
        """``rows [M, in] @ W^T`` by ``torch._weight_int4pack_mm_for_cpu`` (bf16 activations), float32 ``[M, out]``.

        Example:
            >>> Int4WeightOnlyLinear(32, 16, bias=False).kernel_matmul(torch.ones(1, 32)).abs().max()
            tensor(0.)
        """
        if self._packed is None:
            raise ConfigError("Int4WeightOnlyLinear.kernel_matmul", "out_features a multiple of 16 and group_size "
                              f"in {KERNEL_GROUP_SIZES}", f"<out {self.out_features}, group {self.group_size}>",
                              "use forward(), which dequantizes for such layers")
        packed, scale_and_zero = self._packed
        return torch._weight_int4pack_mm_for_cpu(rows.bfloat16(), packed, self.group_size, scale_and_zero).float()

    def forward(self, x: Tensor) -> Tensor:
        """``[..., in]`` -> ``[..., out]`` in ``x``'s dtype."""
        rows = x.reshape(-1, self.in_features)  # [M, K]
        if self._packed is not None and 0 < rows.shape[0] <= KERNEL_MAX_ROWS and rows.device.type == "cpu":
            out = self.kernel_matmul(rows)
            if self.bias is not None:
                out.add_(self.bias)
        else:
            out = F.linear(rows.float(), self.dequantized_weight(), self.bias)
        return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, group_size={self.group_size}, "
                f"bias={self.bias is not None}")
