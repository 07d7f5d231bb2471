"""``ans``: interleaved rANS with 64-bit states and 32-bit words, vectorized over lanes with numpy.

Symbol ``i`` belongs to lane ``i % lanes``; one numpy step codes one symbol of every lane, so a stream costs
``count / lanes`` Python iterations. The coder gets within a fraction of a percent of the entropy of the quantized
frequency table (64-bit states make the rANS rounding loss negligible). Own data: the frequency table (LEB128), the
lanes' initial states (u64 LE), then the words (u32 LE). Decoding is exactly docs/FORMAT.md section 5.2, and ends
with every word read and every state back at ``2^32`` (a strong integrity check).

Example:
    >>> import numpy as np
    >>> from modelpress.codec.streams import SymbolSpec
    >>> spec = SymbolSpec(3, 8)
    >>> symbols = np.array([0, 0, 1, 0, 2, 0, 0, 1], np.uint8)
    >>> split = ANS.split(symbols, spec, lanes=2)
    >>> split.params, len(split.data)
    ({'precision': 5, 'lanes': 2}, 19)
    >>> ANS.join(split.params, spec, np.frombuffer(split.data, np.uint8), {}, "demo").tolist()
    [0, 0, 1, 0, 2, 0, 0, 1]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, cast

import numpy as np

from modelpress.codec.ans_model import (
    MAX_PRECISION,
    choose_precision,
    coded_bits,
    decode_table,
    encode_table,
    quantize,
    table_size,
)
from modelpress.codec.base import Codec, Split, check_range, register
from modelpress.codec.streams import Spec, SymbolSpec
from modelpress.errors import FormatError

__all__ = ["ANS", "SCALAR_LANES", "Ans", "default_lanes"]

SCALAR_LANES = 16  # below this many lanes, code with a Python loop (~1 us/symbol) rather than numpy steps
_LOW = np.uint64(1 << 32)  # states live in [2^32, 2^64)
_WORD = np.uint64(32)
_WORD_MASK = np.uint64(0xFFFFFFFF)


def default_lanes(count: int, coded_bytes: float) -> int:
    """Lanes: one per ~2 KiB of output (a lane's state costs ~5 bytes), at least one per 16384 symbols (decode
    steps), at most 256.

    Example:
        >>> default_lanes(10, 4), default_lanes(270_000, 140_000), default_lanes(100_000, 3_600)
        (1, 68, 7)
    """
    return max(1, min(256, count, max(round(coded_bytes / 2048), -(-count // 16384))))


def _encode(symbols: np.ndarray, freqs: np.ndarray, precision: int, lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """(initial states (lanes,) u64, words u32) for ``symbols`` coded last to first."""
    count = symbols.size
    if lanes < SCALAR_LANES:
        return _encode_scalar(symbols, freqs, precision, lanes)
    steps = -(-count // lanes)
    grid = np.zeros(steps * lanes, dtype=np.uint8)
    grid[:count] = symbols
    grid = grid.reshape(steps, lanes)  # grid[t, j] = symbol t * lanes + j
    freq = freqs.astype(np.uint64)
    start = (np.cumsum(freqs) - freqs).astype(np.uint64)
    limit = freq << np.uint64(64 - precision)  # x >= limit must emit a word before coding the symbol
    state = np.full(lanes, _LOW, dtype=np.uint64)
    chunks: list[np.ndarray] = []
    shift = np.uint64(precision)
    for t in range(steps - 1, -1, -1):
        active = count - t * lanes if t == steps - 1 else lanes
        x = state[:active]  # a view: updates land in `state`
        row = grid[t, :active]
        f = freq.take(row)
        emit = x >= limit.take(row)
        if emit.any():
            chunks.append((x[emit] & _WORD_MASK).astype(np.uint32))  # lane order, as the decoder reads them
            x[emit] >>= _WORD
        quotient = x // f
        x[:] = (quotient << shift) + (x - quotient * f) + start.take(row)
    words = np.concatenate(chunks[::-1]) if chunks else np.zeros(0, np.uint32)
    return state, words


def _encode_scalar(symbols: np.ndarray, freqs: np.ndarray, precision: int, lanes: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The same coder as :func:`_encode`, one symbol at a time in Python (faster for a few lanes)."""
    freq = freqs.tolist()
    start = (np.cumsum(freqs) - freqs).tolist()
    limit = [f << (64 - precision) for f in freq]
    state = [1 << 32] * lanes
    emitted: list[int] = []
    for i, s in zip(range(symbols.size - 1, -1, -1), symbols[::-1].tolist(), strict=True):
        j, x, f = i % lanes, state[i % lanes], freq[s]
        if x >= limit[s]:
            emitted.append(x & 0xFFFFFFFF)
            x >>= 32
        state[j] = ((x // f) << precision) + x % f + start[s]
    return np.array(state, dtype=np.uint64), np.array(emitted[::-1], dtype=np.uint32)


def _decode_scalar(states: np.ndarray, words: np.ndarray, table: tuple[list[int], list[int], list[int]],
                   precision: int, count: int, where: str) -> np.ndarray:
    """The same decoder as :func:`_decode`, one symbol at a time in Python (faster for a few lanes)."""
    symbol_of, freq_of, bias_of = table
    lanes, mask, low = states.size, (1 << precision) - 1, 1 << 32
    state, stream = states.tolist(), words.tolist()
    out = bytearray(count)
    read = 0
    for i in range(count):
        j = i % lanes
        x = state[j]
        slot = x & mask
        out[i] = symbol_of[slot]
        x = freq_of[slot] * (x >> precision) + bias_of[slot]
        if x < low:
            if read == len(stream):
                raise FormatError(where, f"more than {len(stream)} words", "<the stream ran out>")
            x = (x << 32) | stream[read]
            read += 1
        state[j] = x
    if read != len(stream):
        raise FormatError(where, f"all {len(stream)} words read", read)
    if any(x != low for x in state):
        raise FormatError(where, "every lane's final state = 2^32", "<another state>")
    return np.frombuffer(bytes(out), dtype=np.uint8)


def _decode(states: np.ndarray, words: np.ndarray, freqs: np.ndarray, precision: int, count: int,
            where: str) -> np.ndarray:
    """Decode ``count`` symbols; every word must be read and every state must end at 2^32."""
    lanes = states.size
    steps = -(-count // lanes)
    slots = 1 << precision
    slot_symbol = np.repeat(np.arange(freqs.size, dtype=np.uint8), freqs)  # (2^P,) symbol owning each slot
    slot_freq = freqs.astype(np.uint64).take(slot_symbol)
    slot_bias = (np.arange(slots) - (np.cumsum(freqs) - freqs).take(slot_symbol)).astype(np.uint64)
    if lanes < SCALAR_LANES:
        table = (slot_symbol.tolist(), slot_freq.tolist(), slot_bias.tolist())
        return _decode_scalar(states, words, table, precision, count, where)
    mask, shift = np.uint64(slots - 1), np.uint64(precision)
    state = states.copy()
    out = np.zeros((steps, lanes), dtype=np.uint8)
    read = 0
    for t in range(steps):
        active = count - t * lanes if t == steps - 1 else lanes
        x = state[:active]
        slot = x & mask
        out[t, :active] = slot_symbol.take(slot)
        x[:] = slot_freq.take(slot) * (x >> shift) + slot_bias.take(slot)
        refill = np.flatnonzero(x < _LOW)
        if refill.size:
            if read + refill.size > words.size:
                raise FormatError(where, f"at least {read + refill.size} words", words.size)
            x[refill] = (x[refill] << _WORD) | words[read:read + refill.size]
            read += refill.size
    if read != words.size:
        raise FormatError(where, f"all {words.size} words read", read)
    if np.any(state != _LOW):
        raise FormatError(where, "every lane's final state = 2^32", "<another state>")
    return out.reshape(-1)[:count]


class Ans(Codec):
    """Parameters ``precision`` (frequencies sum to ``2^precision``, 1-16) and ``lanes`` (1 to count).

    Example:
        >>> ANS.check({"precision": 12, "lanes": 2}, SymbolSpec(4, 100), 17, "node")
        Traceback (most recent call last):
        ...
        modelpress.errors.FormatError: node: expected nbytes >= 18 (frequency table and lane states), got 17
    """

    name = "ans"
    consumes = SymbolSpec
    param_types: ClassVar[dict[str, type]] = {"precision": int, "lanes": int}

    def check(self, params: Mapping[str, Any], spec: Spec, nbytes: int, where: str) -> list[tuple[str, Spec]]:
        """At least one symbol; own data at least the table and the lanes' states."""
        spec = cast(SymbolSpec, spec)
        if spec.count < 1:
            raise FormatError(where, "a stream of at least 1 symbol for ans", spec.count)
        check_range(where, "precision", params["precision"], 1, MAX_PRECISION)
        check_range(where, "lanes", params["lanes"], 1, spec.count)
        least = 2 + 8 * params["lanes"]  # at least two nonzero frequencies, and the lane states
        if nbytes < least:
            raise FormatError(where, f"nbytes >= {least} (frequency table and lane states)", nbytes)
        return []

    def estimate(self, values: np.ndarray, spec: Spec, hist: np.ndarray) -> tuple[int, bool] | None:
        """Table bytes + ideal coded bits + lane states (about half of each state's 64 bits carry data)."""
        spec = cast(SymbolSpec, spec)
        if spec.count < 1 or np.count_nonzero(hist) < 2:
            return None
        _, freqs, bits = choose_precision(hist)
        lanes = default_lanes(spec.count, bits / 8)
        words = max(0, -(-int(bits - 16 * lanes) // 32))
        return table_size(freqs) + 8 * lanes + 4 * words, False

    def split(self, values: np.ndarray, spec: Spec, **choice: Any) -> Split:
        """Quantize the histogram (at ``precision`` if given), then code; needs two distinct symbols."""
        spec = cast(SymbolSpec, spec)
        hist = np.bincount(values, minlength=spec.alphabet)
        if spec.count < 1 or np.count_nonzero(hist) < 2:
            raise ValueError("ans needs at least two distinct symbols")
        if "precision" in choice:
            precision = int(choice["precision"])
            freqs = quantize(hist, precision)
            bits = coded_bits(hist, freqs, precision)
        else:
            precision, freqs, bits = choose_precision(hist)
        lanes = int(choice.get("lanes", default_lanes(spec.count, bits / 8)))
        states, words = _encode(values.astype(np.uint8), freqs, precision, lanes)
        data = encode_table(freqs) + states.astype("<u8").tobytes() + words.astype("<u4").tobytes()
        return Split({"precision": precision, "lanes": lanes}, data)

    def join(self, params: Mapping[str, Any], spec: Spec, data: np.ndarray, children: Mapping[str, np.ndarray],
             where: str) -> np.ndarray:
        """Validate the table, states and word count, then decode."""
        spec = cast(SymbolSpec, spec)
        precision, lanes = params["precision"], params["lanes"]
        freqs, used = decode_table(data, spec.alphabet, f"{where} frequencies")
        if int(freqs.sum()) != 1 << precision or np.count_nonzero(freqs) < 2:
            raise FormatError(where, f"frequencies summing to 2^{precision} with two or more nonzero",
                              f"<sum {int(freqs.sum())}, {np.count_nonzero(freqs)} nonzero>")
        rest = data[used:]
        if rest.size < 8 * lanes or (rest.size - 8 * lanes) % 4:
            raise FormatError(where, f"{8 * lanes} bytes of states then whole 4-byte words", f"<{rest.size} bytes>")
        states = rest[: 8 * lanes].view("<u8").astype(np.uint64)
        if np.any(states < _LOW):
            raise FormatError(where, "initial states >= 2^32", int(states.min()))
        words = rest[8 * lanes:].view("<u4").astype(np.uint64)
        return _decode(states, words, freqs, precision, spec.count, where)


ANS = register(Ans())
