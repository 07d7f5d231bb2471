"""Symbol codecs (bitpack, huffman, ans): bit-exact round trips at every parameter, exact size estimates, sizes near
the entropy, decode speed, and robustness of every decoder to corrupted bytes."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelpress.codec import CODECS, SymbolSpec
from modelpress.codec.bitpack import min_bits
from modelpress.errors import FormatError


def laplace_symbols(count: int, alphabet: int, seed: int = 0) -> np.ndarray:
    """Symbols of a discretized Laplace distribution centred in the alphabet (like cluster indices)."""
    rng = np.random.default_rng(seed)
    raw = np.round(rng.laplace(alphabet / 2, max(alphabet / 10, 0.3), count))
    return np.clip(raw, 0, alphabet - 1).astype(np.uint8)


def entropy_bytes(symbols: np.ndarray) -> float:
    p = np.bincount(symbols) / symbols.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum() * symbols.size / 8)


def roundtrip(name: str, symbols: np.ndarray, spec: SymbolSpec, **choice) -> tuple[np.ndarray, int]:
    codec = CODECS.get(name)
    split = codec.split(symbols, spec, **choice)
    codec.check(split.params, spec, len(split.data), "test")
    decoded = codec.join(split.params, spec, np.frombuffer(split.data, np.uint8), {}, "test")
    return decoded, len(split.data)


@st.composite
def symbol_streams(draw, max_count=3000):
    alphabet = draw(st.integers(1, 256))
    count = draw(st.integers(0, max_count))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    used = draw(st.integers(1, alphabet))
    if draw(st.booleans()):
        symbols = rng.integers(0, used, count)
    else:  # skewed: geometric-like
        symbols = np.minimum(rng.geometric(draw(st.sampled_from([0.05, 0.5, 0.95])), count) - 1, used - 1)
    return symbols.astype(np.uint8), SymbolSpec(alphabet, count)


@settings(max_examples=120, deadline=None)
@given(symbol_streams(), st.data())
def test_bitpack_roundtrip_every_width(stream, data):
    symbols, spec = stream
    bits = data.draw(st.integers(min_bits(spec.alphabet), 8))
    decoded, nbytes = roundtrip("bitpack", symbols, spec, bits=bits)
    assert np.array_equal(decoded, symbols)
    assert nbytes == (spec.count * bits + 7) // 8


@settings(max_examples=120, deadline=None)
@given(symbol_streams(), st.data())
def test_huffman_roundtrip_any_lane_split(stream, data):
    symbols, spec = stream
    if spec.count == 0:
        return
    lane = data.draw(st.integers(1, spec.count))
    decoded, _ = roundtrip("huffman", symbols, spec, lane=lane)
    assert np.array_equal(decoded, symbols)


@settings(max_examples=120, deadline=None)
@given(symbol_streams(), st.data())
def test_ans_roundtrip_any_precision_and_lanes(stream, data):
    symbols, spec = stream
    present = int(np.count_nonzero(np.bincount(symbols, minlength=spec.alphabet)))
    if present < 2:
        return
    precision = data.draw(st.integers(max(1, (present - 1).bit_length()), 16))
    lanes = data.draw(st.integers(1, min(spec.count, 300)))
    decoded, _ = roundtrip("ans", symbols, spec, precision=precision, lanes=lanes)
    assert np.array_equal(decoded, symbols)


@settings(max_examples=60, deadline=None)
@given(symbol_streams())
def test_estimates_of_bitpack_and_huffman_are_exact(stream):
    symbols, spec = stream
    hist = np.bincount(symbols, minlength=spec.alphabet)
    for name in ("bitpack", "huffman"):
        estimate = CODECS.get(name).estimate(symbols, spec, hist)
        if estimate is None:
            continue
        size, exact = estimate
        assert exact
        assert size == len(CODECS.get(name).split(symbols, spec).data)


def test_ans_estimate_is_close():
    symbols = laplace_symbols(100_000, 32)
    spec = SymbolSpec(32, symbols.size)
    estimate, exact = CODECS.get("ans").estimate(symbols, spec, np.bincount(symbols, minlength=32))
    actual = len(CODECS.get("ans").split(symbols, spec).data)
    assert not exact
    assert abs(estimate - actual) <= 0.002 * actual + 16


def test_sizes_near_entropy_on_cluster_indices():
    symbols = laplace_symbols(270_000, 32)
    spec = SymbolSpec(32, symbols.size)
    entropy = entropy_bytes(symbols)
    _, huffman = roundtrip("huffman", symbols, spec)
    _, ans = roundtrip("ans", symbols, spec)
    # Huffman is within 1% of the order-0 entropy plus its table (16 bytes) and lane lengths.
    assert huffman <= 1.01 * entropy + 16 + 3 * 66
    # rANS is within 0.5% of entropy plus its frequency table and lane states.
    assert ans <= 1.005 * entropy + 64 + 8 * 68


def test_ans_beats_huffman_on_skewed_binary_stream():
    rng = np.random.default_rng(1)
    mask = (rng.random(100_000) < 0.05).astype(np.uint8)
    spec = SymbolSpec(2, mask.size)
    _, huffman = roundtrip("huffman", mask, spec)
    _, ans = roundtrip("ans", mask, spec)
    assert huffman >= mask.size / 8  # Huffman cannot go below 1 bit per symbol
    assert ans < 0.35 * huffman  # H(0.05) = 0.29 bits per symbol
    assert ans <= 1.01 * entropy_bytes(mask) + 64


def test_huffman_decodes_a_million_symbols_well_under_a_second():
    symbols = laplace_symbols(1_000_000, 32)
    spec = SymbolSpec(32, symbols.size)
    codec = CODECS.get("huffman")
    split = codec.split(symbols, spec)
    data = np.frombuffer(split.data, np.uint8)
    start = time.perf_counter()
    decoded = codec.join(split.params, spec, data, {}, "test")
    elapsed = time.perf_counter() - start
    assert np.array_equal(decoded, symbols)
    assert elapsed < 0.5, f"decode took {elapsed:.3f}s"


def test_single_symbol_streams():
    symbols = np.full(1000, 7, np.uint8)
    spec = SymbolSpec(8, 1000)
    decoded, nbytes = roundtrip("huffman", symbols, spec)
    assert np.array_equal(decoded, symbols) and nbytes == 4 + 2 + 125
    decoded, nbytes = roundtrip("bitpack", np.zeros(50, np.uint8), SymbolSpec(1, 50))
    assert nbytes == 0 and not decoded.any() and decoded.size == 50
    with pytest.raises(ValueError, match="two distinct symbols"):
        CODECS.get("ans").split(symbols, spec)


@pytest.mark.parametrize(("name", "choice"), [("bitpack", {}), ("huffman", {}), ("huffman", {"lane": 100}),
                                              ("ans", {}), ("ans", {"lanes": 20})],
                         ids=["bitpack", "huffman-1-lane", "huffman-20-lanes", "ans-1-lane", "ans-20-lanes"])
def test_decoders_raise_only_format_errors_on_corrupted_bytes(name, choice):
    rng = np.random.default_rng(7)
    symbols = laplace_symbols(2000, 20, seed=3)
    spec = SymbolSpec(20, symbols.size)
    codec = CODECS.get(name)
    split = codec.split(symbols, spec, **choice)
    clean = np.frombuffer(split.data, np.uint8)
    outcomes = {"error": 0, "decoded": 0}
    for _ in range(150):
        data = clean.copy()
        flips = rng.integers(0, data.size, rng.integers(1, 4))
        data[flips] ^= rng.integers(1, 256, flips.size).astype(np.uint8)
        try:
            decoded = codec.join(split.params, spec, data, {}, "test")
        except FormatError:
            outcomes["error"] += 1
            continue
        outcomes["decoded"] += 1
        assert decoded.shape == (spec.count,) and int(decoded.max()) < spec.alphabet
    # Entropy coders check their structure: most corruptions are caught even without the file's CRC.
    if name != "bitpack":
        assert outcomes["error"] > 75


def test_error_messages_name_the_violation():
    spec = SymbolSpec(4, 8)
    huffman = CODECS.get("huffman")
    split = huffman.split(np.array([0, 1, 2, 3, 0, 0, 0, 1], np.uint8), spec)
    data = np.frombuffer(split.data, np.uint8).copy()
    data[0] = 0x11  # lengths 1, 1, ...: over-subscribed code
    with pytest.raises(FormatError, match="expected code lengths forming a complete prefix code"):
        huffman.join(split.params, spec, data, {}, "stream")
    ans = CODECS.get("ans")
    split = ans.split(np.array([0, 1, 2, 3, 0, 0, 0, 1], np.uint8), spec, lanes=1)
    with pytest.raises(FormatError, match=r"stream: expected 8 bytes of states then whole 4-byte words"):
        ans.join(split.params, spec, np.frombuffer(split.data[:-1], np.uint8), {}, "stream")
    bitpack = CODECS.get("bitpack")
    with pytest.raises(FormatError, match=r"stream: expected symbols below 3, got 3"):
        bitpack.join({"bits": 2}, SymbolSpec(3, 1), np.array([3], np.uint8), {}, "stream")
    with pytest.raises(FormatError, match=r"expected zero padding bits after the last symbol"):
        bitpack.join({"bits": 2}, SymbolSpec(4, 1), np.array([0x10], np.uint8), {}, "stream")


@pytest.mark.parametrize("name", ["huffman", "ans"])
@pytest.mark.parametrize("lanes", [1, 3, 20])
def test_scalar_and_vectorized_paths_write_and_read_the_same_bytes(name, lanes, monkeypatch):
    import modelpress.codec.ans as ans_module
    import modelpress.codec.huffman as huffman_module

    module = {"huffman": huffman_module, "ans": ans_module}[name]
    symbols = laplace_symbols(3001, 24, seed=lanes)
    spec = SymbolSpec(24, symbols.size)
    choice = {"lane": -(-symbols.size // lanes)} if name == "huffman" else {"lanes": lanes}
    codec = CODECS.get(name)
    results = []
    for threshold in (0, 10**9):  # 0: always numpy lockstep; 10**9: always the Python loop
        monkeypatch.setattr(module, "SCALAR_LANES", threshold)
        split = codec.split(symbols, spec, **choice)
        results.append(split.data)
        assert np.array_equal(codec.join(split.params, spec, np.frombuffer(split.data, np.uint8), {}, "t"), symbols)
    assert results[0] == results[1]
