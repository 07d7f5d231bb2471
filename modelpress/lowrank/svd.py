"""Truncated SVD of a Linear ``[out, in]`` weight (or a 1x1 Conv2d's ``[out, in, 1, 1]``) into two layers.

``W = U S V^T`` (float64); at rank ``r`` the first layer gets ``S_r^1/2 V_r^T`` (``[r, in]``) and the second
``U_r S_r^1/2`` (``[out, r]``) plus the original bias, so ``second(first(x)) = W_r x + b`` with ``W_r`` the best
rank-``r`` approximation (Eckart-Young). The factorization saves parameters only when ``r (m + n) < m n``.

Example:
    >>> import torch
    >>> linear = torch.nn.Linear(20, 10)
    >>> pair = factorize_svd(linear, rank=10)
    >>> x = torch.randn(3, 20)
    >>> torch.allclose(pair(x), linear(x), atol=1e-5)
    True
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from modelpress.lowrank.layout import Factorized, build
from modelpress.lowrank.whiten import whitening

__all__ = ["energy_rank", "factorize_svd", "singular_values", "svd_spec"]


def singular_values(weight: Tensor, gram: Tensor | None = None) -> Tensor:
    """The singular values (descending, float64) of a weight viewed as ``[out, in * prod(kernel)]``; with ``gram``
    (a Linear's or 1x1 conv's input Gram matrix ``[in, in]``) those of the whitened ``W S``.

    Example:
        >>> singular_values(torch.eye(3) * 2).tolist(), singular_values(torch.eye(2), 4 * torch.eye(2)).tolist()
        ([2.0, 2.0, 2.0], [2.0, 2.0])
    """
    matrix = weight.detach().double().reshape(weight.shape[0], -1)
    if gram is not None:
        matrix = matrix @ whitening(gram)[0]
    return torch.linalg.svdvals(matrix)


def energy_rank(values: Tensor, energy: float) -> int:
    """The smallest rank whose leading singular values keep ``energy`` of the sum of their squares.

    Example:
        >>> energy_rank(torch.tensor([3.0, 1.0, 0.0]), 0.9), energy_rank(torch.tensor([3.0, 1.0, 0.0]), 1.0)
        (1, 2)
    """
    power = values.double() ** 2
    total = float(power.sum())
    if total == 0:
        return 1
    kept = torch.cumsum(power, 0) / total
    # the tolerance keeps a full-energy request from asking one rank more for rounding
    return min(int((kept < energy - 1e-12).sum()) + 1, len(values))


def svd_spec(name: str, module: nn.Linear | nn.Conv2d, rank: int) -> Factorized:
    """The record of ``module`` factorized at ``rank`` by SVD.

    Example:
        >>> svd_spec("fc", torch.nn.Linear(8, 4), 2).params()
        28
    """
    dtype = str(module.weight.dtype).removeprefix("torch.")
    bias = module.bias is not None
    if isinstance(module, nn.Linear):
        return Factorized(name, "svd-linear", module.in_features, module.out_features, (rank,), bias, dtype=dtype)
    return Factorized(name, "svd-conv", module.in_channels, module.out_channels, (rank,), bias,
                      stride=tuple(module.stride), padding=tuple(module.padding),  # type: ignore[arg-type]
                      dilation=tuple(module.dilation), dtype=dtype)  # type: ignore[arg-type]


@torch.no_grad()
def factorize_svd(module: nn.Linear | nn.Conv2d, rank: int, name: str = "",
                  gram: Tensor | None = None) -> nn.Sequential:
    """Two layers computing ``module`` at ``rank`` (any rank in [1, min(out, in)]; the stage checks it saves).
    With ``gram`` (``X^T X`` of the layer's inputs, ``[in, in]``) the truncation is activation-aware: it minimizes
    the output error on those inputs (see :mod:`modelpress.lowrank.whiten`).

    Example:
        >>> conv = torch.nn.Conv2d(16, 8, 1, stride=2, padding=1)
        >>> pair = factorize_svd(conv, rank=8)
        >>> x = torch.randn(1, 16, 5, 5)
        >>> pair(x).shape == conv(x).shape, torch.allclose(pair(x), conv(x), atol=1e-5)
        (True, True)
    """
    spec = svd_spec(name, module, rank)
    weight = module.weight.detach().double().reshape(spec.out_channels, spec.in_channels)  # [out, in]
    s_inv = None
    if gram is not None:  # truncate W S, then map back: first = Sigma^1/2 V^T S^-1 (then balanced, below)
        whiten, s_inv = whitening(gram)  # [in, in] each
        weight = weight @ whiten
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)  # [out, k], [k], [k, in]
    root = s[:rank].sqrt()
    first = root[:, None] * vh[:rank]  # [r, in]
    second = u[:, :rank] * root[None, :]  # [out, r]
    if s_inv is not None:
        first = first @ s_inv
        # Rebalance each rank component (exact: the product is unchanged). S scales with the root of the number of
        # calibration rows N, so the whitened factors come out about N^(1/4) too large in `second` and too small in
        # `first` (MiniLM's FFN, 8 calibration batches: row norms ~0.15 vs column norms ~40). A per-parameter optimizer
        # (Adam) then moves `first` hundreds of times faster, relative to its size, than `second` during recovery.
        # Equal norms per component are what the plain SVD's Sigma^1/2 split gives.
        balance = (second.norm(dim=0) / first.norm(dim=1).clamp_min(1e-300)).sqrt()  # [r]
        first, second = first * balance[:, None], second / balance[None, :]
    layers = build(spec)
    layers[0].weight.copy_(first.reshape(layers[0].weight.shape))
    layers[1].weight.copy_(second.reshape(layers[1].weight.shape))
    if module.bias is not None:
        layers[1].bias.copy_(module.bias)
    return layers.train(module.training)
