"""The position hash of HashedNets: a fixed, seeded function from a weight's flat position to a bucket and a sign.

Chen et al. (2015) share weights by hashing each position ``(i, j)`` of a layer's ``[out, in]`` matrix to one of
``K`` buckets (``V[i, j] = w[h(i, j)]``), optionally times a second hash's sign ``xi(i, j) in {-1, +1}`` so that the
collisions cancel in expectation. The hash is not stored anywhere: it is recomputed from ``(seed, K, shape)`` when a
file is unpacked, so it must give the same answer on every machine and every version. It is therefore defined here
bit for bit (unsigned 64-bit arithmetic, wrapping):

* ``mix(z)``: SplitMix64's finalizer, ``z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27;
  z *= 0x94D049BB133111EB; z ^= z >> 31``;
* bucket of position ``p``: ``mix(p + (2 * seed + 1) * 0x9E3779B97F4A7C15) mod K``;
* sign of position ``p`` (when asked): ``+1`` if the top bit of ``mix(p + (2 * seed + 2) * 0x9E3779B97F4A7C15)`` is
  0, else ``-1``.

``HASH_NAME`` names this definition in the provenance record, so a future change gets a new name and old files keep
decoding with the old one.

Example:
    >>> buckets, signs = position_hash(8, 3, seed=0, sign=True)
    >>> buckets.tolist(), signs.tolist()
    ([1, 2, 1, 0, 1, 2, 2, 0], [1, -1, -1, -1, -1, -1, 1, 1])
"""

from __future__ import annotations

import numpy as np

__all__ = ["HASH_NAME", "layer_seed", "position_hash"]

HASH_NAME = "splitmix64-v1"

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio: SplitMix64's stream increment
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer on a uint64 array (wrapping arithmetic), in place; returns it."""
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def position_hash(count: int, buckets: int, seed: int, sign: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Bucket ``(count,)`` int64 in ``[0, buckets)`` and sign ``(count,)`` int8 (+-1, or None) of positions
    ``0 .. count - 1`` (see the module docstring for the exact definition).

    Example:
        >>> position_hash(4, 2, seed=7, sign=False)[0].tolist()
        [1, 0, 1, 0]
    """
    if count < 0 or buckets < 1 or seed < 0:
        raise ValueError(f"position_hash: expected count >= 0, buckets >= 1, seed >= 0, got {count}, {buckets}, "
                         f"{seed}")
    positions = np.arange(count, dtype=np.uint64)
    with np.errstate(over="ignore"):  # the arithmetic is modulo 2^64 by definition
        salt = np.uint64(2 * seed + 1) * _GOLDEN
        index = (_mix(positions + salt) % np.uint64(buckets)).astype(np.int64)
        if not sign:
            return index, None
        salt = np.uint64(2 * seed + 2) * _GOLDEN
        top = _mix(positions + salt) >> np.uint64(63)
    return index, (1 - 2 * top.astype(np.int8)).astype(np.int8)


def layer_seed(seed: int, name: str) -> int:
    """A per-layer hash seed in ``[0, 2^31)`` from the stage's seed and the layer's name (stable across runs), so
    layers of the same shape get independent hashes.

    Example:
        >>> layer_seed(0, "fc1") != layer_seed(0, "fc2"), layer_seed(0, "fc1") == layer_seed(0, "fc1")
        (True, True)
    """
    z = np.array([seed], dtype=np.uint64)
    for byte in name.encode():
        with np.errstate(over="ignore"):
            z = _mix(z + np.uint64(byte + 1) * _GOLDEN)
    return int(z[0] >> np.uint64(33))
