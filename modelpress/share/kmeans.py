"""Exact 1-D k-means (Lloyd) on sorted values: one sort, then every iteration costs O(k log n), not O(n k).

In one dimension the clusters of sorted centroids are contiguous runs of the sorted values, split at the midpoints
between neighbouring centroids. So after sorting the ``n`` values once and taking their prefix sums, an iteration
is: ``k - 1`` binary searches for the split points, then each cluster's count and sum as differences of prefix sums.
Assignments are never materialized until the end, where each value's cluster is the number of split points below it
(:func:`count_below`: a lookup table over a fine uniform grid, then a few vectorized corrections, O(n); no argsort,
which costs ten times the sort). The sort dominates: tens of millions of weights per second on one core
(``benchmarks/kmeans_speed.py``).

Initializations (:class:`~modelpress.share.config.Init`): ``linear`` (evenly spaced over [min, max]), ``density``
(evenly spaced quantiles), ``kmeans++`` (D^2 sampling; on sorted values a new centroid only changes the distances
inside its own Voronoi cell, a contiguous range, and sampling uses per-block sums, so it is fast too).

Clusters that end empty are dropped: the result may have fewer than ``k`` centroids. When the values have at most
``k`` distinct entries, each distinct value is its own cluster (exact). A value exactly halfway between two
centroids belongs to the lower one.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> values = np.concatenate([rng.normal(c, 0.05, 1000) for c in (-2.0, 0.5, 3.0)])
    >>> result = kmeans_1d(values, 3, init=Init.density)
    >>> np.round(result.centroids, 1).tolist(), np.bincount(result.labels).tolist()
    ([-2.0, 0.5, 3.0], [1000, 1000, 1000])
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from modelpress.share.config import Init

__all__ = ["KMeansResult", "count_below", "initial_centroids", "kmeans_1d"]

_BLOCK = 1024  # values per block of the k-means++ sampler: sampling costs O(n / _BLOCK + _BLOCK) per centroid
_GRID = 1 << 16  # cells of count_below's lookup table (512 KiB of int64): a few thresholds per cell at most
_SMALL = 8192  # below this many values count_below uses a plain binary search


@dataclass(frozen=True)
class KMeansResult:
    """Sorted centroids ``(k',)`` float64 (``k' <= k``, empty clusters dropped), each value's cluster ``(n,)``
    int64 in input order, the Lloyd iterations run, and the inertia (sum of squared distances to the centroids).

    Example:
        >>> r = kmeans_1d(np.array([1.0, 1.0, 5.0]), 4)
        >>> r.centroids.tolist(), r.labels.tolist(), r.inertia
        ([1.0, 5.0], [0, 0, 1], 0.0)
    """

    centroids: np.ndarray
    labels: np.ndarray
    iterations: int
    inertia: float


def _kmeans_pp(xs: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding on sorted values ``xs`` (n,): the first centroid uniform, each next one drawn with
    probability proportional to the squared distance to the nearest centroid chosen so far."""
    n = xs.size
    first = xs[int(rng.integers(n))]
    d2 = (xs - first) ** 2  # (n,) squared distance to the nearest chosen centroid
    starts = np.arange(0, n, _BLOCK)
    block_sums = np.add.reduceat(d2, starts, dtype=np.float64)  # (blocks,)
    chosen = [float(first)]
    while len(chosen) < k:
        cumulative = np.cumsum(block_sums)
        total = cumulative[-1]
        if total <= 0:
            break  # every value coincides with a centroid (fewer distinct values than k)
        target = rng.random() * total
        block = min(int(np.searchsorted(cumulative, target, side="right")), len(block_sums) - 1)
        lo = block * _BLOCK
        inside = np.cumsum(d2[lo:lo + _BLOCK])
        offset = target - (cumulative[block - 1] if block else 0.0)
        index = lo + min(int(np.searchsorted(inside, offset, side="right")), inside.size - 1)
        if d2[index] == 0:  # landed on a zero-probability value through rounding: take the block's farthest
            index = lo + int(np.argmax(d2[lo:lo + _BLOCK]))
        centre = float(xs[index])
        # Only values in the new centroid's Voronoi cell (between the midpoints to its neighbours) get closer.
        where = bisect.bisect_left(chosen, centre)
        left = (chosen[where - 1] + centre) / 2 if where > 0 else -np.inf
        right = (centre + chosen[where]) / 2 if where < len(chosen) else np.inf
        # the cell's bounds in xs's dtype, rounded outward (a wider range is harmless: d2 only takes minima), so
        # numpy does not cast all of xs to float64 for the search
        low, high = np.nextafter(xs.dtype.type(left), -np.inf), np.nextafter(xs.dtype.type(right), np.inf)
        a, b = int(np.searchsorted(xs, low, side="left")), int(np.searchsorted(xs, high, side="right"))
        np.minimum(d2[a:b], (xs[a:b] - centre) ** 2, out=d2[a:b])
        if b > a:  # re-sum the blocks the cell touches, in one call
            first_block, last_block = a // _BLOCK, (b - 1) // _BLOCK
            lo, hi = first_block * _BLOCK, min((last_block + 1) * _BLOCK, n)
            block_sums[first_block:last_block + 1] = np.add.reduceat(d2[lo:hi], np.arange(0, hi - lo, _BLOCK),
                                                                     dtype=np.float64)
        chosen.insert(where, centre)
    return np.asarray(chosen, dtype=np.float64)


