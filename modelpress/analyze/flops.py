"""FLOP formulas for the integer matmul kernels modelpress's runtime modules call, registered with torch's
``FlopCounterMode`` so that a quantized model's FLOPs are counted like its float original's (a multiply-add counts
2, as for ``aten.mm``). Without them torch's counter sees no work in ``_int_mm`` and reports a quantized linear as 0.

Registered once, on import (torch's registry refuses duplicates; ops torch already counts are left alone):

* ``aten._int_mm(a [M, K] int8, b [K, N] int8) -> [M, N] int32``: ``2 M K N``;
* ``aten._weight_int8pack_mm(x [M, K], w [N, K] int8, scales [N])``: ``2 M K N``;
* ``aten._weight_int4pack_mm_for_cpu(x [M, K], packed, group, scales_and_zeros) -> [M, N]``: ``2 M K N``.

Example:
    >>> import torch
    >>> from torch.utils.flop_counter import FlopCounterMode
    >>> a = torch.ones(32, 64, dtype=torch.int8); b = torch.ones(64, 16, dtype=torch.int8)
    >>> with FlopCounterMode(display=False) as counter:
    ...     _ = torch._int_mm(a, b)
    >>> counter.get_total_flops() == 2 * 32 * 64 * 16
    True
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import flop_registry, register_flop_formula

__all__ = ["INTEGER_MATMULS"]

aten = torch.ops.aten


def _rows_by_inner(x_shape: tuple[int, ...], out_shape: tuple[int, ...] | None) -> int:
    """``2 M K N`` from the activation ``[M, K]`` and the output ``[M, N]``."""
    rows, inner = x_shape
    if out_shape is None:
        raise ValueError("integer matmul FLOPs need the output shape")
    return 2 * rows * inner * out_shape[-1]


def _int_mm_flop(a_shape: tuple[int, ...], b_shape: tuple[int, ...], *args: Any, out_shape: Any = None,
                 **kwargs: Any) -> int:
    rows, inner = a_shape
    return 2 * rows * inner * b_shape[1]


def _weight_pack_flop(x_shape: tuple[int, ...], *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return _rows_by_inner(x_shape, out_shape)


INTEGER_MATMULS = {aten._int_mm: _int_mm_flop, aten._weight_int8pack_mm: _weight_pack_flop,
                   aten._weight_int4pack_mm_for_cpu: _weight_pack_flop}

for _op, _formula in INTEGER_MATMULS.items():
    if _op not in flop_registry:
        register_flop_formula(_op)(_formula)
