"""Tucker-2 of a k x k Conv2d over its output and input channel modes (HOSVD, in torch).

The kernel ``W [O, I, kh, kw]`` is approximated as ``core x_0 U_out x_1 U_in`` with ``U_out [O, r_out]`` the leading
left singular vectors of the mode-0 unfolding ``[O, I*kh*kw]``, ``U_in [I, r_in]`` those of the mode-1 unfolding
``[I, O*kh*kw]`` and ``core = W x_0 U_out^T x_1 U_in^T`` (``[r_out, r_in, kh, kw]``). As layers: a 1x1 conv by
``U_in^T``, the k x k core conv with the original stride, padding and dilation, and a 1x1 conv by ``U_out`` with the
original bias. At full ranks (``r_out = O``, ``r_in = I``) the projections are orthogonal bases, so the output equals
the original's to float rounding. (HOSVD rather than an iterated Tucker (HOOI, tensorly's ``partial_tucker``): it
is exact at full rank, deterministic, needs no extra dependency and is what the fine-tuning starts from anyway.)

Example:
    >>> import torch
    >>> conv = torch.nn.Conv2d(6, 5, 3, stride=2, padding=1)
    >>> layers = factorize_tucker2(conv, (5, 6))
    >>> x = torch.randn(2, 6, 9, 9)
    >>> torch.allclose(layers(x), conv(x), atol=1e-5)
    True
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from modelpress.lowrank.layout import Factorized, build

__all__ = ["conv_spec", "factorize_tucker2", "mode_singular_values"]


def mode_singular_values(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Singular values (float64, descending) of a conv kernel's output-mode and input-mode unfoldings.

    Example:
        >>> out_values, in_values = mode_singular_values(torch.randn(8, 4, 3, 3))
        >>> out_values.shape, in_values.shape
        (torch.Size([8]), torch.Size([4]))
    """
    w = weight.detach().double()
    return (torch.linalg.svdvals(w.reshape(w.shape[0], -1)),  # [O, I*kh*kw]
            torch.linalg.svdvals(w.transpose(0, 1).reshape(w.shape[1], -1)))  # [I, O*kh*kw]


def conv_spec(name: str, conv: nn.Conv2d, form: str, ranks: tuple[int, ...]) -> Factorized:
    """The record of a k x k ``conv`` factorized as ``form`` (``tucker2``, ``cp-full``, ``cp-separable``).

    Example:
        >>> conv_spec("c", torch.nn.Conv2d(4, 8, 3, padding=1), "tucker2", (2, 2)).padding
        (1, 1)
    """
    return Factorized(name, form, conv.in_channels, conv.out_channels, ranks, conv.bias is not None,
                      tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.padding),  # type: ignore[arg-type]
                      tuple(conv.dilation), str(conv.weight.dtype).removeprefix("torch."))  # type: ignore[arg-type]


@torch.no_grad()
def factorize_tucker2(conv: nn.Conv2d, ranks: tuple[int, int], name: str = "") -> nn.Sequential:
    """Three convs computing ``conv`` through a Tucker-2 core of ``ranks = (r_out, r_in)``.

    Example:
        >>> layers = factorize_tucker2(torch.nn.Conv2d(8, 16, 3, bias=False), (4, 2))
        >>> [tuple(m.weight.shape) for m in layers]
        [(2, 8, 1, 1), (4, 2, 3, 3), (16, 4, 1, 1)]
    """
    r_out, r_in = ranks
    w = conv.weight.detach().double()  # [O, I, kh, kw]
    u_out = torch.linalg.svd(w.reshape(w.shape[0], -1), full_matrices=False)[0][:, :r_out]  # [O, r_out]
    u_in = torch.linalg.svd(w.transpose(0, 1).reshape(w.shape[1], -1), full_matrices=False)[0][:, :r_in]  # [I, r_in]
    core = torch.einsum("oihw,or,is->rshw", w, u_out, u_in)  # [r_out, r_in, kh, kw]
    layers = build(conv_spec(name, conv, "tucker2", (r_out, r_in)))
    layers[0].weight.copy_(u_in.T[:, :, None, None])  # [r_in, I, 1, 1]
    layers[1].weight.copy_(core)
    layers[2].weight.copy_(u_out[:, :, None, None])  # [O, r_out, 1, 1]
    if conv.bias is not None:
        layers[2].bias.copy_(conv.bias)
    return layers.train(conv.training)
