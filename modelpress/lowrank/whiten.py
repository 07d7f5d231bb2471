"""Activation-aware SVD (SVD-LLM's whitening): truncate ``W S`` instead of ``W``, with ``S S^T = E[x x^T]``.

For a Linear ``y = W x`` (``W [out, in]``) and calibration inputs ``X [N, in]`` with Gram matrix ``G = X^T X``, the
output error of a rank-``r`` approximation ``W'`` is ``||(W - W') X^T||_F = ||(W - W') S||_F`` for any ``S`` with
``S S^T = G``. Taking ``S = Q diag(sqrt(lambda))`` from the eigendecomposition ``G = Q diag(lambda) Q^T``, the best
rank-``r`` ``W'`` is ``trunc_r(W S) S^-1`` (Eckart-Young on ``W S``), so the two layers become
``first = Sigma_r^1/2 V_r^T S^-1`` and ``second = U_r Sigma_r^1/2``. The eigenvalues are clamped at ``1e-10`` of the
largest, which keeps ``S`` invertible without changing ``S S^-1 = I``: at full rank the layer is reproduced exactly
whatever the data. For a 1x1 Conv2d every spatial position is one input row.

Example:
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(6, 4))
    >>> grams = input_grams(model, ["0"], [(torch.randn(5, 6),)])
    >>> tuple(grams["0"].shape), grams["0"].dtype
    ((6, 6), torch.float64)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from modelpress.eval_mode import evaluating

__all__ = ["input_grams", "whitening"]


@torch.no_grad()
def input_grams(model: nn.Module, names: Sequence[str], batches: Iterable[tuple[Tensor, ...]],
                mask_input: int | None = None) -> dict[str, Tensor]:
    """``X^T X`` (float64, ``[in, in]``) of the inputs each named Linear / 1x1 Conv2d receives over ``batches``
    (eval mode), with ``X`` the inputs as rows (``[N, in]``; a conv's ``[B, C, H, W]`` as ``[B*H*W, C]``).
    ``mask_input``: the index of a model input that is a ``[B, T]`` mask of the tokens that count (a transformer's
    attention mask); a layer input ``[B, T, in]`` then contributes only the rows of those tokens (padding tokens
    never reach a masked-mean embedding, so their error does not matter).

    Example:
        >>> layer = torch.nn.Linear(3, 2)
        >>> input_grams(layer, [""], [(torch.ones(4, 3),)])[""].tolist()[0]
        [4.0, 4.0, 4.0]
    """
    grams: dict[str, Tensor] = {}
    mask: list[Tensor | None] = [None]  # the current batch's token mask [B, T]

    def hook(module: nn.Module, args: tuple[Tensor, ...], name: str) -> None:
        x = args[0].detach()
        keep = mask[0]
        if isinstance(module, nn.Conv2d):
            rows = x.movedim(1, -1).reshape(-1, x.shape[1])  # [B*H*W, C]
        elif keep is not None and x.dim() == 3 and tuple(x.shape[:2]) == tuple(keep.shape):
            rows = x[keep.bool()]  # [real tokens, in]
        else:
            rows = x.reshape(-1, x.shape[-1])  # [N, in]
        rows = rows.double()
        grams[name] = grams[name] + rows.T @ rows if name in grams else rows.T @ rows

    handles = [model.get_submodule(name).register_forward_pre_hook(
        lambda m, args, name=name: hook(m, args, name)) for name in names]
    with evaluating(model, handles):
        for inputs in batches:
            mask[0] = inputs[mask_input] if mask_input is not None else None
            model(*inputs)
    return grams


def whitening(gram: Tensor) -> tuple[Tensor, Tensor]:
    """``(S, S_inv)`` (float64, ``[in, in]``) with ``S S^T = gram`` (eigenvalues clamped at 1e-10 of the largest,
    so a rank-deficient gram still gives an invertible ``S``).

    Example:
        >>> x = torch.randn(50, 4, dtype=torch.float64)
        >>> s, s_inv = whitening(x.T @ x)
        >>> bool(torch.allclose(s @ s.T, x.T @ x)), bool(torch.allclose(s @ s_inv, torch.eye(4, dtype=torch.float64)))
        (True, True)
    """
    values, vectors = torch.linalg.eigh(gram.double())  # ascending eigenvalues, orthonormal columns
    floor = max(float(values.max()), 1e-300) * 1e-10
    root = values.clamp_min(floor).sqrt()  # [in]
    return vectors * root[None, :], root[:, None].reciprocal() * vectors.T
