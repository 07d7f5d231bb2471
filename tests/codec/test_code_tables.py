"""The tables behind the entropy coders: LEB128 integers, length-limited Huffman code lengths, ANS frequencies."""

from __future__ import annotations

import heapq

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelpress.codec.ans_model import choose_precision, coded_bits, quantize
from modelpress.codec.huffman_code import canonical_codes, code_lengths, decode_table, is_complete
from modelpress.codec.varint import leb128_decode, leb128_encode, leb128_size
from modelpress.errors import FormatError


def huffman_cost(counts: list[int]) -> int:
    """Cost (total bits) of an unrestricted optimal Huffman code, by the textbook heap algorithm."""
    heap = [c for c in counts if c > 0]
    if len(heap) == 1:
        return heap[0]
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        total += merged
        heapq.heappush(heap, merged)
    return total


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=256).filter(any))
def test_code_lengths_are_optimal_and_complete(counts):
    lengths = code_lengths(np.array(counts))
    assert is_complete(lengths)
    assert int(lengths.max()) <= 15
    assert np.array_equal(lengths > 0, np.array(counts) > 0)
    cost = int(np.sum(np.array(counts) * lengths))
    unrestricted = huffman_cost(counts)
    assert cost >= unrestricted
    if unrestricted == cost or int(lengths.max()) < 15:
        assert cost == unrestricted  # the limit only binds when a code would exceed 15 bits


def test_length_limit_binds_on_fibonacci_counts():
    fibonacci = [1, 1]
    while len(fibonacci) < 25:
        fibonacci.append(fibonacci[-1] + fibonacci[-2])
    lengths = code_lengths(np.array(fibonacci))
    assert int(lengths.max()) == 15 and is_complete(lengths)
    assert int(np.sum(np.array(fibonacci) * lengths)) > huffman_cost(fibonacci)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=2, max_size=64).filter(lambda c: sum(1 for x in c if x) >= 2))
def test_canonical_codes_are_prefix_free_and_table_decodes_them(counts):
    lengths = code_lengths(np.array(counts))
    codes = canonical_codes(lengths)
    words = [format(int(c), f"0{int(n)}b") for c, n in zip(codes, lengths, strict=True) if n]
    assert not any(a != b and b.startswith(a) for a in words for b in words)
    table, bits = decode_table(lengths)
    for symbol, (code, length) in enumerate(zip(codes, lengths, strict=True)):
        if length:
            entry = int(table[int(code) << (bits - int(length))])
            assert (entry & 255, entry >> 8) == (symbol, int(length))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**63 - 1), max_size=50))
def test_leb128_roundtrip_and_sizes(values):
    data = leb128_encode(np.array(values, dtype=np.uint64))
    assert len(data) == int(leb128_size(np.array(values, dtype=np.uint64)).sum())
    decoded, used = leb128_decode(np.frombuffer(data, np.uint8), None, 9, "test")
    assert decoded.tolist() == values and used == len(data)


def test_leb128_rejects_bad_encodings():
    with pytest.raises(FormatError, match="expected LEB128 integers of at most 2 bytes, got <one of 3 bytes>"):
        leb128_decode(np.array([0x80, 0x80, 0x01], np.uint8), None, 2, "t")
    with pytest.raises(FormatError, match="expected LEB128 integers filling the stream, got <a truncated"):
        leb128_decode(np.array([0x05, 0x80], np.uint8), None, 3, "t")
    with pytest.raises(FormatError, match="expected 3 LEB128 integers, got <2 complete ones in 2 bytes>"):
        leb128_decode(np.array([0x05, 0x06], np.uint8), 3, 3, "t")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=2, max_size=256).filter(lambda c: sum(1 for x in c if x) >= 2),
       st.integers(9, 16))
def test_quantize_keeps_every_present_symbol_and_sums_exactly(counts, precision):
    hist = np.array(counts)
    freqs = quantize(hist, precision)
    assert int(freqs.sum()) == 1 << precision
    assert np.array_equal(freqs > 0, hist > 0)


def test_chosen_precision_costs_near_entropy():
    hist = np.bincount(np.clip(np.random.default_rng(0).geometric(0.3, 50_000), 0, 40), minlength=41)
    precision, freqs, bits = choose_precision(hist)
    p = hist[hist > 0] / hist.sum()
    entropy = float(-(p * np.log2(p)).sum() * hist.sum())
    assert bits == pytest.approx(coded_bits(hist, freqs, precision))
    assert entropy <= bits <= 1.002 * entropy
