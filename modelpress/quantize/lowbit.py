"""b-bit weights (2 to 8 bits) in modelpress's integer storage modules: the group-wise asymmetric quantizer that the
int4 module's storage uses, generalized to fewer levels, and the builders filling the runtime modules with given
integers.

- ``bits <= 4``, Linear / Embedding: :class:`~modelpress.kernels.int4_weight.Int4WeightOnlyLinear` /
  :class:`~modelpress.kernels.quantized_embedding.QuantizedEmbedding` (4-bit storage) whose values use only
  ``[0, 2^bits - 1]`` (zero points too). Storage and kernel are the int4 ones (the kernel computes any value in
  [0, 15]); the file's entropy coder sees only ``2^bits`` levels per nibble, so a 2-bit layer costs about 2 bits per
  weight in the file, not 4.
- ``bits >= 5``, Linear / Embedding: int8 per-row symmetric storage with levels ``|q| <= 2^(bits-1) - 1``;
- Conv2d: :class:`~modelpress.kernels.quantized_conv.QuantizedConv2d`, per output channel symmetric levels
  ``|q| <= 2^(bits-1) - 1`` (computed in float32 after dequantizing, as that module documents).

Scales are rounded to the storage dtype (bf16 for groups, float32 per row) *before* the integers are computed, so
stored integers and stored scales agree and a packed file reproduces the model exactly.

Example:
    >>> import torch
    >>> w = torch.tensor([[0.0, 1.5, 3.0, -1.5]])
    >>> u, scale, zero = group_qparams_quantize(w, bits=2, group_size=4)
    >>> u, zero, float(scale[0, 0])
    (tensor([[1, 2, 3, 0]], dtype=torch.uint8), tensor([[1]], dtype=torch.uint8), 1.5)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from modelpress.errors import ConfigError
from modelpress.kernels.int4_weight import Int4WeightOnlyLinear, pack_uint4
from modelpress.kernels.int8_weight import Int8WeightOnlyLinear
from modelpress.kernels.quantized_conv import QuantizedConv2d
from modelpress.kernels.quantized_embedding import QuantizedEmbedding
from modelpress.quantize.observers import MSEObserver
from modelpress.quantize.primitives import check_bits, qparams_from_min_max, qrange, reduce_min_max

__all__ = ["check_group_size", "group_qparams", "group_qparams_quantize", "grouped_module", "row_qparams",
           "symmetric_module"]


def check_group_size(width: int, group_size: int) -> int:
    """``group_size`` if it is even and divides ``width`` (the input features), else a :class:`ConfigError`.

    Example:
        >>> check_group_size(384, 32)
        32
        >>> check_group_size(100, 32)
        Traceback (most recent call last):
        ...
        modelpress.errors.ConfigError: group_size: expected an even divisor of the 100 input features, got 32. \
Fix: pick a group size that divides the input features, e.g. 20 or 50 here
    """
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2 or group_size % 2 \
            or width % group_size:
        hints = [g for g in range(2, width + 1, 2) if width % g == 0 and g >= 16][:2] or [width]
        raise ConfigError("group_size", f"an even divisor of the {width} input features", group_size,
                          f"pick a group size that divides the input features, e.g. {' or '.join(map(str, hints))} "
                          "here")
    return group_size


def group_qparams(block: Tensor, bits: int, mse_clip: bool = False) -> tuple[Tensor, Tensor]:
    """Asymmetric ``bits``-bit parameters of each row of ``block`` ``[N, G]`` (one group per row): scale ``[N]``
    (rounded to bf16, the storage dtype) and integer zero point ``[N]`` in ``[0, 2^bits - 1]``. ``mse_clip``: the
    clip ratio of the range minimizing each row's squared error (:class:`MSEObserver`), else min-max.

    Example:
        >>> scale, zero = group_qparams(torch.tensor([[-1.0, 2.0]]), bits=2)
        >>> float(scale[0]), int(zero[0])
        (1.0, 1)
    """
    check_bits(bits)
    if mse_clip:
        observer = MSEObserver(bits=bits, symmetric=False, axis=0)
        observer.update(block)
        lo, hi = observer.min_max()
    else:
        lo, hi = reduce_min_max(block, axis=0)
    qp = qparams_from_min_max(lo, hi, bits, symmetric=False)
    # zero point from the fp32 scale, values from the bf16 scale: the int4 module's convention (quantize_groups_uint4)
    return qp.scale.bfloat16().float(), qp.zero_point


def row_qparams(weight: Tensor, bits: int) -> Tensor:
    """Symmetric per-row scale ``[N]`` of ``weight`` ``[N, ...]`` for levels ``|q| <= 2^(bits-1) - 1`` (float32).

    Example:
        >>> row_qparams(torch.tensor([[-2.0, 1.0], [0.0, 0.0]]), bits=3)
        tensor([0.6667, 1.0000])
    """
    _, qmax = qrange(bits, symmetric=True)
    amax = weight.detach().float().reshape(weight.shape[0], -1).abs().amax(1)
    scale = amax / qmax
    return torch.where(scale > 0, scale, torch.ones(()))


def group_qparams_quantize(weight: Tensor, bits: int, group_size: int,
                           mse_clip: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Round-to-nearest group quantization of ``weight`` ``[N, K]``: values uint8 ``[N, K]`` in
    ``[0, 2^bits - 1]``, bf16 scales ``[N, K / G]``, uint8 zero points ``[N, K / G]``.

    Example:
        >>> u, s, z = group_qparams_quantize(torch.arange(8.0).reshape(1, 8), bits=3, group_size=4)
        >>> u
        tensor([[0, 2, 5, 7, 4, 5, 6, 7]], dtype=torch.uint8)
    """
    n, k = weight.shape
    check_group_size(k, group_size)
    w = weight.detach().float()
    scale, zero = group_qparams(w.reshape(-1, group_size), bits, mse_clip)  # [N * K / G]
    scale, zero = scale.reshape(n, -1), zero.reshape(n, -1)  # [N, K / G]
    s, z = scale.repeat_interleave(group_size, 1), zero.repeat_interleave(group_size, 1)  # [N, K]
    u = (torch.round(w / s) + z).clamp_(0, 2**bits - 1)
    return u.to(torch.uint8), scale.bfloat16(), zero.to(torch.uint8)


