"""Bit allocation for mixed precision: choose one width per layer from a candidate set minimizing the summed
sensitivity under an average-bits budget (a multiple-choice knapsack, solved exactly by dynamic programming on a
cost grid whose per-choice costs are rounded *up*, so the chosen widths never exceed the budget).

The sensitivity of layer ``l`` at ``b`` bits is what quantizing only that layer costs (here: the noise power of the
model's output relative to its power, ``10^(-SQNR/10)``, on training inputs); summing it over layers is the usual
additive approximation (small independent errors add in power).

Example:
    >>> sens = {"a": {2: 1.0, 4: 0.1, 8: 0.0}, "b": {2: 0.02, 4: 0.01, 8: 0.0}}
    >>> allocate_bits(sens, {"a": 100, "b": 100}, average_bits=4.0)
    {'a': 4, 'b': 4}
    >>> allocate_bits(sens, {"a": 100, "b": 100}, average_bits=5.0)
    {'a': 8, 'b': 2}
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from modelpress.errors import ConfigError

__all__ = ["allocate_bits", "average_bits"]

_GRID = 4000  # budget cells of the DP: allocation error at most one cell per layer, always on the safe side


def average_bits(bits: Mapping[str, int], sizes: Mapping[str, int]) -> float:
    """The weight-count-weighted mean of ``bits`` over the layers in ``sizes``.

    Example:
        >>> average_bits({"a": 8, "b": 4}, {"a": 100, "b": 300})
        5.0
    """
    total = sum(sizes[name] for name in bits)
    return sum(bits[name] * sizes[name] for name in bits) / max(total, 1)


def allocate_bits(sensitivity: Mapping[str, Mapping[int, float]], sizes: Mapping[str, int],
                  average_bits: float) -> dict[str, int]:
    """Widths ``{layer: bits}`` minimizing ``sum sensitivity[layer][bits]`` subject to
    ``sum sizes[layer] * bits <= average_bits * sum sizes`` (``sizes``: weights per layer). A
    :class:`ConfigError` if even the narrowest choices exceed the budget.

    Example:
        >>> allocate_bits({"a": {2: 1.0, 4: 0.5}}, {"a": 10}, average_bits=1.5)
        Traceback (most recent call last):
        ...
        modelpress.errors.ConfigError: average_bits: expected at least 2 (the narrowest width every layer allows), \
got 1.5. Fix: raise average_bits or add narrower widths to bits
    """
    layers = list(sensitivity)
    total = sum(sizes[name] for name in layers)
    if not layers:
        return {}
    floor = sum(min(sensitivity[n]) * sizes[n] for n in layers) / max(total, 1)  # every layer at its narrowest
    if average_bits < floor - 1e-9:
        raise ConfigError("average_bits", f"at least {floor:g} (the narrowest width every layer allows)",
                          average_bits, "raise average_bits or add narrower widths to bits")
    capacity = average_bits * total  # bits
    unit = capacity / _GRID
    cells = _GRID
    inf = math.inf
    best = np.zeros(cells + 1)  # best[c]: least summed sensitivity of the layers so far using at most c cells
    picks: list[np.ndarray] = []
    for name in layers:
        options = sorted(sensitivity[name])
        new = np.full(cells + 1, inf)
        pick = np.full(cells + 1, -1, dtype=np.int64)
        for b in options:
            cost = math.ceil(sizes[name] * b / unit - 1e-9)  # rounded up: the real total never exceeds capacity
            if cost > cells:
                continue
            candidate = np.full(cells + 1, inf)
            candidate[cost:] = best[:cells + 1 - cost] + float(sensitivity[name][b])
            better = candidate < new
            new[better], pick[better] = candidate[better], b
        picks.append(pick)
        best = new
    if not math.isfinite(best[cells]):  # rounding up can lose a tight fit: fall back to the narrowest widths
        return {name: min(sensitivity[name]) for name in layers}
    chosen: dict[str, int] = {}
    c = cells
    for name, pick in zip(reversed(layers), reversed(picks), strict=True):
        b = int(pick[c])
        chosen[name] = b
        c -= math.ceil(sizes[name] * b / unit - 1e-9)
    return {name: chosen[name] for name in layers}
