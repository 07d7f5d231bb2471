"""Canonical Huffman codes: optimal length-limited code lengths (package-merge), canonical codewords, decode table.

Package-merge (Larmore and Hirschberg) gives the optimal prefix code whose codewords are at most ``limit`` bits, so
the decoder's lookup table has at most ``2^limit`` entries. Canonical codewords (DEFLATE's rule) mean a file stores
only the lengths.

Example:
    >>> lengths = code_lengths(np.array([10, 1, 1, 5, 0]))
    >>> lengths.tolist()
    [1, 3, 3, 2, 0]
    >>> [format(int(c), f"0{n}b") for c, n in zip(canonical_codes(lengths), lengths) if n]
    ['0', '110', '111', '10']
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_CODE_BITS", "canonical_codes", "code_lengths", "decode_table", "is_complete"]

MAX_CODE_BITS = 15


def code_lengths(counts: np.ndarray, limit: int = MAX_CODE_BITS) -> np.ndarray:
    """Optimal codeword lengths (uint8) for symbol counts, none longer than ``limit``; 0 for absent symbols.

    A single present symbol gets length 1. Needs ``2^limit`` >= the number of present symbols.

    Example:
        >>> code_lengths(np.array([0, 7, 0])).tolist()
        [0, 1, 0]
        >>> code_lengths(np.array([1, 1, 2, 4, 8, 16, 32]), limit=4).tolist()
        [4, 4, 4, 4, 3, 3, 1]
    """
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.zeros(counts.size, dtype=np.uint8)
    present = np.flatnonzero(counts)
    if present.size == 0:
        return lengths
    if present.size == 1:
        lengths[present] = 1
        return lengths
    if present.size > 1 << limit:
        raise ValueError(f"{present.size} symbols do not fit codes of at most {limit} bits")
    order = present[np.argsort(counts[present], kind="stable")]
    leaf_weights = counts[order]
    size = order.size
    leaf_members = np.eye(size, dtype=np.int32)  # row i: which leaves item i contains (and how often)
    weights, members = leaf_weights, leaf_members
    for _ in range(limit - 1):
        # Package adjacent pairs of the current list, merge the packages with the leaves, keep it sorted.
        pairs = weights.size // 2 * 2
        package_weights = weights[0:pairs:2] + weights[1:pairs:2]
        package_members = members[0:pairs:2] + members[1:pairs:2]
        weights = np.concatenate((leaf_weights, package_weights))
        members = np.concatenate((leaf_members, package_members))
        by_weight = np.argsort(weights, kind="stable")
        weights, members = weights[by_weight], members[by_weight]
    # A symbol's length is how many of the 2n - 2 cheapest items contain it.
    lengths[order] = members[: 2 * size - 2].sum(axis=0)
    return lengths


def is_complete(lengths: np.ndarray) -> bool:
    """Whether lengths form a complete prefix code (Kraft sum exactly 1) or the one-symbol code (a single 1).

    Example:
        >>> is_complete(np.array([1, 2, 2])), is_complete(np.array([1, 2, 0])), is_complete(np.array([0, 1]))
        (True, False, True)
    """
    used = lengths[lengths > 0].astype(np.int64)
    if used.size == 1:
        return int(used[0]) == 1
    return used.size > 0 and int(np.sum(1 << (MAX_CODE_BITS - used))) == 1 << MAX_CODE_BITS


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical codewords (uint32, MSB-first values) for code lengths: sorted by (length, symbol), counting up.

    Example:
        >>> canonical_codes(np.array([2, 1, 3, 3])).tolist()
        [2, 0, 6, 7]
    """
    codes = np.zeros(lengths.size, dtype=np.uint32)
    order = np.lexsort((np.arange(lengths.size), lengths))
    code, previous = 0, 0
    for symbol in order[lengths[order] > 0]:
        length = int(lengths[symbol])
        code <<= length - previous
        codes[symbol] = code
        code += 1
        previous = length
    return codes


def decode_table(lengths: np.ndarray) -> tuple[np.ndarray, int]:
    """Lookup table for a complete code: entry for the next ``bits`` stream bits = ``symbol | length << 8``.

    Returns (table of ``2^bits`` uint16 entries, bits) with ``bits`` the longest code length.

    Example:
        >>> table, bits = decode_table(np.array([1, 2, 2]))
        >>> bits, [(int(e) & 255, int(e) >> 8) for e in table]
        (2, [(0, 1), (0, 1), (1, 2), (2, 2)])
    """
    bits = int(lengths.max())
    order = np.lexsort((np.arange(lengths.size), lengths))
    order = order[lengths[order] > 0]
    # Canonical codes sorted by (length, symbol) cover the table in increasing order: code c of length l owns
    # entries [c << (bits - l), (c + 1) << (bits - l)).
    spans = 1 << (bits - lengths[order].astype(np.int64))
    entries = order.astype(np.uint16) | (lengths[order].astype(np.uint16) << 8)
    table = np.repeat(entries, spans)
    if table.size < 1 << bits:  # only the one-symbol code: the codeword "1" is invalid (checked by the caller)
        table = np.concatenate((table, np.repeat(table[-1:], (1 << bits) - table.size)))
    return table, bits