def grouped_module(module: nn.Module, u: Tensor, scale: Tensor, zero: Tensor, group_size: int,
                   bias: Tensor | None = None) -> nn.Module:
    """An int4-storage module (Linear or Embedding) of ``module``'s shape holding values ``u`` ``[N, K]`` (at most
    15), bf16 ``scale`` and uint8 ``zero`` ``[N, K / G]``; ``bias`` replaces the layer's bias (bias correction).

    Example:
        >>> lin = nn.Linear(4, 2)
        >>> u, s, z = group_qparams_quantize(lin.weight, bits=2, group_size=4)
        >>> type(grouped_module(lin, u, s, z, 4)).__name__
        'Int4WeightOnlyLinear'
    """
    new: Int4WeightOnlyLinear | QuantizedEmbedding
    if isinstance(module, nn.Embedding):
        new = QuantizedEmbedding(module.num_embeddings, module.embedding_dim, 4, group_size)
    else:
        new = Int4WeightOnlyLinear(module.in_features, module.out_features, group_size, module.bias is not None)
        if module.bias is not None:
            new.bias.copy_((module.bias if bias is None else bias).detach().float())
    new.weight_uint4x2.copy_(pack_uint4(u))
    new.weight_scale.copy_(scale.bfloat16())
    new.weight_zero.copy_(zero.to(torch.uint8))
    if isinstance(new, Int4WeightOnlyLinear):
        new.refresh_kernel_weights()
    return new


def symmetric_module(module: nn.Module, q: Tensor, scale: Tensor, bias: Tensor | None = None) -> nn.Module:
    """An int8-storage module of ``module``'s kind holding levels ``q`` (int8, the weight's shape) and per-row
    float32 ``scale`` ``[N]``: Linear -> Int8WeightOnlyLinear, Conv2d -> QuantizedConv2d, Embedding -> int8 rows.

    Example:
        >>> conv = nn.Conv2d(1, 2, 3)
        >>> type(symmetric_module(conv, torch.zeros(2, 1, 3, 3, dtype=torch.int8), torch.ones(2))).__name__
        'QuantizedConv2d'
    """
    q = q.to(torch.int8)
    if isinstance(module, nn.Conv2d):
        new_conv = QuantizedConv2d.from_integers(module, q, scale)
        if bias is not None:
            new_conv.bias.copy_(bias.detach().float())
            new_conv.refresh()
        return new_conv
    if isinstance(module, nn.Embedding):
        emb = QuantizedEmbedding(module.num_embeddings, module.embedding_dim, 8)
        emb.weight_int8.copy_(q)
        emb.weight_scale.copy_(scale.float())
        return emb
    if not isinstance(module, nn.Linear):
        raise ConfigError("layer", "an nn.Linear, nn.Conv2d or nn.Embedding", type(module).__name__,
                          "select only Linear, Conv2d and Embedding layers")
    new = Int8WeightOnlyLinear(module.in_features, module.out_features, module.bias is not None)
    new.weight_int8.copy_(q)
    new.weight_scale.copy_(scale.float())
    if module.bias is not None:
        new.bias.copy_((module.bias if bias is None else bias).detach().float())
    return new
