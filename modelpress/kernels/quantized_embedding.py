"""An embedding table stored as integers: int8 per row (symmetric) or int4 in groups of ``group_size`` columns
(asymmetric, two values per byte). A lookup gathers the integer rows and dequantizes only those.

Embedding tables are most of a small transformer's bytes (all-MiniLM-L6-v2: 11.7 M of its 22.7 M parameters are
the word embeddings), so a quantized model file is only small if they are quantized too.

Example:
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> table = torch.nn.Embedding(100, 64)
    >>> q = QuantizedEmbedding.from_embedding(table, bits=4, group_size=32)
    >>> ids = torch.tensor([[1, 5, 99]])
    >>> q(ids).shape, float((q(ids) - table(ids)).abs().max()) < 0.3
    (torch.Size([1, 3, 64]), True)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from modelpress.errors import ConfigError
from modelpress.kernels.int4_weight import pack_uint4, quantize_groups_uint4, unpack_uint4
from modelpress.kernels.int8_dynamic import quantize_per_channel
from modelpress.quantize.primitives import reduce_min_max

__all__ = ["QuantizedEmbedding"]


class QuantizedEmbedding(nn.Module):
    """``nn.Embedding`` lookup from int8 rows (``bits=8``) or int4 groups (``bits=4``); inference only.

    State, ``bits=8``: ``weight_int8`` int8 ``[V, D]``, ``weight_scale`` float32 ``[V]``. ``bits=4``:
    ``weight_uint4x2`` uint8 ``[V, D / 2]``, ``weight_scale`` bfloat16 ``[V, D / G]``, ``weight_zero`` uint8
    ``[V, D / G]``.

    Example:
        >>> QuantizedEmbedding(10, 8, bits=8)(torch.tensor([0, 3])).shape
        torch.Size([2, 8])
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, bits: int = 8, group_size: int = 32) -> None:
        super().__init__()
        if bits not in (4, 8):
            raise ConfigError("QuantizedEmbedding.bits", "4 or 8", bits, "use 8 (per-row int8) or 4 (int4 groups)")
        if bits == 4 and (group_size < 2 or group_size % 2 or embedding_dim % group_size):
            raise ConfigError("group_size", f"an even divisor of embedding_dim {embedding_dim}", group_size,
                              "pick a group size that divides the embedding width")
        self.num_embeddings, self.embedding_dim, self.bits, self.group_size = num_embeddings, embedding_dim, bits, \
            group_size
        if bits == 8:
            self.register_buffer("weight_int8", torch.zeros(num_embeddings, embedding_dim, dtype=torch.int8))
            self.register_buffer("weight_scale", torch.ones(num_embeddings))
        else:
            groups = embedding_dim // group_size
            self.register_buffer("weight_uint4x2", torch.full((num_embeddings, embedding_dim // 2), 0x88,
                                                              dtype=torch.uint8))
            self.register_buffer("weight_scale", torch.ones(num_embeddings, groups, dtype=torch.bfloat16))
            self.register_buffer("weight_zero", torch.full((num_embeddings, groups), 8, dtype=torch.uint8))

    @classmethod
    def from_embedding(cls, embedding: nn.Embedding, bits: int = 8, group_size: int = 32) -> QuantizedEmbedding:
        """Quantize ``embedding``'s table (min-max ranges per row or per group)."""
        module = cls(embedding.num_embeddings, embedding.embedding_dim, bits, group_size)
        weight = embedding.weight.detach().float()  # [V, D]
        if bits == 8:
            q, scale = quantize_per_channel(weight)
            module.weight_int8.copy_(q)
            module.weight_scale.copy_(scale)
        else:
            lo, hi = reduce_min_max(weight, group_size=group_size)
            u, scale, zero = quantize_groups_uint4(weight, lo, hi, group_size)
            module.weight_uint4x2.copy_(pack_uint4(u))
            module.weight_scale.copy_(scale)
            module.weight_zero.copy_(zero)
        return module

    def _rows(self, ids: Tensor) -> Tensor:
        """Dequantized rows for flat ``ids`` ``[n]``: float32 ``[n, D]``."""
        if self.bits == 8:
            return self.weight_int8[ids].float() * self.weight_scale[ids, None]
        u = unpack_uint4(self.weight_uint4x2[ids]).to(torch.int32)  # [n, D]
        zero = self.weight_zero[ids].to(torch.int32).repeat_interleave(self.group_size, 1)  # [n, D]
        scale = self.weight_scale[ids].float().repeat_interleave(self.group_size, 1)
        return (u - zero).float() * scale

    def dequantized_weight(self) -> Tensor:
        """The whole table as float32 ``[V, D]``."""
        return self._rows(torch.arange(self.num_embeddings))

    def forward(self, ids: Tensor) -> Tensor:
        """Integer ids ``[...]`` -> float32 ``[..., D]``."""
        return self._rows(ids.reshape(-1)).reshape(*ids.shape, self.embedding_dim)

    def extra_repr(self) -> str:
        group = f", group_size={self.group_size}" if self.bits == 4 else ""
        return f"{self.num_embeddings}, {self.embedding_dim}, bits={self.bits}{group}"
