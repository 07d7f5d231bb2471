"""Masks from scores, for each sparsity pattern: unstructured, N:M along the input dimension, and blocks.

A pattern prunes *units*: single weights (unstructured), or ``rows x cols`` blocks of the weight matrix
``[out, in * prod(kernel)]``. N:M has no free count: every group of M consecutive weights along the input
dimension keeps its N highest-scoring ones (for a convolution, groups run along the input channels at each kernel
position, the layout sparse tensor cores use). A mask is a bool tensor shaped like the weight, True = kept.

Example:
    >>> import torch
    >>> scores = torch.tensor([[4.0, 1.0, 3.0, 2.0]])
    >>> build_mask(scores, Pattern.model_validate("2:4"), prune=0).int().tolist()
    [[1, 0, 1, 0]]
    >>> build_mask(scores, Pattern(), prune=3).int().tolist()
    [[1, 0, 0, 0]]
"""

from __future__ import annotations

import torch
from torch import Tensor

from modelpress.prune.config import Pattern, PatternKind

__all__ = ["build_mask", "pattern_support", "unit_count", "unit_scores"]


def pattern_support(shape: torch.Size | tuple[int, ...], pattern: Pattern) -> str | None:
    """Why a weight of this shape cannot take ``pattern`` (None: it can).

    Example:
        >>> pattern_support((10, 6), Pattern.model_validate("2:4"))
        'the input dimension 6 is not a multiple of M=4'
    """
    if pattern.kind is PatternKind.n_m:
        assert pattern.m is not None  # the config validator guarantees n and m for n:m
        inputs = shape[1]  # Linear: in; Conv: in/groups (groups run along channels at each kernel position)
        if inputs % pattern.m:
            return f"the input dimension {inputs} is not a multiple of M={pattern.m}"
    if pattern.kind is PatternKind.block:
        assert pattern.rows is not None and pattern.cols is not None
        out, cols = shape[0], _columns(shape)
        if out % pattern.rows or cols % pattern.cols:
            return f"the weight matrix [{out}, {cols}] is not divisible into {pattern.describe()} blocks"
    return None


def _columns(shape: torch.Size | tuple[int, ...]) -> int:
    cols = 1
    for d in shape[1:]:
        cols *= d
    return cols


def unit_count(shape: torch.Size | tuple[int, ...], pattern: Pattern) -> int:
    """How many prunable units a weight of this shape has (weights, or blocks).

    Example:
        >>> unit_count((8, 8), Pattern.model_validate("1x4"))
        16
    """
    if pattern.kind is PatternKind.block:
        assert pattern.rows is not None and pattern.cols is not None
        return (shape[0] // pattern.rows) * (_columns(shape) // pattern.cols)
    return shape[0] * _columns(shape)


def unit_scores(scores: Tensor, pattern: Pattern) -> Tensor:
    """The flat score of every unit: the weight's own score, or the mean score of a block.

    Example:
        >>> unit_scores(torch.tensor([[1.0, 3.0], [5.0, 7.0]]), Pattern.model_validate("1x2")).tolist()
        [2.0, 6.0]
    """
    if pattern.kind is PatternKind.block:
        return _block_scores(scores, pattern).flatten()
    return scores.flatten()


def _block_scores(scores: Tensor, pattern: Pattern) -> Tensor:
    assert pattern.rows is not None and pattern.cols is not None
    out = scores.shape[0]
    matrix = scores.reshape(out, -1)  # [out, cols]
    blocks = matrix.reshape(out // pattern.rows, pattern.rows, -1, pattern.cols)  # [R, r, C, c]
    return blocks.mean(dim=(1, 3))  # [R, C]


def _lowest(flat: Tensor, prune: int) -> Tensor:
    """A keep-mask over ``flat`` with the ``prune`` lowest entries False (ties: first occurrence first)."""
    keep = torch.ones(flat.numel(), dtype=torch.bool)
    if prune > 0:
        keep[torch.argsort(flat, stable=True)[:prune]] = False
    return keep


def _per_row(matrix: Tensor, prune: int) -> Tensor:
    """Prune ``prune`` weights in total, spread evenly over the rows of ``matrix`` [out, cols], lowest per row."""
    out = matrix.shape[0]
    per_row = torch.full((out,), prune // out, dtype=torch.long)
    per_row[: prune % out] += 1  # the remainder goes to the first rows, so the total is exact
    ranks = torch.argsort(torch.argsort(matrix, dim=1, stable=True), dim=1)  # [out, cols]: 0 = lowest in row
    return ranks >= per_row.unsqueeze(1)


def _n_m(scores: Tensor, pattern: Pattern) -> Tensor:
    assert pattern.n is not None and pattern.m is not None
    # channels last ([out, *kernel, in]) so groups of M run along the input dimension; Linear is already [out, in]
    moved = scores.movedim(1, -1) if scores.dim() > 2 else scores
    groups = moved.reshape(-1, pattern.m)  # [out * prod(kernel) * in / M, M]
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(1, torch.topk(groups, pattern.n, dim=1, sorted=False).indices, True)
    keep = keep.reshape(moved.shape)
    return keep.movedim(-1, 1) if scores.dim() > 2 else keep


def build_mask(scores: Tensor, pattern: Pattern, prune: int, per_row: bool = False) -> Tensor:
    """A keep-mask shaped like ``scores`` that removes ``prune`` units with the lowest scores.

    ``per_row`` spreads the pruned weights evenly over output rows and compares scores only within a row (for
    criteria like Wanda; unstructured only). For N:M, ``prune`` is ignored: the pattern fixes what goes.

    Example:
        >>> build_mask(torch.tensor([[1.0, 2.0], [9.0, 8.0]]), Pattern(), prune=2, per_row=True).int().tolist()
        [[0, 1], [1, 0]]
    """
    shape = scores.shape
    if pattern.kind is PatternKind.n_m:
        return _n_m(scores, pattern)
    if pattern.kind is PatternKind.block:
        assert pattern.rows is not None and pattern.cols is not None
        block_keep = _lowest(_block_scores(scores, pattern).flatten(), prune)
        grid = block_keep.reshape(shape[0] // pattern.rows, 1, -1, 1)  # [R, 1, C, 1]
        full = grid.expand(-1, pattern.rows, -1, pattern.cols)  # [R, r, C, c]
        return full.reshape(shape)
    if per_row:
        return _per_row(scores.reshape(shape[0], -1), prune).reshape(shape)
    return _lowest(scores.flatten(), prune).reshape(shape)
