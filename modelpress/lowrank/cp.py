"""CP (canonical polyadic) decomposition of a k x k Conv2d as pointwise -> depthwise -> pointwise (ALS in torch).

``separable``: the 4-way kernel ``W [O, I, kh, kw] ~= sum_r lambda_r a_r (x) b_r (x) h_r (x) v_r`` becomes a 1x1 conv
``I -> R`` (rows ``b_r``), a depthwise ``(kh, 1)`` conv (``h_r``), a depthwise ``(1, kw)`` conv (``v_r``) and a 1x1
conv ``R -> O`` (``lambda_r a_r``, the original bias) — Lebedev et al. 2015. ``full``: the 3-way tensor
``[O, I, kh*kw]`` is decomposed instead and its spatial factor is one depthwise k x k conv.

The decomposition is alternating least squares (:func:`cp_als`) written in torch, float64, from an SVD
initialization (leading left singular vectors of each unfolding, seeded random columns where the rank exceeds a
mode's size), as tensorly's ``parafac`` does. tensorly itself was tried and dropped: on this 2-core machine its ALS
took about 4 s per iteration on a 128x128x3x3 kernel at rank 157 (numpy backend; about 1 s with its pytorch backend)
against about 0.1 s here, and it added a dependency for 40 lines.

Example:
    >>> import torch
    >>> conv = torch.nn.Conv2d(4, 6, 3, padding=1)
    >>> layers = factorize_cp(conv, 4, spatial="full")
    >>> [tuple(m.weight.shape) for m in layers]
    [(4, 4, 1, 1), (4, 1, 3, 3), (6, 4, 1, 1)]
    >>> layers(torch.randn(1, 4, 7, 7)).shape
    torch.Size([1, 6, 7, 7])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from modelpress.lowrank.tucker import conv_spec

__all__ = ["build_cp", "cp_als", "factorize_cp", "max_cp_rank"]

_LETTERS = "abcdefgh"


def cp_als(tensor: Tensor, rank: int, iterations: int = 200, seed: int = 0,
           tol: float = 1e-10) -> tuple[Tensor, list[Tensor]]:
    """CP of ``tensor`` (float64) at ``rank`` by alternating least squares: ``(weights [R], factors [size_n, R])``
    with unit-norm factor columns, ``tensor ~= sum_r weights[r] * outer(factors[0][:, r], factors[1][:, r], ...)``.
    Stops after ``iterations`` sweeps or when the relative fit changes by less than ``tol``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> a, b, c = (torch.randn(n, 2, dtype=torch.float64, generator=g) for n in (4, 5, 3))
        >>> t = torch.einsum("ar,br,cr->abc", a, b, c)  # an exact rank-2 tensor
        >>> weights, factors = cp_als(t, 2, iterations=300)
        >>> bool(torch.allclose(torch.einsum("r,ar,br,cr->abc", weights, *factors), t, atol=1e-6))
        True
    """
    t = tensor.double()
    modes = t.dim()
    generator = torch.Generator().manual_seed(seed)
    factors = []
    for n in range(modes):
        unfolded = t.movedim(n, 0).reshape(t.shape[n], -1)  # [size_n, rest]
        u = torch.linalg.svd(unfolded, full_matrices=False)[0][:, :rank]  # [size_n, min(size_n, R)]
        extra = torch.randn(t.shape[n], rank - u.shape[1], dtype=torch.float64, generator=generator)
        factors.append(torch.cat([u, extra], dim=1))  # [size_n, R]
    weights = torch.ones(rank, dtype=torch.float64)
    norm, previous = torch.linalg.vector_norm(t), float("inf")
    letters = _LETTERS[:modes]
    for _ in range(iterations):
        for n in range(modes):
            others = [m for m in range(modes) if m != n]
            # MTTKRP: the unfolding times the Khatri-Rao product of the other factors, as one einsum [size_n, R]
            spec = f"{letters}," + ",".join(f"{letters[m]}r" for m in others) + f"->{letters[n]}r"
            product = torch.einsum(spec, t, *[factors[m] for m in others])
            gram = torch.ones(rank, rank, dtype=torch.float64)
            for m in others:
                gram = gram * (factors[m].T @ factors[m])  # Hadamard product of the Gram matrices [R, R]
            factor = torch.linalg.lstsq(gram, product.T).solution.T  # [size_n, R]
            weights = torch.linalg.vector_norm(factor, dim=0).clamp_min(1e-300)
            factors[n] = factor / weights
        rebuilt = torch.einsum(f"r,{','.join(f'{c}r' for c in letters)}->{letters}", weights, *factors)
        error = float(torch.linalg.vector_norm(rebuilt - t) / norm.clamp_min(1e-300))
        if abs(previous - error) < tol:
            break
        previous = error
    return weights, factors


def max_cp_rank(conv: nn.Conv2d, spatial: str) -> int:
    """The largest CP rank a kernel can need: the product of its mode sizes but the largest (a rank bound).

    Example:
        >>> max_cp_rank(torch.nn.Conv2d(8, 16, 3), "separable"), max_cp_rank(torch.nn.Conv2d(8, 16, 3), "full")
        (72, 72)
    """
    kh, kw = conv.kernel_size
    sizes = [conv.out_channels, conv.in_channels] + ([kh, kw] if spatial == "separable" else [kh * kw])
    product = 1
    for size in sizes:
        product *= size
    return product // max(sizes)


@torch.no_grad()
def factorize_cp(conv: nn.Conv2d, rank: int, spatial: str = "separable", name: str = "", iterations: int = 200,
                 seed: int = 0) -> nn.Sequential:
    """The CP layers of ``conv`` at ``rank`` (``spatial``: ``separable`` or ``full``).

    Example:
        >>> layers = factorize_cp(torch.nn.Conv2d(3, 5, 3, stride=2), 2, iterations=5)
        >>> [tuple(m.stride) for m in layers]
        [(1, 1), (2, 1), (1, 2), (1, 1)]
    """
    o, i, kh, kw = conv.weight.shape
    w = conv.weight.detach().double()
    tensor = w if spatial == "separable" else w.reshape(o, i, kh * kw)  # [O, I, kh, kw] or [O, I, kh*kw]
    weights, factors = cp_als(tensor, rank, iterations, seed)
    a, b = factors[0] * weights[None, :], factors[1]  # [O, R], [I, R]
    form = "cp-separable" if spatial == "separable" else "cp-full"
    layers = build_cp(conv, name, form, rank)
    layers[0].weight.copy_(b.T[:, :, None, None])  # [R, I, 1, 1]
    if spatial == "separable":
        layers[1].weight.copy_(factors[2].T[:, None, :, None])  # [R, 1, kh, 1]
        layers[2].weight.copy_(factors[3].T[:, None, None, :])  # [R, 1, 1, kw]
    else:
        layers[1].weight.copy_(factors[2].T.reshape(rank, 1, kh, kw))  # [R, 1, kh, kw]
    layers[-1].weight.copy_(a[:, :, None, None])  # [O, R, 1, 1]
    if conv.bias is not None:
        layers[-1].bias.copy_(conv.bias)
    return layers.train(conv.training)


def build_cp(conv: nn.Conv2d, name: str, form: str, rank: int) -> nn.Sequential:
    """The untrained CP layers of ``conv`` (see :func:`modelpress.lowrank.layout.build`).

    Example:
        >>> len(build_cp(torch.nn.Conv2d(3, 5, 3), "c", "cp-separable", 2))
        4
    """
    from modelpress.lowrank.layout import build

    return build(conv_spec(name, conv, form, (rank,)))
