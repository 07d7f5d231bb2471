"""``HashedLinear``: a Linear layer whose ``[out, in]`` weight is ``K`` shared values picked by a position hash.

The virtual weight is ``V[i, j] = sign[i, j] * values[bucket[i, j]]`` with ``bucket`` and ``sign`` from
:func:`~modelpress.share.hashing.position_hash` (seeded, recomputed on construction). Only ``values`` ``(K,)`` and
``bias`` ``(out,)`` are parameters, so they are all the state dict (and a compressed file) holds; ``bucket`` and
``sign`` are non-persistent buffers. Gradients reach ``values`` through the gather: each shared value receives the
(sign-corrected) sum of the gradients of the positions hashed to it, as in Chen et al. (2015).

Example:
    >>> import torch
    >>> layer = HashedLinear(6, 4, buckets=3, seed=1)
    >>> sorted(layer.state_dict()), layer(torch.randn(2, 6)).shape
    (['bias', 'values'], torch.Size([2, 4]))
    >>> layer.virtual_weight().abs().unique().numel() <= 3
    True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional

from modelpress.share.config import HashInit
from modelpress.share.hashing import position_hash

__all__ = ["HashedLinear"]


class HashedLinear(nn.Module):
    """``y = x V^T + b`` with the hashed virtual weight ``V`` (see the module docstring).

    Example:
        >>> HashedLinear(300, 100, buckets=3750, seed=0).extra_repr()
        'in_features=300, out_features=100, buckets=3750, sign=True, seed=0'
    """

    def __init__(self, in_features: int, out_features: int, buckets: int, bias: bool = True, sign: bool = True,
                 seed: int = 0, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.buckets, self.sign, self.seed = buckets, sign, seed
        self.values = nn.Parameter(torch.empty(buckets, dtype=dtype))  # (K,) the shared values
        self.bias = nn.Parameter(torch.empty(out_features, dtype=dtype)) if bias else None
        index, signs = position_hash(out_features * in_features, buckets, seed, sign)
        # (out, in) int64 bucket of every weight; not persistent: recomputed from the seed, never stored
        self.register_buffer("bucket", torch.from_numpy(index).view(out_features, in_features), persistent=False)
        flips = None if signs is None else torch.from_numpy(signs).to(dtype or torch.get_default_dtype())
        self.register_buffer("flip", None if flips is None else flips.view(out_features, in_features),
                             persistent=False)  # (out, in) +-1
        self.reset_parameters(torch.Generator().manual_seed(seed))

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """nn.Linear's default init (uniform in +-1/sqrt(in)) for the values and the bias.

        Example:
            >>> layer = HashedLinear(4, 2, buckets=3)
            >>> layer.reset_parameters(torch.Generator().manual_seed(1))
            >>> bool(layer.values.abs().max() <= 0.5)
            True
        """
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features else 0.0
        self.values.uniform_(-bound, bound, generator=generator)
        if self.bias is not None:
            self.bias.uniform_(-bound, bound, generator=generator)

    def virtual_weight(self) -> Tensor:
        """The ``[out, in]`` weight the layer computes with.

        Example:
            >>> layer = HashedLinear(3, 2, buckets=2, sign=False)
            >>> torch.equal(layer.virtual_weight(), layer.values[layer.bucket])
            True
        """
        weight = self.values[self.bucket]  # (out, in) gathered shared values
        return weight * self.flip if self.flip is not None else weight

    def forward(self, x: Tensor) -> Tensor:
        return functional.linear(x, self.virtual_weight(), self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, buckets={self.buckets}, "
                f"sign={self.sign}, seed={self.seed}")

    @classmethod
    @torch.no_grad()
    def from_linear(cls, linear: nn.Linear, buckets: int, sign: bool, seed: int,
                    init: HashInit = HashInit.project) -> HashedLinear:
        """A hashed layer replacing ``linear``: its values fitted to ``linear``'s weight (``project``: each value is
        the mean of the sign-corrected weights hashed to it, the least-squares fit) or freshly drawn (``random``).

        Example:
            >>> lin = torch.nn.Linear(8, 8)
            >>> hashed = HashedLinear.from_linear(lin, buckets=16, sign=True, seed=0)
            >>> hashed.values.shape, torch.equal(hashed.bias, lin.bias)
            (torch.Size([16]), True)
        """
        weight = linear.weight
        layer = cls(linear.in_features, linear.out_features, buckets, linear.bias is not None, sign, seed,
                    dtype=weight.dtype)
        if init is HashInit.random:
            return layer
        target = weight.detach().float()
        if layer.flip is not None:
            target = target * layer.flip.float()  # sign-corrected: V = flip * w[bucket]  <=>  flip * V = w[bucket]
        flat = layer.bucket.reshape(-1)
        sums = torch.zeros(buckets, dtype=torch.float64).index_add_(0, flat, target.reshape(-1).double())
        counts = torch.bincount(flat, minlength=buckets).double()
        layer.values.copy_((sums / counts.clamp_min(1)).to(weight.dtype))  # empty buckets: 0
        if linear.bias is not None:
            layer.bias.copy_(linear.bias)
        return layer
