"""How many units each group loses, and which: uniform or global ratios, per-layer overrides, rounding.

Within a group the lowest-scored units go. ``uniform``: each group loses ``round(ratio * size)``. ``global``: all
units of the non-overridden groups are ranked together by their score divided by their group's mean score (so
groups with large weights do not keep everything), lowest first, each group losing at most ``max_ratio`` of its
units. Rounding then moves each group's kept count to the nearest multiple of ``round_to`` (at least ``round_to``,
at most the group's size); attention head groups are not rounded. Every group keeps at least one unit.

Example:
    >>> import torch
    >>> scores = [torch.tensor([1.0, 5.0, 2.0, 4.0]), torch.tensor([3.0, 1.0])]
    >>> choose_removals(scores, [0.5, 0.5], kinds=["channels", "channels"])
    {0: [0, 2], 1: [1]}
    >>> choose_removals(scores, [None, None], kinds=["channels", "channels"], global_ratio=0.5, max_ratio=0.9)
    {0: [0, 2], 1: [1]}
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["choose_removals", "rounded_keep"]


def rounded_keep(size: int, keep: int, round_to: int | None) -> int:
    """``keep`` moved to the nearest multiple of ``round_to`` within ``[round_to, size]`` (unchanged when the group
    is no larger than ``round_to``), and at least 1.

    Example:
        >>> rounded_keep(64, 29, 8), rounded_keep(64, 3, 8), rounded_keep(6, 3, 8)
        (32, 8, 3)
    """
    if round_to and size > round_to:
        keep = min(size, max(round_to, round(keep / round_to) * round_to))
    return max(1, min(size, keep))


def _lowest(scores: Tensor, count: int) -> list[int]:
    order = torch.argsort(scores, stable=True)  # ties: the lower index goes first (deterministic)
    return sorted(order[:count].tolist())


def choose_removals(scores: Sequence[Tensor], ratios: Sequence[float | None], kinds: Sequence[str],
                    global_ratio: float | None = None, max_ratio: float = 0.9,
                    round_to: int | None = None) -> dict[int, list[int]]:
    """Indices of the removed units per group index (groups losing nothing are left out).

    ``ratios[i]``: group ``i``'s own ratio (uniform scope or an override), or None to join the global ranking at
    ``global_ratio``.
    """
    removed_count: dict[int, int] = {}
    for i, (s, r) in enumerate(zip(scores, ratios, strict=True)):
        if r is not None:
            removed_count[i] = round(r * len(s))
    pool = [i for i, r in enumerate(ratios) if r is None]
    if pool and global_ratio:
        flat = torch.cat([scores[i] / scores[i].mean().clamp_min(1e-12) for i in pool])
        owner = torch.cat([torch.full((len(scores[i]),), i) for i in pool])
        caps = {i: int(max_ratio * len(scores[i])) for i in pool}
        wanted = round(global_ratio * len(flat))
        taken = dict.fromkeys(pool, 0)
        for position in torch.argsort(flat, stable=True).tolist():
            if wanted == 0:
                break
            group = int(owner[position])
            if taken[group] < caps[group]:
                taken[group] += 1
                wanted -= 1
        removed_count.update(taken)
    out = {}
    for i, count in removed_count.items():
        size = len(scores[i])
        keep = rounded_keep(size, size - count, round_to if kinds[i] == "channels" else None)
        if keep < size:
            out[i] = _lowest(scores[i], size - keep)
    return out
