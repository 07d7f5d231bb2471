"""The HashedNets position hash is exactly the documented SplitMix64 construction (golden values, and an independent
pure-Python reimplementation), spreads positions evenly over the buckets and gives balanced, independent signs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelpress.share.hashing import HASH_NAME, layer_seed, position_hash

MASK = 2**64 - 1
GOLDEN = 0x9E3779B97F4A7C15


def reference_mix(z: int) -> int:
    """SplitMix64's finalizer on Python ints (the definition in the module docstring, written independently)."""
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & MASK
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & MASK
    return z ^ (z >> 31)


def reference_hash(position: int, buckets: int, seed: int) -> tuple[int, int]:
    bucket = reference_mix((position + (2 * seed + 1) * GOLDEN) & MASK) % buckets
    sign = -1 if reference_mix((position + (2 * seed + 2) * GOLDEN) & MASK) >> 63 else 1
    return bucket, sign


def test_golden_values_never_change() -> None:
    # Files store only (seed, buckets, HASH_NAME): these values must stay the same in every version.
    assert HASH_NAME == "splitmix64-v1"
    buckets, signs = position_hash(8, 3, seed=0, sign=True)
    assert buckets.tolist() == [1, 2, 1, 0, 1, 2, 2, 0]
    assert signs.tolist() == [1, -1, -1, -1, -1, -1, 1, 1]
    buckets, signs = position_hash(6, 1000, seed=12345, sign=True)
    assert buckets.tolist() == [428, 552, 87, 237, 796, 872]
    assert signs.tolist() == [1, -1, 1, 1, -1, -1]
    assert (layer_seed(0, "fc1"), layer_seed(7, "layer1.0.conv1")) == (1499951694, 328409229)


@settings(max_examples=40, deadline=None)
@given(count=st.integers(0, 300), buckets=st.integers(1, 2**40), seed=st.integers(0, 2**31 - 1))
def test_matches_an_independent_reimplementation(count: int, buckets: int, seed: int) -> None:
    index, signs = position_hash(count, buckets, seed, sign=True)
    assert index.dtype == np.int64 and signs is not None and signs.dtype == np.int8
    expected = [reference_hash(p, buckets, seed) for p in range(count)]
    assert index.tolist() == [b for b, _ in expected]
    assert signs.tolist() == [s for _, s in expected]


@settings(max_examples=30, deadline=None)
@given(short=st.integers(0, 200), extra=st.integers(0, 200), buckets=st.integers(1, 500),
       seed=st.integers(0, 2**31 - 1))
def test_a_position_hashes_the_same_whatever_the_layer_size(short: int, extra: int, buckets: int, seed: int) -> None:
    small, _ = position_hash(short, buckets, seed, sign=False)
    large, _ = position_hash(short + extra, buckets, seed, sign=False)
    assert large[:short].tolist() == small.tolist()
    assert ((large >= 0) & (large < buckets)).all()


def test_buckets_are_uniform() -> None:
    count, buckets = 200_000, 256
    index, _ = position_hash(count, buckets, seed=3, sign=False)
    observed = np.bincount(index, minlength=buckets)
    expected = count / buckets
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    # chi-square with 255 degrees of freedom: mean 255, std ~22.6; 400 is > 6 std above (a bad hash is far worse)
    assert chi2 < 400, chi2
    assert observed.min() > 0.85 * expected and observed.max() < 1.15 * expected


def test_signs_are_balanced_and_independent_of_the_bucket() -> None:
    index, signs = position_hash(200_000, 16, seed=11, sign=True)
    assert signs is not None and set(np.unique(signs).tolist()) == {-1, 1}
    assert abs(float(signs.mean())) < 0.01  # std of the mean of 200k fair signs: 0.0022
    per_bucket = np.bincount(index, weights=signs.astype(np.float64), minlength=16) / np.bincount(index)
    assert np.abs(per_bucket).max() < 0.04  # ~12.5k signs per bucket: std 0.009


def test_seeds_give_different_hashes() -> None:
    a, _ = position_hash(1000, 97, seed=0, sign=False)
    b, _ = position_hash(1000, 97, seed=1, sign=False)
    assert (a == b).mean() < 0.05  # independent hashes agree on ~1/97 of the positions
    assert layer_seed(0, "fc1") != layer_seed(1, "fc1")
    assert 0 <= layer_seed(2**31 - 1, "x" * 100) < 2**31


@pytest.mark.parametrize("args", [(-1, 3, 0), (4, 0, 0), (4, 3, -1)])
def test_invalid_arguments_are_rejected(args: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match=r"position_hash: expected count >= 0, buckets >= 1, seed >= 0, got"):
        position_hash(*args, sign=False)
