"""A multi-head attention layer whose width inside (heads x head dim) is free of its input and output width.

``nn.MultiheadAttention`` ties the number of heads times the head dim to the embedding size, so removing a head
would change the residual stream's width. :class:`PrunedMultiheadAttention` keeps the same parameter names
(``in_proj_weight`` ``[3 * heads * head_dim, embed_dim]``, ``in_proj_bias``, ``out_proj`` Linear
``heads * head_dim -> out_dim``), the same call signature and output, and the original softmax scale
``1 / sqrt(original head dim)``, so a model with pruned heads computes what the original computed with those heads'
outputs removed. ``_qkv_same_embed_dim`` is False so ``nn.TransformerEncoderLayer`` takes its regular (non-fused)
path, which calls this module.

Example:
    >>> import torch
    >>> attn = PrunedMultiheadAttention(embed_dim=16, num_heads=2, head_dim=4, out_dim=16, batch_first=True)
    >>> out, weights = attn(torch.randn(3, 5, 16), torch.randn(3, 5, 16), torch.randn(3, 5, 16))
    >>> out.shape, weights.shape
    (torch.Size([3, 5, 16]), torch.Size([3, 5, 5]))
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PrunedMultiheadAttention", "from_attention"]


class PrunedMultiheadAttention(nn.Module):
    """Multi-head attention with ``num_heads`` heads of ``head_dim`` on ``embed_dim`` inputs, ``out_dim`` outputs."""

    _qkv_same_embed_dim = False  # keeps nn.TransformerEncoderLayer off its fused fast path

    def __init__(self, embed_dim: int, num_heads: int, head_dim: int, out_dim: int, dropout: float = 0.0,
                 bias: bool = True, batch_first: bool = False, scale: float | None = None) -> None:
        super().__init__()
        self.embed_dim, self.num_heads, self.head_dim, self.out_dim = embed_dim, num_heads, head_dim, out_dim
        self.dropout, self.batch_first = dropout, batch_first
        self.scale = scale if scale is not None else 1.0 / math.sqrt(head_dim)
        inner = num_heads * head_dim
        self.in_proj_weight = nn.Parameter(torch.empty(3 * inner, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * inner)) if bias else None
        self.out_proj = nn.Linear(inner, out_dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def config(self) -> dict[str, Any]:
        """The constructor arguments (what a provenance record stores)."""
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads, "head_dim": self.head_dim,
                "out_dim": self.out_dim, "dropout": self.dropout, "bias": self.in_proj_bias is not None,
                "batch_first": self.batch_first, "scale": self.scale}

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True, attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        """As ``nn.MultiheadAttention.forward`` (2-D or per-batch masks; bool masks: True = not attended)."""
        if self.batch_first:  # work in [N, L, E]
            q_in, k_in, v_in = query, key, value
        else:
            q_in, k_in, v_in = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        n, length, _ = q_in.shape
        source = k_in.shape[1]
        inner = self.num_heads * self.head_dim
        w, b = self.in_proj_weight, self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else b.split(inner)
        wq, wk, wv = w.split(inner)

        def heads(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:  # [N, S, E] -> [N, H, S, d]
            return F.linear(x, weight, bias).view(n, x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(q_in, wq, bq), heads(k_in, wk, bk), heads(v_in, wv, bv)
        mask = _additive(attn_mask, q.dtype)  # [L, S] or [N*H, L, S]
        if mask is not None and mask.dim() == 3:
            mask = mask.view(n, -1, length, source)
            if mask.shape[1] != self.num_heads:
                raise ValueError(f"a per-head attn_mask needs {self.num_heads} heads, got {mask.shape[1]}")
        padding = _additive(key_padding_mask, q.dtype)  # [N, S]
        if padding is not None:
            padding = padding.view(n, 1, 1, source)
            mask = padding if mask is None else mask + padding
        if mask is None and is_causal:
            mask = torch.full((length, source), float("-inf"), dtype=q.dtype, device=q.device).triu(1)
        drop = self.dropout if self.training else 0.0
        if need_weights:
            scores = (q @ k.transpose(-2, -1)) * self.scale  # [N, H, L, S]
            if mask is not None:
                scores = scores + mask
            weights = scores.softmax(-1)
            context = F.dropout(weights, drop, self.training) @ v
        else:
            weights = None
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop, scale=self.scale)
        out = self.out_proj(context.transpose(1, 2).reshape(n, length, inner))  # [N, L, out]
        if not self.batch_first:
            out = out.transpose(0, 1)
        if weights is not None and average_attn_weights:
            weights = weights.mean(1)
        return out, weights


def _additive(mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    if mask is None or mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))


def from_attention(module: nn.Module, num_heads: int, head_dim: int, scale: float) -> PrunedMultiheadAttention:
    """A :class:`PrunedMultiheadAttention` holding ``module``'s (already sliced) projection weights.

    Example:
        >>> attn = nn.MultiheadAttention(8, 2)
        >>> from_attention(attn, 2, 4, 0.5).in_proj_weight.shape
        torch.Size([24, 8])
    """
    new = PrunedMultiheadAttention(module.in_proj_weight.shape[1], num_heads, head_dim,
                                   module.out_proj.weight.shape[0], float(module.dropout),
                                   module.in_proj_bias is not None, bool(module.batch_first), scale)
    new.in_proj_weight = module.in_proj_weight
    new.in_proj_bias = module.in_proj_bias
    new.out_proj.weight = module.out_proj.weight
    new.out_proj.bias = module.out_proj.bias
    return new.train(module.training)
