"""Sparsity schedules for gradual pruning: the target sparsity at a point of the pruning window.

``t`` is the fraction of the window done, in [0, 1]; ``s_i`` and ``s_f`` the initial and final sparsities.

* polynomial (Zhu & Gupta, 2017): ``s_f + (s_i - s_f) * (1 - t) ** power``; ``cubic`` is power 3. Pruning is fast
  early, while many redundant weights remain, and slow near the end;
* exponential: the density falls geometrically, ``1 - (1 - s_i) * ((1 - s_f) / (1 - s_i)) ** t``: the same fraction
  of the remaining weights goes per unit of time, like iterative pruning's rounds;
* linear: ``s_i + (s_f - s_i) * t``.

Example:
    >>> round(sparsity_at(ScheduleKind.cubic, 0.5, 0.0, 0.9), 4)
    0.7875
    >>> round(sparsity_at(ScheduleKind.exponential, 0.5, 0.0, 0.99), 4)
    0.9
    >>> sparsity_at(ScheduleKind.linear, 1.0, 0.2, 0.8)
    0.8
"""

from __future__ import annotations

from collections.abc import Callable

from modelpress.prune.config import ScheduleKind

__all__ = ["sparsity_at"]


def _polynomial(t: float, s_i: float, s_f: float, power: float) -> float:
    return s_f + (s_i - s_f) * (1.0 - t) ** power


def _exponential(t: float, s_i: float, s_f: float, power: float) -> float:
    return 1.0 - (1.0 - s_i) * ((1.0 - s_f) / (1.0 - s_i)) ** t


def _linear(t: float, s_i: float, s_f: float, power: float) -> float:
    return s_i + (s_f - s_i) * t


_SCHEDULES: dict[ScheduleKind, Callable[[float, float, float, float], float]] = {
    ScheduleKind.polynomial: _polynomial,
    ScheduleKind.cubic: lambda t, s_i, s_f, power: _polynomial(t, s_i, s_f, 3.0),
    ScheduleKind.exponential: _exponential,
    ScheduleKind.linear: _linear,
}


def sparsity_at(kind: ScheduleKind, t: float, initial: float, final: float, power: float = 3.0) -> float:
    """The scheduled sparsity at window fraction ``t`` (clamped to [0, 1]): exactly ``initial`` at 0 and ``final`` at 1.

    Example:
        >>> sparsity_at(ScheduleKind.polynomial, 0.0, 0.1, 0.9, power=2.0)
        0.1
    """
    if t <= 0.0:
        return initial
    if t >= 1.0:
        return final
    return _SCHEDULES[kind](t, initial, final, power)
