"""``kmeans_1d`` against a brute-force Lloyd in exact rational arithmetic, each initialization, empty clusters."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from modelpress.share.config import Init
from modelpress.share.kmeans import count_below, initial_centroids, kmeans_1d


class _Tie(Exception):
    """A value lies exactly halfway between two centroids: the nearest one is not defined."""


def brute_force_lloyd(values: list[int], start: list[float]) -> tuple[list[Fraction], list[int]]:
    """Textbook Lloyd, O(n k) per iteration, in exact fractions: assign each value to its nearest centroid, move each
    centroid to its cluster's mean (an empty cluster keeps its centroid), until the assignments stop changing.
    Returns the centroids of the non-empty clusters (sorted by value) and each value's index among them."""
    centroids = [Fraction(c) for c in start]
    labels: list[int] | None = None
    while True:
        new = []
        for x in values:
            distances = [abs(x - c) for c in centroids]
            best = min(distances)
            if distances.count(best) > 1 and len({c for c, d in zip(centroids, distances, strict=True)
                                                   if d == best}) > 1:
                raise _Tie
            new.append(distances.index(best))
        if new == labels:
            break
        labels = new
        for j in range(len(centroids)):
            members = [x for x, label in zip(values, labels, strict=True) if label == j]
            if members:
                centroids[j] = Fraction(sum(members), len(members))
    used = sorted(set(labels), key=lambda j: centroids[j])  # clusters in centroid order, as kmeans_1d returns them
    return [centroids[j] for j in used], [used.index(label) for label in labels]


@settings(max_examples=150, deadline=None)
@given(values=st.lists(st.integers(-300, 300), min_size=2, max_size=60),
       k=st.integers(1, 9), init=st.sampled_from(list(Init)), seed=st.integers(0, 5))
def test_kmeans_matches_brute_force_lloyd(values: list[int], k: int, init: Init, seed: int) -> None:
    x = np.array(values, dtype=np.float64)
    assume(np.unique(x).size > k)  # with at most k distinct values every value is its own cluster (tested below)
    start = initial_centroids(np.sort(x), k, init, seed)
    # Equal starting centroids (density quantiles of repeated values) are a convention, not Lloyd: kmeans_1d splits
    # their cluster at the shared value, textbook Lloyd leaves all but the first empty. Compare distinct starts only.
    assume(np.unique(start).size == start.size)
    try:
        expected_centroids, expected_labels = brute_force_lloyd(values, start.tolist())
    except _Tie:
        assume(False)  # exact ties are decided by a convention (lower cluster), not by the algorithm
    result = kmeans_1d(x, k, init=init, seed=seed)
    assert result.labels.tolist() == expected_labels
    # integer inputs: sums are exact in float64, so each centroid is its exact mean correctly rounded
    assert result.centroids.tolist() == [float(c) for c in expected_centroids]
    exact_inertia = sum((v - expected_centroids[label]) ** 2 for v, label in zip(values, expected_labels,
                                                                                strict=True))
    assert result.inertia == pytest.approx(float(exact_inertia), rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(-4, 4, width=32), min_size=1, max_size=40), k=st.integers(1, 12))
def test_at_most_k_distinct_values_are_each_their_own_cluster(values: list[float], k: int) -> None:
    x = np.array(values, dtype=np.float32)
    distinct = np.unique(x)
    assume(distinct.size <= k)
    result = kmeans_1d(x, k, init=Init.kmeans_pp)
    assert result.centroids.tolist() == distinct.tolist()
    assert result.inertia == 0.0
    assert np.array_equal(result.centroids[result.labels], x)


@pytest.mark.parametrize("init", list(Init))
def test_each_init_clusters_separated_groups(init: Init) -> None:
    rng = np.random.default_rng(1)
    centres = (-3.0, -1.0, 0.5, 2.0)
    x = np.concatenate([rng.normal(c, 0.02, 500) for c in centres]).astype(np.float32)
    rng.shuffle(x)
    result = kmeans_1d(x, 4, init=init, seed=2)
    assert np.allclose(result.centroids, centres, atol=0.01)
    assert np.bincount(result.labels).tolist() == [500] * 4
    assert np.array_equal(np.abs(x[:, None] - result.centroids).argmin(axis=1), result.labels)