def initial_centroids(xs: np.ndarray, k: int, init: Init, seed: int = 0) -> np.ndarray:
    """The ``k`` starting centroids (sorted, float64) for sorted values ``xs`` (n,).

    Example:
        >>> initial_centroids(np.arange(11.0), 3, Init.linear).tolist()
        [0.0, 5.0, 10.0]
        >>> initial_centroids(np.arange(12.0), 3, Init.density).tolist()
        [2.0, 6.0, 10.0]
    """
    n = xs.size
    if init is Init.linear:
        return np.linspace(float(xs[0]), float(xs[-1]), k)
    if init is Init.density:
        # evenly spaced levels of the empirical CDF, read back through it: the ((j + 1/2) / k)-quantiles
        return xs[np.minimum(((np.arange(k) + 0.5) * n / k).astype(np.int64), n - 1)].astype(np.float64)
    return np.sort(_kmeans_pp(xs, k, np.random.default_rng(seed)))


def count_below(x: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For every value of ``x`` (n,), how many ``thresholds`` (t,) (non-decreasing, finite) are strictly below it,
    as int64: ``np.searchsorted(thresholds, x, side="left")``, computed in O(n) passes rather than a binary search
    per value (several times faster for large ``n``).

    A table gives, for each cell of a uniform grid over [min(x), max(x)], the count at (just below) the cell's lower
    edge: a lower bound for every value in the cell, whatever the rounding of the cell index. Values still above
    their next threshold move up one at a time; only those are revisited.

    Example:
        >>> count_below(np.array([0.5, -1.0, 2.0, 1.0]), np.array([0.0, 1.0])).tolist()
        [1, 0, 2, 1]
    """
    if thresholds.size == 0 or x.size == 0:
        return np.zeros(x.size, dtype=np.int64)
    lo, hi = float(x.min()), float(x.max())
    if x.size < _SMALL or not lo < hi or not np.isfinite(hi - lo):
        return np.searchsorted(thresholds, x, side="left").astype(np.int64, copy=False)
    scale = (_GRID - 1) / (hi - lo)
    # each cell's table entry is the count below the previous cell's lower edge: rounding in the cell index (a
    # small fraction of a cell) can never put a value below its entry's point
    edges = lo + (np.arange(_GRID, dtype=np.float64) - 1) / scale  # (_GRID,)
    table = np.searchsorted(thresholds, edges, side="left").astype(np.int64)  # (_GRID,)
    cells = (x - x.dtype.type(lo)) * x.dtype.type(scale)  # (n,) in x's precision: cell index + a small error
    np.clip(cells, 0, _GRID - 1, out=cells)
    counts = table[cells.astype(np.int32)]  # (n,) lower bounds
    padded = np.append(thresholds, np.inf).astype(thresholds.dtype)  # (t + 1,): nothing is above +inf
    moving = np.flatnonzero(x > padded[counts])  # values with a threshold still below them
    while moving.size:
        counts[moving] += 1
        moving = moving[x[moving] > padded[counts[moving]]]
    return counts


def _lloyd(xs: np.ndarray, prefix: np.ndarray, centroids: np.ndarray,
           max_iter: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Lloyd iterations on sorted ``xs`` (n,) with ``prefix`` sums (n + 1,) from sorted ``centroids`` (k,) float64.

    Returns the cell edges ``(k + 1,)`` (cluster j holds ``xs[edges[j]:edges[j + 1]]``; a value exactly on a
    midpoint goes to the lower cluster), the split points ``(k - 1,)`` in ``xs``'s dtype that made them, at the
    fixed point (or after ``max_iter``), and the iterations run. An iteration is a dozen numpy calls on length-k
    arrays plus k - 1 binary searches: O(k log n).
    """
    k = centroids.size
    c = centroids.copy()
    edges = np.empty(k + 1, dtype=np.int64)
    edges[0], edges[-1] = 0, xs.size
    inner = edges[1:-1]  # a view: the k - 1 split points
    midpoints = np.empty(k - 1, dtype=np.float64)
    sums, counts = np.empty(k), np.empty(k, dtype=np.int64)
    np.add(c[1:], c[:-1], out=midpoints)
    thresholds = (midpoints * 0.5).astype(xs.dtype)  # (k - 1,) in xs's dtype: xs is never cast
    inner[:] = np.searchsorted(xs, thresholds, side="right")
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        cuts = prefix[edges]  # (k + 1,) prefix sums at the edges
        np.subtract(cuts[1:], cuts[:-1], out=sums)
        np.subtract(edges[1:], edges[:-1], out=counts)
        # each centroid moves to its cluster's mean; an empty cluster keeps its centroid (which stays between its
        # neighbours, so the centroids stay sorted)
        np.divide(sums, counts, out=c, where=counts > 0)
        np.add(c[1:], c[:-1], out=midpoints)
        thresholds = (midpoints * 0.5).astype(xs.dtype)
        split = np.searchsorted(xs, thresholds, side="right")
        if (split == inner).all():
            break  # assignments fixed: the centroids (their means) are a fixed point
        inner[:] = split
    return edges, thresholds, iterations


def kmeans_1d(values: np.ndarray, k: int, init: Init = Init.linear, max_iter: int = 1000,
              seed: int = 0) -> KMeansResult:
    """Cluster the 1-D ``values`` into at most ``k`` groups (see the module docstring).

    Example:
        >>> r = kmeans_1d(np.array([0.0, 0.1, 0.2, 10.0, 10.2]), 2, init=Init.kmeans_pp, seed=3)
        >>> np.round(r.centroids, 2).tolist(), r.labels.tolist()
        ([0.1, 10.1], [0, 0, 0, 1, 1])
    """
    x = np.asarray(values).reshape(-1)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if x.size == 0 or k < 1:
        raise ValueError(f"kmeans_1d: expected at least one value and k >= 1, got {x.size} values and k={k}")
    xs = np.sort(x)  # (n,) ascending, in the input's precision (labels come from thresholds: no argsort needed)
    changes = xs[1:] != xs[:-1]  # (n - 1,)
    if 1 + int(np.count_nonzero(changes)) <= k:  # every distinct value is its own cluster: exact, inertia 0
        book = xs[np.concatenate(([True], changes))]
        return KMeansResult(book.copy(), count_below(x, book[:-1]), 0, 0.0)
    prefix = np.empty(x.size + 1)  # (n + 1,) float64 prefix sums: a cluster's sum is a difference of two
    prefix[0] = 0.0
    np.cumsum(xs, dtype=np.float64, out=prefix[1:])
    # Lloyd in 1-D creeps: from a linear start it can take hundreds of iterations to reach its fixed point, each
    # lowering the inertia a little. Iterations are O(k log n), so it runs to the fixed point (or ``max_iter``).
    edges, thresholds, iterations = _lloyd(xs, prefix, initial_centroids(xs, k, init, seed), max_iter)
    counts = np.diff(edges)
    keep = counts > 0
    sums = prefix[edges[1:]] - prefix[edges[:-1]]
    centroids = sums[keep] / counts[keep]  # the mean of each non-empty cluster
    labels = count_below(x, thresholds)  # (n,) each value's cluster among all k: the split points below it
    if not keep.all():
        labels = (np.cumsum(keep) - 1)[labels]  # renumber among the non-empty clusters
    deviations = xs - np.repeat(centroids, counts[keep])  # (n,) sorted values minus their cluster's mean
    inertia = float(np.dot(deviations, deviations))
    return KMeansResult(centroids, labels, iterations, inertia)
