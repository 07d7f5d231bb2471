"""The frequency table of the ``ans`` codec: quantize a histogram to integers summing to ``2^precision``.

Every present symbol keeps a frequency of at least 1; the rounding error is then repaired greedily where it costs the
fewest bits. The precision is chosen per stream to minimize table bytes plus coded bits: a short stream prefers a
coarse table, a long one a fine table.

Example:
    >>> hist = np.array([900, 90, 9, 1])
    >>> quantize(hist, 8).tolist()
    [230, 23, 2, 1]
    >>> precision, freqs, cost_bits = choose_precision(hist)
    >>> precision, int(freqs.sum()) == 1 << precision, round(cost_bits)
    (7, True, 528)
"""

from __future__ import annotations

import numpy as np

from modelpress.codec.varint import leb128_size

__all__ = ["MAX_PRECISION", "choose_precision", "coded_bits", "quantize"]

MAX_PRECISION = 16


def coded_bits(hist: np.ndarray, freqs: np.ndarray, precision: int) -> float:
    """Ideal coded size in bits of a stream with this histogram under these frequencies.

    Example:
        >>> coded_bits(np.array([2, 2]), np.array([1, 1]), 1)
        4.0
    """
    present = hist > 0
    return float(np.sum(hist[present] * (precision - np.log2(freqs[present]))))


def quantize(hist: np.ndarray, precision: int) -> np.ndarray:
    """Integer frequencies (int64) summing to ``2^precision``, >= 1 exactly where ``hist`` > 0.

    Needs at least one present symbol and no more present symbols than ``2^precision``.

    Example:
        >>> quantize(np.array([1, 0, 1]), 2).tolist()
        [2, 0, 2]
    """
    hist = np.asarray(hist, dtype=np.int64)
    present = hist > 0
    total_slots = 1 << precision
    if int(present.sum()) > total_slots or not present.any():
        raise ValueError(f"{int(present.sum())} present symbols do not fit precision {precision}")
    scaled = hist * (total_slots / float(hist.sum()))
    freqs = np.where(present, np.maximum(1, np.floor(scaled + 0.5)), 0).astype(np.int64)
    weights = hist.astype(np.float64)
    while True:
        diff = total_slots - int(freqs.sum())
        if diff == 0:
            return freqs
        if diff > 0:
            # Give one more slot to the symbols that gain the most bits from it.
            gain = np.where(present, weights * np.log2((freqs + 1) / np.maximum(freqs, 1)), -np.inf)
            chosen = np.argsort(-gain, kind="stable")[: min(diff, int(present.sum()))]
            freqs[chosen] += 1
        else:
            # Take one slot from the symbols (frequency > 1) that lose the fewest bits.
            loss = np.where(freqs > 1, weights * np.log2(np.maximum(freqs, 1) / np.maximum(freqs - 1, 1)), np.inf)
            movable = int(np.count_nonzero(freqs > 1))
            chosen = np.argsort(loss, kind="stable")[: min(-diff, movable)]
            freqs[chosen] -= 1


def choose_precision(hist: np.ndarray) -> tuple[int, np.ndarray, float]:
    """The precision minimizing table bytes + coded bytes; returns (precision, frequencies, coded bits).

    Example:
        >>> choose_precision(np.array([5, 5]))[:2]
        (1, array([1, 1]))
    """
    present = int(np.count_nonzero(hist))
    candidates = []
    for precision in range(max(1, (present - 1).bit_length()), MAX_PRECISION + 1):
        freqs = quantize(hist, precision)
        bits = coded_bits(hist, freqs, precision)
        candidates.append((float(leb128_size(freqs).sum()) * 8 + bits, precision, freqs, bits))
        # Table bytes grow and coded bits shrink with the precision: stop two steps past the minimum.
        if len(candidates) >= 3 and candidates[-1][0] > candidates[-2][0] > candidates[-3][0]:
            break
    _, precision, freqs, bits = min(candidates, key=lambda c: (c[0], c[1]))
    return precision, freqs, bits