def test_initializations() -> None:
    xs = np.sort(np.random.default_rng(0).laplace(0, 1, 10_000))
    linear = initial_centroids(xs, 16, Init.linear)
    assert linear[0] == xs[0] and linear[-1] == xs[-1] and np.allclose(np.diff(linear), np.diff(linear)[0])
    density = initial_centroids(xs, 16, Init.density)
    # each quantile centroid has (j + 1/2)/16 of the values below it
    below = np.searchsorted(xs, density, side="left") / xs.size
    assert np.allclose(below, (np.arange(16) + 0.5) / 16, atol=1e-3)
    pp = initial_centroids(xs, 16, Init.kmeans_pp, seed=3)
    assert pp.size == 16 and np.all(np.diff(pp) > 0) and np.isin(pp, xs).all()  # distinct members, sorted
    assert np.array_equal(pp, initial_centroids(xs, 16, Init.kmeans_pp, seed=3))
    assert not np.array_equal(pp, initial_centroids(xs, 16, Init.kmeans_pp, seed=4))
    # D^2 sampling spreads out: the seeds reach far into both tails, unlike the quantiles
    assert pp[0] < density[0] and pp[-1] > density[-1]


def test_empty_clusters_are_dropped() -> None:
    # Linear init over [0, 100] puts 4 centroids at 0, 33.3, 66.7, 100; the values sit in two tight groups, so the
    # middle two start (and stay) with no member.
    x = np.array([0.0, 0.1, 0.2, 99.8, 99.9, 100.0])
    result = kmeans_1d(x, 4, init=Init.linear)
    assert result.centroids.tolist() == pytest.approx([0.1, 99.9])
    assert result.labels.tolist() == [0, 0, 0, 1, 1, 1]
    # density init on many repeats starts with duplicate centroids: duplicates collapse, labels stay in range
    y = np.array([1.0] * 50 + [2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    result = kmeans_1d(y, 5, init=Init.density)
    assert result.centroids.size < 5 and result.labels.max() == result.centroids.size - 1
    assert np.all(np.diff(result.centroids) > 0)
    assert np.array_equal(np.abs(y[:, None] - result.centroids).argmin(axis=1), result.labels)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one value and k >= 1, got 0 values and k=4"):
        kmeans_1d(np.array([]), 4)
    with pytest.raises(ValueError, match="got 3 values and k=0"):
        kmeans_1d(np.ones(3), 0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.sampled_from([5, 9000, 40_000]), t=st.integers(0, 300),
       dtype=st.sampled_from([np.float32, np.float64]), tight=st.booleans())
def test_count_below_is_a_left_binary_search(seed: int, n: int, t: int, dtype: type, tight: bool) -> None:
    rng = np.random.default_rng(seed)
    x = rng.laplace(0.0, 1.0, n).astype(dtype)
    # thresholds among the values themselves (ties), repeated, or packed into one grid cell (``tight``)
    pool = x if not tight else (x[0] + np.arange(t) * np.finfo(dtype).eps * 4).astype(dtype)
    thresholds = np.sort(rng.choice(pool, size=t)).astype(dtype) if t and pool.size else np.empty(0, dtype)
    assert np.array_equal(count_below(x, thresholds), np.searchsorted(thresholds, x, side="left"))


def test_large_input_labels_are_nearest_centroids() -> None:
    x = np.random.default_rng(5).laplace(0, 0.05, 50_000).astype(np.float32)
    for init in Init:
        result = kmeans_1d(x, 32, init=init, max_iter=2000)
        distances = np.abs(x[:, None].astype(np.float64) - result.centroids)
        nearest = distances.min(axis=1)
        assert np.allclose(distances[np.arange(x.size), result.labels], nearest, rtol=0, atol=1e-7)
        assert np.bincount(result.labels, minlength=result.centroids.size).min() > 0
        sums = np.bincount(result.labels, weights=x.astype(np.float64))
        assert np.allclose(sums / np.bincount(result.labels), result.centroids, rtol=0, atol=1e-9)
