"""The frequency table of the ``ans`` codec: quantize a histogram to integers summing to ``2^precision``, and
store it compactly.

Every present symbol keeps a frequency of at least 1; the rounding error is then repaired greedily where it costs the
fewest bits. The precision is chosen per stream to minimize table bytes plus coded bits: a short stream prefers a
coarse table, a long one a fine table. On disk the table is LEB128 integers: a nonzero integer is the next symbol's
frequency, a 0 is followed by ``r`` and stands for ``r + 1`` absent symbols (so a 256-symbol alphabet with a few
used symbols costs a few bytes, not 256).

Example:
    >>> hist = np.array([900, 90, 9, 1])
    >>> quantize(hist, 8).tolist()
    [230, 23, 2, 1]
    >>> precision, freqs, cost_bits = choose_precision(hist)
    >>> precision, int(freqs.sum()) == 1 << precision, round(cost_bits)
    (7, True, 528)
    >>> encode_table(np.array([3, 0, 0, 0, 5])).hex()
    '03000205'
"""

from __future__ import annotations

import numpy as np

from modelpress.codec.varint import leb128_encode, leb128_size
from modelpress.errors import FormatError

__all__ = ["FREQ_BYTES", "MAX_PRECISION", "choose_precision", "coded_bits", "decode_table", "encode_table",
           "quantize", "table_size"]

MAX_PRECISION = 16
FREQ_BYTES = 3  # every table integer (a frequency <= 2^16, or a run length < 256) has at most 3 LEB128 bytes


def _items(freqs: np.ndarray) -> np.ndarray:
    """The table's integers: nonzero frequencies as they are, each run of k zeros as (0, k - 1)."""
    freqs = np.asarray(freqs, dtype=np.int64)
    zero = freqs == 0
    # Runs of zeros: starts where a zero follows a nonzero (or begins the table); lengths up to the next nonzero.
    starts = np.flatnonzero(zero & ~np.concatenate(([False], zero[:-1])))
    ends = np.flatnonzero(zero & ~np.concatenate((zero[1:], [False]))) + 1
    keep = ~zero
    keep[starts] = True  # the first zero of each run stays, as the 0 marker
    items = freqs[keep]
    slots = np.flatnonzero(keep)
    marker = np.isin(slots, starts)
    # Insert each run's length - 1 right after its marker.
    return np.insert(items, np.flatnonzero(marker) + 1, ends - starts - 1)


def table_size(freqs: np.ndarray) -> int:
    """Bytes of the stored table.

    Example:
        >>> table_size(np.array([300] + [0] * 200 + [1]))  # 300, then (0, 199), then 1
        6
    """
    return int(leb128_size(_items(freqs)).sum())


def encode_table(freqs: np.ndarray) -> bytes:
    """The stored table: LEB128 frequencies, runs of zeros as 0 then (run length - 1).

    Example:
        >>> encode_table(np.array([0, 0, 7])).hex()
        '000107'
    """
    return leb128_encode(_items(freqs))


def decode_table(data: np.ndarray, alphabet: int, where: str) -> tuple[np.ndarray, int]:
    """(frequencies (alphabet,) int64, bytes used) read from the start of ``data``.

    Example:
        >>> decode_table(np.frombuffer(bytes.fromhex("03000205ff"), np.uint8), 5, "t")
        (array([3, 0, 0, 0, 5]), 4)
        >>> decode_table(np.frombuffer(bytes.fromhex("0005"), np.uint8), 3, "t")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        modelpress.errors.FormatError: t: expected zero runs within the alphabet of 3 symbols, got <a run of 6 ...>
    """
    raw = bytes(data[: FREQ_BYTES * 2 * alphabet])
    freqs: list[int] = []
    position = 0

    def read() -> int:
        nonlocal position
        value = 0
        for k in range(FREQ_BYTES):
            if position >= len(raw):
                raise FormatError(where, f"a frequency table of {alphabet} symbols", "<a truncated table>")
            byte = raw[position]
            position += 1
            value |= (byte & 0x7F) << (7 * k)
            if byte < 0x80:
                if k and byte == 0:
                    raise FormatError(where, "minimal LEB128 integers", "<a group ending in 0x00>")
                return value
        raise FormatError(where, f"table integers of at most {FREQ_BYTES} bytes", "<a longer one>")

    while len(freqs) < alphabet:
        value = read()
        if value:
            freqs.append(value)
            continue
        run = read() + 1
        if len(freqs) + run > alphabet:
            raise FormatError(where, f"zero runs within the alphabet of {alphabet} symbols",
                              f"<a run of {run} after {len(freqs)} symbols>")
        freqs.extend([0] * run)
    return np.array(freqs, dtype=np.int64), position


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
        candidates.append((table_size(freqs) * 8 + bits, precision, freqs, bits))
        # Table bytes grow and coded bits shrink with the precision: stop two steps past the minimum.
        if len(candidates) >= 3 and candidates[-1][0] > candidates[-2][0] > candidates[-3][0]:
            break
    _, precision, freqs, bits = min(candidates, key=lambda c: (c[0], c[1]))
    return precision, freqs, bits
